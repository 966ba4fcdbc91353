//! A zero-copy look at the first top-level elements of a data set (PS3.5 §7.1) to find the
//! header facts a receiver files an instance under (SOP class/instance, study, series,
//! patient, …) without decoding the rest.
//!
//! The scan walks top-level elements in tag order and stops after (0020,0013) Instance
//! Number. Sequences before that (e.g. (0008,1140) Referenced Image Sequence) are skipped,
//! whether of defined or undefined length (PS3.5 §7.5), without looking inside them.

use crate::assoc::policy::ts;

/// The last tag the scan looks for: (0020,0013) Instance Number.
pub const LAST_PEEKED_TAG: u32 = 0x0020_0013;

/// Deepest sequence nesting followed while skipping; deeper data stops the scan.
const MAX_DEPTH: u32 = 32;

/// Header facts found at the start of a data set, borrowed from the scanned bytes.
///
/// Text values are the raw bytes of the value with leading/trailing spaces and trailing
/// NULs removed (their character set is (0008,0005)); UIDs are checked to be ASCII.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeekedHeader<'a> {
    /// (0008,0005) Specific Character Set.
    pub specific_character_set: Option<&'a [u8]>,
    /// (0008,0016) SOP Class UID.
    pub sop_class_uid: Option<&'a str>,
    /// (0008,0018) SOP Instance UID.
    pub sop_instance_uid: Option<&'a str>,
    /// (0008,0020) Study Date.
    pub study_date: Option<&'a [u8]>,
    /// (0008,0030) Study Time.
    pub study_time: Option<&'a [u8]>,
    /// (0008,0050) Accession Number.
    pub accession_number: Option<&'a [u8]>,
    /// (0008,0060) Modality.
    pub modality: Option<&'a [u8]>,
    /// (0008,1030) Study Description.
    pub study_description: Option<&'a [u8]>,
    /// (0010,0010) Patient's Name.
    pub patient_name: Option<&'a [u8]>,
    /// (0010,0020) Patient ID.
    pub patient_id: Option<&'a [u8]>,
    /// (0010,0021) Issuer of Patient ID.
    pub issuer_of_patient_id: Option<&'a [u8]>,
    /// (0010,0030) Patient's Birth Date.
    pub patient_birth_date: Option<&'a [u8]>,
    /// (0010,0040) Patient's Sex.
    pub patient_sex: Option<&'a [u8]>,
    /// (0020,000D) Study Instance UID.
    pub study_instance_uid: Option<&'a str>,
    /// (0020,000E) Series Instance UID.
    pub series_instance_uid: Option<&'a str>,
    /// (0020,0011) Series Number.
    pub series_number: Option<&'a [u8]>,
    /// (0020,0013) Instance Number.
    pub instance_number: Option<&'a [u8]>,
}

