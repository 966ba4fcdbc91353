//! The PostgreSQL backend: the same traits as [`super::sqlite`], for a fleet of gateways
//! sharing one database (`--database postgres://…` or `XENRAD_DATABASE_URL`).
//!
//! # Driver and pool
//! `tokio-postgres`, driven synchronously. The store traits are synchronous
//! ([`ReadTx`]/[`WriteTx`] methods return values, jobs are closures run on a writer thread or
//! on the caller's thread), so an async pool (deadpool-postgres) or sqlx would have to be
//! bridged back to blocking calls anyway. The synchronous `postgres` crate does that bridge
//! with its own current-thread runtime per connection and `Runtime::block_on`, which panics
//! when called on a tokio worker thread, where some store calls run (the query/retrieve
//! index is loaded from `run`, an async function). So this backend keeps one small runtime
//! of its own that only drives the connections' sockets, and waits for each query's future
//! with a thread-parking [`block_on`]: the client side of tokio-postgres is channels only,
//! so it may be polled from any thread, inside a runtime or not. The pool is the same as
//! the SQLite backend's readers: a mutex over idle connections, closed ones dropped.
//!
//! # Semantics kept from the SQLite backend
//! - One writer thread per node takes every queued job (up to [`MAX_BATCH`]), runs each in
//!   its own savepoint of one transaction and commits once; `synchronous_commit = on` makes
//!   the commit return only after its WAL record is flushed, and only then are the jobs'
//!   `done` callbacks (the acknowledgements) called. A failed job rolls back to its savepoint.
//! - Idempotent ingest through unique keys and `ON CONFLICT`: under READ COMMITTED an
//!   `INSERT … ON CONFLICT DO NOTHING` racing the same key in another node's open
//!   transaction waits for it, then does nothing once it commits, so a duplicate delivered
//!   to two nodes at once is stored once and both are acknowledged after the one row is
//!   durable.
//! - Read-merge-write of a resource: inside a write transaction [`ReadTx::resource`] first
//!   takes a transaction-scoped advisory lock on the resource's type and id, so two nodes
//!   updating the same resource take turns and the second reads what the first committed
//!   (READ COMMITTED takes a new snapshot per statement).
//! - MPPS compare-and-set: `UPDATE … WHERE version = expected` re-checks the condition on
//!   the latest committed row version when it waited for another node's update, so exactly
//!   one of two concurrent N-SETs wins.
//! - A deadlock between two nodes' batches (each holds a key the other's next job wants)
//!   is broken by PostgreSQL after `deadlock_timeout`: the victim's statement fails, its job
//!   rolls back to its savepoint and is answered with an error (the sender retries; jobs are
//!   `FnOnce`, so the backend cannot re-run them itself). Every other job of the batch commits.
//! - Reads run in `REPEATABLE READ READ ONLY` transactions: one snapshot per read job.
//! - Schema migrations run at start inside one transaction holding an advisory lock, so
//!   several nodes starting at once apply each migration exactly once.
//!
//! Text columns use the `"C"` collation: byte order, as SQLite compares, whatever the
//! cluster's locale, and prefix `LIKE` can use the b-tree indexes.

use super::worklist::WorklistFilter;
use super::{
    Backend, Current, Done, HistoryEntry, HistoryQuery, HistoryScope, InstanceRow, LogBounds,
    LogQuery, MessageLogEntry, MppsRow, Page, QueryRow, ReadJob, ReadTx, StoreError,
    StoredResource, WorklistRow, WriteJob, WriteTx, now,
};
use crate::search::{Cond, Criterion, IndexEntry, Query};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};
use xenrad_fhir_model::search::Prefix;

/// PostgreSQL's errors; a full disk (SQLSTATE 53100 disk_full) is [`StoreError::Full`].
impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&SqlState::DISK_FULL) {
            StoreError::Full(e.to_string())
        } else {
            // `Display` of a server error is only its severity; the detail has the text.
            match e.as_db_error() {
                Some(db) => StoreError::Database(format!(
                    "{} ({}): {}",
                    db.severity(),
                    db.code().code(),
                    db.message()
                )),
                None => StoreError::Database(e.to_string()),
            }
        }
    }
}

/// Most jobs committed in one transaction (as the SQLite backend).
pub const MAX_BATCH: usize = 256;

/// Idle reader connections kept.
const MAX_IDLE_READERS: usize = 8;

/// Key of the advisory lock held while migrating (`xenrad` in ASCII).
const MIGRATION_LOCK: i64 = 0x7865_6e72_6164;

type Batch = (WriteJob, Done);

/// Wakes a parked thread.
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the calling thread, parking it while the future waits.
/// Used only for futures that need no runtime of their own (tokio-postgres client calls
/// and join handles of tasks on the backend's runtime), so it works on any thread.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// One connection and its prepared statements.
struct Conn {
    client: Client,
    statements: RefCell<HashMap<&'static str, Statement>>,
}

impl Conn {
    fn statement(&self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = block_on(self.client.prepare(sql))?;
        self.statements.borrow_mut().insert(sql, s.clone());
        Ok(s)
    }

    fn query(
        &self,
        sql: &'static str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let s = self.statement(sql)?;
        Ok(block_on(self.client.query(&s, args))?)
    }

    fn opt(
        &self,
        sql: &'static str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let s = self.statement(sql)?;
        Ok(block_on(self.client.query_opt(&s, args))?)
    }

    fn exec(&self, sql: &'static str, args: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let s = self.statement(sql)?;
        Ok(block_on(self.client.execute(&s, args))?)
    }

    fn batch(&self, sql: &str) -> Result<(), StoreError> {
        Ok(block_on(self.client.batch_execute(sql))?)
    }
}

/// Opens connections on the backend's runtime.
#[derive(Clone)]
struct Connector {
    config: tokio_postgres::Config,
    runtime: tokio::runtime::Handle,
}

impl Connector {
    fn connect(&self) -> Result<Conn, StoreError> {
        let config = self.config.clone();
        let task = self.runtime.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "PostgreSQL connection closed");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = block_on(task).map_err(|e| StoreError::Database(e.to_string()))??;
        let conn = Conn {
            client,
            statements: RefCell::new(HashMap::new()),
        };
        // Acknowledgements follow durable commits whatever the server's default is.
        conn.batch(
            "SET synchronous_commit = on; SET default_transaction_isolation = 'read committed'; SET client_min_messages = warning",
        )?;
        Ok(conn)
    }
}

