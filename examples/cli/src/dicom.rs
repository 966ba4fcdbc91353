//! `xenrad dicom …` subcommands: `scp` (storage SCP), `echo` (C-ECHO SCU) and `store`
//! (C-STORE SCU) over `xenrad-dimse`'s tokio adapter.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use xenrad_dimse::assoc::policy::{sop, ts};
use xenrad_dimse::net::{ClientConfig, ScuAssociation, Server};
use xenrad_dimse::scp::{Completed, ScpConfig};
use xenrad_dimse::store::journal::JournalOptions;
use xenrad_dimse::store::{FileSink, FsyncPolicy, parse_part10};

use super::CliResult;

/// DICOM TLS options (PS3.15 B.1), shared by `scp`, `echo` and `store`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Use DICOM TLS (implied by any other --tls-* option).
    #[arg(long)]
    pub tls: bool,
    /// Our certificate chain (PEM): the SCP's certificate, or the SCU's client certificate.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) trusted for the peer: the SCU verifies the SCP against them
    /// (required with TLS); the SCP then requires client certificates issued by them.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify in the SCP's certificate (SCU; default: the host of HOST:PORT).
    #[arg(long)]
    pub tls_server_name: Option<String>,
}

impl TlsArgs {
    pub(crate) fn enabled(&self) -> bool {
        self.tls || self.tls_cert.is_some() || self.tls_ca.is_some()
    }
}

mod tls {
    use super::TlsArgs;
    use std::io::{Error, ErrorKind};
    use std::path::Path;
    use std::sync::Arc;
    use tokio_rustls::rustls::{
        self, RootCertStore,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    };

    fn bad(what: &Path, e: &dyn std::fmt::Display) -> Error {
        Error::new(ErrorKind::InvalidInput, format!("{}: {e}", what.display()))
    }

    fn certs(path: &Path) -> std::io::Result<Vec<CertificateDer<'static>>> {
        let v: Vec<_> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(path, &e))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(path, &e))?;
        if v.is_empty() {
            return Err(bad(path, &"no certificate in the file"));
        }
        Ok(v)
    }

    fn roots(path: &Path) -> std::io::Result<Arc<RootCertStore>> {
        let mut r = RootCertStore::empty();
        for c in certs(path)? {
            r.add(c).map_err(|e| bad(path, &e))?;
        }
        Ok(Arc::new(r))
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// The SCP's acceptor: our certificate; client certificates required when a CA is given.
    pub fn acceptor(t: &TlsArgs) -> std::io::Result<tokio_rustls::TlsAcceptor> {
        let (Some(cert), Some(key)) = (&t.tls_cert, &t.tls_key) else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the SCP needs --tls-cert and --tls-key for TLS",
            ));
        };
        let chain = certs(cert)?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(cert, &e))?;
        let builder = match &t.tls_ca {
            Some(ca) => {
                let v = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
                    .build()
                    .map_err(|e| bad(ca, &e))?;
                builder.with_client_cert_verifier(v)
            }
            None => builder.with_no_client_auth(),
        };
        let cfg = builder
            .with_single_cert(chain, key_der)
            .map_err(|e| bad(key, &e))?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
    }

    /// The SCU's connector: the SCP verified against --tls-ca; our client certificate if given.
    pub fn connector(t: &TlsArgs) -> std::io::Result<tokio_rustls::TlsConnector> {
        let Some(ca) = &t.tls_ca else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the SCU needs --tls-ca to verify the SCP's certificate",
            ));
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(ca, &e))?
            .with_root_certificates(roots(ca)?);
        let cfg = match (&t.tls_cert, &t.tls_key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(
                    certs(cert)?,
                    PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?,
                )
                .map_err(|e| bad(key, &e))?,
            _ => builder.with_no_client_auth(),
        };
        Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
    }
}

