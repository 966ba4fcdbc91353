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
    /// A line has been returned (the message has started).
    started: bool,
    /// Lenient mode: offset of the first MLLP start block (0x0B) met after the message
    /// started. MLLP puts 0x0B only before a message's first byte, so one after it is a
    /// second (truncated) frame or a mis-captured end block, not tolerable framing.
    pub(crate) stray_start_block: Option<usize>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(input: &'a [u8], mode: Terminators) -> Self {
        Self {
            input,
            pos: skip_leading(input, mode),
            mode,
            started: false,
            stray_start_block: None,
        }
    }

    fn note_start_block(&mut self, start: usize, end: usize) {
        if self.started && self.stray_start_block.is_none() {
            self.stray_start_block =
                memchr::memchr(0x0B, &self.input[start..end]).map(|i| start + i);
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
                let line_start = start;
                // MLLP start/end block bytes glued to a segment (framed files).
                while start < end && matches!(self.input[start], 0x0B | 0x1C) {
                    start += 1;
                }
                if start > line_start {
                    self.note_start_block(line_start, start);
                }
                if end > start && is_junk_line(&self.input[start..end]) {
                    self.note_start_block(start, end);
                    continue;
                }
            }
            if end == start {
                continue;
            }
            self.started = true;
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

#[cfg(test)]
mod tests {
    use crate::{Message, ParseErrorKind, ParseOptions, Terminators};

    #[test]
    fn framing_bytes_only_where_mllp_puts_them() {
        // Leading start block and trailing end block: a faithful MLLP capture.
        let framed = b"\x0bMSH|^~\\&|A|B|C|D|||ADT^A08|1|P|2.5.1\rPID|1\r\x1c\r";
        assert!(Message::parse(framed).is_ok());
        // A start block after the last segment, alone or glued to a line.
        for bad in [
            &b"MSH|^~\\&|A|B|C|D|||ADT^A08|1|P|2.5.1\rPID|1\r\x0b\r\n"[..],
            b"MSH|^~\\&|A|B|C|D|||ADT^A08|1|P|2.5.1\r\x0bPID|1\r",
        ] {
            let e = Message::parse(bad).unwrap_err();
            assert_eq!(e.kind, ParseErrorKind::StrayStartBlock);
            assert_eq!(bad[e.offset], 0x0b);
        }
        // CR-only mode keeps 0x0B as data, as before.
        let opts = ParseOptions {
            terminators: Terminators::CrOnly,
            ..ParseOptions::default()
        };
        assert!(
            Message::parse_with(
                b"MSH|^~\\&|A|B|C|D|||ADT^A08|1|P|2.5.1\rPID|1|\x0b\r",
                &opts
            )
            .is_ok()
        );
    }
}