/// The PostgreSQL backend (one writer thread with group commit, a small pool of reader
/// connections).
pub struct PostgresBackend {
    connector: Connector,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    readers: Mutex<Vec<Conn>>,
    tx: Mutex<Option<mpsc::Sender<Batch>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The schema, one entry per migration (applied in order, each once).
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE messages (
    protocol     TEXT COLLATE "C" NOT NULL,
    sender       TEXT COLLATE "C" NOT NULL,
    message_id   TEXT COLLATE "C" NOT NULL,
    message_type TEXT COLLATE "C" NOT NULL,
    received_at  TEXT COLLATE "C" NOT NULL,
    body         BYTEA NOT NULL,
    PRIMARY KEY (protocol, sender, message_id)
);
CREATE TABLE resources (
    resource_type TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    version       BIGINT NOT NULL,
    last_updated  TEXT COLLATE "C" NOT NULL,
    body          TEXT NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (resource_type, id)
);
CREATE INDEX resources_updated ON resources (resource_type, last_updated);
CREATE TABLE resource_versions (
    seq           BIGSERIAL PRIMARY KEY,
    resource_type TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    version       BIGINT NOT NULL,
    last_updated  TEXT COLLATE "C" NOT NULL,
    method        TEXT NOT NULL,
    body          TEXT,
    UNIQUE (resource_type, id, version)
);
CREATE INDEX resource_versions_type ON resource_versions (resource_type, seq);
CREATE TABLE search_index (
    resource_type TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    param         TEXT COLLATE "C" NOT NULL,
    system        TEXT COLLATE "C" NOT NULL,
    value         TEXT COLLATE "C" NOT NULL,
    low           TEXT COLLATE "C",
    high          TEXT COLLATE "C",
    num           DOUBLE PRECISION
);
CREATE INDEX search_index_lookup ON search_index (resource_type, param, value);
CREATE INDEX search_index_owner ON search_index (resource_type, id);
CREATE INDEX search_index_low ON search_index (resource_type, param, low) WHERE low IS NOT NULL;
CREATE INDEX search_index_high ON search_index (resource_type, param, high) WHERE high IS NOT NULL;
CREATE INDEX search_index_num ON search_index (resource_type, param, num) WHERE num IS NOT NULL;
CREATE TABLE mpps (
    uid        TEXT COLLATE "C" PRIMARY KEY,
    version    BIGINT NOT NULL,
    state      TEXT NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
CREATE TABLE instances (
    sop_instance_uid TEXT COLLATE "C" PRIMARY KEY,
    sop_class_uid    TEXT COLLATE "C" NOT NULL,
    study_uid        TEXT COLLATE "C" NOT NULL,
    series_uid       TEXT COLLATE "C" NOT NULL,
    transfer_syntax  TEXT COLLATE "C" NOT NULL,
    path             TEXT NOT NULL,
    size             BIGINT NOT NULL,
    calling_ae       TEXT NOT NULL,
    received_at      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX instances_study ON instances (study_uid);
CREATE INDEX instances_received ON instances (received_at);
CREATE TABLE qr_instances (
    sop_instance_uid TEXT COLLATE "C" PRIMARY KEY,
    patient_id       TEXT COLLATE "C" NOT NULL,
    study_uid        TEXT COLLATE "C" NOT NULL,
    series_uid       TEXT COLLATE "C" NOT NULL,
    header           BYTEA NOT NULL
);
CREATE INDEX qr_instances_study ON qr_instances (study_uid, series_uid);
CREATE TABLE worklist_items (
    step_key               TEXT COLLATE "C" PRIMARY KEY,
    accession              TEXT COLLATE "C" NOT NULL,
    accession_system       TEXT COLLATE "C" NOT NULL,
    requested_procedure_id TEXT COLLATE "C" NOT NULL,
    patient_id             TEXT COLLATE "C" NOT NULL,
    station_ae             TEXT COLLATE "C" NOT NULL,
    modality               TEXT COLLATE "C" NOT NULL,
    start_date             TEXT COLLATE "C" NOT NULL,
    status                 TEXT COLLATE "C" NOT NULL,
    study_uid              TEXT COLLATE "C" NOT NULL,
    listed                 INTEGER NOT NULL,
    placer                 TEXT COLLATE "C" NOT NULL,
    filler                 TEXT COLLATE "C" NOT NULL,
    attributes             BYTEA NOT NULL
);
CREATE INDEX worklist_accession ON worklist_items (accession);
CREATE INDEX worklist_patient ON worklist_items (patient_id);
CREATE INDEX worklist_procedure ON worklist_items (requested_procedure_id);
CREATE INDEX worklist_study ON worklist_items (study_uid);
CREATE INDEX worklist_station ON worklist_items (station_ae, start_date);
CREATE INDEX worklist_modality ON worklist_items (modality, start_date);
CREATE INDEX worklist_listed ON worklist_items (listed, start_date);
CREATE INDEX worklist_placer ON worklist_items (placer);
CREATE INDEX worklist_filler ON worklist_items (filler);
CREATE TABLE instance_modality (
    series_uid TEXT COLLATE "C" PRIMARY KEY,
    modality   TEXT NOT NULL
);
CREATE TABLE message_log (
    seq            BIGSERIAL PRIMARY KEY,
    received_at    TEXT COLLATE "C" NOT NULL,
    door           TEXT COLLATE "C" NOT NULL,
    protocol       TEXT COLLATE "C" NOT NULL,
    sender         TEXT COLLATE "C" NOT NULL,
    message_id     TEXT COLLATE "C" NOT NULL,
    message_type   TEXT COLLATE "C" NOT NULL,
    outcome        TEXT COLLATE "C" NOT NULL,
    error          TEXT NOT NULL,
    error_location TEXT NOT NULL,
    ack            BYTEA NOT NULL,
    body           BYTEA,
    reprocessed_as BIGINT
);
CREATE INDEX message_log_id ON message_log (message_id);
CREATE INDEX mpps_updated ON mpps (updated_at);
"#,
)];

/// Applies the pending migrations in one transaction under an advisory lock: a node that
/// starts while another migrates waits for it, then finds nothing left to do.
fn migrate(conn: &Conn) -> Result<(), StoreError> {
    conn.batch("BEGIN")?;
    let r = (|| {
        conn.exec("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        conn.batch("CREATE TABLE IF NOT EXISTS xenrad_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")?;
        let current: i32 = conn
            .opt("SELECT COALESCE(MAX(version), 0) FROM xenrad_schema", &[])?
            .map_or(Ok(0), |r| r.try_get(0))?;
        for (version, sql) in MIGRATIONS {
            if *version > current {
                conn.batch(sql)?;
                conn.exec(
                    "INSERT INTO xenrad_schema (version, applied_at) VALUES ($1, $2)",
                    &[version, &now()],
                )?;
            }
        }
        Ok(())
    })();
    match r {
        Ok(()) => conn.batch("COMMIT"),
        Err(e) => {
            let _ = conn.batch("ROLLBACK");
            Err(e)
        }
    }
}

impl PostgresBackend {
    /// Connects to `url` (`postgres://user@host:port/db`), migrates the schema and starts the
    /// writer thread. Fails when the database cannot be reached.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("database URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        // A peer that vanished without closing (a partition) is noticed in about a minute,
        // not after the kernel's two hours.
        config.keepalives(true);
        config.keepalives_idle(std::time::Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("xenrad-gateway");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("xenrad-pg-io")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Job(e.to_string()))?;
        let connector = Connector {
            config,
            runtime: runtime.handle().clone(),
        };
        let first = match connector.connect() {
            Ok(c) => c,
            Err(e) => {
                runtime.shutdown_background();
                return Err(e);
            }
        };
        if let Err(e) = migrate(&first) {
            runtime.shutdown_background();
            return Err(e);
        }
        let (tx, rx) = mpsc::channel::<Batch>();
        let wc = connector.clone();
        let writer = std::thread::Builder::new()
            .name("xenrad-store-writer".into())
            .spawn(move || writer_loop(&wc, Some(first), &rx))
            .map_err(|e| StoreError::Job(e.to_string()))?;
        Ok(PostgresBackend {
            connector,
            runtime: Mutex::new(Some(runtime)),
            readers: Mutex::new(Vec::new()),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }
}

impl Backend for PostgresBackend {
    fn submit(&self, job: WriteJob, done: Done) -> Result<(), StoreError> {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Closed)?;
        tx.send((job, done)).map_err(|_| StoreError::Closed)
    }

    fn read_blocking(&self, job: ReadJob<'_>) -> Result<(), StoreError> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) if !c.client.is_closed() => c,
            _ => self.connector.connect()?,
        };
        let r = conn
            .batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .and_then(|()| {
                let r = job(&PgTx {
                    conn: &conn,
                    write: false,
                });
                let end = conn.batch("ROLLBACK");
                r.and(end)
            });
        if !conn.client.is_closed() {
            let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
        }
        r
    }

    fn shared(&self) -> bool {
        true
    }

    fn close(&self) {
        // Dropping the sender ends the writer loop once the queued jobs are committed.
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        if let Some(h) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = h.join();
        }
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            // Never blocks, so closing from an async context is fine.
            rt.shutdown_background();
        }
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        self.close();
    }
}

