//! Errors: every problem carries the JSON pointer (RFC 6901) of the offending element and, for
//! reading, the byte offset.

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Malformed JSON.
    #[error("JSON syntax: {0}")]
    Syntax(&'static str),
    /// The nesting limit of [`ReadOptions`](crate::ReadOptions) was exceeded.
    #[error("nesting deeper than the configured limit")]
    TooDeep,
    /// The input is larger than the configured limit.
    #[error("input larger than the configured limit")]
    TooLarge,
    /// `resourceType` is missing.
    #[error("missing resourceType")]
    MissingResourceType,
    /// `resourceType` names no R4 resource.
    #[error("unknown resourceType {0:?}")]
    UnknownResourceType(String),
    /// A member the definition does not have (strict mode).
    #[error("unknown element {0:?}")]
    UnknownElement(String),
    /// The JSON shape does not match the element's type.
    #[error("wrong JSON type, expected {expected}")]
    WrongType {
        /// What the definition requires.
        expected: String,
    },
    /// A primitive's lexical form is invalid.
    #[error("invalid value: {0}")]
    InvalidPrimitive(&'static str),
    /// Cardinality violated.
    #[error("cardinality {found} outside {min}..{}", if *.max == u32::MAX { "*".to_owned() } else { max.to_string() })]
    Cardinality {
        /// Minimum.
        min: u32,
        /// Maximum (`u32::MAX` = `*`).
        max: u32,
        /// Number found.
        found: usize,
    },
    /// Two types given for one choice element, or a member given twice.
    #[error("duplicate element")]
    Duplicate,
    /// A `_name` sibling that does not match its value (array length, non-primitive).
    #[error("invalid primitive extension sibling: {0}")]
    BadSibling(&'static str),
}

/// An error with its location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {kind}")]
pub struct Error {
    /// JSON pointer of the element (`/name/0/given/1`); empty for the document root.
    pub pointer: String,
    /// Byte offset in the input, when reading.
    pub offset: Option<usize>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// An error at a relative location (one path segment, escaped per RFC 6901).
    pub fn new(kind: ErrorKind, segment: &str) -> Self {
        let mut pointer = String::new();
        push_segment(&mut pointer, segment);
        Error {
            pointer,
            offset: None,
            kind,
        }
    }

    /// Prefixes the pointer with an enclosing segment.
    #[must_use]
    pub fn under(mut self, segment: &str) -> Self {
        let mut p = String::new();
        push_segment(&mut p, segment);
        p.push_str(&self.pointer);
        self.pointer = p;
        self
    }
}

/// Appends `/segment` with `~` and `/` escaped (RFC 6901 §3).
pub fn push_segment(out: &mut String, segment: &str) {
    out.push('/');
    for c in segment.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}
