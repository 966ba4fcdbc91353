//! `xenrad-gateway`: the five Xenrad endpoints composed from the protocol crates,
//! on a durable embedded store (SQLite in WAL mode plus Part 10 files).
//!
//! | surface | default bind | crate |
//! |---|---|---|
//! | FHIR R4 (`/fhir/…`) | 127.0.0.1:8080 | `xenrad-fhir-model` |
//! | HL7 HTTP (`POST /v2/ingest`, `POST /v3/ingest`) | 127.0.0.1:8081 | `xenrad-hl7v2`, `xenrad-hl7v3` |
//! | MPPS HTTP (`POST /ingest`, MPPS-RS) | 127.0.0.1:8082 | `xenrad-mpps` |
//! | HL7 MLLP | 127.0.0.1:3000 | `xenrad-mllp` |
//! | DICOM C-STORE SCP | 127.0.0.1:11112 | `xenrad-dimse` |
//! | operator console (HTML, [`surface::console`]) | 127.0.0.1:8083 | all of them |

//!
//! Layers (nothing below calls upward; see the crate README for the import map):
//! - [`map`]: protocol message → typed facts (pure);
//! - [`project`]: facts → `xenrad_fhir_model` resources (pure);
//! - [`search`]: the search parameters served and the query vocabulary (pure);
//! - [`store`]: backend-neutral storage traits, SQLite under [`store::sqlite`], the
//!   query/retrieve index ([`store::qr`]);
//! - [`ingest`]: the use cases (parse once, map, project, store durably, acknowledge);
//! - [`surface`]: one module per endpoint, protocol glue only;
//! - this root: configuration and composition ([`Gateway`], [`run`]).

pub mod audit;
pub mod backup;
pub mod config_file;
pub mod ingest;
pub mod map;
pub mod metrics;
pub mod project;
pub mod search;
pub mod store;
pub mod surface;

