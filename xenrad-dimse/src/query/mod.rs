//! Query/Retrieve and Modality Worklist, the application side of C-FIND, C-MOVE and C-GET
//! (PS3.4 Annex C and Annex K), sans-IO. Feature `qr` (default).
//!
//! - [`decode_identifier`] / [`encode_identifier`]: an identifier data set (PS3.4 C.4.1.1.3,
//!   K.6) from and to bytes in a transfer syntax, on the dicom-rs object model
//!   ([`Identifier`] = `dicom_object::InMemDicomObject`); [`to_dicom_json`] gives its
//!   PS3.18 F.2 form. A bad identifier is a [`QueryError`] whose [`QueryError::status`] and
//!   [`QueryError::error_comment`] go straight into the response.
//! - [`FindQuery`]: a validated C-FIND identifier for an [`InformationModel`].
//!   Matching follows PS3.4 C.2.2.2 (see the `matching` module docs for every rule and the
//!   choices made where the standard leaves one).
//! - [`QueryIndex`]: one [`InstanceRecord`] per stored instance, organised as
//!   patient → study → series → instance; answers Patient Root and Study Root C-FIND at every
//!   level lazily ([`QueryIndex::find`], [`FindCursor`]) and gives the instances a C-MOVE /
//!   C-GET identifier selects ([`QueryIndex::retrieve`]).
//! - [`Worklist`]: Modality Worklist items from a directory of DICOM JSON or Part 10 files,
//!   answering worklist C-FIND (PS3.4 K.6) with sequence matching.
//!
//! ```
//! use xenrad_dimse::query::{
//!     FindOptions, FindQuery, InformationModel, InstanceRecord, QueryIndex, decode_identifier,
//!     encode_identifier, identifier_from_pairs,
//! };
//! # fn main() -> Result<(), xenrad_dimse::query::QueryError> {
//! // What a C-STORE SCP learned about one stored instance (normally InstanceRecord::from_part10_file).
//! let stored = identifier_from_pairs(&[
//!     ("PatientName", "Müller^Jörg"), ("PatientID", "P1"), ("StudyDate", "20240105"),
//!     ("StudyInstanceUID", "1.2.3"), ("SeriesInstanceUID", "1.2.3.1"), ("Modality", "CT"),
//!     ("SOPInstanceUID", "1.2.3.1.1"), ("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2"),
//! ])?;
//! let mut index = QueryIndex::new();
//! index.insert(InstanceRecord::from_object(stored, "1.2.840.10008.1.2.1", "/data/1.2.3.1.1.dcm")?)?;
//!
//! // A C-FIND-RQ identifier as it arrives on the wire (here: Explicit VR Little Endian).
//! let rq = identifier_from_pairs(&[
//!     ("SpecificCharacterSet", "ISO_IR 192"), ("QueryRetrieveLevel", "STUDY"),
//!     ("PatientName", "müller*"), ("StudyDate", "20240101-"), ("StudyInstanceUID", ""),
//! ])?;
//! let bytes = encode_identifier(&rq, "1.2.840.10008.1.2.1")?;
//! let query = FindQuery::parse(decode_identifier(&bytes, "1.2.840.10008.1.2.1")?, InformationModel::StudyRoot)?;
//! let matches: Vec<_> = index.find(&query, &FindOptions::default()).collect();
//! assert_eq!(matches.len(), 1);
//! let uid = matches[0].get(dicom_dictionary_std::tags::STUDY_INSTANCE_UID).unwrap();
//! assert_eq!(uid.to_str().unwrap(), "1.2.3");
//! # Ok(()) }
//! ```

mod dates;
mod identifier;
mod index;
pub mod matching;
mod worklist;

pub use identifier::{
    Identifier, decode_identifier, encode_identifier, identifier_from_pairs, to_dicom_json,
};
pub use index::{FindCursor, FindMatches, IndexReport, InstanceRecord, QueryIndex, RetrieveItem};
pub use matching::{FindOptions, FindQuery};
pub use worklist::{Worklist, WorklistItem, WorklistMatches};

use dicom_core::Tag;

/// What went wrong with an identifier or a stored record, and which status it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// The identifier's bytes do not parse as a data set in the transfer syntax (PS3.4
    /// C.4.1.1.4: "Unable to process", 0xC000).
    Malformed,
    /// It parses but is not a valid identifier for the SOP class: missing or unknown Query/
    /// Retrieve Level, a level the model lacks, a missing unique key, a malformed range
    /// (0xA900, "Identifier does not match SOP Class").
    DoesNotMatchSopClass,
    /// Something the identifier asks for that this implementation cannot do (an unsupported
    /// transfer syntax or Specific Character Set): 0xC000.
    Unsupported,
    /// Reading a stored file failed (index and worklist loading, not a C-FIND status).
    Io,
}

