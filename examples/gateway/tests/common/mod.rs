//! Fixtures shared by the gateway's end-to-end tests: the gateway binary on free loopback
//! ports with a fresh data dir, free ports, the peers switch, an HL7 v2 sender over MLLP.
//! Each test binary uses a part of it (`mod common;`), hence `dead_code` is allowed.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The API key every test gateway runs with (`XENRAD_API_KEY`).
pub const KEY: &str = "test-key-0123456789";

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Whether the real peers are installed (`eval "$(scripts/peers.sh)"`); says why not.
pub fn peers() -> bool {
    if std::env::var_os("XENRAD_PEERS").is_some() {
        true
    } else {
        println!("skipped: real peers not installed (eval \"$(scripts/peers.sh)\")");
        false
    }
}

/// Waits up to 30 s until something listens on `addr`.
pub fn wait_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh data dir name under the temp dir for one gateway (`tag` names the test file).
pub fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "xenrad-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ))
}

/// The gateway binary on loopback ports; killed and its data dir removed when dropped
/// (a view with `child: None` of a gateway started elsewhere is never killed).
pub struct Gateway {
    /// The running process, if this value started it.
    pub child: Option<Child>,
    /// Arguments after the fixed ones (`--ae-title XENRAD --dicom-journal-mb 4`).
    pub extra: Vec<String>,
    /// Where the gateway's stderr goes (inherited when `None`).
    pub log_file: Option<PathBuf>,
    /// Drop the gateway's stderr (when no `log_file`).
    pub quiet: bool,
    /// The data dir.
    pub dir: PathBuf,
    /// FHIR listener.
    pub fhir: SocketAddr,
    /// HL7 over HTTP listener.
    pub hl7: SocketAddr,
    /// MPPS over HTTP listener.
    pub mpps: SocketAddr,
    /// MLLP listener.
    pub mllp: SocketAddr,
    /// DICOM listener.
    pub dicom: SocketAddr,
}

impl Gateway {
    /// A gateway on fresh free ports in `dir`, not running yet.
    pub fn new(dir: PathBuf, extra: Vec<String>) -> Gateway {
        Gateway {
            child: None,
            extra,
            log_file: None,
            quiet: false,
            dir,
            fhir: loopback(free_port()),
            hl7: loopback(free_port()),
            mpps: loopback(free_port()),
            mllp: loopback(free_port()),
            dicom: loopback(free_port()),
        }
    }

    /// Starts a gateway with a fresh data dir named after `tag` and these extra arguments.
    pub fn launch(tag: &str, extra: Vec<String>) -> Gateway {
        let mut g = Gateway::new(temp_dir(tag), extra);
        g.spawn();
        g
    }

    /// Starts the process and waits until every listener accepts connections.
    pub fn spawn(&mut self) {
        let stderr = match (&self.log_file, self.quiet) {
            (Some(f), _) => Stdio::from(std::fs::File::create(f).expect("log file")),
            (None, true) => Stdio::null(),
            (None, false) => Stdio::inherit(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_xenrad-gateway"))
            .args(["--fhir-addr", &self.fhir.to_string()])
            .args(["--hl7-addr", &self.hl7.to_string()])
            .args(["--mpps-addr", &self.mpps.to_string()])
            .args(["--mllp-addr", &self.mllp.to_string()])
            .args(["--dicom-addr", &self.dicom.to_string()])
            .args(["--ae-title", "XENRAD", "--dicom-journal-mb", "4"])
            .arg("--data-dir")
            .arg(&self.dir)
            .args(&self.extra)
            .env("XENRAD_API_KEY", KEY)
            .env_remove("XENRAD_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start xenrad-gateway");
        self.child = Some(child);
        for addr in [self.fhir, self.hl7, self.mpps, self.mllp, self.dicom] {
            wait_port(addr, "the gateway");
        }
    }

    /// SIGTERM, then wait: graceful shutdown must end the process by itself, successfully.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = c.try_wait().unwrap() {
                    assert!(status.success(), "gateway exited with {status}");
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    panic!("gateway did not stop within 20 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// `stop`, then `spawn` on the same ports and data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The DICOM port, as peers' command lines take it.
    pub fn port(&self) -> String {
        self.dicom.port().to_string()
    }

    /// `http://{addr}{path}` (a method so that calls read `g.url(g.fhir, ..)`).
    #[allow(clippy::unused_self)]
    pub fn url(&self, addr: SocketAddr, path: &str) -> String {
        format!("http://{addr}{path}")
    }

    /// The FHIR base URL.
    pub fn base(&self) -> String {
        format!("http://{}/fhir", self.fhir)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HL7 v2 message over MLLP (line ends `\n` or `\r`); the ACK's text, segments on
/// `\n`, without the MLLP frame.
pub fn mllp(addr: SocketAddr, msg: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut frame = vec![0x0b];
    frame.extend_from_slice(msg.replace('\n', "\r").as_bytes());
    frame.extend_from_slice(&[0x1c, 0x0d]);
    s.write_all(&frame).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(&[0x1c, 0x0d]) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "MLLP connection closed before the ACK");
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out)
        .trim_matches(['\x0b', '\x1c', '\r'])
        .replace('\r', "\n")
}

/// MSA-1 (the acknowledgement code) of an ACK; empty without an MSA segment.
pub fn msa(ack: &str) -> String {
    ack.split(['\r', '\n'])
        .find(|s| s.starts_with("MSA"))
        .and_then(|s| s.split('|').nth(1))
        .unwrap_or_default()
        .to_owned()
}
