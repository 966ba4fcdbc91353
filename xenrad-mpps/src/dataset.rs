//! The attribute tree every codec decodes into and encodes from: an owned, ordered map of tags to
//! elements (VR + values), with sequences as nested datasets.
//!
//! Values are kept in their DICOM string form: PN as `Alphabetic=Ideographic=Phonetic` (PS3.5 §6.2.1),
//! numbers of binary VRs (US, SS, UL, SL, FL, FD) as decimal strings, AT as `GGGGEEEE`. Values of
//! the other binary VRs (OB, OW, UN, OD, OF, OL, OV, SV, UV) are kept as raw little endian bytes
//! ([`Value::Bytes`]): no MPPS attribute uses them, but modalities send private attributes (UN in
//! Implicit VR) and they must not be lost.

use crate::error::{ErrorKind, MppsError};
use dicom_core::{Tag, VR};
use std::collections::BTreeMap;

/// One attribute: its VR and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    /// Value representation.
    pub vr: VR,
    /// The value (empty for a zero-length Type 2 attribute).
    pub value: Value,
}

/// The value of an [`Element`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Zero-length value (Type 2 "present but empty").
    Empty,
    /// One or more string values (empty strings are empty values inside a multi-valued element).
    Strings(Vec<String>),
    /// Sequence items (an empty vector is an empty sequence).
    Items(Vec<Dataset>),
    /// Raw little endian bytes of a binary VR (OB, OW, UN, …); written padded to even length.
    Bytes(Vec<u8>),
}

/// True for the VRs whose values are kept as [`Value::Bytes`].
pub fn is_bytes_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN | VR::SV | VR::UV
    )
}

impl Element {
    /// An element with string values.
    pub fn strings(vr: VR, values: Vec<String>) -> Self {
        Self {
            vr,
            value: Value::Strings(values),
        }
    }

    /// A single-valued string element.
    pub fn string(vr: VR, value: impl Into<String>) -> Self {
        Self::strings(vr, vec![value.into()])
    }

    /// A sequence element.
    pub fn items(items: Vec<Dataset>) -> Self {
        Self {
            vr: VR::SQ,
            value: Value::Items(items),
        }
    }

    /// An empty element.
    pub fn empty(vr: VR) -> Self {
        let value = if vr == VR::SQ {
            Value::Items(Vec::new())
        } else {
            Value::Empty
        };
        Self { vr, value }
    }

    /// True when the element carries no value (zero length, all-empty strings, or no items).
    pub fn is_empty(&self) -> bool {
        match &self.value {
            Value::Empty => true,
            Value::Strings(v) => v.iter().all(String::is_empty),
            Value::Items(v) => v.is_empty(),
            Value::Bytes(v) => v.is_empty(),
        }
    }

    /// The first string value, if any.
    pub fn first_str(&self) -> Option<&str> {
        match &self.value {
            Value::Strings(v) => v.first().map(String::as_str),
            _ => None,
        }
    }

    /// The sequence items (empty for non-sequences).
    pub fn item_list(&self) -> &[Dataset] {
        match &self.value {
            Value::Items(v) => v,
            _ => &[],
        }
    }
}

/// An ordered set of attributes (ascending tag order, as PS3.5 §7.1 and PS3.18 F.2 require on output).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    elements: BTreeMap<Tag, Element>,
}

impl Dataset {
    /// An empty dataset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts (or replaces) an element; returns the previous one.
    pub fn insert(&mut self, tag: Tag, element: Element) -> Option<Element> {
        self.elements.insert(tag, element)
    }

    /// Builder form of [`Dataset::insert`].
    #[must_use]
    pub fn with(mut self, tag: Tag, element: Element) -> Self {
        self.elements.insert(tag, element);
        self
    }

    /// The element at `tag`.
    pub fn get(&self, tag: Tag) -> Option<&Element> {
        self.elements.get(&tag)
    }

    /// Removes the element at `tag`.
    pub fn remove(&mut self, tag: Tag) -> Option<Element> {
        self.elements.remove(&tag)
    }

    /// The first string value at `tag`, if present and non-empty.
    pub fn str(&self, tag: Tag) -> Option<&str> {
        self.get(tag)
            .and_then(Element::first_str)
            .filter(|s| !s.is_empty())
    }

    /// The items of the sequence at `tag` (empty if absent).
    pub fn items(&self, tag: Tag) -> &[Dataset] {
        self.get(tag).map_or(&[], Element::item_list)
    }

    /// Iterates over elements in ascending tag order.
    pub fn iter(&self) -> impl Iterator<Item = (Tag, &Element)> {
        self.elements.iter().map(|(t, e)| (*t, e))
    }

    /// Number of top-level elements.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Validates every value against its VR, recursively (PS3.5 §6.2), including UIDs (§9.1).
    pub fn validate_values(&self) -> Result<(), MppsError> {
        let mut path = Vec::new();
        validate_ds(self, &mut path)
    }
}

fn validate_ds(ds: &Dataset, path: &mut Vec<Tag>) -> Result<(), MppsError> {
    for (tag, el) in ds.iter() {
        path.push(tag);
        match &el.value {
            Value::Empty => {}
            Value::Bytes(_) => {
                if !is_bytes_vr(el.vr) {
                    return Err(MppsError::at(
                        ErrorKind::InvalidValue,
                        path,
                        "bytes in a non-binary VR",
                    ));
                }
            }
            Value::Items(items) => {
                if el.vr != VR::SQ {
                    return Err(MppsError::at(
                        ErrorKind::InvalidValue,
                        path,
                        "items in a non-sequence attribute",
                    ));
                }
                for item in items {
                    validate_ds(item, path)?;
                }
            }
            Value::Strings(values) => {
                if el.vr == VR::SQ || is_bytes_vr(el.vr) {
                    return Err(MppsError::at(
                        ErrorKind::InvalidValue,
                        path,
                        "string value in a sequence or binary attribute",
                    ));
                }
                if values.len() > 1 && matches!(el.vr, VR::LT | VR::ST | VR::UT | VR::UR) {
                    return Err(MppsError::at(
                        ErrorKind::InvalidValue,
                        path,
                        "multiple values in a single-valued VR",
                    ));
                }
                for v in values {
                    if let Err(msg) = check_value(el.vr, v) {
                        return Err(MppsError::at(ErrorKind::InvalidValue, path, msg));
                    }
                }
            }
        }
        path.pop();
    }
    Ok(())
}

