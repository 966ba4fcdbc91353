//! Errors as values, each mapped to a DIMSE status (PS3.7 Annex C, PS3.4 F.7.2) and an HTTP status
//! (PS3.18 §15.4.3 / §15.5.3), with the position of the offending attribute.

use dicom_core::Tag;
use std::fmt;

/// DIMSE status: Success (PS3.7 C.1).
pub const STATUS_SUCCESS: u16 = 0x0000;
/// DIMSE status: Invalid attribute value (PS3.7 C.4.x, 0106H).
pub const STATUS_INVALID_ATTRIBUTE_VALUE: u16 = 0x0106;
/// DIMSE status: Processing failure (0110H); with Error ID A710 for "may no longer be updated".
pub const STATUS_PROCESSING_FAILURE: u16 = 0x0110;
/// DIMSE status: Duplicate SOP Instance (0111H).
pub const STATUS_DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
/// DIMSE status: No such object instance (0112H).
pub const STATUS_NO_SUCH_OBJECT_INSTANCE: u16 = 0x0112;
/// DIMSE status: Missing attribute (0120H).
pub const STATUS_MISSING_ATTRIBUTE: u16 = 0x0120;
/// DIMSE status: Missing attribute value (0121H).
pub const STATUS_MISSING_ATTRIBUTE_VALUE: u16 = 0x0121;
/// Error ID (0000,0903) A710: "Performed Procedure Step Object may no longer be updated" (PS3.4 F.7.2.2.2, PS3.7 C.4.2).
pub const ERROR_ID_NO_LONGER_UPDATABLE: u16 = 0xA710;

/// What went wrong, independent of the door the request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The body is not well-formed (bad JSON, truncated dataset, wrong JSON shape, over a limit).
    Malformed,
    /// An attribute value is invalid (bad status, bad UID, bad date, wrong VR): 0x0106 / 400.
    InvalidValue,
    /// A required attribute is absent: 0x0120 / 400.
    MissingAttribute,
    /// A Type 1 attribute is present but empty: 0x0121 / 400.
    MissingValue,
    /// N-CREATE of an instance that exists (and is not an identical replay): 0x0111 / 409.
    DuplicateInstance,
    /// N-SET or GET of an unknown instance: 0x0112 / 404.
    NoSuchInstance,
    /// N-SET after COMPLETED or DISCONTINUED: 0x0110 with Error ID A710 / 409.
    NoLongerUpdatable,
    /// N-SET of an attribute that is "Not allowed" in N-SET (PS3.4 Table F.7.2-1): 0x0106 / 409.
    NotAllowed,
    /// The store failed or kept losing compare-and-set races: 0x0110 / 500 (503 for contention).
    Storage,
}

/// An MPPS error: kind, offending attribute (tag path), a human-readable message and, for
/// [`ErrorKind::Storage`], the store's error as its [`source`](std::error::Error::source).
#[derive(Debug, Clone)]
pub struct MppsError {
    kind: ErrorKind,
    path: Vec<Tag>,
    message: String,
    source: Option<crate::store::StoreError>,
}

/// Equal when kind, path and message are (the cause is not compared).
impl PartialEq for MppsError {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, &self.path, &self.message) == (other.kind, &other.path, &other.message)
    }
}

impl Eq for MppsError {}