fn fail_all(batch: Vec<Done>, e: &StoreError) {
    for done in batch {
        done(Err(match e {
            StoreError::Full(m) => StoreError::Full(m.clone()),
            other => StoreError::Database(other.to_string()),
        }));
    }
}

fn writer_loop(connector: &Connector, mut conn: Option<Conn>, rx: &mpsc::Receiver<Batch>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(b) => batch.push(b),
                Err(_) => break,
            }
        }
        if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            conn = None;
            match connector.connect() {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    // The database is unreachable: nothing is acknowledged; the next batch
                    // tries again, so the node recovers by itself when it returns.
                    fail_all(batch.into_iter().map(|(_, d)| d).collect(), &e);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_ref() else { continue };
        if let Err(e) = c.batch("BEGIN") {
            fail_all(batch.into_iter().map(|(_, d)| d).collect(), &e);
            continue;
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut broken = None;
        for (job, done) in batch {
            if broken.is_some() {
                results.push((
                    done,
                    Err(StoreError::Database("transaction aborted".into())),
                ));
                continue;
            }
            match run_in_savepoint(c, job) {
                Ok(r) => results.push((done, r)),
                Err(e) => {
                    results.push((done, Err(StoreError::Database(e.to_string()))));
                    broken = Some(e);
                }
            }
        }
        // synchronous_commit = on: COMMIT returns once the commit record is flushed, so the
        // callbacks below (which release the acknowledgements) follow durability. A COMMIT
        // that fails (or whose answer is lost with the connection) acknowledges nothing.
        let commit = match broken {
            Some(e) => {
                let _ = c.batch("ROLLBACK");
                Err(e)
            }
            None => c.batch("COMMIT"),
        };
        match commit {
            Ok(()) => {
                for (done, r) in results {
                    done(r);
                }
            }
            Err(e) => {
                let _ = c.batch("ROLLBACK");
                let e = match e {
                    StoreError::Full(m) => StoreError::Full(m),
                    other => StoreError::Database(format!("commit failed: {other}")),
                };
                fail_all(results.into_iter().map(|(d, _)| d).collect(), &e);
            }
        }
    }
}

/// Runs one job in its own savepoint. The outer `Err` is a failure of the transaction
/// itself (the savepoint could not be set or rolled back: the batch must be abandoned); the
/// inner result is the job's.
fn run_in_savepoint(c: &Conn, job: WriteJob) -> Result<Result<(), StoreError>, StoreError> {
    c.batch("SAVEPOINT job")?;
    let r = job(&PgTx {
        conn: c,
        write: true,
    });
    // A job that swallowed a statement error leaves the transaction aborted: RELEASE then
    // fails and the job is rolled back like a failed one.
    let r = match r {
        Ok(()) => match c.batch("RELEASE SAVEPOINT job") {
            Ok(()) => return Ok(Ok(())),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    c.batch("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")?;
    Ok(r)
}

/// [`ReadTx`]/[`WriteTx`] over one connection inside a transaction.
struct PgTx<'c> {
    conn: &'c Conn,
    /// A write transaction: reads of resources lock them for the read-merge-write.
    write: bool,
}

const INSTANCE_COLUMNS: &str = "sop_instance_uid, sop_class_uid, study_uid, series_uid, transfer_syntax, path, size, calling_ae";

/// An `instances` row from the first 8 columns of its `SELECT`.
fn instance_row(r: &Row) -> Result<InstanceRow, StoreError> {
    Ok(InstanceRow {
        sop_instance_uid: r.try_get(0)?,
        sop_class_uid: r.try_get(1)?,
        study_uid: r.try_get(2)?,
        series_uid: r.try_get(3)?,
        transfer_syntax: r.try_get(4)?,
        path: r.try_get(5)?,
        size: u64::try_from(r.try_get::<_, i64>(6)?).unwrap_or(0),
        calling_ae: r.try_get(7)?,
    })
}

/// An instance and its query row from the 12 columns of a joined `SELECT`.
fn joined_row(r: &Row) -> Result<(InstanceRow, QueryRow), StoreError> {
    let inst = instance_row(r)?;
    let q = QueryRow {
        sop_instance_uid: inst.sop_instance_uid.clone(),
        patient_id: r.try_get(8)?,
        study_uid: r.try_get(9)?,
        series_uid: r.try_get(10)?,
        header: r.try_get(11)?,
    };
    Ok((inst, q))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const JOINED: &str = "SELECT i.sop_instance_uid, i.sop_class_uid, i.study_uid, i.series_uid, i.transfer_syntax, i.path, i.size, i.calling_ae,
        q.patient_id, q.study_uid, q.series_uid, q.header
 FROM qr_instances q JOIN instances i ON i.sop_instance_uid = q.sop_instance_uid";

impl PgTx<'_> {
    /// Serialises read-merge-write of one resource across nodes (see module docs); released
    /// at commit or rollback. Ids of other types never share the key text.
    fn lock_resource(&self, resource_type: &str, id: &str) -> Result<(), StoreError> {
        self.conn.exec(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))",
            &[&resource_type, &id],
        )?;
        Ok(())
    }
}