use store::qr;
use surface::{console, dicom, fhir, hl7, http, limits, mllp, mpps, tls};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How the gateway writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Command-line and environment configuration of the gateway.
#[allow(clippy::struct_excessive_bools)] // one per on/off flag
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "xenrad-gateway",
    version,
    about = "All five Xenrad endpoints on an embedded durable store",
    long_about = "Serves all five Xenrad endpoints from one process: FHIR R4 (HTTP, default 127.0.0.1:8080), \
HL7 v2/v3 over HTTP (127.0.0.1:8081), MPPS over HTTP (127.0.0.1:8082), HL7 v2 over MLLP (TCP 127.0.0.1:3000) \
and a DICOM C-STORE SCP (DIMSE, TCP 127.0.0.1:11112). Every HTTP surface requires X-API-Key (except \
/fhir/metadata and /api/documentation) and serves /api/documentation, /api/documentation/openapi.json and /metrics. \
Data lives in --data-dir (SQLite in WAL mode plus DICOM Part 10 files); every acknowledgement follows durable storage."
)]
pub struct Config {
    /// A TOML file that can say everything these flags say: keys are the long flags
    /// (`fhir-addr = "0.0.0.0:8080"`, `dicom-allow = ["MOD1@10.0.0.5"]`, `mllp-commit-blocks
    /// = true`). A flag or its environment variable overrides the file; an unknown key is
    /// an error naming the line.
    #[arg(long, env = "XENRAD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// FHIR R4 surface.
    #[arg(long, env = "XENRAD_FHIR_ADDR", default_value = "127.0.0.1:8080")]
    pub fhir_addr: SocketAddr,
    /// HL7 over HTTP surface (`/v2/ingest`, `/v3/ingest`).
    #[arg(long, env = "XENRAD_HL7_ADDR", default_value = "127.0.0.1:8081")]
    pub hl7_addr: SocketAddr,
    /// MPPS over HTTP surface (`/ingest`, MPPS-RS).
    #[arg(long, env = "XENRAD_MPPS_ADDR", default_value = "127.0.0.1:8082")]
    pub mpps_addr: SocketAddr,
    /// HL7 v2 over MLLP (TCP).
    #[arg(long, env = "XENRAD_MLLP_ADDR", default_value = "127.0.0.1:3000")]
    pub mllp_addr: SocketAddr,
    /// DICOM C-STORE SCP (DIMSE over TCP).
    #[arg(long, env = "XENRAD_DICOM_ADDR", default_value = "127.0.0.1:11112")]
    pub dicom_addr: SocketAddr,
    /// Operator console (web pages behind the API key); `off` serves none. A console that
    /// cannot bind is reported and skipped: the doors keep serving.
    #[arg(long, env = "XENRAD_CONSOLE_ADDR", default_value = "127.0.0.1:8083")]
    pub console_addr: String,
    /// Entries the message log keeps (the console's Messages page; newest kept).
    #[arg(long, default_value_t = 100_000)]
    pub console_log_entries: u64,
    /// Message log entries (newest) that keep the raw content of a message that was not
    /// stored, so the console can show it and re-process it.
    #[arg(long, default_value_t = 2_000)]
    pub console_log_bodies: u64,
    /// AE title of the DICOM SCP.
    #[arg(long, env = "XENRAD_AE_TITLE", default_value = "XENRAD")]
    pub ae_title: String,
    /// Where the database and DICOM files live.
    #[arg(long, env = "XENRAD_DATA_DIR", default_value = "./xenrad-data")]
    pub data_dir: PathBuf,
    /// The database: a `postgres://user@host:port/db` URL puts the store on a PostgreSQL
    /// server that several gateways may share (built with the cargo feature `postgres`).
    /// Without it, the embedded SQLite in `--data-dir` (DICOM files stay in `--data-dir`
    /// either way).
    #[arg(long, env = "XENRAD_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
    /// An accepted API key (X-API-Key). Without any key, one is generated at first
    /// start and stored in the data dir.
    #[arg(long, env = "XENRAD_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// A file of accepted API keys, one per line: `name: key [scope ...]` (`#` comments).
    /// A scope is `SURFACE:ACCESS` (SURFACE `fhir`, `hl7`, `mpps`, `dicomweb` or `*`; ACCESS
    /// `read`, `write` or `*`) or `*`; no scope means every scope; the key may be given as
    /// `sha256:HEX`. Re-read on SIGHUP: removed keys are refused (401) at once, a key
    /// without the scope a request needs gets 403.
    #[arg(long, env = "XENRAD_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Do not keep the audit trail (AuditEvent per ingest, read, search, write and refused
    /// authentication; on by default).
    #[arg(long, env = "XENRAD_NO_AUDIT")]
    pub no_audit: bool,
    /// Log format on stderr: `text` or `json` (one object per line). Logs never
    /// carry message content or patient data; `XENRAD_LOG` sets the filter.
    #[arg(long, env = "XENRAD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Largest accepted HTTP request body, bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_body: usize,
    /// Largest accepted MLLP frame, bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_frame: usize,
    /// Answer MLLP senders with MLLP release 2 commit acknowledgement blocks (`<ACK>` once the
    /// message is durably stored, `<NAK>` otherwise) instead of HL7 ACK messages.
    #[arg(long, env = "XENRAD_MLLP_COMMIT_BLOCKS")]
    pub mllp_commit_blocks: bool,
    /// A C-MOVE destination (and Storage Commitment requester) of the DICOM port,
    /// `AE=HOST:PORT`; repeatable (or comma-separated in the environment variable).
    #[arg(long = "dicom-peer", env = "XENRAD_DICOM_PEERS", value_delimiter = ',')]
    pub dicom_peers: Vec<String>,
    /// The DICOMweb base URL announced by the FHIR `Endpoint/dicomweb` that every
    /// ImagingStudy references (default: the FHIR address with `/dicomweb`).
    #[arg(long, env = "XENRAD_DICOMWEB_URL")]
    pub dicomweb_url: Option<String>,
    /// The identifier system of accession numbers (FHIR `ServiceRequest.identifier` typed
    /// ACSN). Default: derived from the order's filler (else placer) assigning authority
    /// (`urn:oid:` of an ISO universal ID, else the namespace), else the sending application.
    #[arg(long, env = "XENRAD_ACCESSION_SYSTEM")]
    pub accession_system: Option<String>,
    /// Keep completed, discontinued and cancelled procedure steps on the Modality Worklist
    /// (with their SPS Status) instead of removing them.
    #[arg(long, env = "XENRAD_WORKLIST_KEEP_DONE")]
    pub worklist_keep_done: bool,
    /// Largest P-DATA-TF PDU we accept on the DICOM port, bytes.
    #[arg(long, default_value_t = 128 * 1024)]
    pub max_pdu: u32,
    /// HTTP: seconds allowed for a request head, for the next one on an idle keep-alive
    /// connection, and for a TLS handshake (slow or idle clients are closed).
    #[arg(long, env = "XENRAD_HTTP_HEADER_TIMEOUT", default_value_t = 10)]
    pub http_header_timeout: u64,
    /// HTTP: seconds allowed for the rest of a request, its body and its answer (408 beyond).
    #[arg(long, env = "XENRAD_HTTP_REQUEST_TIMEOUT", default_value_t = 60)]
    pub http_request_timeout: u64,
    /// HTTP: largest request head, bytes (431 beyond; at least 8192).
    #[arg(long, default_value_t = 16 * 1024)]
    pub http_max_header_bytes: usize,
    /// HTTP: simultaneous connections per surface; more are closed as they are accepted.
    #[arg(long, env = "XENRAD_HTTP_MAX_CONNECTIONS", default_value_t = 1024)]
    pub http_max_connections: usize,
    /// HTTP: simultaneous connections per surface from one IP address (so one client cannot
    /// starve the others; raise it behind a reverse proxy, whose address is every client's).
    #[arg(
        long,
        env = "XENRAD_HTTP_MAX_CONNECTIONS_PER_IP",
        default_value_t = 256
    )]
    pub http_max_connections_per_ip: usize,
    /// MLLP: seconds a connection may stay idle between messages.
    #[arg(long, env = "XENRAD_MLLP_IDLE_TIMEOUT", default_value_t = 300)]
    pub mllp_idle_timeout: u64,
    /// MLLP: seconds allowed for one frame, first byte to end block (a minimum rate).
    #[arg(long, env = "XENRAD_MLLP_FRAME_TIMEOUT", default_value_t = 60)]
    pub mllp_frame_timeout: u64,
    /// MLLP: simultaneous connections; more are closed as they are accepted.
    #[arg(long, default_value_t = 1024)]
    pub mllp_max_connections: usize,
    /// MLLP: simultaneous connections from one IP address.
    #[arg(long, default_value_t = 64)]
    pub mllp_max_connections_per_ip: usize,
    /// DICOM: seconds allowed for the A-ASSOCIATE-RQ after connecting (ARTIM, PS3.8 §9.1.5).
    #[arg(long, env = "XENRAD_DICOM_ARTIM_TIMEOUT", default_value_t = 30)]
    pub dicom_artim_timeout: u64,
    /// DICOM: seconds an established association may stay idle (0: no limit).
    #[arg(long, env = "XENRAD_DICOM_IDLE_TIMEOUT", default_value_t = 300)]
    pub dicom_idle_timeout: u64,
    /// DICOM: seconds allowed for one PDU, first byte to last (a minimum rate).
    #[arg(long, env = "XENRAD_DICOM_PDU_TIMEOUT", default_value_t = 60)]
    pub dicom_pdu_timeout: u64,
    /// DICOM: simultaneous associations; more are rejected transiently (PS3.8 table 9-21).
    #[arg(long, env = "XENRAD_DICOM_MAX_ASSOCIATIONS", default_value_t = 64)]
    pub dicom_max_associations: usize,
    /// DICOM: simultaneous associations from one IP address; more are rejected transiently
    /// (PS3.8 table 9-21: local limit exceeded), so one peer cannot starve the others.
    #[arg(
        long,
        env = "XENRAD_DICOM_MAX_ASSOCIATIONS_PER_IP",
        default_value_t = 32
    )]
    pub dicom_max_associations_per_ip: usize,
    /// Listen backlog of every listener: connections the kernel queues before they are
    /// accepted (tokio's default is 128; a burst beyond it has SYNs dropped and retried a
    /// second later, so a readiness probe behind a flood waited 1 s).
    #[arg(long, default_value_t = 1024)]
    pub listen_backlog: u32,
    /// Size of each lane of the DICOM write-ahead journal, MiB (four are created at first
    /// start in `<data-dir>/dicom/.xenrad-journal`; a C-STORE is acknowledged once its
    /// record there is durable).
    #[arg(long, env = "XENRAD_DICOM_JOURNAL_MB", default_value_t = 128)]
    pub dicom_journal_mb: u64,
    /// DICOM: accept only this calling AE title, optionally only from HOST (an IP address or
    /// a name resolved at start); repeatable. Others are rejected (PS3.8 table 9-21:
    /// calling AE title not recognized). Without it every calling AE title is accepted.
    #[arg(long = "dicom-allow", value_name = "AE[@HOST]")]
    pub dicom_allow: Vec<String>,
    /// DICOM: reject associations whose called AE title is not `--ae-title` (PS3.8 table
    /// 9-21: called AE title not recognized).
    #[arg(long)]
    pub dicom_check_called_ae: bool,
    /// DICOM: users file (`username:passcode` or `username` per line); User Identity
    /// Negotiation (PS3.7 D.3.3.7) is then required and verified against it.
    #[arg(long, value_name = "FILE")]
    pub dicom_users: Option<PathBuf>,
    /// TLS certificate chain (PEM) for the FHIR surface; with `--fhir-tls-key` it serves HTTPS.
    #[arg(long, requires = "fhir_tls_key")]
    pub fhir_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the FHIR surface.
    #[arg(long, requires = "fhir_tls_cert")]
    pub fhir_tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates on the FHIR surface must chain to
    /// (mutual TLS: clients without such a certificate are refused).
    #[arg(long, requires = "fhir_tls_cert")]
    pub fhir_tls_client_ca: Option<PathBuf>,
    /// TLS certificate chain (PEM) for the HL7 HTTP surface.
    #[arg(long, requires = "hl7_tls_key")]
    pub hl7_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the HL7 HTTP surface.
    #[arg(long, requires = "hl7_tls_cert")]
    pub hl7_tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates on the HL7 HTTP surface must chain to
    /// (mutual TLS: clients without such a certificate are refused).
    #[arg(long, requires = "hl7_tls_cert")]
    pub hl7_tls_client_ca: Option<PathBuf>,
    /// TLS certificate chain (PEM) for the MPPS surface.
    #[arg(long, requires = "mpps_tls_key")]
    pub mpps_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the MPPS surface.
    #[arg(long, requires = "mpps_tls_cert")]
    pub mpps_tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates on the MPPS surface must chain to
    /// (mutual TLS: clients without such a certificate are refused).
    #[arg(long, requires = "mpps_tls_cert")]
    pub mpps_tls_client_ca: Option<PathBuf>,
    /// TLS certificate chain (PEM) for MLLP (MLLPS).
    #[arg(long, requires = "mllp_tls_key")]
    pub mllp_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for MLLP.
    #[arg(long, requires = "mllp_tls_cert")]
    pub mllp_tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates on MLLP must chain to
    /// (mutual TLS: clients without such a certificate are refused).
    #[arg(long, requires = "mllp_tls_cert")]
    pub mllp_tls_client_ca: Option<PathBuf>,
    /// TLS certificate chain (PEM) for the DICOM port (PS3.15 B.1 DICOM TLS).
    #[arg(long, requires = "dicom_tls_key")]
    pub dicom_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the DICOM port.
    #[arg(long, requires = "dicom_tls_cert")]
    pub dicom_tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates on the DICOM port must chain to
    /// (mutual TLS: clients without such a certificate are refused).
    #[arg(long, requires = "dicom_tls_cert")]
    pub dicom_tls_client_ca: Option<PathBuf>,
}