/// An identifier or record error: kind, the attribute and byte offset when known, and a
/// message. [`status`](Self::status) and [`error_comment`](Self::error_comment) are what the
/// SCP puts in the C-FIND/C-MOVE/C-GET response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{message}", tag.map(|t| format!("({:04X},{:04X}) ", t.0, t.1)).unwrap_or_default(), offset.map(|o| format!("at byte {o}: ")).unwrap_or_default())]
pub struct QueryError {
    /// Which class of problem.
    pub kind: QueryErrorKind,
    /// The attribute concerned, when there is one.
    pub tag: Option<Tag>,
    /// Byte offset in the identifier's encoding, when the error is a parse error.
    pub offset: Option<usize>,
    /// Human-readable detail.
    pub message: String,
}

impl QueryError {
    pub(crate) fn new(kind: QueryErrorKind, message: impl Into<String>) -> Self {
        QueryError {
            kind,
            tag: None,
            offset: None,
            message: message.into(),
        }
    }
    pub(crate) fn at(mut self, offset: usize) -> Self {
        self.offset = Some(offset);
        self
    }
    pub(crate) fn tag(mut self, tag: Tag) -> Self {
        self.tag = Some(tag);
        self
    }
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self::new(QueryErrorKind::Malformed, message)
    }
    pub(crate) fn mismatch(message: impl Into<String>) -> Self {
        Self::new(QueryErrorKind::DoesNotMatchSopClass, message)
    }

    /// The DIMSE status for this error (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4):
    /// 0xA900 (Identifier does not match SOP Class) or 0xC000 (Unable to process).
    pub fn status(&self) -> u16 {
        match self.kind {
            QueryErrorKind::DoesNotMatchSopClass => 0xA900,
            QueryErrorKind::Malformed | QueryErrorKind::Unsupported | QueryErrorKind::Io => 0xC000,
        }
    }

    /// The Error Comment (0000,0902) for the response: this error's text, printable ASCII
    /// only, at most 64 characters (the LO limit, PS3.5 6.2).
    pub fn error_comment(&self) -> String {
        let full = self.to_string();
        let mut out: String = full
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .filter(|c| *c != '\\')
            .collect();
        if out.len() > 64 {
            out.truncate(61);
            out.push_str("...");
        }
        out
    }
}

/// The C-FIND/C-MOVE/C-GET information models served here (PS3.4 C.6, K.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InformationModel {
    /// Patient Root Query/Retrieve Information Model (PS3.4 C.6.1): PATIENT, STUDY, SERIES, IMAGE.
    PatientRoot,
    /// Study Root Query/Retrieve Information Model (PS3.4 C.6.2): STUDY, SERIES, IMAGE.
    StudyRoot,
    /// Modality Worklist Information Model (PS3.4 K.6): no levels.
    ModalityWorklist,
}

impl InformationModel {
    /// The model of a FIND, MOVE or GET SOP Class UID (PS3.4 C.6.1.1.1, C.6.2.1.1, K.6.1.1;
    /// trailing NUL padding ignored); `None` for any other UID.
    pub fn from_sop_class(uid: &str) -> Option<InformationModel> {
        match uid.trim_end_matches(['\0', ' ']) {
            "1.2.840.10008.5.1.4.1.2.1.1"
            | "1.2.840.10008.5.1.4.1.2.1.2"
            | "1.2.840.10008.5.1.4.1.2.1.3" => Some(InformationModel::PatientRoot),
            "1.2.840.10008.5.1.4.1.2.2.1"
            | "1.2.840.10008.5.1.4.1.2.2.2"
            | "1.2.840.10008.5.1.4.1.2.2.3" => Some(InformationModel::StudyRoot),
            "1.2.840.10008.5.1.4.31" => Some(InformationModel::ModalityWorklist),
            _ => None,
        }
    }

    /// Whether `level` exists in this model (PS3.4 C.6.1.1, C.6.2.1: Study Root has no
    /// PATIENT level; the worklist has no levels at all).
    pub fn has_level(self, level: Level) -> bool {
        match self {
            InformationModel::PatientRoot => true,
            InformationModel::StudyRoot => level != Level::Patient,
            InformationModel::ModalityWorklist => false,
        }
    }
}

/// Query/Retrieve Level (0008,0052) values (PS3.4 C.6.1.1.1), top down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `PATIENT`
    Patient,
    /// `STUDY`
    Study,
    /// `SERIES`
    Series,
    /// `IMAGE`
    Image,
}

impl Level {
    /// Parses a Query/Retrieve Level value (trailing spaces ignored, case-sensitive as the
    /// CS defined terms are).
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim() {
            "PATIENT" => Some(Level::Patient),
            "STUDY" => Some(Level::Study),
            "SERIES" => Some(Level::Series),
            "IMAGE" => Some(Level::Image),
            _ => None,
        }
    }
    /// The defined term, as put in responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Patient => "PATIENT",
            Level::Study => "STUDY",
            Level::Series => "SERIES",
            Level::Image => "IMAGE",
        }
    }
}
