//! Images back out of the gateway: the query/retrieve index over the durable store, the
//! C-FIND / C-MOVE / C-GET answers of the DICOM port and Storage Commitment.
//!
//! Every stored instance gets a `qr_instances` row (its Patient ID, Study and Series
//! Instance UIDs as columns and its header attributes as a small data set) in the same
//! durable transaction as its `instances` row. At start those rows are loaded into an
//! in-memory [`QueryIndex`] (xenrad-dimse's, which implements the C-FIND matching rules of
//! PS3.4 C.2.2.2: wild cards, ranges, UID lists, sequence matching, computed attributes such
//! as Number of Study Related Instances, character sets); every instance stored since is
//! added after its row is committed. Queries therefore never read a file nor the database:
//! SQL could match the unique keys but would have to re-implement the PN/DA/TM/sequence
//! matching rules, which the index already has and tests. The table is the durable truth; the
//! index is rebuilt from it (never from the files) after a restart.

use std::path::Path;
use std::sync::{PoisonError, RwLock};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use xenrad_dimse::assoc::policy::{sop, ts};
use xenrad_dimse::dimse::status;
use xenrad_dimse::query::{
    FindOptions, FindQuery, Identifier, InformationModel, InstanceRecord, QueryError, QueryIndex,
    decode_identifier, encode_identifier,
};
use xenrad_dimse::scp::commitment::{CommitmentRequest, CommitmentResult, reason};
use xenrad_dimse::scp::retrieve::RetrieveInstance;
use xenrad_dimse::scp::{QueryFinal, QueryOutcome, QueryRequest, StoredInstance};

use super::{InstanceRow, QueryRow, ReadTx, Store, StoreError};

/// The SOP classes the DICOM port accepts for images going out: C-FIND, C-MOVE and C-GET of
/// the Patient Root and Study Root models (PS3.4 C.6.1, C.6.2) and the Storage Commitment
/// Push Model (PS3.4 J.3). The Modality Worklist model is not offered.
pub const SOP_CLASSES: &[&str] = &[
    sop::PATIENT_ROOT_FIND,
    sop::STUDY_ROOT_FIND,
    sop::PATIENT_ROOT_MOVE,
    sop::STUDY_ROOT_MOVE,
    sop::PATIENT_ROOT_GET,
    sop::STUDY_ROOT_GET,
    sop::STORAGE_COMMITMENT_PUSH,
];

/// The query/retrieve index of everything the gateway stores.
pub struct Images {
    index: RwLock<QueryIndex>,
    opts: FindOptions,
    /// On a store other nodes write to: where to pick up their instances from.
    refresh: Option<Refresh>,
}

/// How an index on a shared store catches up with the other nodes' instances.
struct Refresh {
    store: Store,
    /// When the last refresh started (RFC 3339).
    since: std::sync::Mutex<chrono::DateTime<chrono::Utc>>,
}

/// How far before the previous refresh a refresh looks again: an instance's `received_at`
/// is taken when its write job runs on its node and it becomes visible when that job's
/// group-commit batch commits, a little later; rows that old are re-read (indexing is
/// idempotent: a record replaces the one with its SOP Instance UID).
const REFRESH_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images")
            .field("instances", &self.len())
            .finish_non_exhaustive()
    }
}

/// What [`Images::load`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Instances indexed from their `qr_instances` rows.
    pub indexed: usize,
    /// Instances stored before query attributes were kept, whose rows were made now from
    /// their files (once: the rows are written back).
    pub backfilled: usize,
    /// Instances that could not be indexed, with the reason.
    pub failed: Vec<(String, String)>,
}

/// A stored instance's index record and its `qr_instances` row, made from the first bytes of
/// its data set that the SCP (or STOW-RS) kept while receiving it ([`StoredInstance::head`]):
/// the file is read only when those bytes end before the header does (a header beyond 64 KiB,
/// a deflated transfer syntax).
pub fn records_for(inst: &StoredInstance) -> Result<(InstanceRecord, QueryRow), QueryError> {
    let from_head = InstanceRecord::from_dataset_head(
        &inst.head.0,
        inst.dataset_len,
        &inst.transfer_syntax,
        &inst.sop_class_uid,
        &inst.sop_instance_uid,
        &inst.path,
    )?;
    match from_head {
        Some(record) => {
            let row = query_row(&record)?;
            Ok((record, row))
        }
        None => records_from_file(&inst.path, &inst.sop_class_uid, &inst.sop_instance_uid),
    }
}

