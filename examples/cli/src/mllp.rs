//! `xenrad mllp …` subcommands: `send`, `listen` and `load` over `xenrad-mllp`.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use xenrad_mllp::client::{Client, ClientConfig, Response};
use xenrad_mllp::hl7::{Hl7Handler, MessageKey, MessageStore, StoreError, Stored};
use xenrad_mllp::server::{ConnectionEnd, ConnectionInfo, Handler, Reply, Server, ServerConfig};
use xenrad_mllp::{Decoder, DecoderConfig, Frame, peek};

use super::{CliResult, read_input};

/// Subcommands of `xenrad mllp`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Sends every message in the files (CR/LF-separated or already MLLP-framed; `-` is
    /// stdin) and prints each ACK's MSA-1 and MSA-2. Exits 1 if any message is not
    /// acknowledged with AA/CA (or a release 2 commit block).
    Send {
        /// Receiver address, `host:port`.
        addr: String,
        /// Files holding one or more HL7 v2 messages.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Seconds to wait for each ACK.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Only print failures and the summary.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Runs a standalone listener that acknowledges every message with an ACK built by
    /// xenrad-hl7v2 (AA in original mode; CA/none in enhanced mode as MSH-15 asks; AR for
    /// unparseable input), optionally storing each one durably first.
    Listen {
        /// TCP port.
        #[arg(long, short)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Store every message as a file in this directory (fsynced before the ACK);
        /// duplicates (same sender and MSH-10) are acknowledged again but not stored twice.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Largest accepted message in bytes.
        #[arg(long, default_value_t = xenrad_mllp::DEFAULT_MAX_FRAME_SIZE)]
        max_frame: usize,
        /// Print one line per message (connection, control id, size; never content).
        #[arg(long)]
        verbose: bool,
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Load generator: sends the messages of FILE over N connections, stop-and-wait on each,
    /// and prints throughput and ACK latency percentiles.
    Load {
        /// Receiver address, `host:port`.
        addr: String,
        /// File of messages (framed or CR/LF-separated).
        file: PathBuf,
        /// Parallel connections.
        #[arg(long, short, default_value_t = 1)]
        connections: usize,
        /// Messages to send in total (cycling through the file; default: the file once).
        #[arg(long, short = 'n')]
        count: Option<usize>,
    },
}

/// Runs one `xenrad mllp` subcommand.
pub fn run(cmd: Command) -> CliResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cmd {
        Command::Send {
            addr,
            files,
            timeout,
            quiet,
        } => rt.block_on(send(&addr, &files, timeout, quiet)),
        Command::Listen {
            port,
            host,
            store,
            max_frame,
            verbose,
            seconds,
        } => rt.block_on(listen(&host, port, store, max_frame, verbose, seconds)),
        Command::Load {
            addr,
            file,
            connections,
            count,
        } => rt.block_on(load(&addr, &file, connections, count)),
    }
}

