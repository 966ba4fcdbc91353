//! The DIMSE dataset of N-CREATE / N-SET (PS3.7 §10.1.5, §10.1.1) in Implicit or Explicit VR Little
//! Endian (PS3.5 §7.1, §10.1, §10.2), using `dicom-encoding` for element headers and `dicom-core`
//! for tags, VRs and lengths. The association and command set belong to `xenrad-dimse`.
//!
//! Decoding rules: defined- and undefined-length sequences and items (PS3.5 §7.5); UN of undefined
//! length is read as an Implicit VR sequence (PS3.5 §6.2.2); one trailing NUL is stripped from UI
//! values and trailing (and, where insignificant, leading) spaces from text values (PS3.5 §6.2);
//! group length elements (gggg,0000) are skipped; values of binary VRs (OB, OW, UN of defined
//! length, …) are kept as bytes. Text is decoded as UTF-8, or as ISO 8859-1 when
//! Specific Character Set is `ISO_IR 100`; the encoder writes UTF-8 and sets `ISO_IR 192` when a
//! value is not ASCII.

use crate::MppsError;
use crate::attributes::{known_vr, tags};
use crate::codec::{Limits, check_size};
use crate::dataset::{Dataset, Element, Value};
use crate::error::ErrorKind;
use dicom_core::header::{DataElementHeader, HasLength, SequenceItemHeader};
use dicom_core::{Length, Tag, VR};
use dicom_encoding::decode::Decode;
use dicom_encoding::decode::explicit_le::ExplicitVRLittleEndianDecoder;
use dicom_encoding::decode::implicit_le::ImplicitVRLittleEndianDecoder;
use dicom_encoding::encode::Encode;
use dicom_encoding::encode::explicit_le::ExplicitVRLittleEndianEncoder;
use dicom_encoding::encode::implicit_le::ImplicitVRLittleEndianEncoder;

/// The transfer syntaxes an MPPS dataset may arrive in on a DIMSE presentation context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferSyntaxKind {
    /// Implicit VR Little Endian `1.2.840.10008.1.2` (PS3.5 §10.1).
    ImplicitVrLittleEndian,
    /// Explicit VR Little Endian `1.2.840.10008.1.2.1` (PS3.5 §10.2).
    ExplicitVrLittleEndian,
}

impl TransferSyntaxKind {
    /// Maps a transfer syntax UID (one trailing NUL tolerated) to a supported kind.
    pub fn from_uid(uid: &str) -> Option<Self> {
        match crate::uid::strip_wire_pad(uid) {
            "1.2.840.10008.1.2" => Some(Self::ImplicitVrLittleEndian),
            "1.2.840.10008.1.2.1" => Some(Self::ExplicitVrLittleEndian),
            _ => None,
        }
    }

    /// The transfer syntax UID.
    pub fn uid(self) -> &'static str {
        match self {
            Self::ImplicitVrLittleEndian => "1.2.840.10008.1.2",
            Self::ExplicitVrLittleEndian => "1.2.840.10008.1.2.1",
        }
    }
}

const ITEM_DELIMITER: Tag = Tag(0xFFFE, 0xE00D);

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    count: usize,
    latin1: bool,
    /// The last header was a standard attribute sent as UN (its items are Implicit VR LE).
    from_un: bool,
}

fn is_text_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE
            | VR::AS
            | VR::CS
            | VR::DA
            | VR::DS
            | VR::DT
            | VR::IS
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::TM
            | VR::UC
            | VR::UI
            | VR::UR
            | VR::UT
    )
}

fn malformed(path: &[Tag], at: usize, msg: impl std::fmt::Display) -> MppsError {
    MppsError::at(ErrorKind::Malformed, path, format!("{msg} (byte {at})"))
}