/// A stored instance's index record and its `qr_instances` row, made from its Part 10 file
/// (read up to the Pixel Data, which is never loaded).
pub fn records_from_file(
    path: &Path,
    sop_class_uid: &str,
    sop_instance_uid: &str,
) -> Result<(InstanceRecord, QueryRow), QueryError> {
    let mut record = InstanceRecord::from_part10_file(path)?;
    // The C-STORE's UIDs are the ones the instance is stored and de-duplicated under.
    if !sop_class_uid.is_empty() {
        sop_class_uid.clone_into(&mut record.sop_class_uid);
    }
    if !sop_instance_uid.is_empty() {
        sop_instance_uid.clone_into(&mut record.sop_instance_uid);
    }
    let row = query_row(&record)?;
    Ok((record, row))
}

fn text(obj: &Identifier, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim_start().to_owned())
        .unwrap_or_default()
}

/// The `qr_instances` row of an index record: its header attributes encoded in Explicit VR
/// Little Endian with Specific Character Set ISO_IR 192, so any text the instance had
/// (already decoded from its own character set) is kept as is.
pub fn query_row(record: &InstanceRecord) -> Result<QueryRow, QueryError> {
    let mut attrs = record.attributes.clone();
    attrs.put(DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        PrimitiveValue::from("ISO_IR 192"),
    ));
    Ok(QueryRow {
        sop_instance_uid: record.sop_instance_uid.clone(),
        patient_id: text(&record.attributes, tags::PATIENT_ID),
        study_uid: text(&record.attributes, tags::STUDY_INSTANCE_UID),
        series_uid: text(&record.attributes, tags::SERIES_INSTANCE_UID),
        header: encode_identifier(&attrs, ts::EXPLICIT_VR_LE)?,
    })
}

/// The index record of a stored instance from its two rows.
pub fn record_from_rows(inst: &InstanceRow, q: &QueryRow) -> Result<InstanceRecord, QueryError> {
    let attrs = decode_identifier(&q.header, ts::EXPLICIT_VR_LE)?;
    let mut r = InstanceRecord::from_object(attrs, &inst.transfer_syntax, &inst.path)?;
    r.sop_class_uid.clone_from(&inst.sop_class_uid);
    r.sop_instance_uid.clone_from(&inst.sop_instance_uid);
    Ok(r)
}

fn refuse(e: &QueryError) -> QueryFinal {
    QueryFinal {
        status: e.status(),
        error_comment: Some(e.error_comment()),
        ..QueryFinal::default()
    }
}

