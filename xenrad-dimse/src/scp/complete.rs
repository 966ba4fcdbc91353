//! Whether a streamed C-STORE data set is structurally complete (PS3.5 §7.1, §7.5): it
//! ends on an element boundary with every undefined-length sequence and item closed.
//!
//! The header peek reads only the start of a data set, so a data set cut off in the middle
//! of an element (a sender that truncated a file, a broken proxy) was committed and
//! acknowledged 0x0000 (found by the gateway's bad-input campaign with pydicom's
//! `MR_truncated.dcm` and truncations of a CT at 10-99.9 %). This walker follows the
//! element structure across fragments without keeping values: a defined-length value is
//! skipped by count, an undefined-length one is entered (items, delimiters), so a
//! multi-megabyte pixel data element costs one subtraction per fragment.

/// Deepest nesting followed; beyond it the check gives up (answers "unknown", never
/// refuses).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// A data set (the top level, or an undefined-length item): elements until the end
    /// (top) or an item delimitation item.
    Elements { implicit: bool, top: bool },
    /// An undefined-length sequence or encapsulated value: items until a sequence
    /// delimitation item.
    Items { implicit: bool },
}

/// Outcome of the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completeness {
    /// Ends on an element boundary, everything closed.
    Complete,
    /// Ends inside an element, or with a sequence or item still open (byte offset).
    Truncated(u64),
    /// Not an element structure (byte offset).
    Invalid(u64),
    /// Not checked (deflated or unknown transfer syntax, nesting too deep).
    Unknown,
}

/// Streaming structure walker for one data set.
#[derive(Debug, Clone)]
pub(crate) struct Walker {
    big_endian: bool,
    stack: Vec<Level>,
    /// Bytes of the current header collected so far.
    head: [u8; 12],
    head_len: usize,
    /// Value bytes still to skip.
    skip: u64,
    pos: u64,
    result: Option<Completeness>,
}

impl Default for Walker {
    fn default() -> Self {
        Walker::new("1.2.840.10008.1.2.1")
    }
}

impl Walker {
    /// A walker for a data set in transfer syntax `ts`.
    pub(crate) fn new(ts: &str) -> Self {
        let ts = ts.trim_end_matches(['\0', ' ']);
        let (implicit, big_endian, known) = match ts {
            "1.2.840.10008.1.2" => (true, false, true),
            "1.2.840.10008.1.2.2" => (false, true, true),
            // Deflated: the bytes on the wire are not the element structure.
            "1.2.840.10008.1.2.1.99" => (false, false, false),
            // Every other transfer syntax is explicit VR little endian (PS3.5 §A.4).
            _ => (false, false, true),
        };
        Walker {
            big_endian,
            stack: vec![Level::Elements {
                implicit,
                top: true,
            }],
            head: [0; 12],
            head_len: 0,
            skip: 0,
            pos: 0,
            result: (!known).then_some(Completeness::Unknown),
        }
    }