type TlsFiles<'a> = (
    Option<&'a PathBuf>,
    Option<&'a PathBuf>,
    Option<&'a PathBuf>,
);

impl Config {
    /// The command line and environment, with `--config FILE` read when given
    /// ([`config_file`]).
    pub fn load() -> Result<Config, clap::Error> {
        config_file::load_from(std::env::args_os())
    }

    /// Certificate, key and client CA files of one listener.
    fn tls_files(&self, listener: &str) -> TlsFiles<'_> {
        match listener {
            "fhir" => (
                self.fhir_tls_cert.as_ref(),
                self.fhir_tls_key.as_ref(),
                self.fhir_tls_client_ca.as_ref(),
            ),
            "hl7" => (
                self.hl7_tls_cert.as_ref(),
                self.hl7_tls_key.as_ref(),
                self.hl7_tls_client_ca.as_ref(),
            ),
            "mpps" => (
                self.mpps_tls_cert.as_ref(),
                self.mpps_tls_key.as_ref(),
                self.mpps_tls_client_ca.as_ref(),
            ),
            "mllp" => (
                self.mllp_tls_cert.as_ref(),
                self.mllp_tls_key.as_ref(),
                self.mllp_tls_client_ca.as_ref(),
            ),
            "dicom" => (
                self.dicom_tls_cert.as_ref(),
                self.dicom_tls_key.as_ref(),
                self.dicom_tls_client_ca.as_ref(),
            ),
            _ => (None, None, None),
        }
    }
}

