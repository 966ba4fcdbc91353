//! DICOM JSON (PS3.18 Annex F.2, media type `application/dicom+json`) for MPPS-RS (PS3.18 §15).
//!
//! - Keys are 8 hexadecimal digits (F.2.1.1; upper or lower case accepted, upper case written).
//! - Each attribute is `{"vr": "..", "Value": [...]}`; a Type 2 empty attribute has no `Value` (F.2.2).
//! - PN values are objects with `Alphabetic`/`Ideographic`/`Phonetic` (F.2.2.1); IS, DS and the
//!   binary numeric VRs are JSON numbers (strings accepted on input for IS/DS); AT is `"GGGGEEEE"`.
//! - Output is in ascending tag order (F.2.1.1.1), `vr` before `Value`.
//! - A body is one dataset object, or an array holding exactly one.
//! - Binary VRs (OB, OW, UN, …) travel as `InlineBinary` (base64, F.2.7); `BulkDataURI` is refused
//!   (400) because this sans-IO crate cannot fetch it.

use crate::MppsError;
use crate::attributes::{known_vr, tags};
use crate::codec::{Limits, check_size};
use crate::dataset::{Dataset, Element, Value, is_bytes_vr};
use crate::error::ErrorKind;
use crate::model::{MPPS_SOP_CLASS_UID, MppsInstance};
use dicom_core::{Tag, VR};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::str::FromStr;

/// The media type of DICOM JSON.
pub const MEDIA_TYPE: &str = "application/dicom+json";

/// Decodes a DICOM JSON body into an attribute list (values checked later by the state machine).
///
/// ```
/// use xenrad_mpps::codec::dicom_json;
/// let ds = dicom_json::decode(br#"{"00400252":{"vr":"CS","Value":["IN PROGRESS"]},"00100010":{"vr":"PN"}}"#,
///     &Default::default()).unwrap();
/// assert_eq!(ds.str(xenrad_mpps::tags::PPS_STATUS), Some("IN PROGRESS"));
/// assert!(ds.get(xenrad_mpps::tags::PATIENT_NAME).unwrap().is_empty());
/// ```
pub fn decode(body: &[u8], limits: &Limits) -> Result<Dataset, MppsError> {
    check_size(body.len(), limits)?;
    let json: J<'_> = serde_json::from_slice(body)
        .map_err(|e| MppsError::new(ErrorKind::Malformed, format!("DICOM JSON: {e}")))?;
    let obj = match &json {
        J::Object(_) => &json,
        J::Array(a) if a.len() == 1 && matches!(a[0], J::Object(_)) => &a[0],
        _ => {
            return Err(MppsError::new(
                ErrorKind::Malformed,
                "DICOM JSON body must be one dataset object (or an array of exactly one)",
            ));
        }
    };
    let mut count = 0;
    let mut path = Vec::new();
    decode_dataset(obj, limits, 0, &mut count, &mut path)
}

