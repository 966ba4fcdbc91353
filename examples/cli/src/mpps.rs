//! `xenrad mpps …` subcommands: `check` runs MPPS documents (seed JSON, DICOM JSON, DIMSE datasets)
//! through the state machine in memory; `scp` serves MPPS N-CREATE/N-SET over DIMSE with an
//! in-memory store (state outlives associations).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use xenrad_dimse::net::Server;
use xenrad_dimse::scp::{Completed, Handler, NRequest, NResponse, ScpConfig};
use xenrad_mpps::{
    DuplicatePolicy, MPPS_SOP_CLASS_UID, MemoryStore, Mpps, MppsError, Outcome, TransferSyntaxKind,
};

use super::{CliResult, read_input};

/// `println!` that ignores a closed stdout (e.g. `| head`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Subcommands of `xenrad mpps`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Runs documents in order through one in-memory MPPS service and prints each outcome (HTTP and
    /// DIMSE status) and the final instance as DICOM JSON. A STEP is `FILE` (seed JSON for
    /// `POST /ingest`), `create=FILE` or `set=FILE` (DICOM JSON, or a DIMSE dataset with `--ts`),
    /// `seed-create=FILE` or `seed-set=FILE`. `-` reads standard input. Exit code 1 if a step failed.
    Check {
        /// Steps, in order.
        #[arg(required = true)]
        steps: Vec<String>,
        /// SOP Instance UID for `create=`/`set=` steps (seed bodies carry their own).
        #[arg(long, default_value = "1.2.3.4.5")]
        uid: String,
        /// Read `create=`/`set=` files as DIMSE datasets in this transfer syntax instead of DICOM JSON.
        #[arg(long, value_parser = ["implicit", "explicit"])]
        ts: Option<String>,
        /// Strict duplicate policy (repeats are refused) instead of idempotent replay.
        #[arg(long)]
        strict: bool,
    },
    /// Serves MPPS (N-CREATE/N-SET, SOP class 1.2.840.10008.3.1.2.3.3) over DIMSE with an in-memory store.
    Scp {
        /// TCP port.
        #[arg(long, default_value_t = 11112)]
        port: u16,
        /// Our AE title.
        #[arg(long, default_value = "XENRAD")]
        aet: String,
        /// Directory the SCP may store C-STORE instances in (MPPS itself is kept in memory).
        #[arg(long, default_value = "/tmp/xenrad-mpps-scp")]
        out: PathBuf,
        /// Strict duplicate policy.
        #[arg(long)]
        strict: bool,
    },
}

/// Runs one `xenrad mpps` subcommand.
pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Check {
            steps,
            uid,
            ts,
            strict,
        } => check(&steps, &uid, ts.as_deref(), policy(strict)),
        Command::Scp {
            port,
            aet,
            out,
            strict,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(scp(port, aet, out, policy(strict)))
        }
    }
}

fn policy(strict: bool) -> DuplicatePolicy {
    if strict {
        DuplicatePolicy::Strict
    } else {
        DuplicatePolicy::Idempotent
    }
}

fn print_result(i: usize, what: &str, r: &Result<Outcome, MppsError>) -> bool {
    match r {
        Ok(o) => {
            let status = o.instance.status().map_or("?", |s| s.as_str());
            let replay = if o.replay {
                " (replay of a stored response)"
            } else {
                ""
            };
            let noop = if o.changed || o.replay {
                ""
            } else {
                " (no change)"
            };
            outln!(
                "step {i} {what}: HTTP {} / DIMSE 0x{:04X} -> {status}{replay}{noop}",
                o.http_status(),
                o.dimse_status()
            );
            true
        }
        Err(e) => {
            let id = e
                .error_id()
                .map(|id| format!(" Error ID {id:04X}"))
                .unwrap_or_default();
            outln!(
                "step {i} {what}: HTTP {} / DIMSE 0x{:04X}{id}: {e}",
                e.http_status(),
                e.dimse_status()
            );
            false
        }
    }
}

