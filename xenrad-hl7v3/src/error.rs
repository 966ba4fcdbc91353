//! Errors as values with a position (byte offset, 1-based line and column).

use std::fmt;

/// What went wrong; the position is carried by [`V3Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is not well-formed XML 1.0 (syntax, mismatched or missing end tags, bad attributes).
    Syntax(String),
    /// The input is not valid UTF-8 (HL7 v3 XML ITS messages handled here must be UTF-8).
    Utf8,
    /// The XML declaration names an encoding other than UTF-8.
    UnsupportedEncoding(String),
    /// A `<!DOCTYPE …>` was found; DTDs are rejected, entities are never expanded.
    Doctype,
    /// An entity reference other than the five predefined ones or a valid character reference.
    UndefinedEntity(String),
    /// An element or attribute prefix that has no namespace binding in scope.
    UnboundPrefix(String),
    /// The same attribute appears twice on one element.
    DuplicateAttribute(String),
    /// A configured limit ([`crate::Limits`]) was exceeded.
    Limit(&'static str),
    /// The document is well-formed XML but not an HL7 v3 message of the expected shape.
    NotAMessage(String),
}

/// An error with the byte offset, line and column where it was detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Byte offset into the input.
    pub offset: usize,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column (in characters) within the line.
    pub column: u32,
}

impl V3Error {
    /// Builds an error at `offset` of `src`, computing line and column.
    pub(crate) fn at(src: &[u8], offset: usize, kind: ErrorKind) -> Self {
        let (line, column) = line_col(src, offset);
        V3Error {
            kind,
            offset: offset.min(src.len()),
            line,
            column,
        }
    }

    /// A human-readable message without the position.
    pub fn message(&self) -> String {
        match &self.kind {
            ErrorKind::Syntax(m) => format!("not well-formed: {m}"),
            ErrorKind::Utf8 => "input is not valid UTF-8".to_owned(),
            ErrorKind::UnsupportedEncoding(e) => format!("unsupported encoding {e:?} (only UTF-8)"),
            ErrorKind::Doctype => "DOCTYPE is not allowed (entities are never expanded)".to_owned(),
            ErrorKind::UndefinedEntity(e) => format!("undefined entity reference &{e};"),
            ErrorKind::UnboundPrefix(p) => format!("namespace prefix {p:?} is not bound"),
            ErrorKind::DuplicateAttribute(a) => format!("duplicate attribute {a:?}"),
            ErrorKind::Limit(what) => format!("limit exceeded: {what}"),
            ErrorKind::NotAMessage(m) => format!("not an HL7 v3 message: {m}"),
        }
    }
}

impl fmt::Display for V3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line,
            self.column,
            self.message()
        )
    }
}

impl std::error::Error for V3Error {}

/// 1-based line and column (in characters) of byte `offset` in `src`.
pub fn line_col(src: &[u8], offset: usize) -> (u32, u32) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
    // Count characters, not bytes: every byte that is not a UTF-8 continuation byte starts one.
    let column = before[line_start..]
        .iter()
        .filter(|&&b| (b & 0xC0) != 0x80)
        .count()
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}