impl ReadTx for PgTx<'_> {
    fn resource(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        if self.write {
            self.lock_resource(resource_type, id)?;
        }
        self.conn
            .opt(
                "SELECT version, last_updated, body FROM resources WHERE resource_type = $1 AND id = $2 AND deleted = 0",
                &[&resource_type, &id],
            )?
            .map(|r| {
                Ok(StoredResource {
                    version: r.try_get(0)?,
                    last_updated: r.try_get(1)?,
                    body: r.try_get(2)?,
                })
            })
            .transpose()
    }

    fn current(&self, resource_type: &str, id: &str) -> Result<Option<Current>, StoreError> {
        if self.write {
            self.lock_resource(resource_type, id)?;
        }
        self.conn
            .opt(
                "SELECT version, last_updated, body, deleted FROM resources WHERE resource_type = $1 AND id = $2",
                &[&resource_type, &id],
            )?
            .map(|r| {
                let (version, last_updated) = (r.try_get(0)?, r.try_get(1)?);
                Ok(if r.try_get::<_, i32>(3)? != 0 {
                    Current::Deleted {
                        version,
                        last_updated,
                    }
                } else {
                    Current::Live(StoredResource {
                        version,
                        last_updated,
                        body: r.try_get(2)?,
                    })
                })
            })
            .transpose()
    }

    fn version(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        self.conn
            .opt(
                "SELECT resource_type, id, version, last_updated, method, body FROM resource_versions
                 WHERE resource_type = $1 AND id = $2 AND version = $3",
                &[&resource_type, &id, &version],
            )?
            .map(|r| history_row(&r))
            .transpose()
    }

    fn history(
        &self,
        scope: HistoryScope<'_>,
        q: &HistoryQuery,
    ) -> Result<(usize, Vec<HistoryEntry>), StoreError> {
        let mut filter = String::from(" FROM resource_versions WHERE TRUE");
        let mut args: Args = Vec::new();
        match scope {
            HistoryScope::System => {}
            HistoryScope::Type(t) => {
                filter.push_str(" AND resource_type = ?");
                args.push(Box::new(t.to_owned()));
            }
            HistoryScope::Instance(t, id) => {
                filter.push_str(" AND resource_type = ? AND id = ?");
                args.push(Box::new(t.to_owned()));
                args.push(Box::new(id.to_owned()));
            }
        }
        if let Some(since) = &q.since {
            filter.push_str(" AND last_updated >= ?");
            args.push(Box::new(since.clone()));
        }
        if let Some(before) = &q.before {
            filter.push_str(" AND last_updated <= ?");
            args.push(Box::new(before.clone()));
        }
        let total: i64 = self
            .conn
            .dynamic(&format!("SELECT COUNT(*){filter}"), &args)?
            .first()
            .map_or(Ok(0), |r| r.try_get(0))?;
        args.push(Box::new(to_i64(q.count as u64)));
        args.push(Box::new(to_i64(q.offset as u64)));
        let rows = self
            .conn
            .dynamic(
                &format!(
                    "SELECT resource_type, id, version, last_updated, method, body{filter} ORDER BY seq DESC LIMIT ? OFFSET ?"
                ),
                &args,
            )?
            .iter()
            .map(history_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((usize::try_from(total).unwrap_or(0), rows))
    }

    fn references_from(
        &self,
        resource_type: &str,
        ids: &[String],
        params: &[&str],
    ) -> Result<Vec<(String, String)>, StoreError> {
        if ids.is_empty() || params.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<String> = params.iter().map(|p| (*p).to_owned()).collect();
        self.conn
            .query(
                "SELECT id, value FROM search_index WHERE resource_type = $1 AND id = ANY($2) AND param = ANY($3)",
                &[&resource_type, &ids, &params],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn referring(
        &self,
        source: &str,
        params: &[&str],
        targets: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if targets.is_empty() || params.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<String> = params.iter().map(|p| (*p).to_owned()).collect();
        self.conn
            .query(
                "SELECT DISTINCT id FROM search_index WHERE resource_type = $1 AND param = ANY($2) AND value = ANY($3) ORDER BY id",
                &[&source, &params, &targets],
            )?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }

    fn message_log(&self, q: &LogQuery) -> Result<(u64, Vec<MessageLogEntry>), StoreError> {
        let (cond, args) = log_filter(q);
        let args: Args = args
            .into_iter()
            .map(|a| Box::new(a) as Box<dyn ToSql + Sync + Send>)
            .collect();
        let total: i64 = self
            .conn
            .dynamic(
                &format!("SELECT COUNT(*) FROM message_log WHERE {cond}"),
                &args,
            )?
            .first()
            .map_or(Ok(0), |r| r.try_get(0))?;
        let rows = self
            .conn
            .dynamic(
                &format!(
                    "SELECT {LOG_COLUMNS}, NULL::bytea FROM message_log WHERE {cond} ORDER BY seq DESC LIMIT {} OFFSET {}",
                    q.limit.clamp(1, 1000),
                    q.offset
                ),
                &args,
            )?
            .iter()
            .map(log_entry)
            .collect::<Result<_, _>>()?;
        Ok((u64::try_from(total).unwrap_or(0), rows))
    }

    fn message_log_entry(&self, seq: i64) -> Result<Option<MessageLogEntry>, StoreError> {
        // A stored message's content is the one in `messages` (the log keeps no copy).
        let args: Args = vec![Box::new(seq)];
        self.conn
            .dynamic(
                &format!(
                    "SELECT {LOG_COLUMNS}, COALESCE(l.body, (SELECT m.body FROM messages m WHERE m.protocol = l.protocol
                         AND m.sender = l.sender AND m.message_id = l.message_id))
                     FROM message_log l WHERE seq = ?1"
                ),
                &args,
            )?
            .first()
            .map(log_entry)
            .transpose()
    }

    fn mpps_records(&self, offset: u64, limit: u64) -> Result<(u64, Vec<MppsRow>), StoreError> {
        let total: i64 = self
            .conn
            .opt("SELECT COUNT(*) FROM mpps", &[])?
            .map_or(Ok(0), |r| r.try_get(0))?;
        let rows = self
            .conn
            .query(
                "SELECT uid, version, state, updated_at FROM mpps ORDER BY updated_at DESC, uid LIMIT $1 OFFSET $2",
                &[&to_i64(limit.clamp(1, 1000)), &to_i64(offset)],
            )?
            .iter()
            .map(|r| {
                Ok(MppsRow {
                    uid: r.try_get(0)?,
                    version: u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0),
                    state: r.try_get(2)?,
                    updated_at: r.try_get(3)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((u64::try_from(total).unwrap_or(0), rows))
    }

    fn worklist_rows(&self, filter: &WorklistFilter) -> Result<Vec<WorklistRow>, StoreError> {
        let (w, args) = worklist_where(filter);
        let args: Args = args
            .into_iter()
            .map(|a| Box::new(a) as Box<dyn ToSql + Sync + Send>)
            .collect();
        self.conn
            .dynamic(
                &format!(
                    "SELECT {WORKLIST_COLUMNS} FROM worklist_items{w} ORDER BY start_date, step_key"
                ),
                &args,
            )?
            .iter()
            .map(worklist_row)
            .collect()
    }

    fn worklist_row(&self, step_key: &str) -> Result<Option<WorklistRow>, StoreError> {
        let args: Args = vec![Box::new(step_key.to_owned())];
        self.conn
            .dynamic(
                &format!("SELECT {WORKLIST_COLUMNS} FROM worklist_items WHERE step_key = ?1"),
                &args,
            )?
            .first()
            .map(worklist_row)
            .transpose()
    }

    fn find_by_token(
        &self,
        resource_type: &str,
        param: &str,
        system: &str,
        value: &str,
    ) -> Result<Option<String>, StoreError> {
        self.conn
            .opt(
                "SELECT id FROM search_index WHERE resource_type = $1 AND param = $2 AND system = $3 AND value = $4 LIMIT 1",
                &[&resource_type, &param, &system, &value],
            )?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn search(&self, resource_type: &str, q: &Query) -> Result<Page, StoreError> {
        search(self.conn, resource_type, q)
    }

    fn study_instances(
        &self,
        study_uid: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        self.conn
            .query(
                "SELECT series_uid, sop_instance_uid, sop_class_uid FROM instances WHERE study_uid = $1 ORDER BY series_uid, received_at, sop_instance_uid",
                &[&study_uid],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    fn series_modality(&self, series_uid: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .opt(
                "SELECT modality FROM instance_modality WHERE series_uid = $1",
                &[&series_uid],
            )?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn has_instance(&self, sop_instance_uid: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .opt(
                "SELECT 1 FROM instances WHERE sop_instance_uid = $1",
                &[&sop_instance_uid],
            )?
            .is_some())
    }

    fn mpps(&self, uid: &str) -> Result<Option<(u64, String)>, StoreError> {
        self.conn
            .opt("SELECT version, state FROM mpps WHERE uid = $1", &[&uid])?
            .map(|r| {
                Ok((
                    u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or(0),
                    r.try_get(1)?,
                ))
            })
            .transpose()
    }

    fn count_messages(&self, protocol: &str) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .opt(
                "SELECT COUNT(*) FROM messages WHERE protocol = $1",
                &[&protocol],
            )?
            .map_or(Ok(0), |r| r.try_get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn instance(&self, sop_instance_uid: &str) -> Result<Option<InstanceRow>, StoreError> {
        self.conn
            .opt(
                "SELECT sop_instance_uid, sop_class_uid, study_uid, series_uid, transfer_syntax, path, size, calling_ae FROM instances WHERE sop_instance_uid = $1",
                &[&sop_instance_uid],
            )?
            .map(|r| instance_row(&r))
            .transpose()
    }

    fn for_each_query_row(
        &self,
        f: &mut dyn FnMut(InstanceRow, QueryRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // Pages by key so a large archive is never held in memory at once.
        const PAGE: i64 = 1000;
        let sql = format!(
            "SELECT i.sop_instance_uid, i.sop_class_uid, i.study_uid, i.series_uid, i.transfer_syntax, i.path, i.size, i.calling_ae,
                    q.patient_id, q.study_uid, q.series_uid, q.header, i.received_at
             FROM qr_instances q JOIN instances i ON i.sop_instance_uid = q.sop_instance_uid
             WHERE (i.received_at, i.sop_instance_uid) > ($1, $2) ORDER BY i.received_at, i.sop_instance_uid LIMIT {PAGE}"
        );
        let stmt = block_on(self.conn.client.prepare(&sql))?;
        let (mut after_at, mut after_uid) = (String::new(), String::new());
        loop {
            let rows = block_on(self.conn.client.query(&stmt, &[&after_at, &after_uid]))?;
            let n = rows.len();
            for r in &rows {
                let (inst, q) = joined_row(r)?;
                let at: String = r.try_get(12)?;
                after_at = at;
                after_uid.clone_from(&inst.sop_instance_uid);
                f(inst, q)?;
            }
            if i64::try_from(n).unwrap_or(0) < PAGE {
                return Ok(());
            }
        }
    }

    fn query_rows_in(
        &self,
        study_uid: &str,
        series_uid: Option<&str>,
        sop_instance_uid: Option<&str>,
    ) -> Result<Vec<(InstanceRow, QueryRow)>, StoreError> {
        let sql = format!(
            "{JOINED} WHERE q.study_uid = $1 AND ($2::text IS NULL OR q.series_uid = $2) AND ($3::text IS NULL OR q.sop_instance_uid = $3)
             ORDER BY q.series_uid, i.received_at, i.sop_instance_uid"
        );
        let stmt = block_on(self.conn.client.prepare(&sql))?;
        block_on(
            self.conn
                .client
                .query(&stmt, &[&study_uid, &series_uid, &sop_instance_uid]),
        )?
        .iter()
        .map(joined_row)
        .collect()
    }

    fn for_each_query_row_since(
        &self,
        since: &str,
        f: &mut dyn FnMut(InstanceRow, QueryRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "{JOINED} WHERE i.received_at >= $1 ORDER BY i.received_at, i.sop_instance_uid"
        );
        for r in &block_on(self.conn.client.query(&sql, &[&since]))? {
            let (inst, q) = joined_row(r)?;
            f(inst, q)?;
        }
        Ok(())
    }

    fn instances_without_query_row(&self) -> Result<Vec<InstanceRow>, StoreError> {
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances i
             WHERE NOT EXISTS (SELECT 1 FROM qr_instances q WHERE q.sop_instance_uid = i.sop_instance_uid)"
        );
        block_on(self.conn.client.query(&sql, &[]))?
            .iter()
            .map(instance_row)
            .collect()
    }
}

impl WriteTx for PgTx<'_> {
    fn record_message(
        &self,
        protocol: &str,
        sender: &str,
        message_id: &str,
        message_type: &str,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            "INSERT INTO messages (protocol, sender, message_id, message_type, received_at, body)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &protocol,
                &sender,
                &message_id,
                &message_type,
                &now(),
                &body,
            ],
        )?;
        Ok(n == 1)
    }

    fn put_resource(
        &self,
        resource_type: &str,
        id: &str,
        r: &StoredResource,
        index: &[IndexEntry],
    ) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT INTO resources (resource_type, id, version, last_updated, body, deleted) VALUES ($1, $2, $3, $4, $5, 0)
             ON CONFLICT (resource_type, id) DO UPDATE SET version = excluded.version,
                 last_updated = excluded.last_updated, body = excluded.body, deleted = 0",
            &[&resource_type, &id, &r.version, &r.last_updated, &r.body],
        )?;
        let method = if r.version == 1 { "POST" } else { "PUT" };
        self.conn.exec(
            "INSERT INTO resource_versions (resource_type, id, version, last_updated, method, body)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &resource_type,
                &id,
                &r.version,
                &r.last_updated,
                &method,
                &r.body,
            ],
        )?;
        self.conn.exec(
            "DELETE FROM search_index WHERE resource_type = $1 AND id = $2",
            &[&resource_type, &id],
        )?;
        if !index.is_empty() {
            // One statement for every index row (arrays unnested), not one round trip each.
            let params: Vec<&str> = index.iter().map(|e| e.param).collect();
            let systems: Vec<&str> = index.iter().map(|e| e.system.as_str()).collect();
            let values: Vec<&str> = index.iter().map(|e| e.value.as_str()).collect();
            let lows: Vec<Option<&str>> = index.iter().map(|e| e.low.as_deref()).collect();
            let highs: Vec<Option<&str>> = index.iter().map(|e| e.high.as_deref()).collect();
            let nums: Vec<Option<f64>> = index.iter().map(|e| e.num).collect();
            self.conn.exec(
                "INSERT INTO search_index (resource_type, id, param, system, value, low, high, num)
                 SELECT $1, $2, p, s, v, l, h, n
                 FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::float8[]) AS t(p, s, v, l, h, n)",
                &[&resource_type, &id, &params, &systems, &values, &lows, &highs, &nums],
            )?;
        }
        Ok(())
    }

    fn delete_resource(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
        last_updated: &str,
    ) -> Result<(), StoreError> {
        self.conn.exec(
            "UPDATE resources SET version = $3, last_updated = $4, body = '', deleted = 1
             WHERE resource_type = $1 AND id = $2",
            &[&resource_type, &id, &version, &last_updated],
        )?;
        self.conn.exec(
            "INSERT INTO resource_versions (resource_type, id, version, last_updated, method, body)
             VALUES ($1, $2, $3, $4, 'DELETE', NULL)",
            &[&resource_type, &id, &version, &last_updated],
        )?;
        self.conn.exec(
            "DELETE FROM search_index WHERE resource_type = $1 AND id = $2",
            &[&resource_type, &id],
        )?;
        Ok(())
    }

    fn log_message(&self, e: &MessageLogEntry, bounds: LogBounds) -> Result<i64, StoreError> {
        let received_at = if e.received_at.is_empty() {
            now()
        } else {
            e.received_at.clone()
        };
        let seq: i64 = self
            .conn
            .opt(
                "INSERT INTO message_log (received_at, door, protocol, sender, message_id, message_type, outcome,
                     error, error_location, ack, body, reprocessed_as)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL) RETURNING seq",
                &[
                    &received_at,
                    &e.door,
                    &e.protocol,
                    &e.sender,
                    &e.message_id,
                    &e.message_type,
                    &e.outcome,
                    &e.error,
                    &e.error_location,
                    &e.ack,
                    &e.body,
                ],
            )?
            .map_or(Ok(0), |r| r.try_get(0))?;
        // Bounded as in the SQLite backend: the newest `entries` entries, raw content on the
        // newest `bodies` of them (sequence numbers of several nodes interleave; the bound
        // is on the shared sequence).
        self.conn.exec(
            "DELETE FROM message_log WHERE seq <= $1",
            &[&(seq - to_i64(bounds.entries.max(1)))],
        )?;
        self.conn.exec(
            "UPDATE message_log SET body = NULL WHERE seq <= $1 AND seq > $2 AND body IS NOT NULL",
            &[
                &(seq - to_i64(bounds.bodies)),
                &(seq - to_i64(bounds.bodies) - 64),
            ],
        )?;
        Ok(seq)
    }

    fn mark_reprocessed(&self, seq: i64, new_seq: i64) -> Result<(), StoreError> {
        self.conn.exec(
            "UPDATE message_log SET reprocessed_as = $1 WHERE seq = $2",
            &[&new_seq, &seq],
        )?;
        Ok(())
    }

    fn worklist_put(&self, row: &WorklistRow) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT INTO worklist_items (step_key, accession, accession_system, requested_procedure_id, patient_id,
                 station_ae, modality, start_date, status, study_uid, listed, placer, filler, attributes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (step_key) DO UPDATE SET accession = excluded.accession,
                 accession_system = excluded.accession_system, requested_procedure_id = excluded.requested_procedure_id,
                 patient_id = excluded.patient_id, station_ae = excluded.station_ae, modality = excluded.modality,
                 start_date = excluded.start_date, status = excluded.status, study_uid = excluded.study_uid,
                 listed = excluded.listed, placer = excluded.placer, filler = excluded.filler,
                 attributes = excluded.attributes",
            &[
                &row.step_key,
                &row.accession,
                &row.accession_system,
                &row.requested_procedure_id,
                &row.patient_id,
                &row.station_ae,
                &row.modality,
                &row.start_date,
                &row.status,
                &row.study_uid,
                &i32::from(row.listed),
                &row.placer,
                &row.filler,
                &row.attributes,
            ],
        )?;
        Ok(())
    }

    fn record_instance(&self, row: &InstanceRow) -> Result<bool, StoreError> {
        // `xmax = 0` on the returned row: it was inserted, not updated (a concurrent insert
        // of the same key on another node is waited for and then updated, so only one of
        // the two reports the instance as new).
        let inserted: bool = self
            .conn
            .opt(
                "INSERT INTO instances (sop_instance_uid, sop_class_uid, study_uid, series_uid, transfer_syntax, path, size, calling_ae, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (sop_instance_uid) DO UPDATE SET sop_class_uid = excluded.sop_class_uid, study_uid = excluded.study_uid,
                    series_uid = excluded.series_uid, transfer_syntax = excluded.transfer_syntax, path = excluded.path, size = excluded.size
                 RETURNING (xmax = 0)",
                &[
                    &row.sop_instance_uid,
                    &row.sop_class_uid,
                    &row.study_uid,
                    &row.series_uid,
                    &row.transfer_syntax,
                    &row.path,
                    &to_i64(row.size),
                    &row.calling_ae,
                    &now(),
                ],
            )?
            .map_or(Ok(false), |r| r.try_get(0))?;
        Ok(inserted)
    }

    fn record_query_row(&self, row: &QueryRow) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT INTO qr_instances (sop_instance_uid, patient_id, study_uid, series_uid, header) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (sop_instance_uid) DO UPDATE SET patient_id = excluded.patient_id, study_uid = excluded.study_uid,
             series_uid = excluded.series_uid, header = excluded.header",
            &[
                &row.sop_instance_uid,
                &row.patient_id,
                &row.study_uid,
                &row.series_uid,
                &row.header,
            ],
        )?;
        Ok(())
    }

    fn record_series_modality(&self, series_uid: &str, modality: &str) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT INTO instance_modality (series_uid, modality) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&series_uid, &modality],
        )?;
        Ok(())
    }

    fn mpps_insert(&self, uid: &str, version: u64, state: &str) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            "INSERT INTO mpps (uid, version, state, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&uid, &to_i64(version), &state, &now()],
        )?;
        Ok(n == 1)
    }

    fn mpps_update(
        &self,
        uid: &str,
        version: u64,
        state: &str,
        expected: u64,
    ) -> Result<bool, StoreError> {
        // READ COMMITTED: when another node's update of the row is in flight this waits for
        // it and re-checks `version = $5` on the committed row (compare-and-set).
        let n = self.conn.exec(
            "UPDATE mpps SET version = $1, state = $2, updated_at = $3 WHERE uid = $4 AND version = $5",
            &[&to_i64(version), &state, &now(), &uid, &to_i64(expected)],
        )?;
        Ok(n == 1)
    }
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `?, ?, …` with `n` placeholders.
fn marks(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// SQLite-style placeholders (`?N`, and `?` meaning one more than the largest so far) as
/// PostgreSQL's `$N`, outside string literals: the dynamic SQL below is built like the
/// SQLite backend's, so both backends' queries read alike.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut max, mut quoted) = (0usize, false);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
            out.push(c);
        } else if c == '?' && !quoted {
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            let n = digits.parse().unwrap_or(max + 1);
            max = max.max(n);
            let _ = write!(out, "${n}");
        } else {
            out.push(c);
        }
    }
    out
}