fn check(steps: &[String], uid: &str, ts: Option<&str>, policy: DuplicatePolicy) -> CliResult {
    let mpps = Mpps::new(MemoryStore::new()).with_policy(policy);
    let ts = ts.map(|t| {
        if t == "implicit" {
            TransferSyntaxKind::ImplicitVrLittleEndian
        } else {
            TransferSyntaxKind::ExplicitVrLittleEndian
        }
    });
    let mut ok = true;
    let mut last_uid = uid.to_owned();
    for (i, step) in steps.iter().enumerate() {
        let i = i + 1;
        let (op, file) = step.split_once('=').unwrap_or(("ingest", step.as_str()));
        let body = read_input(std::path::Path::new(file))?;
        let good =
            match (op, ts) {
                ("ingest" | "seed-create" | "seed-set", _) => {
                    let r = match op {
                        "ingest" => mpps.ingest_seed_json(&body),
                        "seed-create" => mpps.seed_create(&body),
                        _ => mpps.seed_set(&body),
                    };
                    if let Ok(o) = &r {
                        last_uid.clone_from(&o.instance.sop_instance_uid);
                    }
                    print_result(i, &format!("{op} (seed JSON)"), &r)
                }
                ("create" | "set", None) => {
                    let r = if op == "create" {
                        mpps.create_dicom_json(uid, &body)
                    } else {
                        mpps.update_dicom_json(uid, &body)
                    };
                    uid.clone_into(&mut last_uid);
                    print_result(i, &format!("{op} (DICOM JSON)"), &r)
                }
                ("create" | "set", Some(ts)) => {
                    let rsp = if op == "create" {
                        mpps.n_create_dataset(uid, &body, ts)
                    } else {
                        mpps.n_set_dataset(uid, &body, ts)
                    };
                    uid.clone_into(&mut last_uid);
                    let id = rsp
                        .error_id
                        .map(|id| format!(" Error ID {id:04X}"))
                        .unwrap_or_default();
                    let comment = rsp
                        .error_comment
                        .as_deref()
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default();
                    let replay = if rsp.replay { " (replay)" } else { "" };
                    outln!(
                        "step {i} N-{} ({ts:?}): DIMSE 0x{:04X}{id}{replay}{comment}",
                        op.to_uppercase(),
                        rsp.status
                    );
                    rsp.status == 0
                }
                _ => return Err(format!(
                    "unknown step kind {op:?} (use FILE, create=, set=, seed-create=, seed-set=)"
                )
                .into()),
            };
        ok &= good;
    }
    match mpps.get_dicom_json(&last_uid) {
        Ok(json) => outln!("{}", String::from_utf8_lossy(&json)),
        Err(e) => outln!("no stored instance {last_uid}: {e}"),
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// DIMSE → MPPS service glue.
struct MppsHandler(Mpps<MemoryStore>);

impl MppsHandler {
    fn call(&self, r: &NRequest<'_>, create: bool) -> NResponse {
        if xenrad_mpps::uid::strip_wire_pad(r.sop_class_uid) != MPPS_SOP_CLASS_UID {
            return NResponse::status(0x0118); // No such SOP class (PS3.7 C.4.2)
        }
        let Some(ts) = TransferSyntaxKind::from_uid(r.transfer_syntax) else {
            return NResponse::status(0x0110);
        };
        let Some(uid) = r.sop_instance_uid else {
            // PS3.7 10.1.5.1.1 lets the SCP assign one; this demo SCP requires the SCU's.
            return NResponse::status(0x0120);
        };
        let rsp = if create {
            self.0.n_create_dataset(uid, r.dataset, ts)
        } else {
            self.0.n_set_dataset(uid, r.dataset, ts)
        };
        let id = rsp
            .error_id
            .map(|id| format!(" Error ID {id:04X}"))
            .unwrap_or_default();
        let comment = rsp.error_comment.as_deref().unwrap_or("");
        outln!(
            "{} {uid} from {}: 0x{:04X}{id} {comment}{}",
            if create { "N-CREATE" } else { "N-SET" },
            r.calling_ae,
            rsp.status,
            if rsp.replay { " (replay)" } else { "" }
        );
        NResponse {
            status: rsp.status,
            sop_instance_uid: None,
            dataset: rsp.dataset,
            error_id: rsp.error_id,
            error_comment: rsp.error_comment,
        }
    }
}

impl Handler for MppsHandler {
    fn n_create(&self, r: &NRequest<'_>) -> NResponse {
        self.call(r, true)
    }
    fn n_set(&self, r: &NRequest<'_>) -> NResponse {
        self.call(r, false)
    }
}

async fn scp(port: u16, aet: String, out: PathBuf, policy: DuplicatePolicy) -> CliResult {
    std::fs::create_dir_all(&out)?;
    // An MPPS SCP stores no instances: a small journal for a stray C-STORE.
    let sink = xenrad_dimse::store::FileSink::new(&out)
        .with_journal_options(xenrad_dimse::store::journal::JournalOptions::small());
    let mut cfg = ScpConfig::with_sink(Arc::new(sink));
    let mut p = (*cfg.policy).clone();
    p.ae_title = aet;
    cfg.policy = Arc::new(p);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    eprintln!(
        "xenrad mpps scp: listening on {} ({policy:?} duplicates)",
        listener.local_addr()?
    );
    let handler = Arc::new(MppsHandler(
        Mpps::new(MemoryStore::new()).with_policy(policy),
    ));
    let server = Server::new(cfg, handler).with_log(|c| {
        if let Completed::Association(a) = c {
            eprintln!("{a}");
        }
    });
    server
        .run(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
