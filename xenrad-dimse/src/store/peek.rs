//! A zero-copy look at the first top-level elements of a data set (PS3.5 §7.1) to find its
//! SOP Class, SOP Instance and Study Instance UIDs without decoding the rest.

use crate::assoc::policy::ts;

/// UIDs found at the start of a data set, borrowed from the scanned bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeekedUids<'a> {
    /// (0008,0016) SOP Class UID.
    pub sop_class_uid: Option<&'a str>,
    /// (0008,0018) SOP Instance UID.
    pub sop_instance_uid: Option<&'a str>,
    /// (0020,000D) Study Instance UID.
    pub study_instance_uid: Option<&'a str>,
}

/// Result of [`peek_uids`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeekOutcome<'a> {
    /// Scanning finished (past (0020,000D), or stopped at an element it does not skip).
    Done(PeekedUids<'a>),
    /// The bytes end before the scan could finish; supply more.
    NeedMore,
    /// The transfer syntax is not scanned (deflated).
    Unsupported,
    /// The bytes are not a data set in this transfer syntax (byte offset).
    Invalid(usize),
}

fn uid(v: &[u8]) -> Option<&str> {
    std::str::from_utf8(v)
        .ok()
        .map(|s| s.trim_end_matches(['\0', ' ']))
}

/// Scans top-level elements of `data` in transfer syntax `ts_uid` (PS3.5 §7.1.2/§7.1.3).
/// `complete` says `data` is the whole data set (so running out of bytes ends the scan).
pub fn peek_uids<'a>(data: &'a [u8], ts_uid: &str, complete: bool) -> PeekOutcome<'a> {
    let (explicit, big) = match ts_uid {
        ts::IMPLICIT_VR_LE => (false, false),
        ts::EXPLICIT_VR_BE => (true, true),
        ts::DEFLATED_EXPLICIT_VR_LE => return PeekOutcome::Unsupported,
        _ => (true, false),
    };
    let u16_at = |b: &[u8]| {
        if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        }
    };
    let u32_at = |b: &[u8]| {
        if big {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
    };
    let mut out = PeekedUids::default();
    let mut pos = 0usize;
    loop {
        let rest = &data[pos..];
        if rest.is_empty() && complete {
            return PeekOutcome::Done(out);
        }
        if rest.len() < 8 {
            return if complete {
                PeekOutcome::Invalid(pos)
            } else {
                PeekOutcome::NeedMore
            };
        }
        let group = u16_at(&rest[0..2]);
        let elem = u16_at(&rest[2..4]);
        let tag = (u32::from(group) << 16) | u32::from(elem);
        if tag > 0x0020_000D {
            return PeekOutcome::Done(out);
        }
        let (hlen, len) = if explicit {
            let vr = [rest[4], rest[5]];
            if !vr[0].is_ascii_uppercase() || !vr[1].is_ascii_uppercase() {
                return PeekOutcome::Invalid(pos + 4);
            }
            // PS3.5 table 7.1-1: these VRs have 2 reserved bytes and a 32-bit length.
            if matches!(
                &vr,
                b"OB"
                    | b"OD"
                    | b"OF"
                    | b"OL"
                    | b"OV"
                    | b"OW"
                    | b"SQ"
                    | b"SV"
                    | b"UC"
                    | b"UN"
                    | b"UR"
                    | b"UT"
                    | b"UV"
            ) {
                if rest.len() < 12 {
                    return if complete {
                        PeekOutcome::Invalid(pos)
                    } else {
                        PeekOutcome::NeedMore
                    };
                }
                (12, u32_at(&rest[8..12]))
            } else {
                (8, u32::from(u16_at(&rest[6..8])))
            }
        } else {
            (8, u32_at(&rest[4..8]))
        };
        if len == u32::MAX {
            // Undefined length (a sequence): stop here with what was found.
            return PeekOutcome::Done(out);
        }
        let end = pos + hlen + len as usize;
        if data.len() < end {
            return if complete {
                PeekOutcome::Invalid(pos)
            } else {
                PeekOutcome::NeedMore
            };
        }
        if matches!(tag, 0x0008_0016 | 0x0008_0018 | 0x0020_000D) {
            let Some(v) = uid(&data[pos + hlen..end]) else {
                return PeekOutcome::Invalid(pos + hlen);
            };
            match tag {
                0x0008_0016 => out.sop_class_uid = Some(v),
                0x0008_0018 => out.sop_instance_uid = Some(v),
                _ => out.study_instance_uid = Some(v),
            }
        }
        if tag == 0x0020_000D {
            return PeekOutcome::Done(out);
        }
        pos = end;
    }
}