/// Decodes an N-CREATE / N-SET dataset.
///
/// ```
/// use xenrad_mpps::codec::dimse::{decode, encode, TransferSyntaxKind};
/// use xenrad_mpps::{Dataset, Element, tags};
/// use dicom_core::VR;
/// let ds = Dataset::new().with(tags::PPS_STATUS, Element::string(VR::CS, "COMPLETED"));
/// for ts in [TransferSyntaxKind::ImplicitVrLittleEndian, TransferSyntaxKind::ExplicitVrLittleEndian] {
///     let bytes = encode(&ds, ts).unwrap();
///     assert_eq!(decode(&bytes, ts, &Default::default()).unwrap(), ds);
/// }
/// ```
pub fn decode(data: &[u8], ts: TransferSyntaxKind, limits: &Limits) -> Result<Dataset, MppsError> {
    check_size(data.len(), limits)?;
    let mut r = Reader {
        data,
        pos: 0,
        limits,
        count: 0,
        latin1: false,
        from_un: false,
    };
    let explicit = ts == TransferSyntaxKind::ExplicitVrLittleEndian;
    let mut path = Vec::new();
    r.read_dataset(Some(data.len()), explicit, 0, &mut path)
}

impl Reader<'_> {
    fn header(&mut self, explicit: bool, path: &[Tag]) -> Result<DataElementHeader, MppsError> {
        let mut src = &self.data[self.pos..];
        let before = src.len();
        let res = if explicit {
            ExplicitVRLittleEndianDecoder::default().decode_header(&mut src)
        } else {
            ImplicitVRLittleEndianDecoder::default().decode_header(&mut src)
        };
        let (mut h, _) =
            res.map_err(|e| malformed(path, self.pos, format!("element header: {e}")))?;
        self.pos += before - src.len();
        self.from_un = false;
        if let Some(known) = known_vr(h.tag) {
            if !explicit {
                h.vr = known;
            } else if h.vr == VR::UN {
                // A standard attribute sent as UN is read with its dictionary VR; its value is
                // Implicit VR LE (PS3.5 §6.2.2).
                h.vr = known;
                self.from_un = true;
            } else if h.vr != known {
                // Lenient with modalities: a text VR where another text VR is defined is read as
                // the defined one; anything else is refused.
                if is_text_vr(h.vr) && is_text_vr(known) {
                    h.vr = known;
                } else {
                    return Err(MppsError::at(
                        ErrorKind::InvalidValue,
                        &[path, &[h.tag]].concat(),
                        format!(
                            "VR {} where {} is defined",
                            h.vr.to_string(),
                            known.to_string()
                        ),
                    ));
                }
            }
        }
        Ok(h)
    }

    fn item_header(&mut self, path: &[Tag]) -> Result<SequenceItemHeader, MppsError> {
        let mut src = &self.data[self.pos..];
        let before = src.len();
        // Item headers are the same in every little endian transfer syntax.
        let h = ImplicitVRLittleEndianDecoder::default()
            .decode_item_header(&mut src)
            .map_err(|e| malformed(path, self.pos, format!("item header: {e}")))?;
        self.pos += before - src.len();
        Ok(h)
    }

    /// Reads elements until `end` (defined length) or an item delimiter (`end == None`).
    fn read_dataset(
        &mut self,
        end: Option<usize>,
        explicit: bool,
        depth: usize,
        path: &mut Vec<Tag>,
    ) -> Result<Dataset, MppsError> {
        if depth > self.limits.max_depth {
            return Err(malformed(
                path,
                self.pos,
                format!("sequence nesting deeper than {}", self.limits.max_depth),
            ));
        }
        let mut ds = Dataset::new();
        loop {
            match end {
                Some(end) if self.pos == end => break,
                Some(end) if self.pos > end => {
                    return Err(malformed(path, self.pos, "element overruns its item"));
                }
                None if self.pos >= self.data.len() => {
                    return Err(malformed(path, self.pos, "missing item delimiter"));
                }
                _ => {}
            }
            let start = self.pos;
            let h = self.header(explicit, path)?;
            if h.tag == ITEM_DELIMITER && end.is_none() {
                break;
            }
            if h.tag.0 == 0xFFFE {
                return Err(malformed(
                    path,
                    start,
                    format!("unexpected delimiter {}", h.tag),
                ));
            }
            self.count += 1;
            if self.count > self.limits.max_elements {
                return Err(malformed(
                    path,
                    start,
                    format!("more than {} elements", self.limits.max_elements),
                ));
            }
            path.push(h.tag);
            let el = self.read_value(&h, end, explicit, depth, path, start)?;
            path.pop();
            if h.tag.1 == 0x0000 {
                continue; // group length (retired, PS3.5 §7.2)
            }
            if h.tag.0 == 0x0000 || h.tag.0 == 0x0002 {
                return Err(MppsError::at(
                    ErrorKind::InvalidValue,
                    &[h.tag],
                    "command or file meta element in a dataset",
                ));
            }
            if h.tag == tags::SPECIFIC_CHARACTER_SET {
                let cs = el.first_str().unwrap_or_default();
                self.latin1 = cs == "ISO_IR 100";
            }
            if ds.insert(h.tag, el).is_some() {
                return Err(malformed(&[h.tag], start, "attribute given twice"));
            }
        }
        Ok(ds)
    }

    fn read_value(
        &mut self,
        h: &DataElementHeader,
        end: Option<usize>,
        explicit: bool,
        depth: usize,
        path: &mut Vec<Tag>,
        start: usize,
    ) -> Result<Element, MppsError> {
        let len = h.length();
        let is_seq = h.vr == VR::SQ || (h.vr == VR::UN && len.is_undefined());
        if is_seq {
            // UN of undefined length holds Implicit VR LE items (PS3.5 §6.2.2).
            let inner_explicit = explicit && h.vr == VR::SQ && !self.from_un;
            let items = self.read_items(len, inner_explicit, depth, path)?;
            return Ok(Element::items(items));
        }
        let Some(n) = len.get() else {
            return Err(malformed(
                path,
                start,
                "undefined length on a non-sequence element",
            ));
        };
        let n = n as usize;
        let limit = end.unwrap_or(self.data.len());
        if self.pos + n > limit {
            return Err(malformed(
                path,
                start,
                format!("value of {n} bytes overruns the dataset"),
            ));
        }
        let raw = &self.data[self.pos..self.pos + n];
        self.pos += n;
        if n == 0 {
            return Ok(Element::empty(h.vr));
        }
        if crate::dataset::is_bytes_vr(h.vr) {
            // An odd length is malformed on the wire (PS3.5 §7.1.1); keep it padded to even as it
            // will be written, so that every re-encoding gives the same bytes.
            let mut bytes = raw.to_vec();
            if !bytes.len().is_multiple_of(2) {
                bytes.push(0);
            }
            return Ok(Element {
                vr: h.vr,
                value: Value::Bytes(bytes),
            });
        }
        let values = decode_values(h.vr, raw, self.latin1).map_err(|m| {
            MppsError::at(ErrorKind::InvalidValue, path, format!("{m} (byte {start})"))
        })?;
        // A value of only padding is an empty value (one stored form across doors).
        if values.iter().all(String::is_empty) {
            return Ok(Element::empty(h.vr));
        }
        Ok(Element::strings(h.vr, values))
    }

    fn read_items(
        &mut self,
        len: Length,
        explicit: bool,
        depth: usize,
        path: &mut Vec<Tag>,
    ) -> Result<Vec<Dataset>, MppsError> {
        let seq_end = len.get().map(|n| self.pos + n as usize);
        if seq_end.is_some_and(|e| e > self.data.len()) {
            return Err(malformed(path, self.pos, "sequence overruns the dataset"));
        }
        let mut items = Vec::new();
        loop {
            if let Some(e) = seq_end {
                if self.pos == e {
                    break;
                }
                if self.pos > e {
                    return Err(malformed(path, self.pos, "item overruns its sequence"));
                }
            }
            let at = self.pos;
            match self.item_header(path)? {
                SequenceItemHeader::Item { len } => {
                    let end = match len.get() {
                        Some(n) => {
                            let e = self.pos + n as usize;
                            if e > seq_end.unwrap_or(self.data.len()) {
                                return Err(malformed(path, at, "item overruns its sequence"));
                            }
                            Some(e)
                        }
                        None => None,
                    };
                    items.push(self.read_dataset(end, explicit, depth + 1, path)?);
                }
                SequenceItemHeader::SequenceDelimiter if seq_end.is_none() => break,
                other => {
                    return Err(malformed(
                        path,
                        at,
                        format!("unexpected {other:?} in a sequence"),
                    ));
                }
            }
        }
        Ok(items)
    }
}

