//! The operator console in headless Chromium, driven by Playwright for Python
//! (`tests/console/console_browser.py`): a scripted mixed ingest through all five doors, then
//! the dashboard's counts, a failed HL7 message found by control id at the parser's position,
//! re-processing it after a fix, a study's thumbnail and MPPS state, refusals without a valid
//! key, an order's step on the worklist page and the refused request on the audit page,
//! keyboard and narrow-screen checks. Screenshots of each page go to
//! `target/console-screenshots/`.
//!
//! Needs `scripts/peers.sh` with `XENRAD_BROWSER=1` (Playwright in the peers' venv; Debian's
//! chromium). Without it the test says why it is skipped; with `XENRAD_BROWSER=1` set, a
//! missing Playwright is a failure, not a skip.
#![allow(missing_docs)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "console-browser-key-0123";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

/// Kills the gateway when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn console_in_headless_chromium() {
    let browser_wanted = std::env::var_os("XENRAD_BROWSER").is_some();
    let Some(python) = std::env::var_os("XENRAD_PYTHON") else {
        println!(
            "skipped: console browser test needs the peers (XENRAD_BROWSER=1 scripts/peers.sh, then XENRAD_PYTHON)"
        );
        return;
    };
    let has_playwright = Command::new(&python)
        .args(["-c", "import playwright.sync_api"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_playwright {
        assert!(
            !browser_wanted,
            "XENRAD_BROWSER is set but Playwright is not installed: run XENRAD_BROWSER=1 scripts/peers.sh"
        );
        println!(
            "skipped: console browser test needs Playwright (XENRAD_BROWSER=1 scripts/peers.sh)"
        );
        return;
    }
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromium is installed by scripts/peers.sh");
    let ct = std::env::var("XENRAD_PYDICOM_DATA")
        .map(|d| PathBuf::from(d).join("CT_small.dcm"))
        .expect("XENRAD_PYDICOM_DATA from scripts/peers.sh");

    let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let (fhir, hl7, mpps, mllp, dicom, console) = (
        a(free_port()),
        a(free_port()),
        a(free_port()),
        a(free_port()),
        a(free_port()),
        a(free_port()),
    );
    let dir = std::env::temp_dir().join(format!("xenrad-console-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let shots = target_dir().join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let log = dir.with_extension("log");
    let _gateway = Child(
        Command::new(env!("CARGO_BIN_EXE_xenrad-gateway"))
            .args(["--fhir-addr", &fhir.to_string()])
            .args(["--hl7-addr", &hl7.to_string()])
            .args(["--mpps-addr", &mpps.to_string()])
            .args(["--mllp-addr", &mllp.to_string()])
            .args(["--dicom-addr", &dicom.to_string()])
            .args(["--console-addr", &console.to_string()])
            .args(["--dicom-journal-mb", "4"])
            .arg("--data-dir")
            .arg(&dir)
            .env("XENRAD_API_KEY", KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("start xenrad-gateway"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    for addr in [fhir, hl7, mpps, mllp, dicom, console] {
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "gateway did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let started = Instant::now();
    let out = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/console/console_browser.py"
        ))
        .env("CONSOLE", format!("http://{console}"))
        .env("FHIR", format!("http://{fhir}"))
        .env("HL7", format!("http://{hl7}"))
        .env("MPPS", format!("http://{mpps}"))
        .env("MLLP", mllp.to_string())
        .env("DICOM", dicom.to_string())
        .env("KEY", KEY)
        .env("CT", &ct)
        .env("SHOTS", &shots)
        .env("CHROMIUM", chromium)
        .output()
        .expect("run the browser script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    println!(
        "browser test took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(stdout.contains("all checks passed"));
    assert!(shots.join("03-dashboard.png").exists());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&log);
}
