//! End-to-end tests of `xenrad-gateway` with real clients: the reference page's curl
//! commands, raw MLLP sockets from Python, DCMTK, pynetdicom and headless Chromium.
//!
//! Each test starts the gateway binary on free loopback ports with a fresh data dir.
//! Peers come from `scripts/peers.sh` (`XENRAD_PEERS=1`); without it the tests that
//! need a peer print why they are skipped.
#![allow(missing_docs)]

use serde_json::Value;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "test-key-0123456789";

/// Reference page (../shared/seeds/000_8504d27a6240d7c2.txt) ADT^A08.
const REF_ADT: &str = "MSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|1|P|2.5.1\rPID|1||ID1||Doe^John||19800101|M\r";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Gateway {
    child: Option<Child>,
    dir: PathBuf,
    fhir: SocketAddr,
    hl7: SocketAddr,
    mpps: SocketAddr,
    mllp: SocketAddr,
    dicom: SocketAddr,
}

impl Gateway {
    fn start() -> Gateway {
        let dir = std::env::temp_dir().join(format!("xenrad-e2e-{}-{}", std::process::id(), free_port()));
        Gateway::start_in(dir)
    }

    fn start_in(dir: PathBuf) -> Gateway {
        let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let mut g = Gateway {
            child: None,
            dir,
            fhir: a(free_port()),
            hl7: a(free_port()),
            mpps: a(free_port()),
            mllp: a(free_port()),
            dicom: a(free_port()),
        };
        g.spawn();
        g
    }

    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_xenrad-gateway"))
            .args(["--fhir-addr", &self.fhir.to_string()])
            .args(["--hl7-addr", &self.hl7.to_string()])
            .args(["--mpps-addr", &self.mpps.to_string()])
            .args(["--mllp-addr", &self.mllp.to_string()])
            .args(["--dicom-addr", &self.dicom.to_string()])
            .args(["--ae-title", "XENRAD"])
            .args(["--max-body", "1048576"])
            .arg("--data-dir")
            .arg(&self.dir)
            .env("XENRAD_API_KEY", KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start xenrad-gateway");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        for addr in [self.fhir, self.hl7, self.mpps, self.mllp, self.dicom] {
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                assert!(Instant::now() < deadline, "gateway did not listen on {addr}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGTERM, then wait: graceful shutdown must end the process by itself.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
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

    fn url(&self, addr: SocketAddr, path: &str) -> String {
        format!("http://{addr}{path}")
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

/// A curl response: status, content type, body.
struct Resp {
    status: u16,
    content_type: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Runs curl like the reference page does, returning status, content type and body.
fn curl(args: &[&str]) -> Resp {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code} %{content_type}"])
        .args(args)
        .output()
        .expect("curl is installed by scripts/peers.sh");
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let (code, ct) = tail.split_once(' ').unwrap_or((tail, ""));
    Resp { status: code.parse().unwrap(), content_type: ct.to_owned(), body: body.to_owned() }
}

fn peers() -> bool {
    if std::env::var_os("XENRAD_PEERS").is_some() {
        true
    } else {
        println!("skipped: real peers not installed (run scripts/test.sh)");
        false
    }
}

#[test]
fn fhir_metadata_is_open_and_everything_else_needs_the_key() {
    let g = Gateway::start();
    // Reference page: curl -sS "https://fhir…/fhir/metadata" | jq .
    let r = curl(&[&g.url(g.fhir, "/fhir/metadata")]);
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("application/fhir+json"));
    let cs = r.json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");

    let r = curl(&[&g.url(g.fhir, "/fhir/Patient?name=smith"), "-H", "Accept: application/fhir+json"]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
    let r = curl(&[&g.url(g.fhir, "/fhir/Patient?name=smith"), "-H", "X-API-Key: wrong"]);
    assert_eq!(r.status, 401);

    let r = curl(&[&g.url(g.fhir, "/fhir/Patient?name=smith"), "-H", "Accept: application/fhir+json", "-H", &format!("X-API-Key: {KEY}")]);
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    assert_eq!(b["total"], 0);

    for addr in [g.hl7, g.mpps] {
        let r = curl(&["-X", "POST", &g.url(addr, "/v2/ingest"), "--data-binary", "x"]);
        assert_eq!(r.status, 401, "{addr}");
        assert!(r.content_type.starts_with("application/problem+json"));
        let r = curl(&[&g.url(addr, "/metrics")]);
        assert_eq!(r.status, 401);
    }
    let r = curl(&[&g.url(g.fhir, "/fhir/Observation?code=x"), "-H", &format!("X-API-Key: {KEY}")]);
    assert_eq!(r.status, 404);
    let r = curl(&[&g.url(g.fhir, "/fhir/Patient?birthdate=yesterday"), "-H", &format!("X-API-Key: {KEY}")]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
}

#[test]
fn every_http_surface_serves_docs_and_a_valid_openapi_document() {
    let g = Gateway::start();
    for addr in [g.fhir, g.hl7, g.mpps] {
        let r = curl(&[&g.url(addr, "/api/documentation")]);
        assert_eq!(r.status, 200);
        assert!(r.content_type.starts_with("text/html"));
        assert!(!r.body.contains("http://") && !r.body.contains("https://"), "docs page must not load anything remote");
        let r = curl(&[&g.url(addr, "/api/documentation/openapi.json")]);
        assert_eq!(r.status, 200);
        let doc = r.json();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    }
}

#[test]
fn docs_page_renders_offline_in_headless_chromium() {
    if !peers() {
        return;
    }
    let g = Gateway::start();
    let profile = g.dir.join("chromium-profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(g.url(g.fhir, "/api/documentation"))
        .output()
        .expect("chromium is installed by scripts/peers.sh");
    let dom = String::from_utf8_lossy(&out.stdout);
    // These strings exist only after the page's script fetched and rendered openapi.json.
    assert!(dom.contains("Xenrad FHIR R4"), "title not rendered: {dom}");
    assert!(dom.contains("/fhir/{resource_type}/{id}"), "operations not rendered");
    assert!(dom.contains("Try it"));
}

#[allow(dead_code)]
fn read_shared(rel: &str) -> Option<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared").join(rel);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(_) if std::env::var_os("CI").is_none() => {
            println!("skipped: {} not found", p.display());
            None
        }
        Err(e) => panic!("{}: {e}", p.display()),
    }
}