fn text(raw: &[u8], latin1: bool) -> Result<String, String> {
    match std::str::from_utf8(raw) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) if latin1 => Ok(raw.iter().map(|&b| b as char).collect()),
        Err(_) => Err("text is neither UTF-8 nor declared ISO_IR 100".into()),
    }
}

fn decode_values(vr: VR, raw: &[u8], latin1: bool) -> Result<Vec<String>, String> {
    let num = |size: usize| -> Result<std::slice::ChunksExact<'_, u8>, String> {
        if raw.len().is_multiple_of(size) {
            Ok(raw.chunks_exact(size))
        } else {
            Err(format!(
                "{} value length {} is not a multiple of {size}",
                vr.to_string(),
                raw.len()
            ))
        }
    };
    let v = match vr {
        VR::US => num(2)?
            .map(|c| u16::from_le_bytes([c[0], c[1]]).to_string())
            .collect(),
        VR::SS => num(2)?
            .map(|c| i16::from_le_bytes([c[0], c[1]]).to_string())
            .collect(),
        VR::UL => num(4)?
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
            .collect(),
        VR::SL => num(4)?
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
            .collect(),
        VR::FL => num(4)?
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
            .collect(),
        VR::FD => num(8)?
            .map(|c| {
                f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]).to_string()
            })
            .collect(),
        VR::AT => num(4)?
            .map(|c| {
                format!(
                    "{:04X}{:04X}",
                    u16::from_le_bytes([c[0], c[1]]),
                    u16::from_le_bytes([c[2], c[3]])
                )
            })
            .collect(),
        VR::UI => {
            let s = text(raw, false)?;
            // The NUL pad only exists to make the length even (PS3.5 §6.2, §7.1.1): strip one
            // from an even-length value; a NUL ending an odd-length value is data (and invalid).
            let s = if raw.len().is_multiple_of(2) {
                crate::uid::strip_wire_pad(&s)
            } else {
                &s
            };
            s.split('\\').map(str::to_owned).collect()
        }
        VR::LT | VR::ST | VR::UT | VR::UR => {
            let s = text(raw, latin1)?;
            vec![s.trim_end_matches([' ', '\0']).to_owned()]
        }
        VR::PN | VR::UC => {
            let s = text(raw, latin1)?;
            s.trim_end_matches([' ', '\0'])
                .split('\\')
                .map(|v| v.trim_end_matches(' ').to_owned())
                .collect()
        }
        VR::AE | VR::AS | VR::CS | VR::DA | VR::DS | VR::DT | VR::IS | VR::LO | VR::SH | VR::TM => {
            let s = text(raw, latin1)?;
            s.trim_end_matches([' ', '\0'])
                .split('\\')
                .map(|v| v.trim_matches(' ').to_owned())
                .collect()
        }
        other => {
            return Err(format!(
                "binary VR {} is not supported for MPPS attributes",
                other.to_string()
            ));
        }
    };
    Ok(v)
}

