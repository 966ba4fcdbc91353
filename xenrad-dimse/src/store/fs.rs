//! The file adapter of [`StorageSink`] (feature `fs`): every instance is written as a Part 10
//! file (File Meta from the command, then the data set as it streams in) to a temporary file
//! in the storage directory and, on commit, made durable and renamed atomically to
//! `<dir>/<SOP Instance UID>.dcm` (a duplicate SOP Instance UID replaces the old file
//! atomically).
//!
//! Durability before `commit` returns, by [`FsyncPolicy`]:
//! - [`FsyncPolicy::Journal`] (the default, Linux): the bytes are also streamed into a lane of
//!   the storage directory's write-ahead [`journal`](crate::store::journal); commit makes the
//!   record durable with one `fdatasync` of the lane and renames the file into place, which a
//!   background checkpoint makes durable later (recovery replays the journal after a crash).
//!   An instance larger than [`FileSink::journal_max_instance`], or one that finds no free
//!   lane, is stored as with `Durable`; when an older record of its name is still in the
//!   journal, a checkpoint (which retires it) takes the place of the directory fsync.
//! - [`FsyncPolicy::Durable`]: `fdatasync(tmp)` → `rename(tmp, final)` → `fsync(dir)`. The
//!   directory fsync is shared: when several associations commit at once, one fsync that
//!   started after all their renames serves them all (group commit).
//! - [`FsyncPolicy::None`]: page cache only.
//!
//! While an instance stored per file streams in, its written pages are handed to the
//! kernel's writeback early (`posix_fadvise(DONTNEED)` every [`FileSink::writeback_every`]
//! bytes, Linux), so the final `fdatasync` has little left to do.

#[cfg(target_os = "linux")]
use super::journal::{Journal, JournalOptions, JournalWriter, Recovery};
use super::meta::encode_file_meta;
use super::sink::{InstanceSink, InstanceStart, StorageSink};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Name prefix of temporary files: `<prefix><pid>-<n>.part` while an instance is received
/// (the journal's recovery removes a dead process's), `<prefix>recover-<n>.part` in recovery.
pub(crate) const TEMP_PREFIX: &str = ".xenrad-";

/// When data is forced to disk before a C-STORE is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Durable through the write-ahead journal: one `fdatasync` of a preallocated lane per
    /// instance (default; on other systems than Linux the same as `Durable`).
    #[default]
    Journal,
    /// fdatasync the file before the rename and fsync the directory after it.
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

/// The journal of a sink, opened at the first instance unless [`FileSink::open`] opened it.
#[derive(Debug, Default)]
struct JournalSlot {
    #[cfg(target_os = "linux")]
    opts: JournalOptions,
    #[cfg(target_os = "linux")]
    cell: OnceLock<Journal>,
    #[cfg(target_os = "linux")]
    init: Mutex<()>,
}

#[cfg(target_os = "linux")]
impl JournalSlot {
    fn get(&self, dir: &Path) -> io::Result<&Journal> {
        if let Some(j) = self.cell.get() {
            return Ok(j);
        }
        let _g = self.init.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(j) = self.cell.get() {
            return Ok(j);
        }
        let (j, _) = Journal::open(dir, self.opts)?;
        Ok(self.cell.get_or_init(|| j))
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
    journal_max_instance: u64,
    dirsync: Arc<super::group::GroupRun>,
    journal: Arc<JournalSlot>,
}

impl FileSink {
    /// A sink into `dir` (which must exist) with the journal policy (the journal is opened,
    /// and a crashed run's journal replayed, when the first instance arrives; see
    /// [`FileSink::open`]), 64 KiB write buffer, early writeback every 1 MiB, instances up
    /// to 2 MiB journaled.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Arc::from(dir.into()),
            fsync: FsyncPolicy::Journal,
            buffer: 64 * 1024,
            writeback_every: 1 << 20,
            journal_max_instance: 2 << 20,
            dirsync: Arc::default(),
            journal: Arc::default(),
        }
    }

    /// [`FileSink::new`], opening the journal now: what a crash left in it is written back
    /// before this returns (reported in [`Recovery`]). Fails when the directory is not
    /// usable or another process has its journal open.
    #[cfg(target_os = "linux")]
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<(Self, Recovery)> {
        Self::open_with(dir, JournalOptions::default())
    }

    /// [`FileSink::open`] with journal sizes of your choice.
    #[cfg(target_os = "linux")]
    pub fn open_with(
        dir: impl Into<PathBuf>,
        opts: JournalOptions,
    ) -> io::Result<(Self, Recovery)> {
        let mut sink = Self::new(dir);
        let (j, recovery) = Journal::open(&sink.dir, opts)?;
        sink.journal = Arc::new(JournalSlot {
            opts,
            cell: OnceLock::from(j),
            init: Mutex::new(()),
        });
        Ok((sink, recovery))
    }

    /// Journal sizes for a journal this sink opens itself (at its first instance); no
    /// effect once it is open.
    #[cfg(target_os = "linux")]
    #[must_use]
    pub fn with_journal_options(mut self, opts: JournalOptions) -> Self {
        if self.journal.cell.get().is_none() {
            self.journal = Arc::new(JournalSlot {
                opts,
                cell: OnceLock::new(),
                init: Mutex::new(()),
            });
        }
        self
    }

    /// The journal (opened now if it was not yet), e.g. for its counters.
    #[cfg(target_os = "linux")]
    pub fn journal(&self) -> io::Result<Journal> {
        self.journal.get(&self.dir).cloned()
    }

    /// Instances larger than this are stored per file rather than journaled (default 2 MiB:
    /// the journal saves ~0.25 ms of metadata writes per instance but writes the bytes
    /// twice, which costs more than that from a few MiB on; a lane must also have room).
    #[must_use]
    pub fn with_journal_max_instance(mut self, bytes: u64) -> Self {
        self.journal_max_instance = bytes;
        self
    }

    /// See [`FileSink::with_journal_max_instance`].
    pub fn journal_max_instance(&self) -> u64 {
        self.journal_max_instance
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
        self.fsync != FsyncPolicy::None
    }
}

