//! Interoperability with real Python peers (python-hl7): its MLLP client and raw sockets
//! against our listener, and our client against python-hl7's asyncio MLLP server.
//! Needs `XENRAD_PEERS`/`XENRAD_PYTHON` from `scripts/peers.sh`; skipped without them.
#![cfg(feature = "tokio")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Recorder, message};
use tokio::net::TcpListener;
use xenrad_mllp::DecoderConfig;
use xenrad_mllp::client::{Client, ClientConfig};
use xenrad_mllp::server::{Server, ServerConfig};

fn python() -> Option<String> {
    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!("skipped: XENRAD_PEERS is unset (run `eval \"$(scripts/peers.sh)\"`)");
        return None;
    }
    let py = std::env::var("XENRAD_PYTHON").expect("XENRAD_PEERS is set, so XENRAD_PYTHON must be");
    let ok = Command::new(&py)
        .args(["-c", "import hl7, hl7.mllp, hl7.client"])
        .status();
    assert!(
        ok.is_ok_and(|s| s.success()),
        "python-hl7 missing from {py}"
    );
    Some(py)
}

fn script(name: &str) -> String {
    format!("{}/tests/peer/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_peers_against_our_listener() {
    let Some(py) = python() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = {
        let mut c = ServerConfig::default();
        c.decoder = DecoderConfig::default().max_frame_size(64 * 1024);
        c.frame_timeout = Some(Duration::from_millis(500));
        c
    };
    let server = Server::new(Recorder::default(), config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s = server.clone();
    let task = tokio::spawn(async move {
        s.serve(listener, async {
            rx.await.ok();
        })
        .await
    });

    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script("client_cases.py"))
            .arg(port.to_string())
            .output()
    })
    .await
    .unwrap()
    .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python peer failed:\n{stdout}\n{stderr}"
    );
    for case in [
        "python-hl7-client",
        "split-reads",
        "pipelining",
        "garbage",
        "oversized",
        "half-close",
        "stalled-frame",
    ] {
        assert!(
            stdout.contains(&format!("ok {case}\n")),
            "case {case} missing:\n{stdout}"
        );
    }
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();

    let seen = server.handler().seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|id| id.starts_with("PIPE-")).count(),
        200
    );
    assert!(seen.contains(&"AFTER-BIG-2".to_owned()));
    assert!(
        !seen.iter().any(String::is_empty),
        "the oversized frame must never reach the handler"
    );
    let totals = server.totals();
    assert_eq!(totals.frames, 3 + 2 + 200 + 2 + 2 + 1);
    assert!(totals.garbage_bytes >= 4 + 2 + 5 + 1 + 2);
    let mut ends = server.handler().ends.lock().unwrap().clone();
    ends.sort();
    assert!(ends.contains(&"Framing".to_owned()), "{ends:?}");
    assert!(ends.contains(&"FrameTimeout".to_owned()), "{ends:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_python_hl7_server() {
    let Some(py) = python() else { return };
    let mut child = Command::new(py)
        .arg(script("hl7_server.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python-hl7 server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .expect("PORT line")
        .parse()
        .unwrap();

    let mut client = Client::new(format!("127.0.0.1:{port}"), ClientConfig::default());
    for i in 0..100 {
        let id = format!("TO-PY-{i}");
        let r = client.send(&message(&id)).await.unwrap();
        assert_eq!(r.code(), Some(&b"AA"[..]));
        assert_eq!(r.control_id(), Some(id.as_bytes()));
    }
    assert_eq!(client.stats().acked, 100);
    assert_eq!(client.stats().stale_acks, 0);
    drop(client);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}