impl Images {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            index: RwLock::new(QueryIndex::new()),
            opts: FindOptions::default(),
            refresh: None,
        }
    }

    /// On a shared store (a fleet on PostgreSQL), indexes the instances other nodes stored
    /// since the last refresh (with [`REFRESH_OVERLAP`]), so C-FIND and QIDO-RS on any node
    /// find every instance. Runs before each query; nothing on an embedded store. A store
    /// that cannot be read leaves the index as it is (logged).
    pub fn refresh(&self) {
        let Some(r) = &self.refresh else { return };
        let mut since = r.since.lock().unwrap_or_else(PoisonError::into_inner);
        let started = chrono::Utc::now();
        let from = (*since - REFRESH_OVERLAP).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut records = Vec::new();
        let read = r.store.read_blocking(|tx: &dyn ReadTx| {
            records.clear();
            tx.for_each_query_row_since(&from, &mut |inst, q| {
                records.push(record_from_rows(&inst, &q).map_err(|e| (inst.sop_instance_uid, e)));
                Ok(())
            })
        });
        if let Err(e) = read {
            tracing::warn!(error = %e, "query/retrieve index not refreshed: the store cannot be read");
            return;
        }
        let mut ix = self.index.write().unwrap_or_else(PoisonError::into_inner);
        for rec in records {
            if let Err((uid, e)) = rec.and_then(|rec| {
                let uid = rec.sop_instance_uid.clone();
                ix.insert(rec).map_err(|e| (uid, e))
            }) {
                tracing::warn!(sop_instance_uid = %uid, error = %e, "not indexed for query/retrieve");
            }
        }
        *since = started;
    }

    /// Loads the index from the store's `qr_instances` rows; instances stored before those
    /// rows existed get theirs from their files, written back in one transaction.
    pub fn load(store: &Store) -> Result<(Self, LoadReport), StoreError> {
        let mut images = Self::new();
        if store.shared() {
            images.refresh = Some(Refresh {
                store: store.clone(),
                since: std::sync::Mutex::new(chrono::Utc::now()),
            });
        }
        let mut report = LoadReport::default();
        let mut missing = Vec::new();
        {
            let mut ix = images.index.write().unwrap_or_else(PoisonError::into_inner);
            store.read_blocking(|tx: &dyn ReadTx| {
                tx.for_each_query_row(&mut |inst, q| {
                    match record_from_rows(&inst, &q).and_then(|r| ix.insert(r)) {
                        Ok(()) => report.indexed += 1,
                        Err(e) => report.failed.push((inst.sop_instance_uid, e.to_string())),
                    }
                    Ok(())
                })?;
                missing = tx.instances_without_query_row()?;
                Ok(())
            })?;
        }
        let mut rows = Vec::new();
        for inst in missing {
            match records_from_file(
                Path::new(&inst.path),
                &inst.sop_class_uid,
                &inst.sop_instance_uid,
            ) {
                Ok((rec, row)) => rows.push((rec, row)),
                Err(e) => report.failed.push((inst.sop_instance_uid, e.to_string())),
            }
        }
        if !rows.is_empty() {
            let qrows: Vec<QueryRow> = rows.iter().map(|(_, r)| r.clone()).collect();
            store.write_blocking(move |tx| {
                for r in &qrows {
                    tx.record_query_row(r)?;
                }
                Ok(())
            })?;
            for (rec, _) in rows {
                let uid = rec.sop_instance_uid.clone();
                match images.insert(rec) {
                    Ok(()) => report.backfilled += 1,
                    Err(e) => report.failed.push((uid, e.to_string())),
                }
            }
        }
        Ok((images, report))
    }

    /// Number of indexed instances.
    pub fn len(&self) -> usize {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds (or replaces) an instance whose rows are committed.
    pub fn insert(&self, record: InstanceRecord) -> Result<(), QueryError> {
        self.index
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record)
    }

    /// The index, for readers that walk it themselves (DICOMweb).
    pub fn index(&self) -> &RwLock<QueryIndex> {
        &self.index
    }

    /// Answers a C-FIND (PS3.4 C.4.1.3.1): each match as it is found, encoded in the
    /// request's transfer syntax; an identifier that does not parse or names no valid level
    /// is refused with its status (0xA900/0xC000) and an Error Comment.
    pub fn find(&self, req: &QueryRequest, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> QueryFinal {
        self.refresh();
        let Some(model) = InformationModel::from_sop_class(&req.sop_class_uid)
            .filter(|m| *m != InformationModel::ModalityWorklist)
        else {
            return QueryFinal::status(status::SOP_CLASS_NOT_SUPPORTED);
        };
        let query = match decode_identifier(&req.identifier, &req.transfer_syntax)
            .and_then(|id| FindQuery::parse(id, model))
        {
            Ok(q) => q,
            Err(e) => return refuse(&e),
        };
        // The read lock is taken per match, so instances stored meanwhile are indexed while
        // a long answer streams.
        let mut cursor = self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .find_cursor(query, self.opts.clone());
        loop {
            let next =
                cursor.next_match(&self.index.read().unwrap_or_else(PoisonError::into_inner));
            let Some(m) = next else { break };
            let bytes = match encode_identifier(&m, &req.transfer_syntax) {
                Ok(b) => b,
                Err(e) => return refuse(&e),
            };
            if !emit(bytes) {
                // PS3.4 C.4.1.2.3: a C-CANCEL ends the query with 0xFE00.
                return QueryOutcome::cancelled();
            }
        }
        if cursor.truncated() {
            // PS3.4 C.4.1.1.4: out of resources once the match limit is reached.
            QueryFinal {
                status: status::OUT_OF_RESOURCES,
                error_comment: Some("match limit reached".into()),
                ..QueryFinal::default()
            }
        } else {
            QueryFinal::status(status::SUCCESS)
        }
    }

    /// The instances a C-MOVE / C-GET selects (PS3.4 C.4.2.2.1, C.4.3.2.1: the unique keys of
    /// the retrieve level and above), with their stored files: they are sent as stored.
    pub fn retrieve(&self, req: &QueryRequest) -> Result<Vec<RetrieveInstance>, QueryFinal> {
        self.refresh();
        let Some(model) = InformationModel::from_sop_class(&req.sop_class_uid)
            .filter(|m| *m != InformationModel::ModalityWorklist)
        else {
            return Err(QueryFinal::status(status::SOP_CLASS_NOT_SUPPORTED));
        };
        let id =
            decode_identifier(&req.identifier, &req.transfer_syntax).map_err(|e| refuse(&e))?;
        let items = self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .retrieve(&id, model)
            .map_err(|e| refuse(&e))?;
        Ok(items.into_iter().map(RetrieveInstance::from).collect())
    }
}

