//! Storage behind the state machine. The gateway provides a durable [`Store`]; [`MemoryStore`] is
//! the in-memory one for tests, examples and single-process use.
//!
//! Every state transition is a compare-and-set on the record version, so of two concurrent N-SETs
//! on the same instance exactly one wins; the loser re-reads and is judged against the new state
//! (typically "may no longer be updated").

use crate::dataset::Dataset;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// What the store keeps per instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// SOP Instance UID (the key).
    pub sop_instance_uid: String,
    /// The current attributes.
    pub attributes: Dataset,
    /// The N-CREATE request as received (after decoding), for identical-replay detection.
    pub create_request: Dataset,
    /// The N-SET request that made the instance final, for identical-replay detection.
    pub final_request: Option<Dataset>,
    /// Version for compare-and-set; 1 after creation, incremented by every stored update.
    pub version: u64,
}

/// A storage failure (I/O, serialization, …) reported by a [`Store`] implementation: a message
/// and, when there is one, the underlying error ([`std::error::Error::source`]).
///
/// ```
/// use std::error::Error as _;
/// let io = std::io::Error::other("disk full");
/// let e = xenrad_mpps::StoreError::with_source("writing the record", io);
/// assert_eq!(e.to_string(), "MPPS store failure: writing the record");
/// assert_eq!(e.source().unwrap().to_string(), "disk full");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("MPPS store failure: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A failure described by `message` alone.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A failure described by `message`, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }

    /// The message (without the cause).
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Equal when the messages are (the cause is not compared).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for StoreError {}

/// Result of [`Store::insert_new`].
#[derive(Debug, Clone, PartialEq)]
pub enum Insert {
    /// The record was stored.
    Inserted,
    /// An instance with this UID exists already (returned unchanged).
    Exists(Record),
}

/// Result of [`Store::compare_and_set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cas {
    /// The stored version matched and the record was replaced.
    Swapped,
    /// The stored version differs (another writer won) or the record disappeared.
    Stale,
}

/// Storage of MPPS records. Implementations must make [`Store::insert_new`] and
/// [`Store::compare_and_set`] atomic per SOP Instance UID.
pub trait Store {
    /// Loads a record.
    fn load(&self, sop_instance_uid: &str) -> Result<Option<Record>, StoreError>;
    /// Inserts a record if no record with its UID exists.
    fn insert_new(&self, record: Record) -> Result<Insert, StoreError>;
    /// Replaces the record with `record` if the stored version equals `expected_version`.
    fn compare_and_set(&self, record: Record, expected_version: u64) -> Result<Cas, StoreError>;
}

impl<S: Store + ?Sized> Store for Arc<S> {
    fn load(&self, uid: &str) -> Result<Option<Record>, StoreError> {
        (**self).load(uid)
    }
    fn insert_new(&self, record: Record) -> Result<Insert, StoreError> {
        (**self).insert_new(record)
    }
    fn compare_and_set(&self, record: Record, expected_version: u64) -> Result<Cas, StoreError> {
        (**self).compare_and_set(record, expected_version)
    }
}

impl<S: Store + ?Sized> Store for &S {
    fn load(&self, uid: &str) -> Result<Option<Record>, StoreError> {
        (**self).load(uid)
    }
    fn insert_new(&self, record: Record) -> Result<Insert, StoreError> {
        (**self).insert_new(record)
    }
    fn compare_and_set(&self, record: Record, expected_version: u64) -> Result<Cas, StoreError> {
        (**self).compare_and_set(record, expected_version)
    }
}

/// An in-memory [`Store`] (a mutex around a hash map); cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, Record>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored instances.
    pub fn len(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store for MemoryStore {
    fn load(&self, uid: &str) -> Result<Option<Record>, StoreError> {
        Ok(self
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uid)
            .cloned())
    }

    fn insert_new(&self, record: Record) -> Result<Insert, StoreError> {
        let mut map = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = map.get(&record.sop_instance_uid) {
            return Ok(Insert::Exists(existing.clone()));
        }
        map.insert(record.sop_instance_uid.clone(), record);
        Ok(Insert::Inserted)
    }

    fn compare_and_set(&self, record: Record, expected_version: u64) -> Result<Cas, StoreError> {
        let mut map = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(&record.sop_instance_uid) {
            Some(slot) if slot.version == expected_version => {
                *slot = record;
                Ok(Cas::Swapped)
            }
            _ => Ok(Cas::Stale),
        }
    }
}