type Args = Vec<Box<dyn ToSql + Sync + Send>>;

impl Conn {
    /// Runs SQL built at run time (SQLite-style placeholders).
    fn dynamic(&self, sql: &str, args: &Args) -> Result<Vec<Row>, StoreError> {
        let refs: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        Ok(block_on(self.client.query(&numbered(sql), &refs))?)
    }
}

fn history_row(r: &Row) -> Result<HistoryEntry, StoreError> {
    Ok(HistoryEntry {
        resource_type: r.try_get(0)?,
        id: r.try_get(1)?,
        version: r.try_get(2)?,
        last_updated: r.try_get(3)?,
        method: r.try_get(4)?,
        body: r.try_get(5)?,
    })
}

/// The message log's columns, in the order [`log_entry`] reads them (then the body).
const LOG_COLUMNS: &str = "seq, received_at, door, protocol, sender, message_id, message_type, outcome, error, error_location, ack, reprocessed_as";

fn log_entry(r: &Row) -> Result<MessageLogEntry, StoreError> {
    Ok(MessageLogEntry {
        seq: r.try_get(0)?,
        received_at: r.try_get(1)?,
        door: r.try_get(2)?,
        protocol: r.try_get(3)?,
        sender: r.try_get(4)?,
        message_id: r.try_get(5)?,
        message_type: r.try_get(6)?,
        outcome: r.try_get(7)?,
        error: r.try_get(8)?,
        error_location: r.try_get(9)?,
        ack: r.try_get(10)?,
        reprocessed_as: r.try_get(11)?,
        body: r.try_get(12)?,
    })
}

