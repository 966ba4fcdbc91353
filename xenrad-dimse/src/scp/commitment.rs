//! Storage Commitment Push Model (PS3.4 annex J): the N-ACTION-RQ data set (Transaction UID
//! and Referenced SOP Sequence, PS3.4 J.3.2.1.1) and the N-EVENT-REPORT-RQ data set
//! (committed and failed references, PS3.4 J.3.3.1.1), encoded and decoded with dicom-rs.

use super::retrieve::{DatasetError, decode_dataset, encode_dataset};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;

/// (0008,1195) Transaction UID.
pub const TRANSACTION_UID: Tag = Tag(0x0008, 0x1195);
/// (0008,1199) Referenced SOP Sequence.
pub const REFERENCED_SOP_SEQUENCE: Tag = Tag(0x0008, 0x1199);
/// (0008,1198) Failed SOP Sequence.
pub const FAILED_SOP_SEQUENCE: Tag = Tag(0x0008, 0x1198);
/// (0008,1150) Referenced SOP Class UID.
pub const REFERENCED_SOP_CLASS_UID: Tag = Tag(0x0008, 0x1150);
/// (0008,1155) Referenced SOP Instance UID.
pub const REFERENCED_SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x1155);
/// (0008,1197) Failure Reason.
pub const FAILURE_REASON: Tag = Tag(0x0008, 0x1197);

/// Action Type ID of the Request Storage Commitment action (PS3.4 J.3.2.1).
pub const ACTION_REQUEST_COMMITMENT: u16 = 1;
/// Event Type ID: every instance committed (PS3.4 J.3.3.1).
pub const EVENT_ALL_COMMITTED: u16 = 1;
/// Event Type ID: one or more instances failed (PS3.4 J.3.3.1).
pub const EVENT_SOME_FAILED: u16 = 2;

/// Failure Reason values (PS3.4 J.3.3.1.1.2).
pub mod reason {
    /// Processing failure.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// No such object instance (not stored here).
    pub const NO_SUCH_OBJECT_INSTANCE: u16 = 0x0112;
    /// Resource limitation.
    pub const RESOURCE_LIMITATION: u16 = 0x0213;
    /// Referenced SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Class/instance conflict (stored with another SOP class).
    pub const CLASS_INSTANCE_CONFLICT: u16 = 0x0119;
    /// Duplicate Transaction UID.
    pub const DUPLICATE_TRANSACTION_UID: u16 = 0x0131;
}

/// One referenced instance (an item of (0008,1199) or (0008,1198)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SopRef {
    /// (0008,1150) Referenced SOP Class UID.
    pub sop_class_uid: String,
    /// (0008,1155) Referenced SOP Instance UID.
    pub sop_instance_uid: String,
}

/// The N-ACTION-RQ of a storage commitment request (PS3.4 J.3.2.1.1, table J.3-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentRequest {
    /// (0008,1195) Transaction UID chosen by the requester.
    pub transaction_uid: String,
    /// (0008,1199) the instances to commit.
    pub references: Vec<SopRef>,
}

/// The N-EVENT-REPORT-RQ that answers it (PS3.4 J.3.3.1.1, table J.3-2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitmentResult {
    /// (0008,1195) the request's Transaction UID.
    pub transaction_uid: String,
    /// (0008,1199) instances committed.
    pub committed: Vec<SopRef>,
    /// (0008,1198) instances not committed, with their Failure Reason (0008,1197).
    pub failed: Vec<(SopRef, u16)>,
}

fn uid_element(tag: Tag, v: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::UI, PrimitiveValue::from(v))
}