fn enc_err(e: impl std::fmt::Display) -> MppsError {
    MppsError::new(ErrorKind::Storage, format!("dataset encoding failed: {e}"))
}

/// Encodes an attribute list in the given transfer syntax (sequences and items of undefined length).
pub fn encode(ds: &Dataset, ts: TransferSyntaxKind) -> Result<Vec<u8>, MppsError> {
    let mut out = Vec::with_capacity(512);
    let non_ascii = has_non_ascii(ds);
    let utf8;
    let ds = if non_ascii && ds.str(tags::SPECIFIC_CHARACTER_SET) != Some("ISO_IR 192") {
        utf8 = ds.clone().with(
            tags::SPECIFIC_CHARACTER_SET,
            Element::string(VR::CS, "ISO_IR 192"),
        );
        &utf8
    } else {
        ds
    };
    match ts {
        TransferSyntaxKind::ExplicitVrLittleEndian => {
            write_ds(&mut out, ds, &ExplicitVRLittleEndianEncoder::default())?;
        }
        TransferSyntaxKind::ImplicitVrLittleEndian => {
            write_ds(&mut out, ds, &ImplicitVRLittleEndianEncoder::default())?;
        }
    }
    Ok(out)
}

fn has_non_ascii(ds: &Dataset) -> bool {
    ds.iter().any(|(_, e)| match &e.value {
        Value::Strings(v) => v.iter().any(|s| !s.is_ascii()),
        Value::Items(items) => items.iter().any(has_non_ascii),
        Value::Empty | Value::Bytes(_) => false,
    })
}