/// The `WHERE` condition and its arguments of a log search (as the SQLite backend's).
fn log_filter(q: &LogQuery) -> (String, Vec<String>) {
    let mut cond = vec!["1 = 1".to_owned()];
    let mut args = Vec::new();
    if !q.text.trim().is_empty() {
        args.push(format!("%{}%", like_escape(q.text.trim())));
        let n = args.len();
        cond.push(format!(
            // ILIKE: case-insensitive, as SQLite's LIKE is for ASCII.
            "(message_id ILIKE ?{n} OR sender ILIKE ?{n} OR message_type ILIKE ?{n})"
        ));
    }
    if !q.door.is_empty() {
        args.push(q.door.clone());
        cond.push(format!("door = ?{}", args.len()));
    }
    match q.outcome.as_str() {
        "" => {}
        "accepted" => cond.push("outcome IN ('stored', 'duplicate')".to_owned()),
        "errors" => cond.push("outcome NOT IN ('stored', 'duplicate')".to_owned()),
        o => {
            args.push(o.to_owned());
            cond.push(format!("outcome = ?{}", args.len()));
        }
    }
    (cond.join(" AND "), args)
}

const WORKLIST_COLUMNS: &str = "step_key, accession, accession_system, requested_procedure_id, patient_id, \
    station_ae, modality, start_date, status, study_uid, listed, placer, filler, attributes";