/// Splits file content into HL7 messages: an MLLP-framed stream is deframed; otherwise a new
/// message starts at every `MSH` segment, segments being separated by CR, LF or CRLF (and
/// re-joined with CR, the HL7 segment terminator, HL7 v2.5.1 ch. 2.5.2).
pub fn split_messages(data: &[u8]) -> Result<Vec<Bytes>, xenrad_mllp::DecodeError> {
    if data.contains(&xenrad_mllp::frame::START_BLOCK) {
        let mut dec = Decoder::new(DecoderConfig::default().max_frame_size(usize::MAX));
        let mut buf = BytesMut::from(data);
        let mut out = Vec::new();
        while let Some(f) = dec.decode_eof(&mut buf)? {
            if let Frame::Message(m) = f {
                out.push(m);
            }
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for seg in data
        .split(|&b| b == b'\r' || b == b'\n')
        .filter(|s| !s.iter().all(u8::is_ascii_whitespace))
    {
        if seg.starts_with(b"MSH") && !cur.is_empty() {
            out.push(Bytes::from(std::mem::take(&mut cur)));
        }
        cur.extend_from_slice(seg);
        cur.push(b'\r');
    }
    if !cur.is_empty() {
        out.push(Bytes::from(cur));
    }
    Ok(out)
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Progress {
    total: usize,
    enabled: bool,
    last: usize,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            enabled: total > 300 && std::io::stderr().is_terminal(),
            last: usize::MAX,
        }
    }

    fn tick(&mut self, done: usize) {
        if !self.enabled {
            return;
        }
        let pct = done * 100 / self.total.max(1);
        if pct == self.last {
            return;
        }
        self.last = pct;
        let bar = "#".repeat(pct / 2) + &" ".repeat(50 - pct / 2);
        eprint!("\r[{bar}] {done}/{} ({pct}%)", self.total);
        if done == self.total {
            eprintln!();
        }
    }
}

async fn send(addr: &str, files: &[PathBuf], timeout: u64, quiet: bool) -> CliResult {
    let mut messages = Vec::new();
    for f in files {
        let data = read_input(f)?;
        let msgs = split_messages(&data).map_err(|e| format!("{}: {e}", f.display()))?;
        messages.extend(
            msgs.into_iter()
                .enumerate()
                .map(|(i, m)| (f.display().to_string(), i + 1, m)),
        );
    }
    let config = {
        let mut c = ClientConfig::default();
        c.ack_timeout = Duration::from_secs(timeout);
        c
    };
    let mut client = Client::new(addr, config);
    let mut progress = Progress::new(messages.len());
    let quiet = quiet || progress.enabled;
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut stdout = std::io::stdout().lock();
    for (n, (file, i, msg)) in messages.iter().enumerate() {
        let id = show(peek::control_id(msg).unwrap_or_default());
        match client.send(msg).await {
            Ok(r) => {
                let (code, acked) = match &r {
                    Response::Ack(_) => (
                        show(r.code().unwrap_or_default()),
                        show(r.control_id().unwrap_or_default()),
                    ),
                    Response::CommitAck => ("ACK(R2)".to_owned(), id.clone()),
                    Response::CommitNak => ("NAK(R2)".to_owned(), id.clone()),
                };
                if r.is_accept() {
                    ok += 1;
                } else {
                    failed += 1;
                }
                if !quiet || !r.is_accept() {
                    writeln!(stdout, "{file}#{i}\t{code}\t{acked}")?;
                }
            }
            Err(e) => {
                failed += 1;
                writeln!(
                    stdout,
                    "{file}#{i}\tERROR\t{id}\t{}",
                    super::with_causes(&e)
                )?;
            }
        }
        progress.tick(n + 1);
    }
    eprintln!(
        "sent {}, accepted {ok}, not accepted {failed}",
        messages.len()
    );
    Ok(if failed == 0 && !messages.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Durable store for `listen --store DIR`: one file per message, fsynced before the ACK;
/// keys already stored are reported as duplicates and not written again.
struct DirStore {
    dir: PathBuf,
    seen: Mutex<HashSet<MessageKey>>,
    seq: AtomicU64,
}

impl MessageStore for DirStore {
    async fn store(&self, key: &MessageKey, msg: Bytes) -> Result<Stored, StoreError> {
        if !self.seen.lock().expect("lock").insert(key.clone()) {
            return Ok(Stored::Duplicate);
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let safe: String = key
            .control_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = self.dir.join(format!("{n:08}-{safe}.hl7"));
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&msg)?;
            f.sync_all()
        })
        .await;
        // Not stored: forget the key so the sender's resend is stored.
        let forget = || self.seen.lock().expect("lock").remove(key);
        match written {
            Ok(Ok(())) => Ok(Stored::New),
            Ok(Err(e)) => {
                forget();
                Err(StoreError::with_source("writing the message file", e))
            }
            Err(e) => {
                forget();
                Err(StoreError::with_source("store task failed", e))
            }
        }
    }
}

/// Non-durable store for `listen` without `--store`: remembers keys only, for duplicate
/// suppression.
#[derive(Default)]
struct KeyStore {
    seen: Mutex<HashSet<MessageKey>>,
}

impl MessageStore for KeyStore {
    async fn store(&self, key: &MessageKey, _msg: Bytes) -> Result<Stored, StoreError> {
        let mut seen = self.seen.lock().expect("lock");
        // Look up first: a duplicate costs no copy of the key.
        Ok(if seen.contains(key) {
            Stored::Duplicate
        } else {
            seen.insert(key.clone());
            Stored::New
        })
    }
}

/// Logs one line per message (never its content) around the HL7 handler.
struct Verbose<H> {
    inner: H,
    verbose: bool,
}

impl<H: Handler> Handler for Verbose<H> {
    async fn handle(&self, msg: Bytes, conn: &ConnectionInfo) -> Reply {
        if !self.verbose {
            return self.inner.handle(msg, conn).await;
        }
        let (id, len) = (show(peek::control_id(&msg).unwrap_or_default()), msg.len());
        let reply = self.inner.handle(msg, conn).await;
        let answer = match reply.frame() {
            Some(Frame::Message(a)) => show(peek::msa(a).map(|m| m.0).unwrap_or_default()),
            Some(Frame::CommitAck) => "ACK(R2)".to_owned(),
            Some(Frame::CommitNak) => "NAK(R2)".to_owned(),
            None => "-".to_owned(),
        };
        println!(
            "conn={} peer={} id={id} bytes={len} ack={answer}",
            conn.id, conn.peer
        );
        reply
    }

    fn closed(&self, conn: &ConnectionInfo, end: &ConnectionEnd) {
        if self.verbose || !matches!(end, ConnectionEnd::PeerClosed | ConnectionEnd::Shutdown) {
            let c = conn.counters.snapshot();
            eprintln!(
                "conn={} peer={} closed: {end:?}; frames={} in={}B out={}B garbage={}B errors={}",
                conn.id, conn.peer, c.frames, c.bytes_in, c.bytes_out, c.garbage_bytes, c.errors
            );
        }
    }
}

async fn listen(
    host: &str,
    port: u16,
    store: Option<PathBuf>,
    max_frame: usize,
    verbose: bool,
    seconds: Option<u64>,
) -> CliResult {
    if let Some(dir) = &store {
        std::fs::create_dir_all(dir)?;
    }
    let listener = tokio::net::TcpListener::bind((host, port)).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    let config = {
        let mut c = ServerConfig::default();
        c.decoder = DecoderConfig::default().max_frame_size(max_frame);
        c
    };
    match store {
        Some(dir) => {
            let store = DirStore {
                dir,
                seen: Mutex::default(),
                seq: AtomicU64::new(0),
            };
            run_listener(listener, config, store, verbose, seconds).await
        }
        None => run_listener(listener, config, KeyStore::default(), verbose, seconds).await,
    }
}

async fn run_listener<S: MessageStore>(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    store: S,
    verbose: bool,
    seconds: Option<u64>,
) -> CliResult {
    let server = Server::new(
        Verbose {
            inner: Hl7Handler::new(store),
            verbose,
        },
        config,
    );
    let stop = async move {
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    server.serve(listener, stop).await?;
    let t = server.totals();
    let h = server.handler().inner.stats();
    eprintln!(
        "listen: frames={} in={}B out={}B garbage={}B discarded={}B errors={} stored={} duplicates={} rejected={} store_errors={}",
        t.frames,
        t.bytes_in,
        t.bytes_out,
        t.garbage_bytes,
        t.discarded_bytes,
        t.errors,
        h.stored,
        h.duplicates,
        h.rejected,
        h.store_errors
    );
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::cast_precision_loss)] // message counts far below 2^52
async fn load(addr: &str, file: &Path, connections: usize, count: Option<usize>) -> CliResult {
    let messages = split_messages(&read_input(file)?)?;
    if messages.is_empty() {
        return Err("no messages in the file".into());
    }
    let total = count.unwrap_or(messages.len());
    let connections = connections.max(1);
    let messages = std::sync::Arc::new(messages);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let messages = std::sync::Arc::clone(&messages);
        let addr = addr.to_owned();
        // Connection c sends messages c, c + N, c + 2N, ...
        let mine: Vec<usize> = (c..total).step_by(connections).collect();
        tasks.spawn(async move {
            let mut client = Client::new(addr, ClientConfig::default());
            let mut lat = Vec::with_capacity(mine.len());
            let mut failed = 0usize;
            for i in mine {
                let msg = &messages[i % messages.len()];
                let t = Instant::now();
                match client.send(msg).await {
                    Ok(r) if r.is_accept() => lat.push(t.elapsed()),
                    _ => failed += 1,
                }
            }
            (lat, failed)
        });
    }
    let mut lat = Vec::with_capacity(total);
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        let (l, f) = r?;
        lat.extend(l);
        failed += f;
    }
    let elapsed = start.elapsed();
    lat.sort_unstable();
    let pct = |permille: usize| {
        lat.get((lat.len() * permille / 1000).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!(
        "connections={connections} messages={} failed={failed} seconds={:.3} msg_per_s={:.0} p50_us={:.0} p99_us={:.0} max_us={:.0}",
        lat.len(),
        elapsed.as_secs_f64(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        pct(500),
        pct(990),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_plain_and_framed_files_alike() {
        let plain = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\nPID|1\n\nMSH|^~\\&|A|B|C|D|20240101||ADT^A01|2|P|2.5.1\r\nPID|2\r\n";
        let msgs = split_messages(plain).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            &msgs[1][..],
            b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|2|P|2.5.1\rPID|2\r"
        );
        let mut framed = Vec::new();
        for m in &msgs {
            framed.push(0x0b);
            framed.extend_from_slice(m);
            framed.extend_from_slice(b"\x1c\r\n");
        }
        assert_eq!(split_messages(&framed).unwrap(), msgs);
    }
}