impl Default for Images {
    fn default() -> Self {
        Self::new()
    }
}

/// Storage Commitment (PS3.4 J.3.3.1.1.2) against the durable store: an instance is
/// committed when its `instances` row is committed (the row is written after the file and
/// its journal record are durable, synchronous=FULL) under the same SOP class and its file
/// is there; an unknown instance fails with 0x0112 (no such object instance), one stored
/// under another SOP class with 0x0119 (class/instance conflict); when the store cannot be
/// read every reference fails with 0x0110 (processing failure).
pub fn commitment(store: &Store, req: &CommitmentRequest) -> CommitmentResult {
    let mut r = CommitmentResult {
        transaction_uid: req.transaction_uid.clone(),
        ..CommitmentResult::default()
    };
    let mut rows = Vec::with_capacity(req.references.len());
    let read = store.read_blocking(|tx: &dyn ReadTx| {
        rows.clear();
        for x in &req.references {
            rows.push(tx.instance(&x.sop_instance_uid)?);
        }
        Ok(())
    });
    if let Err(e) = read {
        tracing::error!(error = %e, "storage commitment: the store cannot be read");
        r.failed = req
            .references
            .iter()
            .map(|x| (x.clone(), reason::PROCESSING_FAILURE))
            .collect();
        return r;
    }
    for (x, row) in req.references.iter().zip(rows) {
        match row {
            Some(row) if row.sop_class_uid == x.sop_class_uid && Path::new(&row.path).is_file() => {
                r.committed.push(x.clone());
            }
            Some(row) if row.sop_class_uid != x.sop_class_uid => {
                r.failed.push((x.clone(), reason::CLASS_INSTANCE_CONFLICT));
            }
            _ => r.failed.push((x.clone(), reason::NO_SUCH_OBJECT_INSTANCE)),
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_object::InMemDicomObject;

    fn record(name: &str) -> InstanceRecord {
        let el = |t, vr, v: &str| DataElement::new(t, vr, PrimitiveValue::from(v));
        let obj = InMemDicomObject::from_element_iter([
            el(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.2"),
            el(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5"),
            el(tags::PATIENT_NAME, VR::PN, name),
            el(tags::PATIENT_ID, VR::LO, "P1"),
            el(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3"),
            el(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.4"),
        ]);
        InstanceRecord::from_object(obj, ts::EXPLICIT_VR_LE, "/x/1.dcm").expect("record")
    }

    #[test]
    fn query_rows_round_trip_with_their_text_and_keys() {
        let r = record("Müller^Jörg");
        let row = query_row(&r).expect("row");
        assert_eq!(
            (
                row.patient_id.as_str(),
                row.study_uid.as_str(),
                row.series_uid.as_str()
            ),
            ("P1", "1.2.3", "1.2.3.4")
        );
        let inst = InstanceRow {
            sop_instance_uid: "1.2.3.4.5".into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            study_uid: "1.2.3".into(),
            series_uid: "1.2.3.4".into(),
            transfer_syntax: ts::EXPLICIT_VR_LE.into(),
            path: "/x/1.dcm".into(),
            size: 1,
            calling_ae: "A".into(),
        };
        let back = record_from_rows(&inst, &row).expect("back");
        assert_eq!(text(&back.attributes, tags::PATIENT_NAME), "Müller^Jörg");
        assert_eq!(back.sop_instance_uid, "1.2.3.4.5");
        let images = Images::new();
        images.insert(back).expect("indexed");
        assert_eq!(images.len(), 1);
    }

    #[test]
    fn a_row_that_is_not_a_data_set_is_an_error_not_a_panic() {
        let inst = InstanceRow::default();
        let q = QueryRow {
            header: vec![0xFF; 7],
            ..QueryRow::default()
        };
        assert!(record_from_rows(&inst, &q).is_err());
    }
}