fn ref_item(r: &SopRef, reason: Option<u16>) -> InMemDicomObject {
    let mut item = InMemDicomObject::from_element_iter([
        uid_element(REFERENCED_SOP_CLASS_UID, &r.sop_class_uid),
        uid_element(REFERENCED_SOP_INSTANCE_UID, &r.sop_instance_uid),
    ]);
    if let Some(code) = reason {
        item.put(DataElement::new(
            FAILURE_REASON,
            VR::US,
            PrimitiveValue::from(code),
        ));
    }
    item
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn text(obj: &InMemDicomObject, tag: Tag, what: &'static str) -> Result<String, DatasetError> {
    let e = obj
        .element_opt(tag)
        .map_err(|e| DatasetError::new(what, e))?
        .ok_or_else(|| DatasetError::new(what, format!("missing {tag}")))?;
    let s = e.to_str().map_err(|e| DatasetError::new(what, e))?;
    let s = s.trim_end_matches(['\0', ' ']).trim_start();
    if s.is_empty() {
        return Err(DatasetError::new(what, format!("empty {tag}")));
    }
    Ok(s.to_string())
}

/// The items of a sequence as references (with their Failure Reason when `reasons`).
fn refs(
    obj: &InMemDicomObject,
    tag: Tag,
    reasons: bool,
) -> Result<Vec<(SopRef, Option<u16>)>, DatasetError> {
    const WHAT: &str = "reading a referenced SOP item";
    let Some(e) = obj
        .element_opt(tag)
        .map_err(|e| DatasetError::new(WHAT, e))?
    else {
        return Ok(Vec::new());
    };
    let items = e
        .items()
        .ok_or_else(|| DatasetError::new(WHAT, format!("{tag} is not a sequence")))?;
    items
        .iter()
        .map(|it| {
            let r = SopRef {
                sop_class_uid: text(it, REFERENCED_SOP_CLASS_UID, WHAT)?,
                sop_instance_uid: text(it, REFERENCED_SOP_INSTANCE_UID, WHAT)?,
            };
            let why = if reasons {
                let e = it
                    .element_opt(FAILURE_REASON)
                    .map_err(|e| DatasetError::new(WHAT, e))?;
                Some(match e {
                    Some(e) => e.to_int::<u16>().map_err(|e| DatasetError::new(WHAT, e))?,
                    None => reason::PROCESSING_FAILURE,
                })
            } else {
                None
            };
            Ok((r, why))
        })
        .collect()
}

impl CommitmentRequest {
    /// Encodes the N-ACTION-RQ data set in `ts_uid`.
    pub fn encode(&self, ts_uid: &str) -> Result<Vec<u8>, DatasetError> {
        let obj = InMemDicomObject::from_element_iter([
            uid_element(TRANSACTION_UID, &self.transaction_uid),
            sequence(
                REFERENCED_SOP_SEQUENCE,
                self.references.iter().map(|r| ref_item(r, None)).collect(),
            ),
        ]);
        encode_dataset(&obj, ts_uid)
    }

    /// Decodes an N-ACTION-RQ data set: the Transaction UID and at least one reference are
    /// required (PS3.4 J.3.2.1.1).
    pub fn decode(dataset: &[u8], ts_uid: &str) -> Result<Self, DatasetError> {
        let obj = decode_dataset(dataset, ts_uid)?;
        let transaction_uid = text(&obj, TRANSACTION_UID, "reading the Transaction UID")?;
        let references: Vec<SopRef> = refs(&obj, REFERENCED_SOP_SEQUENCE, false)?
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        if references.is_empty() {
            return Err(DatasetError::new(
                "reading the Referenced SOP Sequence",
                "no referenced instance",
            ));
        }
        Ok(Self {
            transaction_uid,
            references,
        })
    }
}

impl CommitmentResult {
    /// Event Type ID of the report: 1 when nothing failed, else 2 (PS3.4 J.3.3.1).
    pub fn event_type_id(&self) -> u16 {
        if self.failed.is_empty() {
            EVENT_ALL_COMMITTED
        } else {
            EVENT_SOME_FAILED
        }
    }

    /// Encodes the N-EVENT-REPORT-RQ data set in `ts_uid`: the Referenced SOP Sequence when
    /// something was committed, the Failed SOP Sequence when something failed (PS3.4
    /// J.3.3.1.1, table J.3-2).
    pub fn encode(&self, ts_uid: &str) -> Result<Vec<u8>, DatasetError> {
        let mut obj = InMemDicomObject::from_element_iter([uid_element(
            TRANSACTION_UID,
            &self.transaction_uid,
        )]);
        if !self.committed.is_empty() {
            obj.put(sequence(
                REFERENCED_SOP_SEQUENCE,
                self.committed.iter().map(|r| ref_item(r, None)).collect(),
            ));
        }
        if !self.failed.is_empty() {
            obj.put(sequence(
                FAILED_SOP_SEQUENCE,
                self.failed
                    .iter()
                    .map(|(r, c)| ref_item(r, Some(*c)))
                    .collect(),
            ));
        }
        encode_dataset(&obj, ts_uid)
    }

    /// Decodes an N-EVENT-REPORT-RQ data set (a failed item without a Failure Reason counts
    /// as 0x0110, processing failure).
    pub fn decode(dataset: &[u8], ts_uid: &str) -> Result<Self, DatasetError> {
        let obj = decode_dataset(dataset, ts_uid)?;
        Ok(Self {
            transaction_uid: text(&obj, TRANSACTION_UID, "reading the Transaction UID")?,
            committed: refs(&obj, REFERENCED_SOP_SEQUENCE, false)?
                .into_iter()
                .map(|(r, _)| r)
                .collect(),
            failed: refs(&obj, FAILED_SOP_SEQUENCE, true)?
                .into_iter()
                .map(|(r, c)| (r, c.unwrap_or(reason::PROCESSING_FAILURE)))
                .collect(),
        })
    }
}
