//! Parser options: terminators, limits, charset handling, escape policy.

use crate::escape::EscapePolicy;
use encoding_rs::Encoding;

/// Which bytes end a segment (HL7 v2.5.1 section 2.5.1: the segment terminator is CR).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Terminators {
    /// CR, LF and CRLF all end a segment; blank lines and stray MLLP framing bytes
    /// (0x0B, 0x1C), a leading BOM and surrounding whitespace are skipped (default).
    #[default]
    Lenient,
    /// Only CR ends a segment; LF is data. A leading BOM and trailing CRs are still skipped.
    CrOnly,
}

/// What to do when MSH-18 names an unknown character set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnknownCharset {
    /// Fail the parse with [`ParseErrorKind::UnsupportedCharset`](crate::ParseErrorKind::UnsupportedCharset) (default).
    #[default]
    Error,
    /// Decode with [`ParseOptions::default_charset`].
    UseDefault,
}

/// Options for [`Message::parse_with`](crate::Message::parse_with) and [`Parser`](crate::Parser).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Segment terminators accepted.
    pub terminators: Terminators,
    /// Reject segments whose ID is not `[A-Z0-9]{3}` (default true). When false such lines
    /// are kept as segments (their [`name`](crate::Segment::name) may be odd).
    pub strict_segment_ids: bool,
    /// Maximum input length in bytes (default 64 MiB; never above `u32::MAX`).
    pub max_len: usize,
    /// Maximum number of segments (default 100,000).
    pub max_segments: usize,
    /// Charset used when MSH-18 is empty (default UTF-8, which includes the standard's ASCII).
    pub default_charset: &'static Encoding,
    /// Extra MSH-18 names, matched case-insensitively before table 0211 (e.g. `("WINDOWS-1252", WINDOWS_1252)`).
    pub charset_aliases: Vec<(String, &'static Encoding)>,
    /// Behaviour for an unknown MSH-18 value.
    pub unknown_charset: UnknownCharset,
    /// Escape decoding policy used by the `text()` accessors.
    pub escapes: EscapePolicy,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            terminators: Terminators::Lenient,
            strict_segment_ids: true,
            max_len: 64 << 20,
            max_segments: 100_000,
            default_charset: encoding_rs::UTF_8,
            charset_aliases: Vec::new(),
            unknown_charset: UnknownCharset::Error,
            escapes: EscapePolicy::default(),
        }
    }
}