/// Result of [`peek_header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeekOutcome<'a> {
    /// Scanning finished (past (0020,0013), at the end of a complete data set, or stopped at
    /// data it does not follow) with what was found.
    Done(PeekedHeader<'a>),
    /// The bytes end before the scan could finish; supply more. Carries what was found so far.
    NeedMore(PeekedHeader<'a>),
    /// The transfer syntax is not scanned (deflated).
    Unsupported,
    /// The bytes are not a data set in this transfer syntax (byte offset).
    Invalid(usize),
}

fn trim(v: &[u8]) -> &[u8] {
    let end = v
        .iter()
        .rposition(|&b| b != 0 && b != b' ')
        .map_or(0, |i| i + 1);
    let v = &v[..end];
    let start = v.iter().position(|&b| b != b' ').unwrap_or(v.len());
    &v[start..]
}

fn uid(v: &[u8]) -> Option<&str> {
    let v = trim(v);
    if v.is_ascii() {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// PS3.5 table 7.1-1: these VRs have 2 reserved bytes and a 32-bit length.
fn long_vr(vr: [u8; 2]) -> bool {
    matches!(
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
    )
}

/// Scans `data`, the start of a data set in transfer syntax `ts_uid` (PS3.5 §7.1.2/§7.1.3),
/// for the facts of [`PeekedHeader`]. `complete` says `data` is the whole data set (so
/// running out of bytes ends the scan).
///
/// ```
/// use xenrad_dimse::store::{PeekOutcome, peek_header};
/// // (0008,0060) CS "CT" and (0010,0020) LO "P1" in Explicit VR Little Endian.
/// let ds = [8, 0, 0x60, 0, b'C', b'S', 2, 0, b'C', b'T',
///           0x10, 0, 0x20, 0, b'L', b'O', 2, 0, b'P', b'1'];
/// let PeekOutcome::Done(h) = peek_header(&ds, "1.2.840.10008.1.2.1", true) else { panic!() };
/// assert_eq!(h.modality, Some(&b"CT"[..]));
/// assert_eq!(h.patient_id, Some(&b"P1"[..]));
/// ```
pub fn peek_header<'a>(data: &'a [u8], ts_uid: &str, complete: bool) -> PeekOutcome<'a> {
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
    let mut out = PeekedHeader::default();
    // Nesting of undefined-length sequences and items being skipped (0 = top level).
    let mut depth = 0u32;
    let mut pos = 0usize;
    let short = |out: PeekedHeader<'a>, at: usize| {
        if complete {
            PeekOutcome::Invalid(at)
        } else {
            PeekOutcome::NeedMore(out)
        }
    };
    loop {
        let rest = &data[pos..];
        if rest.is_empty() && complete {
            return if depth == 0 {
                PeekOutcome::Done(out)
            } else {
                PeekOutcome::Invalid(pos)
            };
        }
        if rest.len() < 8 {
            return short(out, pos);
        }
        let group = u16_at(&rest[0..2]);
        let elem = u16_at(&rest[2..4]);
        let tag = (u32::from(group) << 16) | u32::from(elem);
        if group == 0xFFFE {
            // PS3.5 §7.5: items and delimiters have an 8-byte header and no VR.
            let len = u32_at(&rest[4..8]);
            match elem {
                0xE000 if depth > 0 => {
                    if len == u32::MAX {
                        depth += 1;
                        pos += 8;
                    } else {
                        let end = pos + 8 + len as usize;
                        if data.len() < end {
                            return short(out, pos);
                        }
                        pos = end;
                    }
                }
                0xE00D | 0xE0DD if depth > 0 => {
                    depth -= 1;
                    pos += 8;
                }
                _ => return PeekOutcome::Invalid(pos),
            }
            if depth > MAX_DEPTH {
                return PeekOutcome::Done(out);
            }
            continue;
        }
        if depth == 0 && tag > LAST_PEEKED_TAG {
            return PeekOutcome::Done(out);
        }
        let (hlen, len, is_sq) = if explicit {
            let vr = [rest[4], rest[5]];
            if !vr[0].is_ascii_uppercase() || !vr[1].is_ascii_uppercase() {
                return PeekOutcome::Invalid(pos + 4);
            }
            if long_vr(vr) {
                if rest.len() < 12 {
                    return short(out, pos);
                }
                (12, u32_at(&rest[8..12]), &vr == b"SQ")
            } else {
                (8, u32::from(u16_at(&rest[6..8])), false)
            }
        } else {
            // Implicit VR: an undefined length can only be a sequence here.
            (8, u32_at(&rest[4..8]), true)
        };
        if len == u32::MAX {
            if !is_sq {
                // Undefined-length UN/OB (implicit-VR content, encapsulated pixel data):
                // not followed; stop with what was found.
                return PeekOutcome::Done(out);
            }
            depth += 1;
            if depth > MAX_DEPTH {
                return PeekOutcome::Done(out);
            }
            pos += hlen;
            continue;
        }
        let end = pos + hlen + len as usize;
        if depth > 0 {
            // Inside a skipped sequence: skip the value when it is here, else wait for it.
            if data.len() < end {
                return short(out, pos);
            }
            pos = end;
            continue;
        }
        let wanted = matches!(
            tag,
            0x0008_0005
                | 0x0008_0016
                | 0x0008_0018
                | 0x0008_0020
                | 0x0008_0030
                | 0x0008_0050
                | 0x0008_0060
                | 0x0008_1030
                | 0x0010_0010
                | 0x0010_0020
                | 0x0010_0021
                | 0x0010_0030
                | 0x0010_0040
                | 0x0020_000D
                | 0x0020_000E
                | 0x0020_0011
                | 0x0020_0013
        );
        if !wanted {
            // Skipped values need not be buffered: a caller past the limit gives up anyway.
            if data.len() < end {
                return short(out, pos);
            }
            pos = end;
            continue;
        }
        if data.len() < end {
            return short(out, pos);
        }
        let v = &data[pos + hlen..end];
        let text = Some(trim(v));
        match tag {
            0x0008_0005 => out.specific_character_set = text,
            0x0008_0016 | 0x0008_0018 | 0x0020_000D | 0x0020_000E => {
                let Some(u) = uid(v) else {
                    return PeekOutcome::Invalid(pos + hlen);
                };
                match tag {
                    0x0008_0016 => out.sop_class_uid = Some(u),
                    0x0008_0018 => out.sop_instance_uid = Some(u),
                    0x0020_000D => out.study_instance_uid = Some(u),
                    _ => out.series_instance_uid = Some(u),
                }
            }
            0x0008_0020 => out.study_date = text,
            0x0008_0030 => out.study_time = text,
            0x0008_0050 => out.accession_number = text,
            0x0008_0060 => out.modality = text,
            0x0008_1030 => out.study_description = text,
            0x0010_0010 => out.patient_name = text,
            0x0010_0020 => out.patient_id = text,
            0x0010_0021 => out.issuer_of_patient_id = text,
            0x0010_0030 => out.patient_birth_date = text,
            0x0010_0040 => out.patient_sex = text,
            0x0020_0011 => out.series_number = text,
            _ => out.instance_number = text,
        }
        if tag == LAST_PEEKED_TAG {
            return PeekOutcome::Done(out);
        }
        pos = end;
    }
}

