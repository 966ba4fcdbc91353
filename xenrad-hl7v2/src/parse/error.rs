//! Parse errors: a kind plus the byte offset and the segment where it happened.

use crate::delimiters::DelimiterError;

/// What went wrong while indexing a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input is empty (or only whitespace and framing bytes).
    Empty,
    /// The input is longer than [`ParseOptions::max_len`](crate::ParseOptions::max_len).
    TooLarge {
        /// Input length in bytes.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// The message has more segments than [`ParseOptions::max_segments`](crate::ParseOptions::max_segments).
    TooManySegments {
        /// Configured limit.
        max: usize,
    },
    /// The first segment is not MSH.
    NotMsh,
    /// The input starts with a batch or file header (FHS/BHS): use [`crate::batch`].
    BatchEnvelope,
    /// MSH is too short to hold MSH-1 and MSH-2.
    TruncatedMsh,
    /// MSH-1 or MSH-2 is not a usable delimiter set.
    Delimiters(DelimiterError),
    /// A segment does not start with a three-character ID (`[A-Z0-9]{3}`) followed by the
    /// field separator or the segment end.
    InvalidSegmentId,
    /// A second MSH segment: the input holds several messages ([`crate::batch::split`] splits them).
    SecondMsh,
    /// MSH-18 names a character set that is neither in table 0211 nor in the alias table.
    UnsupportedCharset(String),
    /// Lenient terminators: an MLLP start block (0x0B) after the message started. Framing
    /// bytes are skipped only where MLLP puts them (0x0B before the first segment, 0x1C
    /// after the last); a start block later on is a second, empty or truncated frame glued
    /// to the message (HL7 v2.5.1 section 2.5: a message is its segments, each ended by
    /// the segment terminator), so the message is refused rather than guessed at.
    StrayStartBlock,
}

impl core::fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => f.write_str("empty input"),
            Self::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            Self::TooManySegments { max } => write!(f, "more than {max} segments"),
            Self::NotMsh => f.write_str("message does not start with an MSH segment"),
            Self::BatchEnvelope => {
                f.write_str("input starts with a batch/file header (FHS/BHS); split it as a batch")
            }
            Self::TruncatedMsh => f.write_str("MSH segment too short for MSH-1 and MSH-2"),
            Self::Delimiters(e) => write!(f, "invalid delimiters: {e}"),
            Self::InvalidSegmentId => {
                f.write_str("invalid segment ID (expected 3 characters A-Z/0-9)")
            }
            Self::SecondMsh => f.write_str("second MSH segment: input holds more than one message"),
            Self::UnsupportedCharset(name) => {
                write!(f, "unsupported character set {name:?} in MSH-18")
            }
            Self::StrayStartBlock => {
                f.write_str("MLLP start block (0x0B) after the start of the message")
            }
        }
    }
}

/// A parse error with its position: byte offset into the input and, when known, the 1-based
/// segment index and field number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// Byte offset into the input.
    pub offset: usize,
    /// 1-based index of the segment where it happened, if any.
    pub segment: Option<usize>,
    /// Field number (HL7 numbering) where it happened, if any.
    pub field: Option<usize>,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, offset: usize) -> Self {
        Self {
            kind,
            offset,
            segment: None,
            field: None,
        }
    }
    pub(crate) fn at_segment(mut self, segment: usize) -> Self {
        self.segment = Some(segment);
        self
    }
    pub(crate) fn at_field(mut self, field: usize) -> Self {
        self.field = Some(field);
        self
    }
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)?;
        if let Some(s) = self.segment {
            write!(f, " (segment {s}")?;
            if let Some(fl) = self.field {
                write!(f, ", field {fl}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}
