//! The gateway's durable store, as a trait with an embedded SQLite implementation.
//!
//! Everything the gateway keeps goes through three traits:
//! - [`ReadTx`]: the reads the surfaces and projections need (a resource, a token
//!   lookup, a FHIR search, the instances of a study, an MPPS record);
//! - [`WriteTx`]: the writes of one ingest (a message for de-duplication, resources
//!   with their index rows, DICOM instances, MPPS records), all inside one unit of
//!   work that commits atomically;
//! - [`Backend`]: runs write jobs in durable, group-committed transactions and read
//!   jobs on a snapshot.
//!
//! [`Store`] is the cheap, cloneable handle the gateway passes around; it turns
//! closures over `&dyn WriteTx` / `&dyn ReadTx` into jobs for whichever backend it
//! wraps. The embedded default is [`sqlite::SqliteBackend`]; with the cargo feature
//! `postgres`, `postgres::PostgresBackend` implements the same traits on a database
//! that a fleet of gateways shares ([`Store::open_database`] picks one from a URL).
//!
//! The contract every backend must keep: a write job's `done` callback runs only
//! after its transaction is durably committed (so an acknowledgement always follows
//! durable storage), and a failed job rolls back only its own changes.

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod qr;
pub mod sqlite;
pub mod worklist;

pub use crate::map::worklist::WorklistRow;

#[cfg(test)]
mod backend_tests;

use crate::search::{IndexEntry, Query};
use std::sync::{Arc, Mutex};

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database: {0}")]
    Database(String),
    /// The writer is gone (shutdown or a crash).
    #[error("store writer is not running")]
    Closed,
    /// A job failed with its own error.
    #[error("{0}")]
    Job(String),
    /// The file system holding the store is full (SQLITE_FULL, ENOSPC): nothing of the
    /// job was stored; the same write succeeds once space returns. HTTP doors answer 507.
    #[error("storage full: {0}")]
    Full(String),
}

impl StoreError {
    /// Whether the write failed for lack of space (answer 507 / A700 / 0213, retry later).
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::Full(_))
    }
}

/// A stored FHIR resource version: the bytes `xenrad-fhir-model` wrote (elements in
/// specification order, `meta.versionId` and `meta.lastUpdated` inside, set on the model before
/// the one serialisation), plus the version and lastUpdated as columns. Reads, searches and
/// history serve `body` as is: no parse, no splicing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResource {
    /// `meta.versionId`, from 1.
    pub version: i64,
    /// `meta.lastUpdated` (RFC 3339, UTC).
    pub last_updated: String,
    /// The resource JSON, `meta` included.
    pub body: String,
}

impl StoredResource {
    /// The resource JSON (with its `meta`), as stored.
    pub fn json(&self) -> &str {
        &self.body
    }

    /// The content as a JSON value (for projections that still merge through serde_json).
    pub fn value(&self) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&self.body)
            .map_err(|e| StoreError::Job(format!("stored resource is not JSON: {e}")))
    }
}

/// The current state of a resource id: live, or deleted (FHIR R4 http.html#delete: a read
/// answers 410 Gone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Current {
    /// The latest version.
    Live(StoredResource),
    /// Deleted at this version (the delete is a version of its own).
    Deleted {
        /// The delete's version id.
        version: i64,
        /// When it was deleted.
        last_updated: String,
    },
}

impl Current {
    /// The current version id.
    pub fn version(&self) -> i64 {
        match self {
            Current::Live(r) => r.version,
            Current::Deleted { version, .. } => *version,
        }
    }
}

/// One version in a resource's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Resource type.
    pub resource_type: String,
    /// Logical id.
    pub id: String,
    /// Version id.
    pub version: i64,
    /// When the version was written.
    pub last_updated: String,
    /// The interaction that wrote it: `POST`, `PUT` (also PATCH and projections) or `DELETE`.
    pub method: String,
    /// The resource as stored (`None` for a delete).
    pub body: Option<String>,
}

/// Which history (FHIR R4 http.html#history).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryScope<'a> {
    /// `GET /_history`.
    System,
    /// `GET /{type}/_history`.
    Type(&'a str),
    /// `GET /{type}/{id}/_history`.
    Instance(&'a str, &'a str),
}

