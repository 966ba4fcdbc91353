//! `xenrad-gateway backup DIR` and `xenrad-gateway restore DIR --data-dir D`: a consistent
//! online snapshot of a gateway's data (the SQLite database and the DICOM instance files)
//! taken while the gateway keeps ingesting, and its restore into another data directory.
//!
//! The database is copied with `VACUUM INTO` (<https://sqlite.org/lang_vacuum.html#vacuuminto>)
//! rather than the online backup API: in WAL mode `VACUUM INTO` runs as one read
//! transaction, so it sees one consistent snapshot and never blocks the gateway's writer
//! (WAL readers do not block writers), whereas the backup API restarts its page copy from
//! the beginning whenever another connection writes the source, which under continuous
//! ingest may never finish. The instance files the snapshot's `instances` rows reference
//! are then hard-linked (copied when the filesystem refuses a link): a file is complete
//! and immutable before its row commits, so every row in the snapshot has its file. The
//! DICOM journal is not copied: nothing in it was acknowledged without its row.

use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The database file inside a data directory (and inside a backup).
const DB_FILE: &str = "xenrad.sqlite3";
/// The manifest inside a backup.
const MANIFEST: &str = "manifest.json";
/// Format of the manifest this build writes and reads.
const FORMAT: &str = "xenrad-gateway-backup/1";

/// A backup or restore that did not complete, with a message for the operator.
#[derive(Debug)]
pub struct BackupError(pub String);

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BackupError {}

fn err(context: impl std::fmt::Display, e: impl std::fmt::Display) -> BackupError {
    BackupError(format!("{context}: {e}"))
}

/// What a backup holds, as written to its `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `PRAGMA user_version` of the snapshot.
    pub schema_version: i64,
    /// Rows in `instances` (each with its file in the backup).
    pub instances: u64,
    /// Rows in `messages` (raw HL7 messages stored).
    pub messages: u64,
    /// Current FHIR resources (`resources` rows).
    pub resources: u64,
}

fn count(conn: &Connection, table: &str) -> Result<u64, BackupError> {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| u64::try_from(n).unwrap_or(0))
    .map_err(|e| err(format!("counting {table}"), e))
}

fn summarize(conn: &Connection) -> Result<Summary, BackupError> {
    Ok(Summary {
        schema_version: conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| err("reading the schema version", e))?,
        instances: count(conn, "instances")?,
        messages: count(conn, "messages")?,
        resources: count(conn, "resources")?,
    })
}

fn integrity_check(conn: &Connection) -> Result<(), BackupError> {
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(|e| err("PRAGMA integrity_check", e))?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        Err(BackupError(format!(
            "the database fails PRAGMA integrity_check: {}",
            rows.join("; ")
        )))
    }
}

/// Hard-links `from` to `to` (same filesystem), or copies it.
fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    let tmp = to.with_extension("part");
    std::fs::copy(from, &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, to)
}

/// `path` (as stored in an `instances` row) relative to the DICOM directory `dicom`.
fn relative_to<'a>(path: &'a Path, dicom: &Path) -> Option<&'a Path> {
    path.strip_prefix(dicom).ok()
}

/// Every `(sop_instance_uid, path)` of the snapshot's `instances`.
fn instance_paths(conn: &Connection) -> Result<Vec<(String, PathBuf)>, BackupError> {
    conn.prepare("SELECT sop_instance_uid, path FROM instances ORDER BY sop_instance_uid")
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    PathBuf::from(r.get::<_, String>(1)?),
                ))
            })?
            .collect::<Result<_, _>>()
        })
        .map_err(|e| err("reading the instance rows", e))
}