fn tls_for(
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
    client_ca: Option<&PathBuf>,
    alpn: &[&[u8]],
) -> std::io::Result<Option<tokio_rustls::TlsAcceptor>> {
    match (cert, key) {
        (Some(c), Some(k)) => tls::acceptor(c, k, client_ca.map(PathBuf::as_path), alpn).map(Some),
        _ => Ok(None),
    }
}

/// ALPN protocols offered on the HTTPS surfaces (HTTP/1.1 only). MLLP and DICOM
/// offer none: neither protocol has an ALPN id.
const HTTP_ALPN: &[&[u8]] = &[b"http/1.1"];

impl Config {
    /// The limits every HTTP surface applies.
    pub fn http_limits(&self) -> limits::HttpLimits {
        limits::HttpLimits {
            header_timeout: std::time::Duration::from_secs(self.http_header_timeout.max(1)),
            request_timeout: std::time::Duration::from_secs(self.http_request_timeout.max(1)),
            max_header_bytes: self.http_max_header_bytes,
            max_connections: self.http_max_connections,
            max_connections_per_ip: self.http_max_connections_per_ip,
        }
    }
}

/// Binds a listener (address reuse like tokio's `bind`) with an explicit backlog.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let s = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(backlog.max(1))
}

/// Serves one HTTP surface, over TLS when it has an acceptor, with the configured limits;
/// its open connections are the `xenrad_open_connections{door=…}` gauge.
fn serve_surface(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    limits: limits::HttpLimits,
    style: http::ErrorStyle,
    (metrics, door): (&metrics::Metrics, &'static str),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl std::future::Future<Output = std::io::Result<()>> + Send + 'static {
    let open = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let o = open.clone();
    metrics.sample(
        "xenrad_open_connections",
        "Open connections per door (HTTP surfaces, MLLP).",
        "gauge",
        &format!("door=\"{door}\""),
        move || o.load(std::sync::atomic::Ordering::Relaxed),
    );
    limits::serve(listener, router, acceptor, limits, style, open, shutdown)
}

/// Everything the surfaces share.
#[derive(Clone)]
pub struct Gateway {
    /// The durable store.
    pub store: store::Store,
    /// Metrics registry.
    pub metrics: metrics::Metrics,
    /// Accepted keys.
    pub keys: http::ApiKeys,
    /// The audit trail.
    pub audit: audit::Audit,
    /// Configuration.
    pub config: Arc<Config>,
    /// HL7 v2 message semantics (HTTP and MLLP share it and its counters).
    pub hl7v2: Arc<ingest::V2Handler>,
    /// HL7 v3 message semantics (`POST /v3/ingest`).
    pub hl7v3: Arc<ingest::V3Handler>,
    /// The query/retrieve index of the stored instances.
    pub images: Arc<qr::Images>,
    /// The Part 10 file store (C-STORE and STOW-RS).
    pub dicom_sink: Arc<xenrad_dimse::store::FileSink>,
    /// The operator console's tap on the HL7 doors (counts and the message log).
    pub console: ingest::log::Tap,
}

impl Config {
    /// The scheduled-workflow settings of this configuration.
    pub fn workflow(&self) -> ingest::worklist::WorkflowSettings {
        ingest::worklist::WorkflowSettings {
            order: map::order::OrderSettings {
                accession_system: self.accession_system.clone().filter(|s| !s.is_empty()),
            },
            keep_done: self.worklist_keep_done,
        }
    }
}

/// Reads the keys from the flag/env and the key file; when there are none, loads or
/// creates `<data-dir>/api-key` and says where it is. The flag's key is named `default`
/// and the generated one `generated`, both with every scope; the file's keys have their
/// names and scopes ([`surface::keys`]).
pub fn load_keys(config: &Config) -> std::io::Result<http::ApiKeys> {
    Ok(http::ApiKeys::from_keys(key_list(config)?))
}

fn key_list(config: &Config) -> std::io::Result<Vec<surface::keys::ApiKey>> {
    use surface::keys::{ApiKey, Scopes, parse_key_file};
    let mut keys = Vec::new();
    if let Some(k) = config.api_key.as_deref().filter(|k| !k.trim().is_empty()) {
        keys.push(ApiKey::new("default", k, Scopes::ALL));
    }
    if let Some(f) = &config.api_key_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", f.display())))?;
        let file = parse_key_file(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", f.display()),
            )
        })?;
        keys.extend(file);
    }
    if keys.is_empty() {
        keys.push(ApiKey::new(
            "generated",
            &generated_key(&config.data_dir)?,
            Scopes::ALL,
        ));
    }
    Ok(keys)
}

