//! What the CLI's peer tests share: free ports, child processes killed at the end, the
//! project's peers, DCMTK's own binaries and ours.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The project venv's Python when the real peers are installed (`scripts/peers.sh`), else
/// `None` after saying why the test is skipped.
pub fn peers() -> Option<String> {
    if std::env::var_os("XENRAD_PEERS").is_none() {
        eprintln!("skipped: real peers not installed (run `eval \"$(scripts/peers.sh)\"`)");
        return None;
    }
    Some(std::env::var("XENRAD_PYTHON").expect("XENRAD_PYTHON with XENRAD_PEERS"))
}

/// A child process killed when the test ends.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed when the test ends.
pub struct Dir(pub PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits (20 s at most) until something listens on `port`.
pub fn wait_port(port: u16) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// DCMTK's own binary (pynetdicom's console scripts shadow some names in the venv).
pub fn dcmtk(name: &str) -> Command {
    Command::new(Path::new("/usr/bin").join(name))
}

/// The `xenrad` binary of this build.
pub fn xenrad() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xenrad"))
}
