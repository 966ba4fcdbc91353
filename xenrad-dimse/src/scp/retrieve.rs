//! C-MOVE and C-GET as the application drives them (PS3.4 C.4.2, C.4.3): the instances a
//! retrieve selects ([`RetrieveInstance`]), the sub-operation tally that makes the pending
//! and final responses ([`RetrieveTally`]), the data sets of the final response, and
//! (feature `fs`) a Part 10 file read as its data set in chunks ([`Part10Source`]), so an
//! instance goes out as it is stored, never whole in memory and never re-encoded.
//!
//! Data sets are encoded and decoded with dicom-rs (`dicom-object`) in the negotiated
//! transfer syntax.

use super::{QueryFinal, SubOperations};
use crate::dimse::status;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::path::PathBuf;

/// (0008,0058) Failed SOP Instance UID List (PS3.4 C.4.2.1.4, C.4.3.1.4).
pub const FAILED_SOP_INSTANCE_UID_LIST: Tag = Tag(0x0008, 0x0058);

/// One instance a C-MOVE or C-GET sends: what it is and where its Part 10 file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveInstance {
    /// SOP Class UID (the C-STORE's Affected SOP Class UID).
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Transfer syntax of the stored data set (the file's (0002,0010)).
    pub transfer_syntax_uid: String,
    /// The Part 10 file.
    pub path: PathBuf,
}

/// A data set that could not be encoded or decoded, with its context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{context}: {message}")]
pub struct DatasetError {
    /// What was being done.
    pub context: &'static str,
    /// The cause.
    pub message: String,
}

impl DatasetError {
    pub(crate) fn new(context: &'static str, message: impl std::fmt::Display) -> Self {
        Self {
            context,
            message: message.to_string(),
        }
    }
}

/// Encodes a data set (no File Meta) in a transfer syntax, with dicom-rs.
pub fn encode_dataset(obj: &InMemDicomObject, ts_uid: &str) -> Result<Vec<u8>, DatasetError> {
    let ts = TransferSyntaxRegistry.get(ts_uid).ok_or_else(|| {
        DatasetError::new(
            "encoding a data set",
            format!("unknown transfer syntax {ts_uid}"),
        )
    })?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts)
        .map_err(|e| DatasetError::new("encoding a data set", e))?;
    Ok(out)
}

/// Decodes a data set (no File Meta) received in a transfer syntax, with dicom-rs, after the
/// structural walk of [`crate::query::decode_identifier`] (every declared length within the
/// input, bounded nesting), so a peer's lengths never make the parser allocate beyond the
/// input's size.
pub fn decode_dataset(bytes: &[u8], ts_uid: &str) -> Result<InMemDicomObject, DatasetError> {
    crate::query::decode_identifier(bytes, ts_uid)
        .map_err(|e| DatasetError::new("decoding a data set", e))
}

/// How a C-STORE sub-operation's status counts (PS3.4 B.2.3, C.4.2.3.1): 0x0000 completed,
/// 0x0001 and 0xBxxx warning, anything else failed.
pub fn classify_store_status(st: u16) -> SubOutcome {
    match st {
        status::SUCCESS => SubOutcome::Completed,
        0x0001 | 0xB000..=0xBFFF => SubOutcome::Warning,
        _ => SubOutcome::Failed,
    }
}

/// How one sub-operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubOutcome {
    /// Completed (status 0x0000).
    Completed,
    /// Completed with a warning.
    Warning,
    /// Failed (refused, error, no context, file unreadable, association lost, …).
    Failed,
}

/// The sub-operation counts of one C-MOVE/C-GET and the UIDs of the failed ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetrieveTally {
    total: usize,
    completed: usize,
    failed: usize,
    warning: usize,
    failed_uids: Vec<String>,
}