impl MppsError {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: Vec::new(),
            message: message.into(),
            source: None,
        }
    }

    /// A [`ErrorKind::Storage`] error caused by `e` (kept as the [`source`](std::error::Error::source)).
    pub fn storage(e: crate::store::StoreError) -> Self {
        Self {
            kind: ErrorKind::Storage,
            path: Vec::new(),
            message: e.to_string(),
            source: Some(e),
        }
    }

    /// Builds an error about the attribute at `path` (outermost tag first).
    pub fn at(kind: ErrorKind, path: &[Tag], message: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.to_vec(),
            message: message.into(),
            source: None,
        }
    }

    /// The error kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The offending attribute as a path of tags into nested sequences (empty when not about one).
    pub fn path(&self) -> &[Tag] {
        &self.path
    }

    /// The offending top-level attribute, if any (for the Attribute Identifier List, PS3.7 C.4).
    pub fn tag(&self) -> Option<Tag> {
        self.path.first().copied()
    }

    /// The human-readable message (without the position).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status the DICOMweb / seed endpoints answer with (PS3.18 §15.4.3, §15.5.3).
    pub fn http_status(&self) -> u16 {
        match self.kind {
            ErrorKind::Malformed
            | ErrorKind::InvalidValue
            | ErrorKind::MissingAttribute
            | ErrorKind::MissingValue => 400,
            ErrorKind::DuplicateInstance | ErrorKind::NoLongerUpdatable | ErrorKind::NotAllowed => {
                409
            }
            ErrorKind::NoSuchInstance => 404,
            ErrorKind::Storage => 500,
        }
    }

    /// The DIMSE status code of the N-CREATE/N-SET response (PS3.4 F.7.2.1.2, F.7.2.2.2; PS3.7 C).
    pub fn dimse_status(&self) -> u16 {
        match self.kind {
            ErrorKind::Malformed | ErrorKind::InvalidValue | ErrorKind::NotAllowed => {
                STATUS_INVALID_ATTRIBUTE_VALUE
            }
            ErrorKind::MissingAttribute => STATUS_MISSING_ATTRIBUTE,
            ErrorKind::MissingValue => STATUS_MISSING_ATTRIBUTE_VALUE,
            ErrorKind::DuplicateInstance => STATUS_DUPLICATE_SOP_INSTANCE,
            ErrorKind::NoSuchInstance => STATUS_NO_SUCH_OBJECT_INSTANCE,
            ErrorKind::NoLongerUpdatable | ErrorKind::Storage => STATUS_PROCESSING_FAILURE,
        }
    }

    /// The Error ID (0000,0903) to send with the DIMSE status, if any (A710, PS3.4 Table F.7.2-2).
    pub fn error_id(&self) -> Option<u16> {
        (self.kind == ErrorKind::NoLongerUpdatable).then_some(ERROR_ID_NO_LONGER_UPDATABLE)
    }

    /// An Error Comment (0000,0902) value: the message cut to 64 characters (VR LO).
    pub fn error_comment(&self) -> String {
        self.to_string().chars().take(64).collect()
    }
}

impl fmt::Display for MppsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if !self.path.is_empty() {
            f.write_str(" at ")?;
            for (i, t) in self.path.iter().enumerate() {
                if i > 0 {
                    f.write_str("/")?;
                }
                write!(f, "({:04X},{:04X})", t.0, t.1)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for MppsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_table() {
        let cases = [
            (ErrorKind::InvalidValue, 400, 0x0106),
            (ErrorKind::MissingAttribute, 400, 0x0120),
            (ErrorKind::MissingValue, 400, 0x0121),
            (ErrorKind::DuplicateInstance, 409, 0x0111),
            (ErrorKind::NoSuchInstance, 404, 0x0112),
            (ErrorKind::NoLongerUpdatable, 409, 0x0110),
            (ErrorKind::NotAllowed, 409, 0x0106),
        ];
        for (kind, http, dimse) in cases {
            let e = MppsError::new(kind, "x");
            assert_eq!(
                (e.http_status(), e.dimse_status()),
                (http, dimse),
                "{kind:?}"
            );
        }
        assert_eq!(
            MppsError::new(ErrorKind::NoLongerUpdatable, "x").error_id(),
            Some(0xA710)
        );
        assert_eq!(MppsError::new(ErrorKind::NotAllowed, "x").error_id(), None);
    }

    #[test]
    fn display_has_position() {
        let e = MppsError::at(
            ErrorKind::MissingValue,
            &[Tag(0x0040, 0x0340), Tag(0x0020, 0x000E)],
            "empty",
        );
        assert_eq!(e.to_string(), "empty at (0040,0340)/(0020,000E)");
        assert!(e.error_comment().len() <= 64);
    }
}