/// A JSON tree that borrows strings from the body (copies only where an escape forces one); much
/// lighter than `serde_json::Value` (no per-key `String`, no `BTreeMap`), member order kept.
#[derive(Debug)]
pub(crate) enum J<'a> {
    Null,
    Bool,
    /// A number in serde_json's canonical text form.
    Number(String),
    String(Cow<'a, str>),
    Array(Vec<J<'a>>),
    Object(Obj<'a>),
}

#[derive(Debug, Default)]
pub(crate) struct Obj<'a>(Vec<(Cow<'a, str>, J<'a>)>);

impl<'a> Obj<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&J<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    pub(crate) fn keys(&self) -> impl Iterator<Item = &Cow<'a, str>> {
        self.0.iter().map(|(k, _)| k)
    }
    fn has_duplicate_keys(&self) -> bool {
        self.0
            .iter()
            .enumerate()
            .any(|(i, (k, _))| self.0[..i].iter().any(|(k2, _)| k2 == k))
    }
}

impl<'o, 'a> IntoIterator for &'o Obj<'a> {
    type Item = &'o (Cow<'a, str>, J<'a>);
    type IntoIter = std::slice::Iter<'o, (Cow<'a, str>, J<'a>)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl J<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            J::String(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for J<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> serde::de::Visitor<'de> for JVisitor {
    type Value = J<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<J<'de>, E> {
        Ok(J::Bool)
    }
    fn visit_u64<E>(self, v: u64) -> Result<J<'de>, E> {
        Ok(J::Number(v.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<J<'de>, E> {
        Ok(J::Number(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<J<'de>, E> {
        Ok(J::Number(
            serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()),
        ))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<J<'de>, E> {
        Ok(J::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<J<'de>, E> {
        Ok(J::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<J<'de>, E> {
        Ok(J::String(Cow::Owned(v)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<J<'de>, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(J::Array(v))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<J<'de>, A::Error> {
        let mut v = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some((k, x)) = map.next_entry::<Key<'de>, J<'de>>()? {
            v.push((k.0, x));
        }
        Ok(J::Object(Obj(v)))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match J::deserialize(d)? {
            J::String(s) => Ok(Key(s)),
            _ => Err(serde::de::Error::custom("object key is not a string")),
        }
    }
}

fn malformed(path: &[Tag], msg: impl Into<String>) -> MppsError {
    MppsError::at(ErrorKind::Malformed, path, msg)
}

fn invalid(path: &[Tag], msg: impl Into<String>) -> MppsError {
    MppsError::at(ErrorKind::InvalidValue, path, msg)
}

fn parse_tag(key: &str) -> Option<Tag> {
    if key.len() != 8 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let g = u16::from_str_radix(&key[..4], 16).ok()?;
    let e = u16::from_str_radix(&key[4..], 16).ok()?;
    Some(Tag(g, e))
}

pub(crate) fn decode_dataset(
    v: &J<'_>,
    limits: &Limits,
    depth: usize,
    count: &mut usize,
    path: &mut Vec<Tag>,
) -> Result<Dataset, MppsError> {
    let J::Object(map) = v else {
        return Err(malformed(path, "a dataset must be a JSON object"));
    };
    if depth > limits.max_depth {
        return Err(malformed(
            path,
            format!("sequence nesting deeper than {}", limits.max_depth),
        ));
    }
    let mut ds = Dataset::new();
    for (key, attr) in map {
        let tag = parse_tag(key)
            .ok_or_else(|| malformed(path, format!("key {key:?} is not 8 hex digits")))?;
        *count += 1;
        if *count > limits.max_elements {
            return Err(malformed(
                path,
                format!("more than {} elements", limits.max_elements),
            ));
        }
        path.push(tag);
        let el = decode_element(attr, tag, limits, depth, count, path)?;
        path.pop();
        if ds.insert(tag, el).is_some() {
            // serde_json keeps the last of duplicate keys; keys differing only in case land here.
            return Err(malformed(&[tag], "attribute given twice"));
        }
    }
    Ok(ds)
}

fn decode_element(
    attr: &J<'_>,
    tag: Tag,
    limits: &Limits,
    depth: usize,
    count: &mut usize,
    path: &mut Vec<Tag>,
) -> Result<Element, MppsError> {
    let J::Object(a) = attr else {
        return Err(malformed(path, "an attribute must be a JSON object"));
    };
    if a.has_duplicate_keys() {
        return Err(malformed(path, "member given twice"));
    }
    let vr_s = a
        .get("vr")
        .and_then(J::as_str)
        .ok_or_else(|| malformed(path, "attribute without \"vr\""))?;
    let vr = VR::from_str(vr_s).map_err(|_| invalid(path, format!("unknown VR {vr_s:?}")))?;
    if let Some(expected) = known_vr(tag)
        && expected != vr
    {
        return Err(invalid(
            path,
            format!("VR {vr_s} where {} is required", expected.to_string()),
        ));
    }
    for k in a.keys() {
        match k.as_ref() {
            "vr" | "Value" | "InlineBinary" => {}
            "BulkDataURI" => {
                return Err(invalid(
                    path,
                    "BulkDataURI is not supported (no fetching here)",
                ));
            }
            other => return Err(malformed(path, format!("unexpected member {other:?}"))),
        }
    }
    if is_bytes_vr(vr) {
        if a.contains_key("Value") {
            return Err(invalid(
                path,
                format!("binary VR {vr_s} needs InlineBinary, not Value"),
            ));
        }
        return match a.get("InlineBinary") {
            None => Ok(Element::empty(vr)),
            Some(J::String(b64)) => base64_decode(b64)
                .map(|b| {
                    if b.is_empty() {
                        Element::empty(vr)
                    } else {
                        Element {
                            vr,
                            value: Value::Bytes(b),
                        }
                    }
                })
                .ok_or_else(|| invalid(path, "InlineBinary is not valid base64")),
            Some(_) => Err(malformed(path, "InlineBinary must be a string")),
        };
    }
    if a.contains_key("InlineBinary") {
        return Err(invalid(
            path,
            format!("InlineBinary on non-binary VR {vr_s}"),
        ));
    }
    let values = match a.get("Value") {
        None => return Ok(Element::empty(vr)),
        Some(J::Array(v)) => v,
        Some(_) => return Err(malformed(path, "\"Value\" must be an array")),
    };
    if values.is_empty() {
        return Ok(Element::empty(vr));
    }
    if vr == VR::SQ {
        let items = values
            .iter()
            .map(|item| decode_dataset(item, limits, depth + 1, count, path))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Element::items(items));
    }
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        let s = match (vr, v) {
            (_, J::Null) => String::new(),
            (VR::PN, J::Object(pn)) => pn_to_string(pn, path)?,
            (
                VR::IS | VR::DS | VR::US | VR::SS | VR::UL | VR::SL | VR::FL | VR::FD,
                J::Number(n),
            ) => n.clone(),
            // Strings are accepted for numeric VRs (PS3.18 F.2.3.1 allows them for IS/DS; NaN and
            // infinities of FL/FD can only be written as strings).
            (
                VR::IS | VR::DS | VR::US | VR::SS | VR::UL | VR::SL | VR::FL | VR::FD,
                J::String(s),
            ) => s.trim().to_owned(),
            (VR::PN | VR::IS | VR::DS | VR::US | VR::SS | VR::UL | VR::SL | VR::FL | VR::FD, _) => {
                return Err(invalid(path, format!("wrong JSON type for a {vr_s} value")));
            }
            (_, J::String(s)) => s.as_ref().to_owned(),
            _ => return Err(invalid(path, format!("wrong JSON type for a {vr_s} value"))),
        };
        if s.contains('\\') && !matches!(vr, VR::LT | VR::ST | VR::UT | VR::UR) {
            return Err(invalid(
                path,
                "backslash inside a value (it is the DICOM value separator)",
            ));
        }
        out.push(s);
    }
    // Only empty values (`[""]`, `[null]`) are the same as no value: normalise so that every
    // door stores one form.
    if out.iter().all(String::is_empty) {
        return Ok(Element::empty(vr));
    }
    Ok(Element::strings(vr, out))
}

fn pn_to_string(pn: &Obj<'_>, path: &[Tag]) -> Result<String, MppsError> {
    if pn.has_duplicate_keys() {
        return Err(invalid(path, "PN component group given twice"));
    }
    let mut groups = [""; 3];
    for (k, v) in pn {
        let i = match k.as_ref() {
            "Alphabetic" => 0,
            "Ideographic" => 1,
            "Phonetic" => 2,
            other => {
                return Err(invalid(
                    path,
                    format!("unknown PN component group {other:?}"),
                ));
            }
        };
        groups[i] = v
            .as_str()
            .ok_or_else(|| invalid(path, "PN component group must be a string"))?;
        if groups[i].contains('=') || groups[i].contains('\\') {
            return Err(invalid(path, "PN component group contains '=' or '\\'"));
        }
    }
    let last = groups
        .iter()
        .rposition(|g| !g.is_empty())
        .map_or(0, |i| i + 1);
    Ok(groups[..last].join("="))
}

/// Encodes an attribute list as a DICOM JSON object (ascending tags, no `Value` for empty attributes).
pub fn encode_dataset(ds: &Dataset) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    write_dataset(&mut out, ds);
    out.into_bytes()
}

/// Encodes an instance for `GET .../{uid}`: its attributes plus SOP Class UID and SOP Instance UID.
pub fn encode_instance(instance: &MppsInstance) -> Vec<u8> {
    let ds = instance
        .attributes
        .clone()
        .with(
            tags::SOP_CLASS_UID,
            Element::string(VR::UI, MPPS_SOP_CLASS_UID),
        )
        .with(
            tags::SOP_INSTANCE_UID,
            Element::string(VR::UI, &*instance.sop_instance_uid),
        );
    encode_dataset(&ds)
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json's string escaping; writing a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

pub(crate) fn write_dataset(out: &mut String, ds: &Dataset) {
    out.push('{');
    for (i, (tag, el)) in ds.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "\"{:04X}{:04X}\":{{\"vr\":\"{}\"",
            tag.0,
            tag.1,
            el.vr.to_string()
        );
        if let Value::Bytes(raw) = &el.value {
            if !raw.is_empty() {
                out.push_str(",\"InlineBinary\":\"");
                base64_encode(out, raw);
                out.push('"');
            }
        } else if !el.is_empty() {
            out.push_str(",\"Value\":[");
            match &el.value {
                Value::Items(items) => {
                    for (j, item) in items.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_dataset(out, item);
                    }
                }
                Value::Strings(values) => {
                    for (j, v) in values.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_value(out, el.vr, v);
                    }
                }
                Value::Empty | Value::Bytes(_) => {}
            }
            out.push(']');
        }
        out.push('}');
    }
    out.push('}');
}

fn write_value(out: &mut String, vr: VR, v: &str) {
    if v.is_empty() {
        out.push_str("null");
        return;
    }
    match vr {
        VR::PN => {
            out.push('{');
            let names = ["Alphabetic", "Ideographic", "Phonetic"];
            let mut first = true;
            for (name, g) in names.iter().zip(v.split('=')) {
                if g.is_empty() {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                let _ = write!(out, "\"{name}\":");
                push_json_str(out, g);
            }
            out.push('}');
        }
        VR::IS | VR::DS | VR::US | VR::SS | VR::UL | VR::SL | VR::FL | VR::FD => {
            // Written as a JSON number when the text is one that JSON readers give back unchanged
            // (so decode → encode → decode is stable); anything else (`+1`, `.5`, `NaN`, integers
            // beyond 64 bits) as a string.
            let t = v.trim();
            if is_json_number(t)
                && t.parse::<serde_json::Number>()
                    .is_ok_and(|n| n.to_string() == t)
            {
                out.push_str(t);
            } else {
                push_json_str(out, t);
            }
        }
        _ => push_json_str(out, v),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as PS3.18 F.2.7 requires for InlineBinary.
fn base64_encode(out: &mut String, data: &[u8]) {
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

/// Decodes standard base64 (padding required, no whitespace); `None` if malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let quads = b.len() / 4;
    let mut out = Vec::with_capacity(quads * 3);
    for (q, quad) in b.chunks(4).enumerate() {
        let pads = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pads > 2 || (pads > 0 && q + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pads] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pads as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Non-canonical trailing bits would not round-trip; refuse them.
        if bytes[3 - pads..].iter().any(|&x| x != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..3 - pads]);
    }
    Some(out)
}

/// JSON number grammar (RFC 8259 §6): `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let n = digits(&mut i);
    if n == 0 || (n > 1 && b[int_start] == b'0') {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let body = br#"{"00400340":{"vr":"SQ","Value":[{"0020000E":{"vr":"UI","Value":["1.2.3"]},"00081050":{"vr":"PN","Value":[{"Alphabetic":"Doe^J","Phonetic":"do"}]}}]},
            "00400252":{"vr":"CS","Value":["IN PROGRESS"]},"00100010":{"vr":"PN"},"00201208":{"vr":"IS","Value":[3,"4"]}}"#;
        let ds = decode(body, &Limits::default()).unwrap();
        let pn = ds.items(tags::PERFORMED_SERIES_SEQUENCE)[0].str(tags::PERFORMING_PHYSICIAN_NAME);
        assert_eq!(pn, Some("Doe^J==do"));
        let out = String::from_utf8(encode_dataset(&ds)).unwrap();
        assert!(
            out.starts_with(
                r#"{"00100010":{"vr":"PN"},"00201208":{"vr":"IS","Value":[3,4]},"00400252""#
            ),
            "{out}"
        );
        assert!(out.contains(r#"{"Alphabetic":"Doe^J","Phonetic":"do"}"#));
        assert_eq!(decode(out.as_bytes(), &Limits::default()).unwrap(), ds);
    }

    #[test]
    fn inline_binary_round_trip() {
        for n in 0..8u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
            let mut s = String::new();
            base64_encode(&mut s, &data);
            assert_eq!(base64_decode(&s).as_deref(), Some(&data[..]), "{s}");
        }
        let mut s = String::new();
        base64_encode(&mut s, b"foobar");
        assert_eq!(s, "Zm9vYmFy");
        assert_eq!(base64_decode("Zm9="), None); // non-canonical trailing bits
        let body = br#"{"00091001":{"vr":"UN","InlineBinary":"Zm9vYg=="}}"#;
        let ds = decode(body, &Limits::default()).unwrap();
        assert_eq!(
            ds.get(Tag(9, 0x1001)).unwrap().value,
            Value::Bytes(b"foob".to_vec())
        );
        assert_eq!(encode_dataset(&ds), body.to_vec());
    }

    #[test]
    fn numbers_are_stable() {
        assert!(is_json_number("-0.5e+3") && is_json_number("0") && is_json_number("12"));
        assert!(
            !is_json_number("+1")
                && !is_json_number(".5")
                && !is_json_number("01")
                && !is_json_number("1.")
        );
        let body =
            br#"{"00201208":{"vr":"DS","Value":[5555555555555555555555554,"+1"," 4.0 ",4.0]}}"#;
        let ds = decode(body, &Limits::default()).unwrap();
        let again = decode(&encode_dataset(&ds), &Limits::default()).unwrap();
        assert_eq!(ds, again);
    }

    #[test]
    fn refusals() {
        let l = Limits::default();
        let cases: &[(&[u8], ErrorKind)] = &[
            (br#"{"0040025":{"vr":"CS"}}"#, ErrorKind::Malformed),
            (br#"{"00400252":{"Value":["X"]}}"#, ErrorKind::Malformed),
            (
                br#"{"00400252":{"vr":"LO","Value":["IN PROGRESS"]}}"#,
                ErrorKind::InvalidValue,
            ),
            (
                br#"{"00400252":{"vr":"CS","Value":[1]}}"#,
                ErrorKind::InvalidValue,
            ),
            (
                br#"{"00091001":{"vr":"OB","InlineBinary":"AAA"}}"#,
                ErrorKind::InvalidValue,
            ),
            (
                br#"{"00091001":{"vr":"OB","Value":["AAAA"]}}"#,
                ErrorKind::InvalidValue,
            ),
            (
                br#"{"00091001":{"vr":"OB","BulkDataURI":"x"}}"#,
                ErrorKind::InvalidValue,
            ),
            (
                br#"{"00100010":{"vr":"PN","InlineBinary":"AAAA"}}"#,
                ErrorKind::InvalidValue,
            ),
            (
                br#"{"00400252":{"vr":"CS","Value":"IN PROGRESS"}}"#,
                ErrorKind::Malformed,
            ),
            (br"[{},{}]", ErrorKind::Malformed),
            (
                br#"{"00100010":{"vr":"PN","Value":[{"Nick":"x"}]}}"#,
                ErrorKind::InvalidValue,
            ),
        ];
        for (body, kind) in cases {
            assert_eq!(
                decode(body, &l).unwrap_err().kind(),
                *kind,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let deep = "{\"00400340\":{\"vr\":\"SQ\",\"Value\":[".repeat(12) + &"]}}".repeat(12);
        assert_eq!(
            decode(deep.as_bytes(), &l).unwrap_err().kind(),
            ErrorKind::Malformed
        );
    }
}