/// Takes a snapshot of the gateway data in `data_dir` into `out` (created; must not hold
/// a backup already) while a gateway may be running on it. `database` is the gateway's
/// `--database`: a PostgreSQL URL is refused (use `pg_dump`).
pub fn backup(data_dir: &Path, database: Option<&str>, out: &Path) -> Result<Summary, BackupError> {
    if let Some(url) = database {
        return Err(BackupError(format!(
            "the database is {}: back it up with pg_dump (and copy {}/dicom); `backup` snapshots the embedded SQLite store only",
            url.split('@').next_back().unwrap_or("PostgreSQL"),
            data_dir.display()
        )));
    }
    let src = data_dir.join(DB_FILE);
    if !src.is_file() {
        return Err(BackupError(format!(
            "no gateway database at {}",
            src.display()
        )));
    }
    if out.join(MANIFEST).exists() || out.join(DB_FILE).exists() {
        return Err(BackupError(format!(
            "{} already holds a backup",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| err(out.display(), e))?;
    // Read-write without create: a WAL reader needs the shared-memory index.
    let conn = Connection::open_with_flags(&src, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| err(src.display(), e))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| err(src.display(), e))?;
    let snap = out.join(DB_FILE);
    conn.execute("VACUUM INTO ?1", [snap.display().to_string()])
        .map_err(|e| err("VACUUM INTO", e))?;
    drop(conn);
    let snapc = Connection::open(&snap).map_err(|e| err(snap.display(), e))?;
    integrity_check(&snapc)?;
    let summary = summarize(&snapc)?;
    let dicom = absolute(&data_dir.join("dicom"));
    let mut linked = 0u64;
    for (uid, path) in instance_paths(&snapc)? {
        let path = absolute(&path);
        let rel = relative_to(&path, &dicom).ok_or_else(|| {
            BackupError(format!(
                "instance {uid}: {} is outside {}",
                path.display(),
                dicom.display()
            ))
        })?;
        link_or_copy(&path, &out.join("dicom").join(rel))
            .map_err(|e| err(format!("instance {uid}: {}", path.display()), e))?;
        linked += 1;
    }
    drop(snapc);
    let key = data_dir.join("api-key");
    if key.is_file() {
        std::fs::copy(&key, out.join("api-key")).map_err(|e| err(key.display(), e))?;
    }
    let manifest = json!({
        "format": FORMAT,
        "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "schema_version": summary.schema_version,
        "database": DB_FILE,
        "dicom_dir": dicom.display().to_string(),
        "instances": summary.instances,
        "instance_files": linked,
        "messages": summary.messages,
        "resources": summary.resources,
    });
    write_synced(
        &out.join(MANIFEST),
        serde_json::to_string_pretty(&manifest)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(summary)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).map_err(|e| err(path.display(), e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| err(path.display(), e))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Restores the backup in `from` into `data_dir`, which must be empty or absent unless
/// `force` (then its database and DICOM files are replaced). Verifies the manifest, the
/// database (`PRAGMA integrity_check`, counts) and that every instance row has its file;
/// instance paths are rewritten to `data_dir/dicom`.
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> Result<Summary, BackupError> {
    let mpath = from.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).map_err(|e| err(mpath.display(), e))?;
    let manifest: Value = serde_json::from_str(&text).map_err(|e| err(mpath.display(), e))?;
    if manifest["format"] != FORMAT {
        return Err(BackupError(format!(
            "{}: not a {FORMAT} manifest (format {})",
            mpath.display(),
            manifest["format"]
        )));
    }
    let old_dicom = PathBuf::from(manifest["dicom_dir"].as_str().unwrap_or_default());
    let non_empty = std::fs::read_dir(data_dir).is_ok_and(|mut d| d.next().is_some());
    if non_empty && !force {
        return Err(BackupError(format!(
            "{} is not empty: restore into an empty directory, or pass --force to replace its database and DICOM files",
            data_dir.display()
        )));
    }
    std::fs::create_dir_all(data_dir).map_err(|e| err(data_dir.display(), e))?;
    if force {
        for name in [
            DB_FILE,
            "xenrad.sqlite3-wal",
            "xenrad.sqlite3-shm",
            "xenrad.sqlite3.restore",
        ] {
            let _ = std::fs::remove_file(data_dir.join(name));
        }
        let d = data_dir.join("dicom");
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|e| err(d.display(), e))?;
        }
    }
    // The database goes in under a temporary name and is renamed last, so an interrupted
    // restore leaves no database a gateway would start on.
    let tmp = data_dir.join("xenrad.sqlite3.restore");
    std::fs::copy(from.join(DB_FILE), &tmp).map_err(|e| err(from.join(DB_FILE).display(), e))?;
    let verified = (|| -> Result<Summary, BackupError> {
        let conn = Connection::open(&tmp).map_err(|e| err(tmp.display(), e))?;
        integrity_check(&conn)?;
        let summary = summarize(&conn)?;
        let expect = |k: &str| manifest[k].as_u64().unwrap_or(u64::MAX);
        if manifest["schema_version"].as_i64() != Some(summary.schema_version)
            || expect("instances") != summary.instances
            || expect("messages") != summary.messages
            || expect("resources") != summary.resources
        {
            return Err(BackupError(format!(
                "the backup database does not match its manifest: {summary:?} against {manifest}"
            )));
        }
        let dicom = absolute(&data_dir.join("dicom"));
        // One transaction for every path rewrite (one fsync, not one per instance).
        conn.execute_batch("BEGIN")
            .map_err(|e| err("rewriting instance paths", e))?;
        for (uid, path) in instance_paths(&conn)? {
            let rel = relative_to(&path, &old_dicom)
                .ok_or_else(|| {
                    BackupError(format!(
                        "instance {uid}: {} is outside {}",
                        path.display(),
                        old_dicom.display()
                    ))
                })?
                .to_path_buf();
            let src = from.join("dicom").join(&rel);
            let dst = dicom.join(&rel);
            link_or_copy(&src, &dst)
                .map_err(|e| err(format!("instance {uid}: {}", src.display()), e))?;
            conn.execute(
                "UPDATE instances SET path = ?1 WHERE sop_instance_uid = ?2",
                [dst.display().to_string(), uid],
            )
            .map_err(|e| err("rewriting instance paths", e))?;
        }
        conn.execute_batch("COMMIT")
            .map_err(|e| err("rewriting instance paths", e))?;
        drop(conn);
        Ok(summary)
    })();
    let summary = match verified {
        Ok(s) => s,
        Err(e) => {
            // Nothing half-restored is left for a gateway to start on.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let key = from.join("api-key");
    if key.is_file() && !data_dir.join("api-key").exists() {
        std::fs::copy(&key, data_dir.join("api-key")).map_err(|e| err(key.display(), e))?;
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| err(tmp.display(), e))?;
    std::fs::rename(&tmp, data_dir.join(DB_FILE)).map_err(|e| err(tmp.display(), e))?;
    Ok(summary)
}

/// `xenrad-gateway backup DIR`: flags of the backup subcommand.
#[derive(Debug, clap::Parser)]
#[command(
    name = "xenrad-gateway backup",
    about = "Consistent online snapshot of a gateway's data (SQLite database and DICOM files) into DIR, while the gateway keeps running"
)]
pub struct BackupArgs {
    /// Where the backup goes (created; must not hold a backup already).
    pub dir: PathBuf,
    /// The data directory of the gateway to back up.
    #[arg(long, env = "XENRAD_DATA_DIR", default_value = "./xenrad-data")]
    pub data_dir: PathBuf,
    /// The gateway's `--database`: a PostgreSQL URL is refused (use pg_dump).
    #[arg(long, env = "XENRAD_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
}

/// `xenrad-gateway restore DIR --data-dir D`: flags of the restore subcommand.
#[derive(Debug, clap::Parser)]
#[command(
    name = "xenrad-gateway restore",
    about = "Restores a backup made by `xenrad-gateway backup` into a data directory (start the gateway on it afterwards)"
)]
pub struct RestoreArgs {
    /// The backup directory.
    pub dir: PathBuf,
    /// The data directory to restore into (empty or absent unless --force).
    #[arg(long, env = "XENRAD_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Replace the database and DICOM files of a non-empty data directory.
    #[arg(long)]
    pub force: bool,
}

/// Runs `backup` or `restore` when `args` (the process arguments) name one; `None`
/// otherwise. Prints a one-line summary or the error; the value is the exit code.
pub fn run_subcommand(args: &[std::ffi::OsString]) -> Option<std::process::ExitCode> {
    use clap::Parser as _;
    use std::process::ExitCode;
    let sub = args.get(1)?.to_str()?;
    let rest = std::iter::once(args[0].clone()).chain(args[2..].iter().cloned());
    let result = match sub {
        "backup" => {
            let a = BackupArgs::try_parse_from(rest).unwrap_or_else(|e| e.exit());
            backup(&a.data_dir, a.database.as_deref(), &a.dir).map(|s| ("backed up", s))
        }
        "restore" => {
            let a = RestoreArgs::try_parse_from(rest).unwrap_or_else(|e| e.exit());
            restore(&a.dir, &a.data_dir, a.force).map(|s| ("restored", s))
        }
        _ => return None,
    };
    Some(match result {
        Ok((what, s)) => {
            println!(
                "xenrad-gateway: {what}: schema {} · {} messages · {} resources · {} instances",
                s.schema_version, s.messages, s.resources, s.instances
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xenrad-gateway: {e}");
            ExitCode::FAILURE
        }
    })
}
