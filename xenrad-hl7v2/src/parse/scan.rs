//! The one-pass segment scanner shared by the message parser and the batch splitter.

use super::options::Terminators;

/// Byte range of one segment (terminator excluded), as offsets into the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    /// Start offset.
    pub fn start(&self) -> usize {
        self.start as usize
    }
    /// End offset (exclusive).
    pub fn end(&self) -> usize {
        self.end as usize
    }
}

/// Bytes skipped at the start of the input in lenient mode: UTF-8 BOM, MLLP start block,
/// whitespace.
pub(crate) fn skip_leading(input: &[u8], t: Terminators) -> usize {
    let mut i = if input.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    if t == Terminators::Lenient {
        while i < input.len() && matches!(input[i], b'\r' | b'\n' | 0x0B | 0x1C | b' ' | b'\t' | 0)
        {
            i += 1;
        }
    } else {
        while i < input.len() && input[i] == b'\r' {
            i += 1;
        }
    }
    i
}

fn is_junk_line(line: &[u8]) -> bool {
    line.iter()
        .all(|b| matches!(b, 0x0B | 0x1C | b' ' | b'\t' | 0))
}

/// Iterator over segment lines `(start, end)`, skipping empty (and, in lenient mode,
/// whitespace/framing-only) lines.
pub(crate) struct Lines<'a> {
    input: &'a [u8],
    pos: usize,
    mode: Terminators,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(input: &'a [u8], mode: Terminators) -> Self {
        Self {
            input,
            pos: skip_leading(input, mode),
            mode,
        }
    }
}

impl Iterator for Lines<'_> {
    type Item = (usize, usize);

    #[inline]
    fn next(&mut self) -> Option<(usize, usize)> {
        loop {
            let len = self.input.len();
            if self.pos >= len {
                return None;
            }
            let rest = &self.input[self.pos..];
            let found = match self.mode {
                Terminators::Lenient => memchr::memchr2(b'\r', b'\n', rest),
                Terminators::CrOnly => memchr::memchr(b'\r', rest),
            };
            let mut start = self.pos;
            let end = found.map_or(len, |n| start + n);
            self.pos = end + 1;
            if self.mode == Terminators::Lenient {
                // MLLP start/end block bytes glued to a segment (framed files).
                while start < end && matches!(self.input[start], 0x0B | 0x1C) {
                    start += 1;
                }
            }
            if end == start {
                continue;
            }
            if self.mode == Terminators::Lenient && is_junk_line(&self.input[start..end]) {
                continue;
            }
            return Some((start, end));
        }
    }
}

/// True if `line` starts with a valid segment ID followed by `sep` or the line end.
#[inline]
pub(crate) fn valid_segment_id(line: &[u8], sep: u8) -> bool {
    line.len() >= 3
        && line[..3]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && (line.len() == 3 || line[3] == sep)
}