/// Checks one value against the rules of its VR (PS3.5 Table 6.2-1). Empty values pass.
pub fn check_value(vr: VR, v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    let chars = v.chars().count();
    let max = match vr {
        VR::AE | VR::CS | VR::SH | VR::DA | VR::TM | VR::DS => 16,
        VR::IS => 12,
        VR::LO | VR::UI => 64,
        VR::PN => 64 * 3 + 2,
        VR::ST => 1024,
        VR::LT => 10240,
        _ => usize::MAX,
    };
    if chars > max {
        return Err(format!(
            "{} value longer than {max} characters",
            vr.to_string()
        ));
    }
    let control = |c: char| c.is_control() && !matches!(c, '\r' | '\n' | '\t' | '\x0c' | '\x1b');
    if v.chars().any(control) {
        return Err(format!("control character in {} value", vr.to_string()));
    }
    match vr {
        VR::UI => crate::uid::validate_uid(v).map_err(|e| e.to_string()),
        VR::CS => {
            if v.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ' || b == b'_')
            {
                Ok(())
            } else {
                Err(format!(
                    "CS value {v:?} has characters other than A-Z, 0-9, space, underscore"
                ))
            }
        }
        VR::DA => check_date(v),
        VR::TM => check_time(v),
        VR::AE => {
            if v.contains('\\') || v.trim().is_empty() {
                Err("AE title is blank or contains a backslash".into())
            } else {
                Ok(())
            }
        }
        VR::IS => v
            .trim()
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("IS value {v:?} is not an integer")),
        VR::DS => v
            .trim()
            .parse::<f64>()
            .map(|_| ())
            .map_err(|_| format!("DS value {v:?} is not a number")),
        VR::US | VR::UL | VR::SS | VR::SL => v
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("{} value {v:?} is not an integer", vr.to_string())),
        VR::FL | VR::FD => v
            .parse::<f64>()
            .map(|_| ())
            .map_err(|_| format!("{} value {v:?} is not a number", vr.to_string())),
        VR::AT => {
            if v.len() == 8 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(())
            } else {
                Err(format!("AT value {v:?} is not 8 hex digits"))
            }
        }
        _ => Ok(()),
    }
}

/// DA: `YYYYMMDD` with a real calendar date (PS3.5 Table 6.2-1).
fn check_date(v: &str) -> Result<(), String> {
    let err = || format!("date {v:?} is not YYYYMMDD");
    if v.len() != 8 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let y: u32 = v[0..4].parse().map_err(|_| err())?;
    let m: u32 = v[4..6].parse().map_err(|_| err())?;
    let d: u32 = v[6..8].parse().map_err(|_| err())?;
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(err()),
    };
    if d == 0 || d > days {
        return Err(err());
    }
    Ok(())
}

/// TM: `HH[MM[SS[.F{1,6}]]]` with HH < 24, MM < 60, SS < 61 (leap second) (PS3.5 Table 6.2-1).
fn check_time(v: &str) -> Result<(), String> {
    let err = || format!("time {v:?} is not HH[MM[SS[.FFFFFF]]]");
    let (main, frac) = match v.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (v, None),
    };
    if !main.bytes().all(|b| b.is_ascii_digit()) || !matches!(main.len(), 2 | 4 | 6) {
        return Err(err());
    }
    if let Some(f) = frac
        && (main.len() != 6
            || f.is_empty()
            || f.len() > 6
            || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(err());
    }
    let limits = [24, 60, 61];
    for (i, lim) in limits.iter().enumerate().take(main.len() / 2) {
        let n: u32 = main[i * 2..i * 2 + 2].parse().map_err(|_| err())?;
        if n >= *lim {
            return Err(err());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vr_checks() {
        assert!(check_value(VR::DA, "20240229").is_ok());
        assert!(check_value(VR::DA, "20230229").is_err());
        assert!(check_value(VR::DA, "2024-01-01").is_err());
        assert!(check_value(VR::TM, "0930").is_ok());
        assert!(check_value(VR::TM, "093000.123456").is_ok());
        assert!(check_value(VR::TM, "2460").is_err());
        assert!(check_value(VR::TM, "0930.1").is_err());
        assert!(check_value(VR::CS, "IN PROGRESS").is_ok());
        assert!(check_value(VR::CS, "in progress").is_err());
        assert!(check_value(VR::UI, "1.02").is_err());
        assert!(check_value(VR::AE, "  ").is_err());
        assert!(check_value(VR::SH, &"x".repeat(17)).is_err());
    }

    #[test]
    fn nested_position() {
        let item = Dataset::new().with(Tag(0x0020, 0x000E), Element::string(VR::UI, "1..2"));
        let ds = Dataset::new().with(Tag(0x0040, 0x0340), Element::items(vec![item]));
        let e = ds.validate_values().unwrap_err();
        assert_eq!(e.path(), &[Tag(0x0040, 0x0340), Tag(0x0020, 0x000E)]);
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
    }
}
