//! A standalone storage SCP on the tokio adapter (the same server `xenrad dicom scp` runs).
//!
//! `cargo run --release -p xenrad-dimse --features tokio --example storescp -- --port 11112 --out DIR [--aet XENRAD] [--max-pdu N] [--no-fsync | --fsync-per-file | --journal-mb MIB_PER_LANE] [--writeback BYTES] [--threads N] [--quiet]`
use std::sync::Arc;
use xenrad_dimse::net::Server;
use xenrad_dimse::scp::{Completed, ScpConfig, StoreOnly};
use xenrad_dimse::store::{FileSink, FsyncPolicy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut port, mut out, mut aet, mut max_pdu, mut fsync, mut quiet) = (
        11112u16,
        None,
        "XENRAD".to_string(),
        128 * 1024u32,
        FsyncPolicy::Journal,
        false,
    );
    let mut writeback = None;
    let mut threads = None;
    let mut journal_mb: Option<u64> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().ok_or("--port N")?.parse()?,
            "--out" => out = Some(args.next().ok_or("--out DIR")?),
            "--aet" => aet = args.next().ok_or("--aet AE")?,
            "--max-pdu" => max_pdu = args.next().ok_or("--max-pdu N")?.parse()?,
            "--no-fsync" => fsync = FsyncPolicy::None,
            "--fsync-per-file" => fsync = FsyncPolicy::Durable,
            "--quiet" => quiet = true,
            "--journal-mb" => journal_mb = Some(args.next().ok_or("--journal-mb MiB")?.parse()?),
            "--threads" => threads = Some(args.next().ok_or("--threads N")?.parse()?),
            "--writeback" => writeback = Some(args.next().ok_or("--writeback BYTES")?.parse()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let out = out.ok_or("--out DIR is required")?;
    std::fs::create_dir_all(&out)?;
    let mut cfg = ScpConfig::new(&out);
    let mut policy = (*cfg.policy).clone();
    policy.ae_title = aet;
    policy.max_pdu = max_pdu;
    cfg.policy = Arc::new(policy);
    let mut sink = if fsync == FsyncPolicy::Journal {
        let o = journal_mb.map_or_else(
            xenrad_dimse::store::journal::JournalOptions::default,
            xenrad_dimse::store::journal::JournalOptions::with_lane_mib,
        );
        let (sink, recovery) = FileSink::open_with(&out, o)?;
        if !recovery.files.is_empty() && !quiet {
            println!("journal: {} instance(s) written back", recovery.files.len());
        }
        sink
    } else {
        FileSink::new(&out)
    };
    sink = sink.with_fsync(fsync);
    if let Some(w) = writeback {
        sink = sink.with_writeback_every(w);
    }
    cfg.sink = Arc::new(sink);
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = threads {
        rt.worker_threads(n);
    }
    let rt = rt.build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
        Server::new(cfg, Arc::new(StoreOnly))
            .with_log(move |c| match c {
                Completed::Store {
                    stored: Some(s), ..
                } if !quiet => {
                    println!(
                        "stored {} {} -> {}",
                        s.sop_class_uid,
                        s.sop_instance_uid,
                        s.path.display()
                    );
                }
                Completed::Store {
                    status,
                    sop_instance_uid,
                    stored: None,
                } => {
                    println!("failed {sop_instance_uid} (status 0x{status:04X})");
                }
                _ => {}
            })
            .run(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })?;
    Ok(())
}