/// Re-reads the keys on every SIGHUP and replaces them: a key removed from the file is
/// refused from the next request on. A file that does not parse leaves the keys as they
/// were (logged), so a typo does not lock every client out.
fn reload_keys_on_sighup(config: Arc<Config>, keys: http::ApiKeys) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match key_list(&config) {
                    Ok(list) => {
                        let names: Vec<String> = list
                            .iter()
                            .map(|k| format!("{} ({})", k.name, k.scopes.describe()))
                            .collect();
                        keys.replace(list);
                        tracing::info!(keys = %names.join(", "), "API keys reloaded (SIGHUP)");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "API keys not reloaded (SIGHUP): the previous keys stay in force");
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (config, keys);
    Ok(())
}

fn generated_key(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("api-key");
    if let Ok(k) = std::fs::read_to_string(&path)
        && !k.trim().is_empty()
    {
        eprintln!("xenrad-gateway: API key is in {}", path.display());
        return Ok(k.trim().to_owned());
    }
    std::fs::create_dir_all(dir)?;
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw).map_err(std::io::Error::other)?;
    let key = raw.iter().fold(String::with_capacity(48), |mut k, b| {
        use std::fmt::Write as _;
        let _ = write!(k, "{b:02x}");
        k
    });
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    {
        use std::io::Write;
        let mut f = opts.open(&path)?;
        f.write_all(key.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    eprintln!(
        "xenrad-gateway: generated an API key, stored in {}",
        path.display()
    );
    Ok(key)
}

/// A future that resolves on Ctrl-C or SIGTERM. The handlers are installed when this
/// function is called (not when the future is first polled), so a signal that
/// arrives while the listeners are still starting is not lost. Needs a runtime.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Binds every surface, serves until Ctrl-C/SIGTERM, then drains and flushes.
pub async fn run(config: Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let stop_signal = shutdown_signal()?;
    let keys = load_keys(&config)?;
    let store = store::Store::open_database(config.database.as_deref(), &config.data_dir)?;
    let metrics = metrics::Metrics::default();
    let (images, report) = qr::Images::load(&store)?;
    if report.backfilled > 0 || !report.failed.is_empty() {
        tracing::warn!(
            indexed = report.indexed,
            backfilled = report.backfilled,
            failed = report.failed.len(),
            "query/retrieve index: instances indexed from their files, or not indexed"
        );
    }
    for (uid, e) in &report.failed {
        tracing::warn!(sop_instance_uid = %uid, error = %e, "not indexed for query/retrieve");
    }
    let dicom_sink = Arc::new(dicom::open_sink(&config)?);
    ingest::publish_endpoint(&store, &surface::dicomweb::dicomweb_url(&config)).await?;
    let audit = if config.no_audit {
        audit::Audit::disabled()
    } else {
        audit::Audit::start(store.clone())
    };
    let gw = Gateway {
        audit,
        images: Arc::new(images),
        dicom_sink,
        keys,
        hl7v2: Arc::new(ingest::v2_handler(&store, &metrics, &config)),
        hl7v3: Arc::new(ingest::v3_handler(&store, &metrics)),
        console: ingest::log::Tap::with_log(&store, console::log_bounds(&config)),
        config: Arc::new(config),
        store: store.clone(),
        metrics,
    };
    reload_keys_on_sighup(gw.config.clone(), gw.keys.clone())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let c = &gw.config;
    let tls = |listener: &str, alpn: &[&[u8]]| {
        let (cert, key, ca) = c.tls_files(listener);
        tls_for(cert, key, ca, alpn)
    };
    let fhir_tls = tls("fhir", HTTP_ALPN)?;
    let hl7_tls = tls("hl7", HTTP_ALPN)?;
    let mpps_tls = tls("mpps", HTTP_ALPN)?;
    let mllp_tls = tls("mllp", &[])?;
    let dicom_tls = tls("dicom", &[])?;
    let scheme = |t: &Option<tokio_rustls::TlsAcceptor>| if t.is_some() { "https" } else { "http" };
    let (fhir_s, hl7_s, mpps_s) = (scheme(&fhir_tls), scheme(&hl7_tls), scheme(&mpps_tls));
    let (mllp_s, dicom_s) = (
        if mllp_tls.is_some() { " (TLS)" } else { "" },
        if dicom_tls.is_some() { " (TLS)" } else { "" },
    );
    let fhir_l = listen(gw.config.fhir_addr, gw.config.listen_backlog)?;
    let hl7_l = listen(gw.config.hl7_addr, gw.config.listen_backlog)?;
    let mpps_l = listen(gw.config.mpps_addr, gw.config.listen_backlog)?;
    let mllp_l = listen(gw.config.mllp_addr, gw.config.listen_backlog)?;
    let dicom_l = listen(gw.config.dicom_addr, gw.config.listen_backlog)?;
    let mut tasks = tokio::task::JoinSet::new();
    let lim = gw.config.http_limits();
    let (fhir_style, problem) = (http::ErrorStyle::Fhir, http::ErrorStyle::Problem);
    tasks.spawn(serve_surface(
        fhir_l,
        fhir::router(gw.clone()),
        fhir_tls,
        lim,
        fhir_style,
        (&gw.metrics, "fhir"),
        stopped(),
    ));
    tasks.spawn(serve_surface(
        hl7_l,
        hl7::router(gw.clone()),
        hl7_tls,
        lim,
        problem,
        (&gw.metrics, "hl7"),
        stopped(),
    ));
    tasks.spawn(serve_surface(
        mpps_l,
        mpps::router(gw.clone()),
        mpps_tls,
        lim,
        problem,
        (&gw.metrics, "mpps"),
        stopped(),
    ));
    let mllp_server = mllp::server(&gw);
    let mllp_conns = mllp_server.clone();
    gw.metrics.sample(
        "xenrad_open_connections",
        "Open connections per door (HTTP surfaces, MLLP).",
        "gauge",
        "door=\"mllp\"",
        move || mllp_conns.connections().len() as u64,
    );
    let mllp_stop = stopped();
    tasks.spawn(async move {
        match mllp_tls {
            Some(a) => mllp_server.serve_tls(mllp_l, a, mllp_stop).await,
            None => mllp_server.serve(mllp_l, mllp_stop).await,
        }
    });
    let mut dicom_server = dicom::server(gw.clone())?;
    if let Some(a) = dicom_tls {
        dicom_server = dicom_server.with_tls(a);
    }
    let dicom_assocs = dicom_server.clone();
    gw.metrics.sample(
        "xenrad_open_associations",
        "DICOM associations being served.",
        "gauge",
        "door=\"dicom\"",
        move || dicom_assocs.active_associations() as u64,
    );
    for (outcome, a) in [("written", gw.audit.clone()), ("dropped", gw.audit.clone())] {
        gw.metrics.sample(
            "xenrad_audit_events_total",
            "Audit events durably written, or dropped because the queue was full.",
            "counter",
            &format!("outcome=\"{outcome}\""),
            move || {
                if outcome == "written" {
                    a.written()
                } else {
                    a.dropped()
                }
            },
        );
    }
    let dicom_stop = stopped();
    tasks.spawn(async move { dicom_server.run(dicom_l, dicom_stop).await });
    let console_at = match gw.config.console_addr.trim() {
        "off" | "" => None,
        a => match a
            .parse::<SocketAddr>()
            .map_err(std::io::Error::other)
            .and_then(|addr| listen(addr, gw.config.listen_backlog).map(|l| (addr, l)))
        {
            Ok((addr, l)) => {
                let stop = stopped();
                let g = gw.clone();
                // Its own set: a console that stops does not stop the doors.
                tokio::spawn(async move {
                    if let Err(e) =
                        console::serve(g.clone(), l, console::sections::extensions(&g), stop).await
                    {
                        tracing::error!(error = %e, "console stopped");
                    }
                });
                Some(addr)
            }
            Err(e) => {
                tracing::error!(addr = a, error = %e, "console not served");
                eprintln!("xenrad-gateway: console not served on {a}: {e}");
                None
            }
        },
    };
    if let Some(a) = console_at {
        eprintln!("xenrad-gateway: console http://{a}/");
    }
    eprintln!(
        "xenrad-gateway: FHIR {fhir_s}://{}/fhir  HL7 {hl7_s}://{}  MPPS {mpps_s}://{}  MLLP {}{mllp_s}  DICOM {}{dicom_s} (AE {})  data {}",
        gw.config.fhir_addr,
        gw.config.hl7_addr,
        gw.config.mpps_addr,
        gw.config.mllp_addr,
        gw.config.dicom_addr,
        gw.config.ae_title,
        gw.config.data_dir.display()
    );

    tokio::select! {
        () = stop_signal => eprintln!("xenrad-gateway: shutting down"),
        Some(r) = tasks.join_next() => {
            eprintln!("xenrad-gateway: a listener stopped: {r:?}");
        }
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    gw.console.flush().await;
    gw.audit.flush().await;
    store.close();
    Ok(())
}