fn sat(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl RetrieveTally {
    /// A tally for `total` sub-operations.
    pub fn new(total: usize) -> Self {
        Self {
            total,
            ..Self::default()
        }
    }

    /// Records one sub-operation's outcome.
    pub fn record(&mut self, sop_instance_uid: &str, outcome: SubOutcome) {
        match outcome {
            SubOutcome::Completed => self.completed += 1,
            SubOutcome::Warning => self.warning += 1,
            SubOutcome::Failed => {
                self.failed += 1;
                self.failed_uids.push(sop_instance_uid.to_string());
            }
        }
    }

    /// Records a C-STORE-RSP status ([`classify_store_status`]).
    pub fn record_status(&mut self, sop_instance_uid: &str, st: u16) {
        self.record(sop_instance_uid, classify_store_status(st));
    }

    /// Sub-operations done so far.
    pub fn done(&self) -> usize {
        self.completed + self.failed + self.warning
    }

    /// The counts for a pending response (PS3.7 §9.3.3.2, §9.3.4.2; saturated at 65535).
    pub fn counts(&self) -> SubOperations {
        SubOperations {
            remaining: sat(self.total.saturating_sub(self.done())),
            completed: sat(self.completed),
            failed: sat(self.failed),
            warning: sat(self.warning),
        }
    }

    /// SOP Instance UIDs of the failed sub-operations.
    pub fn failed_uids(&self) -> &[String] {
        &self.failed_uids
    }

    /// The final response (PS3.4 C.4.2.1.5, C.4.3.1.5): 0xFE00 with the counts when
    /// `cancelled`; 0x0000 when every sub-operation completed; 0xA702 when all failed;
    /// 0xB000 otherwise. A Cancel, Failure or Warning carries the Failed SOP Instance UID
    /// List (0008,0058) in a data set encoded in `ts_uid` (PS3.4 C.4.2.1.4, C.4.3.1.4).
    pub fn finish(&self, cancelled: bool, ts_uid: &str) -> QueryFinal {
        let st = if cancelled {
            status::CANCEL
        } else if self.failed == 0 && self.warning == 0 {
            status::SUCCESS
        } else if self.completed == 0 && self.warning == 0 {
            status::OUT_OF_RESOURCES_SUBOPS
        } else {
            status::SUBOPS_WARNING
        };
        let mut fin = QueryFinal {
            status: st,
            counts: Some(self.counts()),
            ..QueryFinal::default()
        };
        if !self.failed_uids.is_empty() {
            let obj = InMemDicomObject::from_element_iter([DataElement::new(
                FAILED_SOP_INSTANCE_UID_LIST,
                VR::UI,
                PrimitiveValue::Strs(self.failed_uids.iter().cloned().collect()),
            )]);
            match encode_dataset(&obj, ts_uid) {
                Ok(ds) => fin.dataset = Some(ds),
                Err(e) => fin.error_comment = Some(e.to_string()),
            }
        }
        if st == status::OUT_OF_RESOURCES_SUBOPS && fin.error_comment.is_none() {
            fin.error_comment = Some("every sub-operation failed".into());
        }
        fin
    }
}

/// Reads the Failed SOP Instance UID List (0008,0058) of a final C-MOVE/C-GET response.
pub fn failed_uid_list(dataset: &[u8], ts_uid: &str) -> Result<Vec<String>, DatasetError> {
    let obj = decode_dataset(dataset, ts_uid)?;
    let Some(e) = obj
        .element_opt(FAILED_SOP_INSTANCE_UID_LIST)
        .map_err(|e| DatasetError::new("reading (0008,0058)", e))?
    else {
        return Ok(Vec::new());
    };
    let v = e
        .to_multi_str()
        .map_err(|e| DatasetError::new("reading (0008,0058)", e))?;
    Ok(v.iter()
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A Part 10 file opened for sending: its File Meta read with dicom-rs, then the data set
/// read in chunks as it is stored (PS3.10 §7.1), so it goes into P-DATA unchanged.
#[cfg(feature = "fs")]
#[cfg_attr(docsrs, doc(cfg(feature = "fs")))]
#[derive(Debug)]
pub struct Part10Source {
    /// (0002,0002) Media Storage SOP Class UID.
    pub sop_class_uid: String,
    /// (0002,0003) Media Storage SOP Instance UID.
    pub sop_instance_uid: String,
    /// (0002,0010) Transfer Syntax UID of the data set.
    pub transfer_syntax_uid: String,
    reader: std::io::BufReader<std::fs::File>,
    remaining: u64,
}

#[cfg(feature = "fs")]
impl Part10Source {
    /// Opens a Part 10 file and reads past its preamble and File Meta group.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        use std::io::Read;
        let ctx = |e: &dyn std::fmt::Display| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        };
        let f = std::fs::File::open(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let mut reader = std::io::BufReader::with_capacity(16 << 10, f);
        let mut preamble = [0u8; 128];
        reader.read_exact(&mut preamble).map_err(|e| ctx(&e))?;
        let meta = dicom_object::FileMetaTable::from_reader(&mut reader).map_err(|e| ctx(&e))?;
        let trim = |s: &str| s.trim_end_matches(['\0', ' ']).to_string();
        let len = reader.get_ref().metadata().map_err(|e| ctx(&e))?.len();
        let pos = std::io::Seek::stream_position(&mut reader).map_err(|e| ctx(&e))?;
        Ok(Self {
            remaining: len.saturating_sub(pos),
            sop_class_uid: trim(meta.media_storage_sop_class_uid()),
            sop_instance_uid: trim(meta.media_storage_sop_instance_uid()),
            transfer_syntax_uid: trim(meta.transfer_syntax()),
            reader,
        })
    }

    /// Data set bytes not read yet (0: the last chunk was read).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next at most `max` bytes of the data set (fewer only at its end); `None` at the
    /// end of the file. A file that ends early is an `UnexpectedEof` error.
    pub fn read_chunk(&mut self, max: usize) -> std::io::Result<Option<bytes::Bytes>> {
        use std::io::Read;
        if self.remaining == 0 {
            return Ok(None);
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(max.max(1));
        // Read into spare capacity: no zeroing of a buffer the file overwrites anyway.
        let mut buf = Vec::with_capacity(want);
        let n = Read::by_ref(&mut self.reader)
            .take(want as u64)
            .read_to_end(&mut buf)?;
        if n < want {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= n as u64;
        Ok(Some(bytes::Bytes::from(buf)))
    }
}

impl From<crate::query::RetrieveItem> for RetrieveInstance {
    /// An instance the query index selected for a C-MOVE/C-GET
    /// ([`crate::query::QueryIndex::retrieve`]).
    fn from(i: crate::query::RetrieveItem) -> Self {
        Self {
            sop_class_uid: i.sop_class_uid,
            sop_instance_uid: i.sop_instance_uid,
            transfer_syntax_uid: i.transfer_syntax_uid,
            path: i.path,
        }
    }
}
