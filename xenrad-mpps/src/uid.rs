//! DICOM UID validation (PS3.5 §9.1).
//!
//! A UID is at most 64 characters of ASCII digits and `.`; components are non-empty and have no
//! leading zero unless the component is exactly `0`. On the DIMSE wire a UI value of odd length is
//! padded with one trailing NUL (PS3.5 §6.2, VR UI): [`strip_wire_pad`] removes exactly one.

use std::fmt;

/// Maximum length of a UID in characters (PS3.5 §9.1).
pub const MAX_UID_LEN: usize = 64;

/// Why a string is not a valid DICOM UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UidError {
    /// The UID is empty.
    Empty,
    /// Longer than 64 characters.
    TooLong(usize),
    /// A component between dots is empty (leading, trailing or doubled dot); 0-based component index.
    EmptyComponent(usize),
    /// A component other than `0` starts with `0`; 0-based component index.
    LeadingZero(usize),
    /// A byte that is neither an ASCII digit nor `.`, with its byte offset.
    BadCharacter(usize),
}

impl fmt::Display for UidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty UID"),
            Self::TooLong(n) => write!(f, "UID has {n} characters (more than 64)"),
            Self::EmptyComponent(i) => write!(f, "UID component {i} is empty"),
            Self::LeadingZero(i) => write!(f, "UID component {i} has a leading zero"),
            Self::BadCharacter(at) => write!(
                f,
                "UID has a character other than a digit or '.' at byte {at}"
            ),
        }
    }
}

impl std::error::Error for UidError {}

/// Validates a UID exactly as written (no padding allowed), per PS3.5 §9.1.
///
/// ```
/// use xenrad_mpps::uid::{validate_uid, UidError};
/// assert!(validate_uid("1.2.840.10008.3.1.2.3.3").is_ok());
/// assert_eq!(validate_uid("1.02"), Err(UidError::LeadingZero(1)));
/// ```
pub fn validate_uid(uid: &str) -> Result<(), UidError> {
    let bytes = uid.as_bytes();
    if bytes.is_empty() {
        return Err(UidError::Empty);
    }
    if let Some(at) = bytes
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b'.'))
    {
        return Err(UidError::BadCharacter(at));
    }
    // Counted in characters; all are ASCII at this point.
    if bytes.len() > MAX_UID_LEN {
        return Err(UidError::TooLong(bytes.len()));
    }
    for (i, comp) in bytes.split(|b| *b == b'.').enumerate() {
        match comp {
            [] => return Err(UidError::EmptyComponent(i)),
            [b'0', _, ..] => return Err(UidError::LeadingZero(i)),
            _ => {}
        }
    }
    Ok(())
}

/// Strips exactly one trailing NUL pad byte (DIMSE wire form of an odd-length UI value).
pub fn strip_wire_pad(raw: &str) -> &str {
    raw.strip_suffix('\0').unwrap_or(raw)
}

/// Validates a UI value as received on the DIMSE wire: one trailing NUL is stripped first.
/// Returns the bare UID on success.
///
/// ```
/// use xenrad_mpps::uid::validate_wire_uid;
/// assert_eq!(validate_wire_uid("1.2.3.4\0"), Ok("1.2.3.4"));
/// assert!(validate_wire_uid("1.2.3.4\0\0").is_err());
/// ```
pub fn validate_wire_uid(raw: &str) -> Result<&str, UidError> {
    let uid = strip_wire_pad(raw);
    validate_uid(uid).map(|()| uid)
}

/// A UID derived from a UUID (PS3.5 §B.2: `2.25.` + the UUID as a decimal integer), for an SCP
/// that assigns the SOP Instance UID of an N-CREATE sent without one (PS3.7 §10.1.5.1.1). The caller
/// supplies the 128 random bits (sans-IO: no RNG here).
///
/// ```
/// let uid = xenrad_mpps::uid::uuid_uid(0x3ab7_0d63_d2be_4cb1_a4a2_e36d_52a8_5fe2);
/// assert!(uid.starts_with("2.25.") && xenrad_mpps::uid::validate_uid(&uid).is_ok());
/// ```
pub fn uuid_uid(uuid: u128) -> String {
    format!("2.25.{uuid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_rules() {
        assert_eq!(validate_uid("0"), Ok(()));
        assert_eq!(validate_uid("0.0.0"), Ok(()));
        assert_eq!(validate_uid("00"), Err(UidError::LeadingZero(0)));
        assert_eq!(validate_uid("1."), Err(UidError::EmptyComponent(1)));
        assert_eq!(validate_uid("."), Err(UidError::EmptyComponent(0)));
        assert_eq!(validate_uid("1.2a"), Err(UidError::BadCharacter(3)));
        assert_eq!(validate_uid(&"1".repeat(65)), Err(UidError::TooLong(65)));
        assert_eq!(validate_uid(&"1".repeat(64)), Ok(()));
    }

    proptest::proptest! {
        #[test]
        fn generated_uids_are_valid(parts in proptest::collection::vec(0u64..1_000_000, 1..8)) {
            let uid = parts.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
            proptest::prop_assert_eq!(validate_uid(&uid), Ok(()));
        }

        #[test]
        fn uuid_uids_are_valid(u in proptest::num::u128::ANY) {
            proptest::prop_assert_eq!(validate_uid(&uuid_uid(u)), Ok(()));
        }

        #[test]
        fn never_panics(s in ".{0,80}") {
            let _ = validate_uid(&s);
            let _ = validate_wire_uid(&s);
        }
    }
}
