//! Where received instances go: the [`StorageSink`] trait the SCP streams every C-STORE
//! into, and [`MemorySink`], a bounded in-memory sink (tests, small deployments, or a
//! template for a database/object-store sink).
//!
//! The protocol core never touches files: the file adapter (temp file, fdatasync, atomic
//! rename, directory fsync) is [`crate::store::fs::FileSink`], behind feature `fs`.
//!
//! Contract (PS3.4 B.2.3): the SCP calls [`StorageSink::begin`] when the C-STORE-RQ command
//! arrives, [`InstanceSink::write`] for every data set fragment in order as it arrives, and
//! then exactly one of [`InstanceSink::commit`] or [`InstanceSink::abort`]. The C-STORE-RSP
//! with a success status is sent only after `commit` returned `Ok`, so `commit` must not
//! return before the instance is as durable as the sink promises. Any error from `begin`,
//! `write` or `commit` answers 0xA700 (out of resources); the association stays usable.

use super::meta::FileMeta;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What a sink is told when a C-STORE starts: the File Meta values built from the command
/// and the association (PS3.10 §7.1), and the request's Message ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceStart<'a> {
    /// File Meta values (SOP class/instance from the command, negotiated transfer syntax,
    /// our implementation UID/version, the calling AE).
    pub meta: FileMeta<'a>,
    /// Message ID (0000,0110) of the C-STORE-RQ.
    pub message_id: Option<u16>,
}

/// A store for received instances, shared by all associations of an SCP.
pub trait StorageSink: Send + Sync + 'static {
    /// Starts receiving one instance.
    fn begin(&self, start: &InstanceStart<'_>) -> io::Result<Box<dyn InstanceSink>>;
    /// True when `write`/`commit` may block for a noticeable time (disk, fsync): transport
    /// adapters then run the session off their async worker threads.
    fn may_block(&self) -> bool {
        true
    }
}

/// One instance being received; see the module documentation for the call order.
pub trait InstanceSink: Send {
    /// Appends the next data set fragment (in order, never the File Meta).
    fn write(&mut self, chunk: &[u8]) -> io::Result<()>;
    /// Makes the instance durable (per the sink's policy) and visible; returns where it is
    /// now (a file path for the file sink, any key the sink chooses otherwise).
    fn commit(self: Box<Self>) -> io::Result<PathBuf>;
    /// Drops what was received (failure, mismatch, association gone).
    fn abort(self: Box<Self>);
}

/// An instance kept by [`MemorySink`]: the File Meta values and the data set bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryInstance {
    /// SOP Class UID from the command.
    pub sop_class_uid: String,
    /// SOP Instance UID from the command.
    pub sop_instance_uid: String,
    /// Transfer syntax of `dataset`.
    pub transfer_syntax: String,
    /// The data set as received.
    pub dataset: Vec<u8>,
}

/// A sink that keeps committed instances in memory, each at most `max_instance` bytes (a
/// larger one fails with `OutOfMemory`, i.e. 0xA700) and at most `max_total` bytes together.
///
/// ```
/// use std::sync::Arc;
/// use xenrad_dimse::scp::ScpConfig;
/// use xenrad_dimse::store::MemorySink;
/// let sink = Arc::new(MemorySink::new(16 << 20, 256 << 20));
/// let cfg = ScpConfig::with_sink(sink.clone());
/// assert!(sink.take().is_empty());
/// # let _ = cfg;
/// ```
#[derive(Debug)]
pub struct MemorySink {
    max_instance: usize,
    max_total: usize,
    inner: Arc<Mutex<(usize, Vec<MemoryInstance>)>>,
}

impl MemorySink {
    /// A sink with these bounds.
    pub fn new(max_instance: usize, max_total: usize) -> Self {
        Self {
            max_instance,
            max_total,
            inner: Arc::new(Mutex::new((0, Vec::new()))),
        }
    }

    /// Takes the committed instances out of the sink (freeing their space).
    pub fn take(&self) -> Vec<MemoryInstance> {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0 = 0;
        std::mem::take(&mut g.1)
    }
}

impl StorageSink for MemorySink {
    fn begin(&self, start: &InstanceStart<'_>) -> io::Result<Box<dyn InstanceSink>> {
        Ok(Box::new(MemoryInstanceSink {
            max: self.max_instance,
            max_total: self.max_total,
            inner: self.inner.clone(),
            inst: MemoryInstance {
                sop_class_uid: start.meta.sop_class_uid.to_owned(),
                sop_instance_uid: start.meta.sop_instance_uid.to_owned(),
                transfer_syntax: start.meta.transfer_syntax.to_owned(),
                dataset: Vec::new(),
            },
        }))
    }
    fn may_block(&self) -> bool {
        false
    }
}

struct MemoryInstanceSink {
    max: usize,
    max_total: usize,
    inner: Arc<Mutex<(usize, Vec<MemoryInstance>)>>,
    inst: MemoryInstance,
}

impl InstanceSink for MemoryInstanceSink {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.inst.dataset.len() + chunk.len() > self.max {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        self.inst.dataset.extend_from_slice(chunk);
        Ok(())
    }
    fn commit(self: Box<Self>) -> io::Result<PathBuf> {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.0 + self.inst.dataset.len() > self.max_total {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        g.0 += self.inst.dataset.len();
        let key = PathBuf::from(&self.inst.sop_instance_uid);
        g.1.push(self.inst);
        Ok(key)
    }
    fn abort(self: Box<Self>) {}
}
