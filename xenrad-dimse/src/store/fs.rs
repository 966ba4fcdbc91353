//! The file adapter of [`StorageSink`] (feature `fs`): every instance is written as a Part 10
//! file (File Meta from the command, then the data set as it streams in) to a temporary file
//! in the storage directory and, on commit, made durable and renamed atomically to
//! `<dir>/<SOP Instance UID>.dcm` (a duplicate SOP Instance UID replaces the old file
//! atomically).
//!
//! Durability ([`FsyncPolicy::Durable`], the default) before `commit` returns:
//! `fdatasync(tmp)` → `rename(tmp, final)` → `fsync(dir)`. The directory fsync is shared:
//! when several associations commit at once, one fsync that started after all their renames
//! serves them all (group commit). While a large instance streams in, its written pages are
//! handed to the kernel's writeback early (`posix_fadvise(DONTNEED)` every
//! [`FileSink::writeback_every`] bytes, Linux), so the final `fdatasync` has little left to do.

use super::meta::encode_file_meta;
use super::sink::{InstanceSink, InstanceStart, StorageSink};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// When data is forced to disk before a C-STORE is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// fdatasync the file before the rename and fsync the directory after it (default).
    #[default]
    Durable,
    /// Rely on the page cache (faster; an OS crash can lose acknowledged instances).
    None,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

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

/// Group commit of directory fsyncs: a caller whose rename is done waits for an fsync of
/// the directory that *started* after its rename; one running fsync serves every caller
/// that arrived before it started.
#[derive(Debug, Default)]
struct DirSync {
    state: Mutex<DirSyncState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct DirSyncState {
    /// Next ticket to hand out (tickets are taken after the rename).
    next: u64,
    /// Every ticket below this is covered by a completed fsync.
    covered: u64,
    running: bool,
}

impl DirSync {
    fn sync(&self, dir: &Path) -> io::Result<()> {
        let mut g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let ticket = g.next;
        g.next += 1;
        loop {
            if g.covered > ticket {
                return Ok(());
            }
            if g.running {
                g = self.cv.wait(g).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            g.running = true;
            let start = g.next;
            drop(g);
            // Opened each time (cheap): a directory replaced while serving is still synced.
            let r = File::open(dir).and_then(|d| d.sync_all());
            g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            g.running = false;
            if r.is_ok() {
                g.covered = g.covered.max(start);
            }
            self.cv.notify_all();
            // On failure the waiters try again themselves; this caller reports it.
            return r;
        }
    }
}

/// The file sink: see the module documentation.
///
/// ```no_run
/// use std::sync::Arc;
/// use xenrad_dimse::scp::ScpConfig;
/// use xenrad_dimse::store::{FileSink, FsyncPolicy};
/// let sink = FileSink::new("/var/lib/xenrad/incoming").with_fsync(FsyncPolicy::Durable);
/// let cfg = ScpConfig::with_sink(Arc::new(sink));
/// # let _ = cfg;
/// ```
#[derive(Debug, Clone)]
pub struct FileSink {
    dir: Arc<Path>,
    fsync: FsyncPolicy,
    buffer: usize,
    writeback_every: u64,
    dirsync: Arc<DirSync>,
}

impl FileSink {
    /// A durable sink into `dir` (which must exist), 64 KiB write buffer, early writeback
    /// every 1 MiB.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Arc::from(dir.into()),
            fsync: FsyncPolicy::Durable,
            buffer: 64 * 1024,
            writeback_every: 1 << 20,
            dirsync: Arc::default(),
        }
    }

    /// Sets the fsync policy.
    #[must_use]
    pub fn with_fsync(mut self, fsync: FsyncPolicy) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets the write buffer per instance (fragments at least this large bypass it).
    #[must_use]
    pub fn with_buffer(mut self, bytes: usize) -> Self {
        self.buffer = bytes.max(4096);
        self
    }