/// One instance being written by [`FileSink`].
#[derive(Debug)]
struct FileInstance {
    sink: FileSink,
    out: BufWriter<File>,
    /// The journal record being streamed (journal policy, until the instance outgrows it).
    #[cfg(target_os = "linux")]
    journal: Option<JournalWriter>,
    tmp: PathBuf,
    dest: PathBuf,
    /// Bytes written to the file (after the buffer) and the offset up to which writeback
    /// was started.
    flushed_mark: u64,
    written: u64,
}

impl FileInstance {
    fn create(sink: &FileSink, start: &InstanceStart<'_>) -> io::Result<Self> {
        let name = file_name_for(start.meta.sop_instance_uid);
        let meta = encode_file_meta(&start.meta);
        // The journal first: opening it (at the first instance) clears stray temp files.
        #[cfg(target_os = "linux")]
        let journal = match sink.fsync {
            FsyncPolicy::Journal => {
                let mut w = sink.journal.get(&sink.dir)?.begin(&name);
                if let Some(w) = &mut w {
                    w.append(&meta)?;
                }
                w
            }
            _ => None,
        };
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = sink
            .dir
            .join(format!("{TEMP_PREFIX}{}-{n}.part", std::process::id()));
        let file = File::create(&tmp)?;
        let mut out = BufWriter::with_capacity(sink.buffer, file);
        let written = meta.len() as u64;
        if let Err(e) = out.write_all(&meta) {
            drop(out.into_parts());
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(Self {
            sink: sink.clone(),
            dest: sink.dir.join(name),
            out,
            #[cfg(target_os = "linux")]
            journal,
            tmp,
            flushed_mark: 0,
            written,
        })
    }

    /// True while the instance goes through the journal.
    fn journaled(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.journal.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    fn start_writeback(&mut self) {
        let every = self.sink.writeback_every;
        if every == 0 || self.sink.fsync == FsyncPolicy::None || self.journaled() {
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
        #[cfg(target_os = "linux")]
        if let Some(j) = &mut self.journal
            && (self.written > self.sink.journal_max_instance || j.append(chunk).is_err())
        {
            // Too large for the journal (or its lane is full): stored per file from here on.
            self.journal = None;
        }
        self.start_writeback();
        Ok(())
    }

    fn commit(self: Box<Self>) -> io::Result<PathBuf> {
        let Self {
            sink,
            out,
            tmp,
            dest,
            #[cfg(target_os = "linux")]
            journal,
            ..
        } = *self;
        let res = (|| {
            let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            #[cfg(target_os = "linux")]
            if let Some(j) = journal {
                // Durable once the record is; the renamed file is synced by a checkpoint.
                let committed = j.commit()?;
                drop(file);
                fs::rename(&tmp, &dest)?;
                drop(committed);
                return Ok(dest);
            }
            if sink.fsync == FsyncPolicy::None {
                drop(file);
                fs::rename(&tmp, &dest)?;
                return Ok(dest);
            }
            file.sync_data()?;
            drop(file);
            fs::rename(&tmp, &dest)?;
            #[cfg(target_os = "linux")]
            if sink.fsync == FsyncPolicy::Journal {
                let j = sink.journal.get(&sink.dir)?;
                if let Some(name) = dest.file_name().and_then(|n| n.to_str())
                    && j.holds(name)
                {
                    // An older journaled copy of this name would be replayed over this
                    // file after a crash: retire it (the checkpoint's syncfs also makes
                    // the directory entry durable).
                    return j.checkpoint().map(|()| dest);
                }
            }
            let dir = &sink.dir;
            sink.dirsync
                .run(|| File::open(dir).and_then(|d| d.sync_all()))?;
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
