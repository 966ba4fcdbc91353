//! Streaming instance writer: File Meta, then data set fragments as they arrive, into a
//! temporary file in the storage directory; `finish` makes it durable and renames it
//! atomically into place (a duplicate SOP Instance UID replaces the old file atomically).

use super::meta::{FileMeta, encode_file_meta};
use super::peek::{PeekOutcome, peek_uids};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// When data is forced to disk before a C-STORE is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// fsync the file before the rename and the directory after it (default).
    #[default]
    Durable,
    /// Rely on the page cache (faster; an OS crash can lose acknowledged instances).
    None,
}

/// Bytes of the data set start kept for the UID peek when the first fragment is not enough.
const PEEK_LIMIT: usize = 64 * 1024;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// UIDs taken from the data set itself, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetUids {
    /// (0008,0016).
    pub sop_class_uid: Option<String>,
    /// (0008,0018).
    pub sop_instance_uid: Option<String>,
    /// (0020,000D).
    pub study_instance_uid: Option<String>,
}

/// One instance being received; see the module documentation.
#[derive(Debug)]
pub struct InstanceWriter {
    out: BufWriter<File>,
    tmp: PathBuf,
    dest: PathBuf,
    ts: String,
    written: u64,
    peek_buf: Vec<u8>,
    peek: Option<Result<DatasetUids, usize>>,
}

/// A file name for a UID: only digits and dots are kept (others become `_`).
pub fn file_name_for(uid: &str) -> String {
    let mut s: String = uid
        .chars()
        .map(|c| {
            if c.is_ascii_digit() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s.push_str(".dcm");
    s
}

impl InstanceWriter {
    /// Creates the temporary file in `dir` and writes the File Meta to it. The final name
    /// is `dir/<SOP Instance UID>.dcm`.
    pub fn create(dir: &Path, meta: &FileMeta<'_>) -> io::Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".xenrad-{}-{n}.part", std::process::id()));
        let file = File::create(&tmp)?;
        // 64 KiB: small PDVs are coalesced, large ones (≥ 64 KiB) bypass the buffer (no memcpy).
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        let res = out.write_all(&encode_file_meta(meta));
        let w = Self {
            out,
            tmp,
            dest: dir.join(file_name_for(meta.sop_instance_uid)),
            ts: meta.transfer_syntax.to_string(),
            written: 0,
            peek_buf: Vec::new(),
            peek: None,
        };
        match res {
            Ok(()) => Ok(w),
            Err(e) => {
                w.abandon();
                Err(e)
            }
        }
    }

    /// Appends one data set fragment; the first fragment is scanned in place for the UIDs.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.peek.is_none() {
            if self.peek_buf.is_empty() {
                self.scan(data, false);
                if self.peek.is_none() {
                    self.peek_buf
                        .extend_from_slice(&data[..data.len().min(PEEK_LIMIT)]);
                }
            } else {
                let room = PEEK_LIMIT - self.peek_buf.len().min(PEEK_LIMIT);
                self.peek_buf
                    .extend_from_slice(&data[..data.len().min(room)]);
                let buf = std::mem::take(&mut self.peek_buf);
                self.scan(&buf, false);
                if self.peek.is_none() && buf.len() >= PEEK_LIMIT {
                    // Too far in without reaching the UIDs: give up peeking.
                    self.peek = Some(Ok(DatasetUids::default()));
                }
                self.peek_buf = buf;
            }
        }
        self.written += data.len() as u64;
        self.out.write_all(data)
    }

    fn scan(&mut self, data: &[u8], complete: bool) {
        match peek_uids(data, &self.ts, complete) {
            PeekOutcome::Done(u) => {
                self.peek = Some(Ok(DatasetUids {
                    sop_class_uid: u.sop_class_uid.map(str::to_string),
                    sop_instance_uid: u.sop_instance_uid.map(str::to_string),
                    study_instance_uid: u.study_instance_uid.map(str::to_string),
                }));
                self.peek_buf = Vec::new();
            }
            PeekOutcome::Unsupported => self.peek = Some(Ok(DatasetUids::default())),
            PeekOutcome::Invalid(at) => self.peek = Some(Err(at)),
            PeekOutcome::NeedMore => {}
        }
    }

    /// Data set bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The UIDs peeked from the data set: `Err(offset)` if its start is not a readable
    /// data set in the negotiated transfer syntax.
    pub fn uids(&mut self) -> Result<DatasetUids, usize> {
        if self.peek.is_none() {
            let buf = std::mem::take(&mut self.peek_buf);
            self.scan(&buf, true);
        }
        self.peek.clone().unwrap_or(Ok(DatasetUids::default()))
    }

    /// Flushes, fsyncs (per policy) and renames into place; returns the final path.
    pub fn finish(self, fsync: FsyncPolicy) -> io::Result<PathBuf> {
        let Self { out, tmp, dest, .. } = self;
        let res = (|| {
            let file = out
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error)?;
            if fsync == FsyncPolicy::Durable {
                file.sync_data()?;
            }
            drop(file);
            fs::rename(&tmp, &dest)?;
            if fsync == FsyncPolicy::Durable
                && let Some(dir) = dest.parent()
            {
                File::open(dir)?.sync_all()?;
            }
            Ok(dest)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    /// Drops the temporary file.
    pub fn abandon(self) {
        let Self { out, tmp, .. } = self;
        drop(out.into_parts());
        let _ = fs::remove_file(&tmp);
    }
}