fn worklist_row(r: &Row) -> Result<WorklistRow, StoreError> {
    Ok(WorklistRow {
        step_key: r.try_get(0)?,
        accession: r.try_get(1)?,
        accession_system: r.try_get(2)?,
        requested_procedure_id: r.try_get(3)?,
        patient_id: r.try_get(4)?,
        station_ae: r.try_get(5)?,
        modality: r.try_get(6)?,
        start_date: r.try_get(7)?,
        status: r.try_get(8)?,
        study_uid: r.try_get(9)?,
        listed: r.try_get::<_, i32>(10)? != 0,
        placer: r.try_get(11)?,
        filler: r.try_get(12)?,
        attributes: r.try_get(13)?,
    })
}

/// The WHERE clause and parameters of a worklist filter (as the SQLite backend's).
fn worklist_where(f: &WorklistFilter) -> (String, Vec<String>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let mut eq = |col: &str, v: &Option<String>, op: &str| {
        if let Some(v) = v {
            args.push(v.clone());
            conds.push(format!("{col} {op} ?{}", args.len()));
        }
    };
    eq("accession", &f.accession, "=");
    eq("patient_id", &f.patient_id, "=");
    eq("requested_procedure_id", &f.requested_procedure_id, "=");
    eq("study_uid", &f.study_uid, "=");
    eq("station_ae", &f.station_ae, "=");
    eq("modality", &f.modality, "=");
    eq("placer", &f.placer, "=");
    eq("filler", &f.filler, "=");
    eq("start_date", &f.date_from, ">=");
    eq("start_date", &f.date_to, "<=");
    if f.date_to.is_some() {
        conds.push("start_date <> ''".into());
    }
    if f.listed_only {
        conds.push("listed = 1".into());
    }
    let w = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    (w, args)
}

/// Runs a query with the SQLite backend's plan: every criterion is one uncorrelated
/// `IN (SELECT id …)` subquery over `search_index` (criteria ANDed, values ORed: FHIR R4
/// §3.1.1.2), then one page in sort order; total and page read in the caller's snapshot.
fn search(conn: &Conn, resource_type: &str, q: &Query) -> Result<Page, StoreError> {
    let mut sql = String::from(" FROM resources r WHERE r.resource_type = ? AND r.deleted = 0");
    let mut args: Args = vec![Box::new(resource_type.to_owned())];
    for c in &q.criteria {
        sql.push_str(" AND ");
        top_criterion(resource_type, c, &mut sql, &mut args);
    }
    let total: i64 = if q.no_total {
        -1
    } else {
        conn.dynamic(&format!("SELECT COUNT(*){sql}"), &args)?
            .first()
            .map_or(Ok(0), |r| r.try_get(0))?
    };
    let mut order = Vec::new();
    for key in &q.sort {
        let dir = if key.descending { "DESC" } else { "ASC" };
        // NULL sorts first ascending and last descending, as in SQLite.
        let nulls = if key.descending {
            "NULLS LAST"
        } else {
            "NULLS FIRST"
        };
        match key.param.as_str() {
            "_lastUpdated" => order.push(format!("r.last_updated {dir}")),
            "_id" => order.push(format!("r.id {dir}")),
            k => {
                // SQLite orders `coalesce(low, num, value)` across storage classes (numbers
                // before text); PostgreSQL needs one type per expression: numbers first, then
                // the text forms.
                let agg = if key.descending { "MAX" } else { "MIN" };
                for expr in ["s.num", "coalesce(s.low, s.value)"] {
                    order.push(format!(
                        "(SELECT {agg} ({expr}) FROM search_index s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = ? AND s.system <> 'raw') {dir} {nulls}"
                    ));
                    args.push(Box::new(k.to_owned()));
                }
            }
        }
    }
    order.push("r.id ASC".to_owned());
    args.push(Box::new(i64::try_from(q.count).unwrap_or(i64::MAX)));
    args.push(Box::new(i64::try_from(q.offset).unwrap_or(i64::MAX)));
    let rows = conn
        .dynamic(
            &format!(
                "SELECT r.id, r.version, r.last_updated, r.body{sql} ORDER BY {} LIMIT ? OFFSET ?",
                order.join(", ")
            ),
            &args,
        )?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                StoredResource {
                    version: r.try_get(1)?,
                    last_updated: r.try_get(2)?,
                    body: r.try_get(3)?,
                },
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let total = if total < 0 {
        // `_total=none`: what this page proves
        q.offset + rows.len()
    } else {
        usize::try_from(total).unwrap_or(0)
    };
    Ok(Page { total, rows })
}

/// One criterion on the rows `r` of `resource_type`.
fn top_criterion(resource_type: &str, c: &Criterion, sql: &mut String, args: &mut Args) {
    match c {
        Criterion::Id { not, ids } => {
            if ids.is_empty() {
                sql.push_str(if *not { "TRUE" } else { "FALSE" });
                return;
            }
            let _ = write!(
                sql,
                "r.id {}IN ({})",
                if *not { "NOT " } else { "" },
                marks(ids.len())
            );
            for id in ids {
                args.push(Box::new(id.clone()));
            }
        }
        Criterion::Missing { param, missing } => {
            let _ = write!(
                sql,
                "r.id {}IN (SELECT s.id FROM search_index s WHERE s.resource_type = ? AND s.param = ?)",
                if *missing { "NOT " } else { "" }
            );
            args.push(Box::new(resource_type.to_owned()));
            args.push(Box::new(*param));
        }
        Criterion::Match {
            not: true,
            param,
            any,
        } => {
            sql.push_str("r.id NOT IN (");
            match_ids(resource_type, param, any, sql, args);
            sql.push(')');
        }
        _ => {
            sql.push_str("r.id IN (");
            ids_of(resource_type, c, sql, args);
            sql.push(')');
        }
    }
}