fn write_ds<E: Encode>(out: &mut Vec<u8>, ds: &Dataset, enc: &E) -> Result<(), MppsError> {
    for (tag, el) in ds.iter() {
        match &el.value {
            Value::Items(items) => {
                enc.encode_element_header(
                    &mut *out,
                    DataElementHeader::new(tag, VR::SQ, Length::UNDEFINED),
                )
                .map_err(enc_err)?;
                for item in items {
                    enc.encode_item_header(&mut *out, u32::MAX)
                        .map_err(enc_err)?;
                    write_ds(out, item, enc)?;
                    enc.encode_item_delimiter(&mut *out).map_err(enc_err)?;
                }
                enc.encode_sequence_delimiter(&mut *out).map_err(enc_err)?;
            }
            Value::Empty => {
                enc.encode_element_header(&mut *out, DataElementHeader::new(tag, el.vr, Length(0)))
                    .map_err(enc_err)?;
            }
            Value::Bytes(raw) => {
                let pad = raw.len() % 2;
                enc.encode_element_header(
                    &mut *out,
                    DataElementHeader::new(tag, el.vr, Length((raw.len() + pad) as u32)),
                )
                .map_err(enc_err)?;
                out.extend_from_slice(raw);
                out.extend(std::iter::repeat_n(0u8, pad));
            }
            Value::Strings(values) => {
                let bytes = encode_values(el.vr, values)
                    .map_err(|m| MppsError::at(ErrorKind::InvalidValue, &[tag], m))?;
                let short = !matches!(
                    el.vr,
                    VR::OB | VR::OW | VR::SQ | VR::UN | VR::UT | VR::UC | VR::UR
                );
                if short && bytes.len() > usize::from(u16::MAX) - 1 {
                    return Err(MppsError::at(
                        ErrorKind::InvalidValue,
                        &[tag],
                        "value too long for its VR",
                    ));
                }
                enc.encode_element_header(
                    &mut *out,
                    DataElementHeader::new(tag, el.vr, Length(bytes.len() as u32)),
                )
                .map_err(enc_err)?;
                out.extend_from_slice(&bytes);
            }
        }
    }
    Ok(())
}

