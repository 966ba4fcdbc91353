//! `xenrad-gateway backup` while ingest continues, then `restore` into a new data
//! directory: everything acknowledged before the backup began is served by a gateway
//! started on the restored directory, and its database passes `PRAGMA integrity_check`.

use serde_json::Value;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "test-key-0123456789";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "xenrad-backup-{name}-{}-{}",
        std::process::id(),
        free_port()
    ))
}

struct Gateway {
    child: Child,
    fhir: SocketAddr,
    hl7: SocketAddr,
    mllp: SocketAddr,
    dicom: SocketAddr,
}

impl Gateway {
    fn start(dir: &Path) -> Gateway {
        let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let (fhir, hl7, mpps, mllp, dicom) = (
            a(free_port()),
            a(free_port()),
            a(free_port()),
            a(free_port()),
            a(free_port()),
        );
        let child = Command::new(env!("CARGO_BIN_EXE_xenrad-gateway"))
            .args(["--fhir-addr", &fhir.to_string()])
            .args(["--hl7-addr", &hl7.to_string()])
            .args(["--mpps-addr", &mpps.to_string()])
            .args(["--mllp-addr", &mllp.to_string()])
            .args(["--dicom-addr", &dicom.to_string()])
            .args(["--console-addr", "off", "--dicom-journal-mb", "4"])
            .arg("--data-dir")
            .arg(dir)
            .env("XENRAD_API_KEY", KEY)
            .env("XENRAD_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start xenrad-gateway");
        let deadline = Instant::now() + Duration::from_secs(30);
        for addr in [fhir, hl7, mllp, dicom] {
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "gateway did not listen on {addr}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Gateway {
            child,
            fhir,
            hl7,
            mllp,
            dicom,
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn adt(id: &str) -> String {
    format!(
        "MSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|{id}|P|2.5.1\rPID|1||{id}||Doe^{id}||19800101|M\r"
    )
}

/// POSTs an ADT over HTTP; true when acknowledged AA.
fn post_v2(hl7: SocketAddr, id: &str) -> bool {
    let (status, body) = curl(&[
        "-X",
        "POST",
        &format!("http://{hl7}/v2/ingest"),
        "-H",
        &format!("X-API-Key: {KEY}"),
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        &adt(id),
    ]);
    status == 200 && body.contains("MSA|AA|")
}

/// Sends an ADT over MLLP; true when acknowledged AA.
fn mllp_v2(addr: SocketAddr, id: &str) -> bool {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut frame = vec![0x0b];
    frame.extend_from_slice(adt(id).as_bytes());
    frame.extend_from_slice(b"\x1c\r");
    s.write_all(&frame).unwrap();
    let mut buf = Vec::new();
    while !buf.windows(2).any(|w| w == b"\x1c\r") {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).contains("MSA|AA|")
}

fn fhir_total(g: &Gateway, query: &str) -> Value {
    let (status, body) = curl(&[
        &format!("http://{}/fhir/{query}", g.fhir),
        "-H",
        "Accept: application/fhir+json",
        "-H",
        &format!("X-API-Key: {KEY}"),
    ]);
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_str::<Value>(&body).unwrap()["total"].clone()
}

fn gateway_cmd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xenrad-gateway"))
        .args(args)
        .env_remove("XENRAD_DATA_DIR")
        .env_remove("XENRAD_DATABASE_URL")
        .output()
        .unwrap()
}

/// Study Instance UID of pydicom's CT_small, stored with DCMTK's storescu (real peers only).
fn store_ct(g: &Gateway) -> Option<String> {
    std::env::var_os("XENRAD_PEERS")?;
    let ct = PathBuf::from(std::env::var("XENRAD_PYDICOM_DATA").ok()?).join("CT_small.dcm");
    let out = Command::new("storescu")
        .args(["-aec", "XENRAD", "127.0.0.1", &g.dicom.port().to_string()])
        .arg(&ct)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "storescu: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py = std::env::var("XENRAD_PYTHON").ok()?;
    let uid = Command::new(py)
        .args([
            "-c",
            "import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).StudyInstanceUID)",
        ])
        .arg(&ct)
        .output()
        .unwrap();
    Some(String::from_utf8_lossy(&uid.stdout).trim().to_owned())
}

#[test]
fn online_backup_during_ingest_restores_everything_acknowledged_before_it() {
    let (data, snap, restored) = (tmp("data"), tmp("snap"), tmp("restored"));
    let g = Gateway::start(&data);
    // Acknowledged before the backup begins: HL7 v2 over HTTP and MLLP, and a C-STORE.
    let mut before = Vec::new();
    for i in 0..15 {
        let id = format!("PRE{i}");
        assert!(post_v2(g.hl7, &id), "{id} not acknowledged");
        before.push(id);
    }
    for i in 0..5 {
        let id = format!("MLLP{i}");
        assert!(mllp_v2(g.mllp, &id), "{id} not acknowledged");
        before.push(id);
    }
    let study = store_ct(&g);
    // A second stream keeps ingesting while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let during = {
        let (stop, hl7) = (stop.clone(), g.hl7);
        std::thread::spawn(move || {
            let mut acked = 0;
            while !stop.load(Ordering::Relaxed) {
                if post_v2(hl7, &format!("DUR{acked}")) {
                    acked += 1;
                }
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let out = gateway_cmd(&[
        "backup",
        snap.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let during_acked = during.join().unwrap();
    assert!(during_acked > 0, "the second stream stored nothing");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(snap.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["instances"],
        u64::from(study.is_some()),
        "{manifest}"
    );
    assert!(manifest["messages"].as_u64().unwrap() >= 20, "{manifest}");

    // A second backup into the same directory is refused.
    let again = gateway_cmd(&[
        "backup",
        snap.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    // A PostgreSQL-backed gateway is pointed to pg_dump.
    let pg = gateway_cmd(&[
        "backup",
        tmp("pg").to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--database",
        "postgres://x@127.0.0.1:1/db",
    ]);
    assert!(!pg.status.success());
    assert!(String::from_utf8_lossy(&pg.stderr).contains("pg_dump"));

    // Restore: refused into a non-empty directory without --force.
    let busy = gateway_cmd(&[
        "restore",
        snap.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("--force"));
    let out = gateway_cmd(&[
        "restore",
        snap.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --force replaces a non-empty target (here the restore just made).
    let forced = gateway_cmd(&[
        "restore",
        snap.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
        "--force",
    ]);
    assert!(
        forced.status.success(),
        "restore --force: {}",
        String::from_utf8_lossy(&forced.stderr)
    );
    // A manifest that disagrees with the database is refused.
    let mpath = snap.join("manifest.json");
    let good = std::fs::read(&mpath).unwrap();
    let mut bad = manifest.clone();
    bad["messages"] = Value::from(manifest["messages"].as_u64().unwrap() + 1);
    std::fs::write(&mpath, bad.to_string()).unwrap();
    let other = tmp("other");
    let refused = gateway_cmd(&[
        "restore",
        snap.to_str().unwrap(),
        "--data-dir",
        other.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not match its manifest"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!other.join("xenrad.sqlite3").exists());
    assert!(!other.join("xenrad.sqlite3.restore").exists());
    let _ = std::fs::remove_dir_all(&other);
    std::fs::write(&mpath, good).unwrap();
    drop(g);
    let _ = std::fs::remove_dir_all(&data);

    {
        let c = rusqlite::Connection::open(restored.join("xenrad.sqlite3")).unwrap();
        let check: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let mut s = c.prepare("SELECT path FROM instances").unwrap();
        let paths: Vec<String> = s
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for p in &paths {
            assert!(Path::new(p).starts_with(&restored), "{p}");
            assert!(Path::new(p).is_file(), "{p} missing");
        }
    }
    let r = Gateway::start(&restored);
    for id in &before {
        assert_eq!(
            fhir_total(&r, &format!("Patient?identifier={id}")),
            1,
            "{id}"
        );
    }
    if let Some(uid) = &study {
        assert_eq!(fhir_total(&r, &format!("ImagingStudy?identifier={uid}")), 1);
        // C-FIND (PS3.4 C.6.2, Study Root, STUDY level) on the restored gateway, DCMTK findscu.
        let out = Command::new("findscu")
            .args([
                "-v",
                "-S",
                "-aec",
                "XENRAD",
                "127.0.0.1",
                &r.dicom.port().to_string(),
            ])
            .args(["-k", "QueryRetrieveLevel=STUDY", "-k"])
            .arg(format!("StudyInstanceUID={uid}"))
            .output()
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "findscu: {log}");
        assert_eq!(log.matches("(Pending)").count(), 1, "{log}");
        assert!(log.contains(uid.as_str()), "{log}");
    } else {
        println!("C-STORE and C-FIND skipped: real peers not installed (run scripts/test.sh)");
    }
    drop(r);
    for d in [&snap, &restored] {
        let _ = std::fs::remove_dir_all(d);
    }
}
