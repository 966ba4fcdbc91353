//! The gateway's durable embedded store: SQLite in WAL mode with group commit.
//!
//! Every write goes through one writer thread. It takes the first waiting job, then
//! every job that queued behind it (up to [`MAX_BATCH`]), runs each inside its own
//! savepoint of one transaction and commits once; `synchronous = FULL` makes that
//! commit durable (the WAL is fsynced) before any caller is answered. So an
//! acknowledgement always follows durable storage, and many concurrent ingests
//! share one fsync instead of paying one each.
//!
//! Reads use a small pool of separate connections (WAL readers never block the
//! writer). The schema is plain, portable SQL so that a PostgreSQL implementation of
//! the same operations can follow.

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Most jobs committed in one transaction.
pub const MAX_BATCH: usize = 256;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread is gone (shutdown or a crash).
    #[error("store writer is not running")]
    Closed,
    /// A job failed with its own error.
    #[error("{0}")]
    Job(String),
}

type Job = Box<dyn FnOnce(&Transaction<'_>) -> Result<(), StoreError> + Send>;
/// Called with the job's result once its transaction is committed (or failed).
type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Batch = (Job, Done);

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Batch>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: Arc<PathBuf>,
    writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS messages (
    protocol     TEXT NOT NULL,
    sender       TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    message_type TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    body         BLOB NOT NULL,
    PRIMARY KEY (protocol, sender, message_id)
);
CREATE TABLE IF NOT EXISTS resources (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    version       INTEGER NOT NULL,
    last_updated  TEXT NOT NULL,
    json          TEXT NOT NULL,
    PRIMARY KEY (resource_type, id)
);
CREATE TABLE IF NOT EXISTS search_index (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    system        TEXT NOT NULL,
    value         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS search_index_lookup ON search_index (resource_type, param, value);
CREATE INDEX IF NOT EXISTS search_index_owner ON search_index (resource_type, id);
CREATE TABLE IF NOT EXISTS mpps (
    uid        TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    state      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid    TEXT NOT NULL,
    study_uid        TEXT NOT NULL,
    series_uid       TEXT NOT NULL,
    transfer_syntax  TEXT NOT NULL,
    path             TEXT NOT NULL,
    size             INTEGER NOT NULL,
    calling_ae       TEXT NOT NULL,
    received_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_study ON instances (study_uid);
CREATE TABLE IF NOT EXISTS instance_modality (
    series_uid TEXT PRIMARY KEY,
    modality   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is fsynced at every commit, so a commit is durable when it returns.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database `xenrad.sqlite3` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Job(format!("{}: {e}", dir.display())))?;
        let path = dir.join("xenrad.sqlite3");
        let conn = open(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch(SCHEMA)?;
        let (tx, rx) = mpsc::channel::<Batch>();
        let writer = std::thread::Builder::new()
            .name("xenrad-store-writer".into())
            .spawn(move || writer_loop(conn, &rx))
            .map_err(|e| StoreError::Job(e.to_string()))?;
        Ok(Store {
            tx,
            readers: Arc::new(Mutex::new(Vec::new())),
            path: Arc::new(path),
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }

    /// Runs `f` in the next group-committed transaction and returns its value once
    /// the transaction is durably committed. If `f` fails, only its own savepoint is
    /// rolled back.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel();
        let slot = self.submit(
            f,
            Box::new(move |r| {
                let _ = done_tx.send(r);
            }),
        )?;
        done_rx.await.map_err(|_| StoreError::Closed)??;
        let v = slot.lock().expect("slot").take();
        v.ok_or(StoreError::Closed)
    }

    /// [`Store::write`] for synchronous callers (e.g. the DIMSE handler, which runs
    /// on a blocking-capable thread): blocks until the transaction is committed.
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let slot = self.submit(
            f,
            Box::new(move |r| {
                let _ = done_tx.send(r);
            }),
        )?;
        done_rx.recv().map_err(|_| StoreError::Closed)??;
        let v = slot.lock().expect("slot").take();
        v.ok_or(StoreError::Closed)
    }

    #[allow(clippy::type_complexity)]
    fn submit<T, F>(&self, f: F, done: Done) -> Result<Arc<Mutex<Option<T>>>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let job: Job = Box::new(move |tx| {
            let v = f(tx)?;
            *out.lock().expect("slot") = Some(v);
            Ok(())
        });
        self.tx.send((job, done)).map_err(|_| StoreError::Closed)?;
        Ok(slot)
    }

    /// Runs a read-only query on a pooled reader connection (off the async runtime).
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.lock().expect("pool").pop();
            let conn = match conn {
                Some(c) => c,
                None => open(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?,
            };
            let r = f(&conn);
            let mut pool = readers.lock().expect("pool");
            if pool.len() < 8 {
                pool.push(conn);
            }
            r
        })
        .await
        .map_err(|e| StoreError::Job(e.to_string()))?
    }

    /// Reads a setting.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read(move |c| {
            Ok(
                c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
        .await
    }

    /// Stops the writer after the jobs already queued are committed.
    pub fn close(&self) {
        // The writer exits when every sender is dropped; dropping ours is not enough
        // while clones live, so send a sentinel job that ends the loop.
        let stop: Job = Box::new(|_| Err(StoreError::Closed));
        let _ = self.tx.send((stop, Box::new(drop)));
        if let Some(h) = self.writer.lock().expect("writer").take() {
            let _ = h.join();
        }
    }
}

fn writer_loop(mut conn: Connection, rx: &mpsc::Receiver<Batch>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(b) => batch.push(b),
                Err(_) => break,
            }
        }
        let mut stop = false;
        let tx = match conn.transaction() {
            Ok(t) => t,
            Err(e) => {
                let msg = e.to_string();
                for (_, done) in batch {
                    done(Err(StoreError::Job(msg.clone())));
                }
                continue;
            }
        };
        let mut results = Vec::with_capacity(batch.len());
        for (job, done) in batch {
            let r = run_in_savepoint(&tx, job);
            if matches!(r, Err(StoreError::Closed)) {
                stop = true;
            }
            results.push((done, r));
        }
        match tx.commit() {
            Ok(()) => {
                for (done, r) in results {
                    done(r);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (done, _) in results {
                    done(Err(StoreError::Job(format!("commit failed: {msg}"))));
                }
            }
        }
        if stop {
            break;
        }
    }
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
}

fn run_in_savepoint(tx: &Transaction<'_>, job: Job) -> Result<(), StoreError> {
    tx.execute_batch("SAVEPOINT job")?;
    match job(tx) {
        Ok(()) => {
            tx.execute_batch("RELEASE job")?;
            Ok(())
        }
        Err(e) => {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}

/// Now as an RFC 3339 timestamp (UTC), the format every table uses.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Records a message once: returns `true` when it is new, `false` for a repeat of
/// the same (protocol, sender, message id).
pub fn record_message(
    tx: &Transaction<'_>,
    protocol: &str,
    sender: &str,
    message_id: &str,
    message_type: &str,
    body: &[u8],
) -> Result<bool, StoreError> {
    let n = tx.execute(
        "INSERT INTO messages (protocol, sender, message_id, message_type, received_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        params![protocol, sender, message_id, message_type, now(), body],
    )?;
    Ok(n == 1)
}

/// Counts stored messages of one protocol (tests and metrics).
pub fn count_messages(conn: &Connection, protocol: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM messages WHERE protocol = ?1",
        [protocol],
        |r| r.get(0),
    )?)
}