/// A history request: newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// `_since`: versions written at or after this instant (fixed-width RFC 3339 UTC text).
    pub since: Option<String>,
    /// `_at`-like upper bound: versions written at or before this instant.
    pub before: Option<String>,
    /// Page size.
    pub count: usize,
    /// Page offset.
    pub offset: usize,
}

/// One page of search results: the total and `(id, resource)` rows.
#[derive(Debug, Default)]
pub struct Page {
    /// Total matches.
    pub total: usize,
    /// This page's resources.
    pub rows: Vec<(String, StoredResource)>,
}

/// A stored DICOM instance, as the `instances` table keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceRow {
    /// (0008,0018) SOP Instance UID (the de-duplication key).
    pub sop_instance_uid: String,
    /// (0008,0016) SOP Class UID.
    pub sop_class_uid: String,
    /// (0020,000D) Study Instance UID.
    pub study_uid: String,
    /// (0020,000E) Series Instance UID (empty when unknown).
    pub series_uid: String,
    /// Transfer syntax of the stored file.
    pub transfer_syntax: String,
    /// Path of the Part 10 file.
    pub path: String,
    /// Data set size in bytes.
    pub size: u64,
    /// Calling AE title of the sender.
    pub calling_ae: String,
}

/// The query attributes of a stored instance (the `qr_instances` table): its keys as
/// columns and its header attributes (no pixel data) as an Explicit VR Little Endian data
/// set in UTF-8, from which the Q/R index and DICOMweb answer without reading files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryRow {
    /// (0008,0018) SOP Instance UID (also the key of its `instances` row).
    pub sop_instance_uid: String,
    /// (0010,0020) Patient ID (empty when absent).
    pub patient_id: String,
    /// (0020,000D) Study Instance UID.
    pub study_uid: String,
    /// (0020,000E) Series Instance UID.
    pub series_uid: String,
    /// The header attributes, Explicit VR Little Endian, Specific Character Set ISO_IR 192.
    pub header: Vec<u8>,
}

/// One entry of the message log: an HL7 message the gateway processed (whatever became of
/// it), as the operator console lists it. Stored messages keep their content in the
/// `messages` table; an entry keeps the content itself only when the message was not stored
/// (so a failure can be shown and re-processed), and then only for the newest
/// [`LogBounds::bodies`] such entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageLogEntry {
    /// Log sequence number (from 1; 0 before it is recorded).
    pub seq: i64,
    /// When it was processed (RFC 3339, UTC).
    pub received_at: String,
    /// The door it came through: `hl7-http`, `mllp`, `console` (re-processed).
    pub door: String,
    /// `hl7v2` or `hl7v3`.
    pub protocol: String,
    /// Sender (`MSH-3^MSH-4`, or the v3 sender device id).
    pub sender: String,
    /// Control id (MSH-10, or the v3 message id).
    pub message_id: String,
    /// Message type (`ADT^A01`, or the v3 interaction id).
    pub message_type: String,
    /// `stored`, `duplicate`, `rejected`, `invalid` or `failed`.
    pub outcome: String,
    /// The error the ACK reported (empty when accepted).
    pub error: String,
    /// Where the error is (`PID-7`, `segment 2 field 7, byte 57`; empty when unknown).
    pub error_location: String,
    /// The acknowledgement sent (or that would have been sent).
    pub ack: Vec<u8>,
    /// The raw message when it was not stored (and is still kept).
    pub body: Option<Vec<u8>>,
    /// The entry a re-processing of this one produced.
    pub reprocessed_as: Option<i64>,
}

/// How much of the message log is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBounds {
    /// Newest entries kept (older ones are deleted).
    pub entries: u64,
    /// Raw content (of a message that was not stored) is kept on the newest this many entries.
    pub bodies: u64,
}

impl Default for LogBounds {
    fn default() -> Self {
        LogBounds {
            entries: 100_000,
            bodies: 2_000,
        }
    }
}