    fn u16_at(&self, i: usize) -> u16 {
        let b = [self.head[i], self.head[i + 1]];
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32_at(&self, i: usize) -> u32 {
        let b = [
            self.head[i],
            self.head[i + 1],
            self.head[i + 2],
            self.head[i + 3],
        ];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Feeds the next fragment of the data set.
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        while self.result.is_none() && !data.is_empty() {
            if self.skip > 0 {
                let n = usize::try_from(self.skip).map_or(data.len(), |s| s.min(data.len()));
                self.skip -= n as u64;
                self.pos += n as u64;
                data = &data[n..];
                continue;
            }
            let Some(&level) = self.stack.last() else {
                // Content after the top level closed cannot happen (the top never pops).
                self.result = Some(Completeness::Invalid(self.pos));
                return;
            };
            let need = self.header_len(level);
            let take = (need - self.head_len).min(data.len());
            self.head[self.head_len..self.head_len + take].copy_from_slice(&data[..take]);
            self.head_len += take;
            self.pos += take as u64;
            data = &data[take..];
            if self.head_len < need {
                // An explicit VR header is 8 bytes unless its VR says 12: decided once
                // the VR is in.
                continue;
            }
            let need = self.header_len(level);
            if self.head_len < need {
                continue;
            }
            self.head_len = 0;
            self.element(level, need);
        }
    }

    /// Length of the header at this level given what is collected so far.
    fn header_len(&self, level: Level) -> usize {
        match level {
            Level::Items { .. } | Level::Elements { implicit: true, .. } => 8,
            Level::Elements {
                implicit: false, ..
            } => {
                if self.head_len < 6 {
                    return 8;
                }
                let group = self.u16_at(0);
                if group == 0xFFFE {
                    return 8; // item and delimitation tags carry no VR
                }
                match &self.head[4..6] {
                    b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC"
                    | b"UN" | b"UR" | b"UT" | b"UV" => 12,
                    _ => 8,
                }
            }
        }
    }

    fn element(&mut self, level: Level, header: usize) {
        let (group, elem) = (self.u16_at(0), self.u16_at(2));
        let at = self.pos - header as u64;
        match level {
            Level::Items { implicit } => {
                let len = self.u32_at(4);
                match (group, elem) {
                    (0xFFFE, 0xE000) if len == u32::MAX => self.push(Level::Elements {
                        implicit,
                        top: false,
                    }),
                    (0xFFFE, 0xE000) => self.skip = u64::from(len),
                    (0xFFFE, 0xE0DD) => {
                        self.stack.pop();
                    }
                    _ => self.result = Some(Completeness::Invalid(at)),
                }
            }
            Level::Elements { implicit, top } => {
                if group == 0xFFFE {
                    if elem == 0xE00D && !top {
                        self.stack.pop();
                    } else {
                        self.result = Some(Completeness::Invalid(at));
                    }
                    return;
                }
                let (len, vr) = if implicit {
                    (self.u32_at(4), None)
                } else if header == 12 {
                    (self.u32_at(8), Some([self.head[4], self.head[5]]))
                } else {
                    (
                        u32::from(self.u16_at(6)),
                        Some([self.head[4], self.head[5]]),
                    )
                };
                if len == u32::MAX {
                    // Undefined length: a sequence, or an encapsulated value; an explicit UN
                    // of undefined length holds implicit VR little endian (PS3.5 §6.2.2).
                    let inner_implicit = implicit || vr == Some(*b"UN");
                    self.push(Level::Items {
                        implicit: inner_implicit,
                    });
                } else {
                    self.skip = u64::from(len);
                }
            }
        }
    }

    fn push(&mut self, level: Level) {
        if self.stack.len() >= MAX_DEPTH {
            self.result = Some(Completeness::Unknown);
        } else {
            self.stack.push(level);
        }
    }

    /// The verdict once the whole data set was fed.
    pub(crate) fn finish(&self) -> Completeness {
        if let Some(r) = self.result {
            return r;
        }
        if self.skip > 0 || self.head_len > 0 || self.stack.len() != 1 {
            Completeness::Truncated(self.pos)
        } else {
            Completeness::Complete
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(group: u16, elem: u16, vr: &str, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&group.to_le_bytes());
        v.extend_from_slice(&elem.to_le_bytes());
        v.extend_from_slice(vr.as_bytes());
        if matches!(vr, "OB" | "SQ" | "UN" | "OW") {
            v.extend_from_slice(&[0, 0]);
            v.extend_from_slice(&u32::try_from(value.len()).unwrap().to_le_bytes());
        } else {
            v.extend_from_slice(&u16::try_from(value.len()).unwrap().to_le_bytes());
        }
        v.extend_from_slice(value);
        v
    }

    fn undefined_sq(group: u16, elem: u16, items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&group.to_le_bytes());
        v.extend_from_slice(&elem.to_le_bytes());
        v.extend_from_slice(b"SQ\0\0");
        v.extend_from_slice(&u32::MAX.to_le_bytes());
        for it in items {
            v.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
            v.extend_from_slice(&u32::MAX.to_le_bytes());
            v.extend_from_slice(it);
            v.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        }
        v.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        v
    }

    fn walk(data: &[u8], chunk: usize) -> Completeness {
        let mut w = Walker::new("1.2.840.10008.1.2.1");
        for c in data.chunks(chunk.max(1)) {
            w.feed(c);
        }
        w.finish()
    }

    fn sample() -> Vec<u8> {
        let mut d = el(0x0008, 0x0018, "UI", b"1.2.3.4\0");
        d.extend(undefined_sq(
            0x0008,
            0x1140,
            &[el(0x0008, 0x1150, "UI", b"1.2\0")],
        ));
        d.extend(el(0x0010, 0x0010, "PN", b"Doe^J "));
        d.extend(el(0x7FE0, 0x0010, "OW", &[7u8; 300]));
        d
    }

    #[test]
    fn a_whole_data_set_is_complete_in_any_fragmentation() {
        let d = sample();
        for chunk in [1, 2, 3, 7, 11, 64, d.len()] {
            assert_eq!(walk(&d, chunk), Completeness::Complete, "chunk {chunk}");
        }
    }

    #[test]
    fn every_cut_inside_an_element_is_truncated() {
        let d = sample();
        let boundaries: Vec<usize> = {
            let mut b = vec![0];
            let first = el(0x0008, 0x0018, "UI", b"1.2.3.4\0").len();
            b.push(first);
            let sq = undefined_sq(0x0008, 0x1140, &[el(0x0008, 0x1150, "UI", b"1.2\0")]).len();
            b.push(first + sq);
            b.push(first + sq + el(0x0010, 0x0010, "PN", b"Doe^J ").len());
            b.push(d.len());
            b
        };
        for cut in 1..d.len() {
            let r = walk(&d[..cut], 5);
            if boundaries.contains(&cut) {
                assert_eq!(r, Completeness::Complete, "cut {cut}");
            } else {
                assert!(matches!(r, Completeness::Truncated(_)), "cut {cut}: {r:?}");
            }
        }
    }

    #[test]
    fn stray_delimiters_are_invalid_and_deflate_is_not_checked() {
        let mut d = sample();
        d.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        assert!(matches!(walk(&d, 9), Completeness::Invalid(_)));
        let mut w = Walker::new("1.2.840.10008.1.2.1.99");
        w.feed(&[1, 2, 3]);
        assert_eq!(w.finish(), Completeness::Unknown);
    }

    #[test]
    fn implicit_vr_with_undefined_length_items() {
        let mut d = Vec::new();
        d.extend_from_slice(&[0x08, 0x00, 0x18, 0x00, 4, 0, 0, 0]);
        d.extend_from_slice(b"1.2\0");
        d.extend_from_slice(&[0x08, 0x00, 0x40, 0x11]);
        d.extend_from_slice(&u32::MAX.to_le_bytes());
        d.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 1, 2, 3, 4]);
        d.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let mut w = Walker::new("1.2.840.10008.1.2");
        w.feed(&d);
        assert_eq!(w.finish(), Completeness::Complete);
        let mut w = Walker::new("1.2.840.10008.1.2");
        w.feed(&d[..d.len() - 3]);
        assert!(matches!(w.finish(), Completeness::Truncated(_)));
    }
}