/// Connects to `addr` in the clear or with DICOM TLS per `t`.
pub(crate) async fn connect(
    addr: &str,
    cfg: &ClientConfig,
    t: &TlsArgs,
) -> Result<ScuAssociation, Box<dyn std::error::Error + Send + Sync>> {
    if !t.enabled() {
        return Ok(ScuAssociation::connect(addr, cfg).await?);
    }
    let connector = tls::connector(t)?;
    let host = t.tls_server_name.clone().unwrap_or_else(|| {
        addr.rsplit_once(':')
            .map_or(addr, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string()
    });
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    Ok(ScuAssociation::connect_tls(addr, cfg, &connector, name).await?)
}

/// Who may associate with `xenrad dicom scp` (PS3.8 §7.1.1.3-4, PS3.7 D.3.3.7).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SecurityArgs {
    /// Accept only this calling AE title, optionally only from HOST (an IP address or a
    /// name resolved at start); repeatable. Others are rejected (PS3.8 table 9-21: calling
    /// AE title not recognized).
    #[arg(long = "dicom-allow", value_name = "AE[@HOST]")]
    pub dicom_allow: Vec<String>,
    /// Reject associations whose called AE title is not --aet (PS3.8 table 9-21: called AE
    /// title not recognized).
    #[arg(long)]
    pub dicom_check_called_ae: bool,
    /// Users file (`username:passcode` or `username` per line): User Identity Negotiation
    /// (PS3.7 D.3.3.7) is then required and verified against it.
    #[arg(long, value_name = "FILE")]
    pub dicom_users: Option<PathBuf>,
}

