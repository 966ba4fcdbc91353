//! `xenrad dicom scp --dicom-allow / --dicom-check-called-ae / --dicom-users`: our SCU
//! always, DCMTK `echoscu -aet` and pynetdicom with User Identity Negotiation (PS3.7
//! D.3.3.7) when the real peers are installed (`eval "$(scripts/peers.sh)"`).
#![allow(missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Scp {
    child: Child,
    log: PathBuf,
}
impl Drop for Scp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
impl Scp {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `xenrad dicom scp` with `extra` flags, logging to `dir/NAME.log`. Ready when
/// its own log says it listens (a TCP connect alone could reach another process that took
/// the port between `free_port` and the SCP's bind); a failed bind is retried on another
/// port.
fn scp(dir: &Path, name: &str, extra: &[&str]) -> (Scp, String) {
    for _ in 0..5 {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_xenrad"))
            .args([
                "dicom",
                "scp",
                "--journal-mb",
                "4",
                "--port",
                &port.to_string(),
            ])
            .arg("--out")
            .arg(dir.join(name))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Scp { child, log };
        let ready = format!("listening on 0.0.0.0:{port}");
        let t0 = Instant::now();
        loop {
            if s.log().contains(&ready) {
                return (s, port.to_string());
            }
            if s.child.try_wait().unwrap().is_some() {
                break; // e.g. the port was taken meanwhile: another one
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "scp did not listen: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("scp did not start in 5 attempts");
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn xenrad_echo(port: &str, aet: &str, called: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xenrad"))
        .args(["dicom", "echo", &format!("127.0.0.1:{port}")])
        .args(["--aet", aet, "--called-aet", called])
        .output()
        .unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xenrad-cli-sec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Waits until the SCP's log contains `needle` (it is written after the RJ is sent).
fn log_contains(s: &Scp, needle: &str) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if s.log().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn allow_list_and_called_ae_with_our_scu() {
    let dir = tempdir("own");
    let (s, port) = scp(
        &dir,
        "scp",
        &[
            "--dicom-allow",
            "CT1",
            "--dicom-allow",
            "MR1@127.0.0.1",
            "--dicom-allow",
            "US1@192.0.2.1",
            "--dicom-check-called-ae",
        ],
    );
    for aet in ["CT1", "MR1"] {
        let o = xenrad_echo(&port, aet, "XENRAD");
        assert!(o.status.success(), "{aet}: {}", text(&o));
    }
    for (aet, called, why) in [
        ("XX1", "XENRAD", "calling AE title not allowed"),
        (
            "US1",
            "XENRAD",
            "calling AE title not allowed from this host",
        ),
        ("CT1", "OTHER", "called AE title not ours"),
    ] {
        let o = xenrad_echo(&port, aet, called);
        assert!(!o.status.success(), "{aet}: {}", text(&o));
        let line =
            format!("association from \"{aet}\" at 127.0.0.1 to \"{called}\" refused: {why}");
        assert!(log_contains(&s, &line), "{line} not in {}", s.log());
    }
    drop(s);
    // A bad flag value stops the SCP at start with the reason.
    let o = Command::new(env!("CARGO_BIN_EXE_xenrad"))
        .args(["dicom", "scp", "--port", "0", "--dicom-allow", "CT1@"])
        .arg("--out")
        .arg(dir.join("bad"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--dicom-allow \"CT1@\": empty host"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn dcmtk_echoscu() -> &'static str {
    // pynetdicom installs an `echoscu` too; DCMTK's is in /usr/bin (shared/notes/peers.md).
    if Path::new("/usr/bin/echoscu").is_file() {
        "/usr/bin/echoscu"
    } else {
        "echoscu"
    }
}

#[test]
fn dcmtk_echoscu_allowed_and_refused() {
    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!(
            "skipped: dcmtk_echoscu_allowed_and_refused needs DCMTK (eval \"$(scripts/peers.sh)\")"
        );
        return;
    }
    let dir = tempdir("dcmtk");
    let (s, port) = scp(
        &dir,
        "scp",
        &[
            "--dicom-allow",
            "CT1",
            "--dicom-allow",
            "US1@192.0.2.1",
            "--dicom-check-called-ae",
        ],
    );
    let echo = |aet: &str, called: &str| {
        Command::new(dcmtk_echoscu())
            .args(["-v", "-aet", aet, "-aec", called, "127.0.0.1", &port])
            .output()
            .unwrap()
    };
    let o = echo("CT1", "XENRAD");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("Received Echo Response (Success)"),
        "{}",
        text(&o)
    );
    // DCMTK prints the A-ASSOCIATE-RJ fields it received (PS3.8 table 9-21).
    for (aet, called, reason, why) in [
        (
            "XX1",
            "XENRAD",
            "Calling AE Title Not Recognized",
            "calling AE title not allowed",
        ),
        (
            "US1",
            "XENRAD",
            "Calling AE Title Not Recognized",
            "not allowed from this host",
        ),
        (
            "CT1",
            "WRONG",
            "Called AE Title Not Recognized",
            "called AE title not ours",
        ),
    ] {
        let o = echo(aet, called);
        let out = text(&o);
        assert!(!o.status.success(), "{aet}: {out}");
        assert!(out.contains("Association Rejected"), "{aet}: {out}");
        assert!(out.contains("Rejected Permanent"), "{aet}: {out}");
        assert!(out.contains("Service User"), "{aet}: {out}");
        assert!(out.contains(reason), "{aet}: {out}");
        assert!(log_contains(&s, why), "{why} not in {}", s.log());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

const PYNETDICOM_ID: &str = r"
import sys
from pynetdicom import AE
from pynetdicom.sop_class import Verification
from pynetdicom.pdu_primitives import UserIdentityNegotiation
port = int(sys.argv[1])
def attempt(kind, user, pw, positive):
    ae = AE(ae_title='PYNET')
    ae.add_requested_context(Verification)
    ext = []
    if kind:
        who = UserIdentityNegotiation()
        who.user_identity_type = kind
        who.primary_field = user.encode()
        if kind == 2:
            who.secondary_field = pw.encode()
        who.positive_response_requested = positive
        ext = [who]
    assoc = ae.associate('127.0.0.1', port, ae_title='XENRAD', ext_neg=ext)
    if assoc.is_established:
        resp = assoc.acceptor.user_identity
        st = assoc.send_c_echo()
        assoc.release()
        return 'ESTABLISHED echo=%04X response=%s' % (st.Status, 'none' if resp is None else repr(resp.server_response))
    if assoc.is_rejected:
        rj = assoc.acceptor.primitive
        return 'REJECTED %d %d %d' % (rj.result, rj.result_source, rj.diagnostic)
    return 'FAILED aborted=%s' % assoc.is_aborted
cases = [
    ('none', 0, '', '', False),
    ('unknown', 1, 'mallory', '', True),
    ('wrongpw', 2, 'alice', 'nope', True),
    ('kerberos', 3, 'ticket', '', True),
    ('user', 1, 'tech', '', True),
    ('userpw', 2, 'alice', 's3cret', True),
    ('userpw-noresp', 2, 'alice', 's3cret', False),
]
for name, kind, user, pw, positive in cases:
    print(name, attempt(kind, user, pw, positive))
";

#[test]
fn pynetdicom_user_identity() {
    let Some(python) = std::env::var_os("XENRAD_PEERS").and(std::env::var_os("XENRAD_PYTHON"))
    else {
        println!(
            "skipped: pynetdicom_user_identity needs pynetdicom (eval \"$(scripts/peers.sh)\")"
        );
        return;
    };
    let dir = tempdir("pynet");
    let users = dir.join("users");
    std::fs::write(&users, "# test users\ntech\nalice:s3cret\n").unwrap();
    let (s, port) = scp(&dir, "scp", &["--dicom-users", users.to_str().unwrap()]);
    let o = Command::new(python)
        .args(["-c", PYNETDICOM_ID, &port])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let got: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ')).collect();
    // Refusals: rejected-permanent (1), service-user (1), no-reason-given (1).
    for want in [
        "none REJECTED 1 1 1",
        "unknown REJECTED 1 1 1",
        "wrongpw REJECTED 1 1 1",
        "kerberos REJECTED 1 1 1",
        // PS3.7 D.3.3.7.2: an empty server response for types 1 and 2, when requested.
        "user ESTABLISHED echo=0000 response=b''",
        "userpw ESTABLISHED echo=0000 response=b''",
        "userpw-noresp ESTABLISHED echo=0000 response=none",
    ] {
        assert!(
            got.contains(&want),
            "{want:?} not in {out}\nSCP log:\n{}",
            s.log()
        );
    }
    for why in [
        "user identity required, none sent",
        "user identity (type 1) for user \"mallory\" not accepted",
        "user identity (type 2) for user \"alice\" not accepted",
        "user identity type 3 not supported",
    ] {
        assert!(log_contains(&s, why), "{why} not in {}", s.log());
    }
    // Passcodes never reach the log.
    assert!(
        !s.log().contains("nope") && !s.log().contains("s3cret"),
        "{}",
        s.log()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