/// A search of the message log (newest first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Substring of control id, sender or type (case-insensitive).
    pub text: String,
    /// Only this door.
    pub door: String,
    /// `accepted` (stored or duplicate), `errors` (anything else), or one outcome.
    pub outcome: String,
    /// Entries to skip.
    pub offset: u64,
    /// Most entries returned.
    pub limit: u64,
}

/// One MPPS record as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MppsRow {
    /// SOP Instance UID.
    pub uid: String,
    /// Record version.
    pub version: u64,
    /// The encoded record.
    pub state: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// The reads a projection or a surface may make, inside a transaction or on a
/// read snapshot.
pub trait ReadTx {
    /// A live resource (`None` when unknown or deleted).
    fn resource(&self, resource_type: &str, id: &str)
    -> Result<Option<StoredResource>, StoreError>;
    /// The current state of a resource id, deleted ones included.
    fn current(&self, resource_type: &str, id: &str) -> Result<Option<Current>, StoreError>;
    /// One version of a resource (vread).
    fn version(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<HistoryEntry>, StoreError>;
    /// A page of history, newest first, and the number of versions in the scope.
    fn history(
        &self,
        scope: HistoryScope<'_>,
        q: &HistoryQuery,
    ) -> Result<(usize, Vec<HistoryEntry>), StoreError>;
    /// `(holder id, reference key)` of the index rows of the reference parameters `params`
    /// of these resources (keys are `Type/id` for literal references).
    fn references_from(
        &self,
        resource_type: &str,
        ids: &[String],
        params: &[&str],
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// Ids of live `source` resources whose reference parameters `params` hold one of
    /// `targets` (`Type/id` keys).
    fn referring(
        &self,
        source: &str,
        params: &[&str],
        targets: &[String],
    ) -> Result<Vec<String>, StoreError>;
    /// The id of a resource whose index has this token.
    fn find_by_token(
        &self,
        resource_type: &str,
        param: &str,
        system: &str,
        value: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Runs a FHIR search.
    fn search(&self, resource_type: &str, q: &Query) -> Result<Page, StoreError>;
    /// `(series, SOP instance, SOP class)` of every instance of a study, in series
    /// then arrival order.
    fn study_instances(&self, study_uid: &str)
    -> Result<Vec<(String, String, String)>, StoreError>;
    /// The modality recorded for a series.
    fn series_modality(&self, series_uid: &str) -> Result<Option<String>, StoreError>;
    /// Whether an instance with this SOP Instance UID is stored.
    fn has_instance(&self, sop_instance_uid: &str) -> Result<bool, StoreError>;
    /// `(version, state)` of an MPPS record.
    fn mpps(&self, uid: &str) -> Result<Option<(u64, String)>, StoreError>;
    /// Number of stored messages of one protocol.
    fn count_messages(&self, protocol: &str) -> Result<u64, StoreError>;
    /// A stored instance by SOP Instance UID.
    fn instance(&self, sop_instance_uid: &str) -> Result<Option<InstanceRow>, StoreError>;
    /// Calls `f` with every stored instance that has query attributes, and them.
    fn for_each_query_row(
        &self,
        f: &mut dyn FnMut(InstanceRow, QueryRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// The stored instances (with query attributes) of a study, or of one series, or one
    /// instance, in series then arrival order.
    fn query_rows_in(
        &self,
        study_uid: &str,
        series_uid: Option<&str>,
        sop_instance_uid: Option<&str>,
    ) -> Result<Vec<(InstanceRow, QueryRow)>, StoreError>;
    /// Stored instances without query attributes (stored before they were kept).
    fn instances_without_query_row(&self) -> Result<Vec<InstanceRow>, StoreError>;
    /// The worklist rows that pass `filter` (indexed columns only; the K.6 matching of
    /// [`worklist`] decides on them), in SPS start date then key order.
    fn worklist_rows(
        &self,
        filter: &worklist::WorklistFilter,
    ) -> Result<Vec<WorklistRow>, StoreError>;
    /// One worklist row by its step key.
    fn worklist_row(&self, step_key: &str) -> Result<Option<WorklistRow>, StoreError>;
    /// A page of the message log, newest first, without raw content, and the total matching.
    fn message_log(&self, q: &LogQuery) -> Result<(u64, Vec<MessageLogEntry>), StoreError>;
    /// One message log entry with its raw content: its own (a message that was not stored)
    /// or the stored message's.
    fn message_log_entry(&self, seq: i64) -> Result<Option<MessageLogEntry>, StoreError>;
    /// MPPS records, newest change first, and their total.
    fn mpps_records(&self, offset: u64, limit: u64) -> Result<(u64, Vec<MppsRow>), StoreError>;
    /// Calls `f` with every instance (with query attributes) received at or after `since`
    /// (RFC 3339, as [`now`] writes it): how a node sharing its database with others picks
    /// up what they stored (see [`qr::Images::refresh`]).
    fn for_each_query_row_since(
        &self,
        since: &str,
        f: &mut dyn FnMut(InstanceRow, QueryRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
}

/// The writes of one unit of work. Everything written through one `WriteTx`
/// commits together or not at all.
pub trait WriteTx: ReadTx {
    /// Records a message once: `true` when it is new, `false` for a repeat of the
    /// same `(protocol, sender, message id)`.
    fn record_message(
        &self,
        protocol: &str,
        sender: &str,
        message_id: &str,
        message_type: &str,
        body: &[u8],
    ) -> Result<bool, StoreError>;
    /// Writes a new version of a resource: the current row, its history row (`POST` for
    /// version 1, `PUT` after) and its index rows (replaced).
    fn put_resource(
        &self,
        resource_type: &str,
        id: &str,
        resource: &StoredResource,
        index: &[IndexEntry],
    ) -> Result<(), StoreError>;
    /// Records a delete as a new version without content and drops the index rows.
    fn delete_resource(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
        last_updated: &str,
    ) -> Result<(), StoreError>;
    /// Records (or refreshes) a stored instance; `true` when it was not stored yet.
    fn record_instance(&self, row: &InstanceRow) -> Result<bool, StoreError>;
    /// Records (or replaces) the query attributes of a stored instance.
    fn record_query_row(&self, row: &QueryRow) -> Result<(), StoreError>;
    /// Remembers the modality of a series (first one wins).
    fn record_series_modality(&self, series_uid: &str, modality: &str) -> Result<(), StoreError>;
    /// Inserts a new MPPS record; `false` when one exists already.
    fn mpps_insert(&self, uid: &str, version: u64, state: &str) -> Result<bool, StoreError>;
    /// Inserts or replaces a worklist row (by its step key).
    fn worklist_put(&self, row: &WorklistRow) -> Result<(), StoreError>;
    /// Replaces an MPPS record if its version is still `expected` (compare-and-set).
    fn mpps_update(
        &self,
        uid: &str,
        version: u64,
        state: &str,
        expected: u64,
    ) -> Result<bool, StoreError>;
    /// Appends an entry to the message log (its `seq` is assigned) and trims the log to
    /// `bounds`; returns the new entry's `seq`.
    fn log_message(&self, entry: &MessageLogEntry, bounds: LogBounds) -> Result<i64, StoreError>;
    /// Notes that entry `seq` was re-processed as entry `new_seq`.
    fn mark_reprocessed(&self, seq: i64, new_seq: i64) -> Result<(), StoreError>;
}

/// A write job; runs inside one durable transaction shared with other jobs.
pub type WriteJob = Box<dyn FnOnce(&dyn WriteTx) -> Result<(), StoreError> + Send>;
/// Called with the job's result once its transaction is committed (or failed).
pub type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A read job.
pub type ReadJob<'a> = &'a mut dyn FnMut(&dyn ReadTx) -> Result<(), StoreError>;

/// A storage backend.
pub trait Backend: Send + Sync + 'static {
    /// Queues `job` for the next transaction; `done` gets its result after the
    /// commit is durable. Jobs of one caller run in submission order.
    fn submit(&self, job: WriteJob, done: Done) -> Result<(), StoreError>;
    /// Runs `job` on a consistent read snapshot, blocking the calling thread.
    fn read_blocking(&self, job: ReadJob<'_>) -> Result<(), StoreError>;
    /// Commits what is queued, then stops accepting writes and flushes.
    fn close(&self);
    /// Whether other processes (gateway nodes) may write to the same data: in-memory views
    /// of it (the query/retrieve index) must then be refreshed from it. The embedded store
    /// belongs to one process.
    fn shared(&self) -> bool {
        false
    }
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

type Slot<T> = Arc<Mutex<Option<T>>>;

impl Store {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Store { backend }
    }

    /// Opens the embedded default: SQLite in `dir`.
    pub fn open(dir: &std::path::Path) -> Result<Self, StoreError> {
        Ok(Store::new(Arc::new(sqlite::SqliteBackend::open(dir)?)))
    }

    /// Opens the backend a database URL names: `postgres://…` (or `postgresql://…`) for
    /// PostgreSQL (cargo feature `postgres`); without a URL, the embedded SQLite in `dir`.
    pub fn open_database(url: Option<&str>, dir: &std::path::Path) -> Result<Self, StoreError> {
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Self::open(dir),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                #[cfg(feature = "postgres")]
                {
                    Ok(Store::new(Arc::new(postgres::PostgresBackend::connect(u)?)))
                }
                #[cfg(not(feature = "postgres"))]
                {
                    Err(StoreError::Job(
                        "this xenrad-gateway was built without PostgreSQL support (cargo feature `postgres`)".into(),
                    ))
                }
            }
            Some(u) => Err(StoreError::Job(format!(
                "unsupported database URL (postgres://… expected): {}",
                u.split('@').next_back().unwrap_or_default()
            ))),
        }
    }

    fn job<T, F>(f: F) -> (WriteJob, Slot<T>)
    where
        T: Send + 'static,
        F: FnOnce(&dyn WriteTx) -> Result<T, StoreError> + Send + 'static,
    {
        let slot: Slot<T> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let job: WriteJob = Box::new(move |tx| {
            let v = f(tx)?;
            *out.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(v);
            Ok(())
        });
        (job, slot)
    }

    fn take<T>(slot: &Slot<T>) -> Result<T, StoreError> {
        slot.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or(StoreError::Closed)
    }

    /// Runs `f` in the next group-committed transaction and returns its value once
    /// the transaction is durably committed. If `f` fails, only its own changes are
    /// rolled back.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn WriteTx) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, slot) = Self::job(f);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        self.backend.submit(
            job,
            Box::new(move |r| {
                let _ = done_tx.send(r);
            }),
        )?;
        done_rx.await.map_err(|_| StoreError::Closed)??;
        Self::take(&slot)
    }

    /// [`Store::write`] for synchronous callers (the DIMSE handler runs on a
    /// blocking-capable thread): blocks until the transaction is committed.
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn WriteTx) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, slot) = Self::job(f);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        self.backend.submit(
            job,
            Box::new(move |r| {
                let _ = done_tx.send(r);
            }),
        )?;
        done_rx.recv().map_err(|_| StoreError::Closed)??;
        Self::take(&slot)
    }

    /// Runs a read-only job on the calling thread (blocking: for synchronous callers such
    /// as the DIMSE handler and start-up).
    pub fn read_blocking<F>(&self, mut f: F) -> Result<(), StoreError>
    where
        F: FnMut(&dyn ReadTx) -> Result<(), StoreError>,
    {
        self.backend.read_blocking(&mut f)
    }

    /// Runs a read-only job off the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn ReadTx) -> Result<T, StoreError> + Send + 'static,
    {
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = Some(f);
            let mut out = None;
            backend.read_blocking(&mut |tx| {
                let f = f.take().ok_or(StoreError::Closed)?;
                out = Some(f(tx)?);
                Ok(())
            })?;
            out.ok_or(StoreError::Closed)
        })
        .await
        .map_err(|e| StoreError::Job(e.to_string()))?
    }

    /// Whether other nodes may write to this store ([`Backend::shared`]).
    pub fn shared(&self) -> bool {
        self.backend.shared()
    }

    /// Commits what is queued and stops the writer.
    pub fn close(&self) {
        self.backend.close();
    }
}

/// Now as an RFC 3339 timestamp (UTC), the format every table uses.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