impl SecurityArgs {
    /// Sets the allow-list, the called AE check and the user identity policy.
    pub fn apply(&self, policy: &mut xenrad_dimse::assoc::AcceptorPolicy) -> Result<(), String> {
        policy.check_called_ae = self.dicom_check_called_ae;
        if !self.dicom_allow.is_empty() {
            let allowed = self
                .dicom_allow
                .iter()
                .map(|s| xenrad_dimse::net::allowed_caller(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--dicom-allow {e}"))?;
            policy.allowed_callers = Some(allowed);
        }
        if let Some(path) = &self.dicom_users {
            policy.user_identity = Some(
                xenrad_dimse::net::users_file(path).map_err(|e| format!("--dicom-users {e}"))?,
            );
        }
        Ok(())
    }
}

/// Subcommands of `xenrad dicom`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Runs a standalone storage SCP: stores every received instance as a Part 10 file
    /// under DIR and logs one line per instance.
    Scp {
        /// TCP port.
        #[arg(long, default_value_t = 11112)]
        port: u16,
        /// Storage directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Our AE title.
        #[arg(long, default_value = "XENRAD")]
        aet: String,
        /// Our maximum PDU length.
        #[arg(long, default_value_t = 128 * 1024)]
        max_pdu: u32,
        /// Maximum concurrent associations.
        #[arg(long, default_value_t = 64)]
        max_associations: usize,
        /// Skip fsync before acknowledging (faster, not crash-safe).
        #[arg(long, conflicts_with = "fsync_per_file")]
        no_fsync: bool,
        /// Make each instance durable on its own (fdatasync, rename, directory fsync)
        /// instead of through the write-ahead journal.
        #[arg(long)]
        fsync_per_file: bool,
        /// Size of each of the journal's four lanes, MiB (`DIR/.xenrad-journal`).
        #[arg(long, default_value_t = 128)]
        journal_mb: u64,
        /// Only log association errors and failures.
        #[arg(long, short)]
        quiet: bool,
        /// Answer C-FIND (Patient Root and Study Root, every level) over everything stored
        /// in --out: indexed at start and as instances arrive.
        #[arg(long)]
        qr: bool,
        /// Serve Modality Worklist C-FIND from the DICOM JSON (*.json) or Part 10 (*.wl,
        /// *.dcm) files in this folder, as DCMTK's wlmscpfs does.
        #[arg(long)]
        worklist: Option<PathBuf>,
        /// Most matches one C-FIND returns (then 0xA700).
        #[arg(long)]
        max_matches: Option<usize>,
        /// A C-MOVE destination or storage commitment requester, `AE=HOST:PORT`
        /// (repeatable).
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// Associations open at once for C-MOVE sub-operations and commitment reports
        /// (beyond: C-MOVE refused 0xA702).
        #[arg(long, default_value_t = 8)]
        max_sub_associations: usize,
        /// DICOM TLS.
        #[command(flatten)]
        tls: TlsArgs,
        /// Who may associate (boxed: it would make this the largest variant by far).
        #[command(flatten)]
        security: Box<SecurityArgs>,
    },
    /// C-FIND SCU: prints each match as one DICOM JSON object per line (PS3.18 F.2).
    Find {
        /// Peer, information model, level and keys.
        #[command(flatten)]
        query: crate::dicom_query::QueryArgs,
        /// Query the Modality Worklist Information Model (PS3.4 K.6) instead.
        #[arg(long)]
        worklist: bool,
        /// Send C-CANCEL after this many matches (PS3.7 9.3.2.3).
        #[arg(long)]
        cancel_after: Option<usize>,
        /// Run the same query this many times on one association (benchmarks).
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
    /// C-MOVE SCU: moves what the keys select to `--dest`; prints the final sub-operation
    /// counts as one JSON line.
    Move {
        /// Peer, information model, level and keys.
        #[command(flatten)]
        query: Box<crate::dicom_query::QueryArgs>,
        /// Move destination AE title (known to the peer).
        #[arg(long)]
        dest: String,
    },
    /// C-GET SCU: retrieves what the keys select on the same association and writes the
    /// instances as Part 10 files into `--out`; prints the final counts as one JSON line.
    Get {
        /// Peer, information model, level and keys.
        #[command(flatten)]
        query: Box<crate::dicom_query::QueryArgs>,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// A storage SOP class to receive (repeatable; default: the common ones).
        #[arg(long = "storage-class")]
        storage_classes: Vec<String>,
        /// Skip fsync before answering each C-STORE (faster, not crash-safe).
        #[arg(long)]
        no_fsync: bool,
    },
    /// Storage Commitment SCU (PS3.4 J): asks the peer to commit the instances of these
    /// Part 10 files; prints `committed UID` or `failed UID 0xNNNN` per instance.
    Commit {
        /// Peer host.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Peer port.
        #[arg(long, default_value_t = 11112)]
        port: u16,
        /// Our (calling) AE title.
        #[arg(long, default_value = "XENRAD_SCU")]
        aet: String,
        /// The peer's (called) AE title.
        #[arg(long, default_value = "ANY-SCP")]
        call: String,
        /// Seconds to wait for the N-EVENT-REPORT.
        #[arg(long, default_value_t = 60)]
        wait_secs: u64,
        /// Part 10 files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// DICOM TLS.
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Sends C-ECHO requests on one association.
    Echo {
        /// Peer address, `host:port`.
        addr: String,
        /// Calling AE title.
        #[arg(long, default_value = "XENRAD_SCU")]
        aet: String,
        /// Called AE title.
        #[arg(long, default_value = "ANY-SCP")]
        called_aet: String,
        /// Number of C-ECHO requests.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// DICOM TLS.
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Sends Part 10 files (directories are walked) with C-STORE on one association,
    /// proposing each file's transfer syntax plus the uncompressed ones.
    Store {
        /// Peer address, `host:port`.
        addr: String,
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Calling AE title.
        #[arg(long, default_value = "XENRAD_SCU")]
        aet: String,
        /// Called AE title.
        #[arg(long, default_value = "ANY-SCP")]
        called_aet: String,
        /// Our maximum PDU length.
        #[arg(long, default_value_t = 128 * 1024)]
        max_pdu: u32,
        /// DICOM TLS.
        #[command(flatten)]
        tls: TlsArgs,
    },
}

/// Runs one `xenrad dicom` subcommand.
pub fn run(cmd: Command) -> CliResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cmd {
            Command::Scp {
                port,
                out,
                aet,
                max_pdu,
                max_associations,
                no_fsync,
                fsync_per_file,
                journal_mb,
                quiet,
                qr,
                worklist,
                max_matches,
                peers,
                max_sub_associations,
                tls,
                security,
            } => {
                let query = Arc::new(crate::dicom_query::QueryServices::open(
                    &out,
                    qr,
                    worklist.as_ref(),
                    max_matches,
                )?);
                let retrieve =
                    crate::dicom_retrieve::retrieve_config(&peers, max_sub_associations)?;
                let policy = match (no_fsync, fsync_per_file) {
                    (true, _) => FsyncPolicy::None,
                    (_, true) => FsyncPolicy::Durable,
                    _ => FsyncPolicy::Journal,
                };
                scp(
                    port,
                    out,
                    aet,
                    max_pdu,
                    max_associations,
                    (policy, journal_mb),
                    quiet,
                    (query, retrieve),
                    (&tls, &security),
                )
                .await
            }
            Command::Move { query, dest } => crate::dicom_retrieve::move_(&query, &dest).await,
            Command::Get {
                query,
                out,
                storage_classes,
                no_fsync,
            } => crate::dicom_retrieve::get(&query, &out, &storage_classes, no_fsync).await,
            Command::Commit {
                host,
                port,
                aet,
                call,
                wait_secs,
                files,
                tls,
            } => {
                crate::dicom_retrieve::commit(
                    &host,
                    port,
                    &aet,
                    &call,
                    &files,
                    std::time::Duration::from_secs(wait_secs),
                    &tls,
                )
                .await
            }
            Command::Find {
                query,
                worklist,
                cancel_after,
                repeat,
            } => crate::dicom_query::find(&query, worklist, cancel_after, repeat).await,
            Command::Echo {
                addr,
                aet,
                called_aet,
                repeat,
                tls,
            } => echo(&addr, aet, called_aet, repeat, &tls).await,
            Command::Store {
                addr,
                paths,
                aet,
                called_aet,
                max_pdu,
                tls,
            } => store(&addr, &paths, aet, called_aet, max_pdu, &tls).await,
        }
    })
}

#[allow(clippy::too_many_arguments)]
async fn scp(
    port: u16,
    out: PathBuf,
    aet: String,
    max_pdu: u32,
    max_associations: usize,
    (fsync, journal_mb): (FsyncPolicy, u64),
    quiet: bool,
    (query, retrieve): (
        Arc<crate::dicom_query::QueryServices>,
        xenrad_dimse::net::RetrieveConfig,
    ),
    (tls_args, security): (&TlsArgs, &SecurityArgs),
) -> CliResult {
    std::fs::create_dir_all(&out)?;
    let sink = if fsync == FsyncPolicy::Journal {
        // Opening the journal replays what a crash left in it before the port opens.
        let opts = JournalOptions::with_lane_mib(journal_mb);
        let (sink, recovery) = FileSink::open_with(&out, opts)?;
        if !recovery.files.is_empty() {
            eprintln!(
                "xenrad dicom scp: journal: {} instance(s) written back after an unclean stop",
                recovery.files.len()
            );
        }
        sink
    } else {
        FileSink::new(&out).with_fsync(fsync)
    };
    let mut cfg = ScpConfig::with_sink(Arc::new(sink));
    let mut policy = (*cfg.policy).clone();
    policy.ae_title = aet;
    policy.max_pdu = max_pdu;
    policy.abstract_syntaxes.extend(query.sop_classes());
    policy
        .abstract_syntaxes
        .extend(crate::dicom_retrieve::RetrieveHandler::sop_classes(&query));
    security.apply(&mut policy)?;
    cfg.policy = Arc::new(policy);
    cfg.max_associations = max_associations;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    eprintln!("xenrad dicom scp: listening on {}", listener.local_addr()?);
    let handler = crate::dicom_retrieve::RetrieveHandler {
        inner: crate::dicom_query::ScpHandler {
            query: query.clone(),
        },
        held: crate::dicom_retrieve::Held::scan(&out),
        query,
    };
    let mut server = Server::new(cfg, Arc::new(handler)).with_retrieve(retrieve);
    if tls_args.enabled() {
        server = server.with_tls(tls::acceptor(tls_args)?);
        eprintln!(
            "xenrad dicom scp: DICOM TLS{}",
            if tls_args.tls_ca.is_some() {
                ", client certificates required"
            } else {
                ""
            }
        );
    }
    let server = server.with_log(move |c| match c {
        Completed::Store {
            status,
            sop_instance_uid,
            stored,
        } => {
            if let Some(s) = stored {
                if !quiet {
                    println!(
                        "stored {} {} {} bytes from {} -> {} (status 0x{status:04X})",
                        s.sop_class_uid,
                        s.sop_instance_uid,
                        s.dataset_len,
                        s.calling_ae,
                        s.path.display()
                    );
                }
            } else {
                println!("failed {sop_instance_uid} (status 0x{status:04X})");
            }
        }
        // Refusals are always logged (user names, never passcodes).
        Completed::Refused(r) => eprintln!("{r}"),
        Completed::Echo if !quiet => println!("echo"),
        Completed::Association(a) if !quiet || a.starts_with("abort") => eprintln!("{a}"),
        _ => {}
    });
    server
        .run(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

async fn echo(addr: &str, aet: String, called: String, repeat: u32, tls: &TlsArgs) -> CliResult {
    let cfg = ClientConfig {
        calling_ae: aet,
        called_ae: called,
        contexts: vec![(sop::VERIFICATION.into(), vec![ts::IMPLICIT_VR_LE.into()])],
        max_pdu: 16384,
        timeouts: xenrad_dimse::assoc::Timeouts::default(),
    };
    let mut a = connect(addr, &cfg, tls).await?;
    let mut failed = 0;
    for i in 0..repeat {
        let t = Instant::now();
        let r = a.echo().await?;
        println!(
            "C-ECHO {}: status 0x{:04X} in {:.1} ms",
            i + 1,
            r.status,
            t.elapsed().as_secs_f64() * 1e3
        );
        failed += u32::from(r.status != 0);
    }
    a.release().await?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn collect(paths: &[PathBuf], out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            collect(&entries, out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(())
}

#[allow(clippy::cast_precision_loss)] // a display figure
fn megabytes(b: u64) -> f64 {
    b as f64 / 1e6
}

/// A file to send: its File Meta facts only (the data set is streamed from the file when it
/// is sent, never held whole in memory).
struct Item {
    path: PathBuf,
    class: String,
    ts: String,
    /// Data set bytes (file size after the File Meta).
    len: u64,
}

fn load(path: &Path) -> Option<Item> {
    use std::io::Read;
    // The File Meta group is small (PS3.10 7.1): 4 KiB holds a usual one, 64 KiB any real one.
    let mut head = Vec::with_capacity(4 * 1024);
    let mut f = std::fs::File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    Read::by_ref(&mut f)
        .take(4 * 1024)
        .read_to_end(&mut head)
        .ok()?;
    if parse_part10(&head).is_none() && head.len() == 4 * 1024 {
        Read::by_ref(&mut f)
            .take(60 * 1024)
            .read_to_end(&mut head)
            .ok()?;
    }
    let p = parse_part10(&head)?;
    Some(Item {
        path: path.to_path_buf(),
        class: p.sop_class_uid.to_string(),
        ts: p.transfer_syntax.to_string(),
        len: size.saturating_sub(p.dataset_offset as u64),
    })
}

async fn store(
    addr: &str,
    paths: &[PathBuf],
    aet: String,
    called: String,
    max_pdu: u32,
    tls: &TlsArgs,
) -> CliResult {
    let mut files = Vec::new();
    collect(paths, &mut files)?;
    let mut items = Vec::new();
    for f in &files {
        match load(f) {
            Some(i) => items.push(i),
            None => eprintln!("skipped {} (not a Part 10 file)", f.display()),
        }
    }
    // Per SOP class: one presentation context per file transfer syntax (alone, so the SCP
    // can accept it as is: no transcoding here), plus one with the uncompressed ones.
    let mut contexts: Vec<(String, Vec<String>)> = Vec::new();
    for i in &items {
        if contexts.len() >= 126 {
            break;
        }
        if !contexts
            .iter()
            .any(|(c, t)| *c == i.class && t.len() == 1 && t[0] == i.ts)
        {
            contexts.push((i.class.clone(), vec![i.ts.clone()]));
        }
        if !contexts.iter().any(|(c, t)| *c == i.class && t.len() == 2) {
            contexts.push((
                i.class.clone(),
                vec![
                    ts::EXPLICIT_VR_LE.to_string(),
                    ts::IMPLICIT_VR_LE.to_string(),
                ],
            ));
        }
    }
    let cfg = ClientConfig {
        calling_ae: aet,
        called_ae: called,
        contexts,
        max_pdu,
        timeouts: xenrad_dimse::assoc::Timeouts::default(),
    };
    let mut a = connect(addr, &cfg, tls).await?;
    let tty = std::io::stderr().is_terminal();
    let (mut ok, mut bad, mut bytes) = (0usize, 0usize, 0u64);
    let start = Instant::now();
    // Only the file's own transfer syntax can be sent without transcoding: the data set
    // bytes after the File Meta are streamed from the file into P-DATA as they are, the
    // next file read while the peer answers the current one.
    let item_paths: Vec<PathBuf> = items.iter().map(|i| i.path.clone()).collect();
    let mut lost = None;
    let r = a
        .store_files(&item_paths, None, |n, r| {
            let i = &items[n];
            match r {
                Ok(r) if r.status == 0 || r.status & 0xF000 == 0xB000 => {
                    ok += 1;
                    bytes += i.len;
                }
                Ok(r) => {
                    bad += 1;
                    eprintln!("{}: status 0x{:04X}", i.path.display(), r.status);
                }
                Err(e) => {
                    bad += 1;
                    eprintln!("{}: {e}", i.path.display());
                }
            }
            if tty {
                let mb = megabytes(bytes);
                eprint!(
                    "\r[{}/{}] {mb:.1} MB, {:.1} MB/s   ",
                    n + 1,
                    items.len(),
                    mb / start.elapsed().as_secs_f64().max(1e-9)
                );
                let _ = std::io::stderr().flush();
            }
            true
        })
        .await;
    if let Err(e) = r {
        // The association cannot carry more: the rest are not sent.
        bad = items.len() - ok;
        lost = Some(e);
    }
    if tty {
        eprintln!();
    }
    if let Some(e) = lost {
        eprintln!("association lost: {e}");
    } else {
        let _ = a.release().await;
    }
    println!(
        "sent {ok} of {} instance(s), {bad} failed, {:.1} MB in {:.2} s",
        items.len(),
        megabytes(bytes),
        start.elapsed().as_secs_f64()
    );
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