    /// Starts kernel writeback of an instance's pages every `bytes` written (0: never);
    /// only with [`FsyncPolicy::Durable`].
    #[must_use]
    pub fn with_writeback_every(mut self, bytes: u64) -> Self {
        self.writeback_every = bytes;
        self
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The fsync policy.
    pub fn fsync(&self) -> FsyncPolicy {
        self.fsync
    }

    /// Early writeback interval in bytes (0: off).
    pub fn writeback_every(&self) -> u64 {
        self.writeback_every
    }
}

impl StorageSink for FileSink {
    fn begin(&self, start: &InstanceStart<'_>) -> io::Result<Box<dyn InstanceSink>> {
        FileInstance::create(self, start).map(|f| Box::new(f) as Box<dyn InstanceSink>)
    }
    fn may_block(&self) -> bool {
        self.fsync == FsyncPolicy::Durable
    }
}

/// One instance being written by [`FileSink`].
#[derive(Debug)]
struct FileInstance {
    dir: Arc<Path>,
    dirsync: Arc<DirSync>,
    fsync: FsyncPolicy,
    writeback_every: u64,
    out: BufWriter<File>,
    tmp: PathBuf,
    dest: PathBuf,
    /// Bytes written to the file (after the buffer) and the offset up to which writeback
    /// was started.
    flushed_mark: u64,
    written: u64,
}

impl FileInstance {
    fn create(sink: &FileSink, start: &InstanceStart<'_>) -> io::Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = sink
            .dir
            .join(format!(".xenrad-{}-{n}.part", std::process::id()));
        let file = File::create(&tmp)?;
        let mut out = BufWriter::with_capacity(sink.buffer, file);
        let meta = encode_file_meta(&start.meta);
        let written = meta.len() as u64;
        if let Err(e) = out.write_all(&meta) {
            drop(out.into_parts());
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let dest = sink.dir.join(file_name_for(start.meta.sop_instance_uid));
        Ok(Self {
            dir: sink.dir.clone(),
            dirsync: sink.dirsync.clone(),
            fsync: sink.fsync,
            writeback_every: sink.writeback_every,
            out,
            tmp,
            dest,
            flushed_mark: 0,
            written,
        })
    }

    fn start_writeback(&mut self) {
        let every = self.writeback_every;
        if every == 0 || self.fsync != FsyncPolicy::Durable {
            return;
        }
        // Only what left the buffer is in the page cache.
        let in_file = self.written - self.out.buffer().len() as u64;
        if in_file - self.flushed_mark >= every {
            #[cfg(target_os = "linux")]
            {
                use std::num::NonZeroU64;
                let len = NonZeroU64::new(in_file - self.flushed_mark);
                // DONTNEED starts asynchronous writeback of the dirty range (and drops
                // pages already clean); errors only lose the head start.
                let _ = rustix::fs::fadvise(
                    self.out.get_ref(),
                    self.flushed_mark,
                    len,
                    rustix::fs::Advice::DontNeed,
                );
            }
            self.flushed_mark = in_file;
        }
    }
}

impl InstanceSink for FileInstance {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.out.write_all(chunk)?;
        self.written += chunk.len() as u64;
        self.start_writeback();
        Ok(())
    }

    fn commit(self: Box<Self>) -> io::Result<PathBuf> {
        let Self {
            dir,
            dirsync,
            fsync,
            out,
            tmp,
            dest,
            ..
        } = *self;
        let durable = fsync == FsyncPolicy::Durable;
        let res = (|| {
            let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            if durable {
                file.sync_data()?;
            }
            drop(file);
            fs::rename(&tmp, &dest)?;
            if durable {
                dirsync.sync(&dir)?;
            }
            Ok(dest)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    fn abort(self: Box<Self>) {
        let Self { out, tmp, .. } = *self;
        drop(out.into_parts());
        let _ = fs::remove_file(&tmp);
    }
}