/// `SELECT id` of the live `resource_type` resources meeting `c`.
fn ids_of(resource_type: &str, c: &Criterion, sql: &mut String, args: &mut Args) {
    match c {
        Criterion::Match {
            not: false,
            param,
            any,
        } => match_ids(resource_type, param, any, sql, args),
        Criterion::Chain {
            reference,
            targets,
            inner,
        } => {
            sql.push_str(
                "SELECT s.id FROM search_index s WHERE s.resource_type = ? AND s.param = ? AND (",
            );
            args.push(Box::new(resource_type.to_owned()));
            args.push(Box::new(*reference));
            for (i, t) in targets.iter().enumerate() {
                if i > 0 {
                    sql.push_str(" OR ");
                }
                sql.push_str("s.value IN (SELECT ?::text || x.id FROM (");
                args.push(Box::new(format!("{t}/")));
                ids_of(t.as_str(), inner, sql, args);
                sql.push_str(") x)");
            }
            if targets.is_empty() {
                sql.push_str("FALSE");
            }
            sql.push(')');
        }
        Criterion::Has {
            source,
            reference,
            inner,
        } => {
            sql.push_str(
                "SELECT substr(s.value, (?::bigint)::int) AS id FROM search_index s WHERE s.resource_type = ? AND s.param = ? AND s.value LIKE ? AND s.id IN (",
            );
            args.push(Box::new(
                i64::try_from(resource_type.len() + 2).unwrap_or(i64::MAX),
            ));
            args.push(Box::new(source.as_str().to_owned()));
            args.push(Box::new(*reference));
            args.push(Box::new(format!("{}/%", like_escape(resource_type))));
            ids_of(source.as_str(), inner, sql, args);
            sql.push(')');
        }
        // `_id`, `:missing` and `:not` inside a chain: over the resources themselves
        other => {
            sql.push_str("SELECT r.id AS id FROM resources r WHERE r.resource_type = ? AND r.deleted = 0 AND ");
            args.push(Box::new(resource_type.to_owned()));
            top_criterion(resource_type, other, sql, args);
        }
    }
}

fn match_ids(
    resource_type: &str,
    param: &'static str,
    any: &[Cond],
    sql: &mut String,
    args: &mut Args,
) {
    sql.push_str(
        "SELECT s.id AS id FROM search_index s WHERE s.resource_type = ? AND s.param = ? AND (",
    );
    args.push(Box::new(resource_type.to_owned()));
    args.push(Box::new(param));
    for (i, c) in any.iter().enumerate() {
        if i > 0 {
            sql.push_str(" OR ");
        }
        sql.push('(');
        condition(c, sql, args);
        sql.push(')');
    }
    if any.is_empty() {
        sql.push_str("FALSE");
    }
    sql.push(')');
}

/// SQL for one alternative value over the index row `s` (the SQLite backend's rules:
/// date ranges on `low`/`high`, numbers on `num` with the value's precision range;
/// string values are indexed folded, so `LIKE` matches as SQLite's does). PostgreSQL's
/// `LIKE` escapes with a backslash by default.
fn condition(c: &Cond, sql: &mut String, args: &mut Args) {
    let mut arg = |sql: &mut String, text: &str, v: Box<dyn ToSql + Sync + Send>| {
        sql.push_str(text);
        args.push(v);
    };
    match c {
        Cond::StartsWith(t) => arg(
            sql,
            "s.system = '' AND s.value LIKE ?",
            Box::new(format!("{}%", like_escape(t))),
        ),
        Cond::Contains(t) => arg(
            sql,
            "s.system <> 'raw' AND s.value LIKE ?",
            Box::new(format!("%{}%", like_escape(t))),
        ),
        Cond::Exact(t) => arg(sql, "s.system = 'raw' AND s.value = ?", Box::new(t.clone())),
        Cond::Token { system, code } => match (system.as_deref(), code.as_deref()) {
            (Some(system), None) => arg(sql, "s.system = ?", Box::new(system.to_owned())),
            (Some(system), Some(code)) => {
                arg(sql, "s.system = ?", Box::new(system.to_owned()));
                arg(sql, " AND s.value = ?", Box::new(code.to_owned()));
            }
            (None, code) => arg(
                sql,
                "s.value = ?",
                Box::new(code.unwrap_or_default().to_owned()),
            ),
        },
        Cond::Date { prefix, low, high } => {
            let lo = || Box::new(low.clone()) as Box<dyn ToSql + Sync + Send>;
            let hi = || Box::new(high.clone()) as Box<dyn ToSql + Sync + Send>;
            match prefix {
                Prefix::Eq => {
                    arg(sql, "s.low >= ?", lo());
                    arg(sql, " AND s.high <= ?", hi());
                }
                Prefix::Ne => {
                    arg(sql, "s.low IS NULL OR s.high IS NULL OR s.low < ?", lo());
                    arg(sql, " OR s.high > ?", hi());
                }
                Prefix::Gt => arg(sql, "s.high IS NULL OR s.high > ?", hi()),
                Prefix::Lt => arg(sql, "s.low IS NULL OR s.low < ?", lo()),
                Prefix::Ge => arg(sql, "s.high IS NULL OR s.high >= ?", lo()),
                Prefix::Le => arg(sql, "s.low IS NULL OR s.low <= ?", hi()),
                Prefix::Sa => arg(sql, "s.low > ?", hi()),
                Prefix::Eb => arg(sql, "s.high < ?", lo()),
                Prefix::Ap => {
                    arg(sql, "(s.low IS NULL OR s.low <= ?)", hi());
                    arg(sql, " AND (s.high IS NULL OR s.high >= ?)", lo());
                }
            }
        }
        Cond::Number {
            prefix,
            value,
            low,
            high,
            system,
            code,
        } => {
            sql.push('(');
            match prefix {
                Prefix::Eq | Prefix::Ap => {
                    arg(sql, "s.num >= ?", Box::new(*low));
                    arg(sql, " AND s.num <= ?", Box::new(*high));
                }
                Prefix::Ne => {
                    arg(sql, "s.num < ?", Box::new(*low));
                    arg(sql, " OR s.num > ?", Box::new(*high));
                }
                Prefix::Gt | Prefix::Sa => arg(sql, "s.num > ?", Box::new(*value)),
                Prefix::Lt | Prefix::Eb => arg(sql, "s.num < ?", Box::new(*value)),
                Prefix::Ge => arg(sql, "s.num >= ?", Box::new(*value)),
                Prefix::Le => arg(sql, "s.num <= ?", Box::new(*value)),
            }
            sql.push(')');
            if let Some(s) = system {
                arg(sql, " AND s.system = ?", Box::new(s.clone()));
            }
            if let Some(c) = code {
                arg(sql, " AND s.value = ?", Box::new(c.clone()));
            }
        }
        Cond::Reference(key) | Cond::Uri(key) => arg(sql, "s.value = ?", Box::new(key.clone())),
        Cond::ReferenceId(id) => {
            arg(sql, "s.value = ?", Box::new(id.clone()));
            arg(
                sql,
                " OR s.value LIKE ?",
                Box::new(format!("%/{}", like_escape(id))),
            );
        }
        Cond::UriBelow(u) => arg(
            sql,
            "s.value LIKE ?",
            Box::new(format!("{}%", like_escape(u))),
        ),
        Cond::UriAbove(u) => arg(
            sql,
            "s.value <> '' AND substr(?::text, 1, length(s.value)) = s.value",
            Box::new(u.clone()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_like_sqlite_outside_literals() {
        assert_eq!(
            numbered("a = ? AND b = ?3 AND c = ? AND d = '?' AND e = ?1"),
            "a = $1 AND b = $3 AND c = $4 AND d = '?' AND e = $1"
        );
    }
}