/// The header facts of a stored instance, owned (see [`PeekedHeader`]); text is decoded per
/// (0008,0005) for the default repertoire, ISO_IR 100 (Latin-1) and ISO_IR 192 (UTF-8);
/// other character sets are decoded as UTF-8 with replacement characters. Empty values are
/// `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceHeader {
    /// (0008,0016) SOP Class UID.
    pub sop_class_uid: Option<String>,
    /// (0008,0018) SOP Instance UID.
    pub sop_instance_uid: Option<String>,
    /// (0008,0020) Study Date (DA, `YYYYMMDD`).
    pub study_date: Option<String>,
    /// (0008,0030) Study Time (TM).
    pub study_time: Option<String>,
    /// (0008,0050) Accession Number.
    pub accession_number: Option<String>,
    /// (0008,0060) Modality.
    pub modality: Option<String>,
    /// (0008,1030) Study Description.
    pub study_description: Option<String>,
    /// (0010,0010) Patient's Name (PN, components separated by `^`, groups by `=`).
    pub patient_name: Option<String>,
    /// (0010,0020) Patient ID.
    pub patient_id: Option<String>,
    /// (0010,0021) Issuer of Patient ID.
    pub issuer_of_patient_id: Option<String>,
    /// (0010,0030) Patient's Birth Date (DA).
    pub patient_birth_date: Option<String>,
    /// (0010,0040) Patient's Sex.
    pub patient_sex: Option<String>,
    /// (0020,000D) Study Instance UID.
    pub study_instance_uid: Option<String>,
    /// (0020,000E) Series Instance UID.
    pub series_instance_uid: Option<String>,
    /// (0020,0011) Series Number (IS).
    pub series_number: Option<String>,
    /// (0020,0013) Instance Number (IS).
    pub instance_number: Option<String>,
}

impl InstanceHeader {
    /// Copies and decodes the borrowed facts.
    ///
    /// ```
    /// use xenrad_dimse::store::{InstanceHeader, PeekedHeader};
    /// let p = PeekedHeader {
    ///     specific_character_set: Some(b"ISO_IR 100"),
    ///     patient_name: Some(b"M\xfcller^Hans"),
    ///     ..PeekedHeader::default()
    /// };
    /// assert_eq!(InstanceHeader::from_peeked(&p).patient_name.as_deref(), Some("Müller^Hans"));
    /// ```
    pub fn from_peeked(p: &PeekedHeader<'_>) -> Self {
        let latin1 = p
            .specific_character_set
            .is_some_and(|c| c.eq_ignore_ascii_case(b"ISO_IR 100"));
        let text = |v: Option<&[u8]>| -> Option<String> {
            let v = v.filter(|v| !v.is_empty())?;
            Some(if latin1 {
                v.iter().map(|&b| char::from(b)).collect()
            } else {
                String::from_utf8_lossy(v).into_owned()
            })
        };
        let owned = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_owned);
        Self {
            sop_class_uid: owned(p.sop_class_uid),
            sop_instance_uid: owned(p.sop_instance_uid),
            study_date: text(p.study_date),
            study_time: text(p.study_time),
            accession_number: text(p.accession_number),
            modality: text(p.modality),
            study_description: text(p.study_description),
            patient_name: text(p.patient_name),
            patient_id: text(p.patient_id),
            issuer_of_patient_id: text(p.issuer_of_patient_id),
            patient_birth_date: text(p.patient_birth_date),
            patient_sex: text(p.patient_sex),
            study_instance_uid: owned(p.study_instance_uid),
            series_instance_uid: owned(p.series_instance_uid),
            series_number: text(p.series_number),
            instance_number: text(p.instance_number),
        }
    }
}