fn encode_values(vr: VR, values: &[String]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let bad = |v: &str| format!("{} value {v:?} does not fit its VR", vr.to_string());
    match vr {
        VR::US | VR::SS | VR::UL | VR::SL | VR::FL | VR::FD => {
            for v in values {
                match vr {
                    VR::US => out.extend(v.parse::<u16>().map_err(|_| bad(v))?.to_le_bytes()),
                    VR::SS => out.extend(v.parse::<i16>().map_err(|_| bad(v))?.to_le_bytes()),
                    VR::UL => out.extend(v.parse::<u32>().map_err(|_| bad(v))?.to_le_bytes()),
                    VR::SL => out.extend(v.parse::<i32>().map_err(|_| bad(v))?.to_le_bytes()),
                    VR::FL => out.extend(v.parse::<f32>().map_err(|_| bad(v))?.to_le_bytes()),
                    _ => out.extend(v.parse::<f64>().map_err(|_| bad(v))?.to_le_bytes()),
                }
            }
        }
        VR::AT => {
            for v in values {
                let n = u32::from_str_radix(v, 16).map_err(|_| bad(v))?;
                out.extend(((n >> 16) as u16).to_le_bytes());
                out.extend((n as u16).to_le_bytes());
            }
        }
        _ => {
            out.extend_from_slice(values.join("\\").as_bytes());
            if out.len() % 2 == 1 {
                out.push(if vr == VR::UI { 0 } else { b' ' });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defined_length_and_padding() {
        // Explicit VR LE, hand-built: (0040,0252) CS "COMPLETED " and a defined-length SQ with one
        // defined-length item holding (0020,000E) UI "1.2.3\0".
        let mut b = Vec::new();
        b.extend([0x40, 0x00, 0x52, 0x02, b'C', b'S', 10, 0]);
        b.extend(b"COMPLETED ");
        let item_body: Vec<u8> =
            [&[0x20, 0x00, 0x0E, 0x00, b'U', b'I', 6, 0][..], b"1.2.3\0"].concat();
        let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
        item.extend((item_body.len() as u32).to_le_bytes());
        item.extend(&item_body);
        b.extend([0x40, 0x00, 0x40, 0x03, b'S', b'Q', 0, 0]);
        b.extend((item.len() as u32).to_le_bytes());
        b.extend(&item);
        let ds = decode(
            &b,
            TransferSyntaxKind::ExplicitVrLittleEndian,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(ds.str(tags::PPS_STATUS), Some("COMPLETED"));
        assert_eq!(
            ds.items(tags::PERFORMED_SERIES_SEQUENCE)[0].str(tags::SERIES_INSTANCE_UID),
            Some("1.2.3")
        );
        // Every truncation is an error, never a panic.
        for cut in 0..b.len() {
            let _ = decode(
                &b[..cut],
                TransferSyntaxKind::ExplicitVrLittleEndian,
                &Limits::default(),
            );
            let _ = decode(
                &b[..cut],
                TransferSyntaxKind::ImplicitVrLittleEndian,
                &Limits::default(),
            );
        }
        assert!(
            decode(
                &b[..b.len() - 1],
                TransferSyntaxKind::ExplicitVrLittleEndian,
                &Limits::default()
            )
            .is_err()
        );
    }

    #[test]
    fn round_trip_numbers_and_charset() {
        let ds = Dataset::new()
            .with(Tag(0x0010, 0x0010), Element::string(VR::PN, "Müller^Jörg"))
            .with(
                Tag(0x0028, 0x0010),
                Element::strings(VR::US, vec!["512".into(), "7".into()]),
            )
            .with(Tag(0x0020, 0x0013), Element::string(VR::IS, "12"));
        for ts in [
            TransferSyntaxKind::ImplicitVrLittleEndian,
            TransferSyntaxKind::ExplicitVrLittleEndian,
        ] {
            let bytes = encode(&ds, ts).unwrap();
            let back = decode(&bytes, ts, &Limits::default()).unwrap();
            assert_eq!(back.str(tags::SPECIFIC_CHARACTER_SET), Some("ISO_IR 192"));
            assert_eq!(back.get(Tag(0x0028, 0x0010)), ds.get(Tag(0x0028, 0x0010)));
            assert_eq!(back.str(Tag(0x0010, 0x0010)), Some("Müller^Jörg"));
        }
    }

    #[test]
    fn private_attributes_are_kept_as_bytes() {
        // Implicit VR: a private (0009,1001) of 5 bytes has no dictionary VR → UN, kept verbatim.
        let mut b = Vec::new();
        b.extend([0x09, 0x00, 0x01, 0x10, 6, 0, 0, 0]);
        b.extend(b"ABCDE\0");
        b.extend([0x40, 0x00, 0x52, 0x02, 12, 0, 0, 0]);
        b.extend(b"IN PROGRESS ");
        let l = Limits::default();
        let ds = decode(&b, TransferSyntaxKind::ImplicitVrLittleEndian, &l).unwrap();
        let el = ds.get(Tag(0x0009, 0x1001)).unwrap();
        assert_eq!(
            (el.vr, &el.value),
            (VR::UN, &Value::Bytes(b"ABCDE\0".to_vec()))
        );
        for ts in [
            TransferSyntaxKind::ImplicitVrLittleEndian,
            TransferSyntaxKind::ExplicitVrLittleEndian,
        ] {
            let back = decode(&encode(&ds, ts).unwrap(), ts, &l).unwrap();
            assert_eq!(back.get(Tag(0x0009, 0x1001)), Some(el));
        }
        let json = crate::codec::dicom_json::encode_dataset(&ds);
        assert!(
            String::from_utf8(json)
                .unwrap()
                .contains(r#""00091001":{"vr":"UN","InlineBinary":"QUJDREUA"}"#)
        );
    }

    #[test]
    fn explicit_vr_leniency() {
        let l = Limits::default();
        let ts = TransferSyntaxKind::ExplicitVrLittleEndian;
        // Status as LO (text for text): read as CS.
        let mut b = vec![0x40, 0x00, 0x52, 0x02, b'L', b'O', 10, 0];
        b.extend(b"COMPLETED ");
        assert_eq!(
            decode(&b, ts, &l)
                .unwrap()
                .get(tags::PPS_STATUS)
                .unwrap()
                .vr,
            VR::CS
        );
        // Status as US: refused.
        let b = [0x40, 0x00, 0x52, 0x02, b'U', b'S', 2, 0, 1, 0];
        assert_eq!(decode(&b, ts, &l).unwrap_err().path(), &[tags::PPS_STATUS]);
        // Performed Series Sequence as UN of defined length: items read as Implicit VR LE.
        let inner: Vec<u8> = [&[0x20, 0x00, 0x0E, 0x00, 6, 0, 0, 0][..], b"1.2.3\0"].concat();
        let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
        item.extend((inner.len() as u32).to_le_bytes());
        item.extend(&inner);
        let mut b = vec![0x40, 0x00, 0x40, 0x03, b'U', b'N', 0, 0];
        b.extend((item.len() as u32).to_le_bytes());
        b.extend(&item);
        let ds = decode(&b, ts, &l).unwrap();
        assert_eq!(
            ds.items(tags::PERFORMED_SERIES_SEQUENCE)[0].str(tags::SERIES_INSTANCE_UID),
            Some("1.2.3")
        );
    }

    #[test]
    fn latin1_declared() {
        let mut b = Vec::new();
        b.extend([0x08, 0x00, 0x05, 0x00, b'C', b'S', 10, 0]);
        b.extend(b"ISO_IR 100");
        b.extend([0x10, 0x00, 0x10, 0x00, b'P', b'N', 4, 0]);
        b.extend([b'M', 0xFC, b'l', b' ']);
        let ds = decode(
            &b,
            TransferSyntaxKind::ExplicitVrLittleEndian,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(ds.str(Tag(0x0010, 0x0010)), Some("Mül"));
    }
}
