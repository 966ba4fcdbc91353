//! End-to-end tests of `xenrad-gateway --database postgres://…` (feature `postgres`) on a
//! real PostgreSQL server: `XENRAD_PG_URL` from `eval "$(scripts/postgres.sh start)"`
//! (scripts/test.sh starts it when `XENRAD_POSTGRES=1`; without it these tests say why
//! they are skipped). Each test gets a database of its own (made and dropped with `psql`).
//!
//! - one node: HL7 v2 over HTTP and MLLP, an order, a DICOM C-STORE from DCMTK, then FHIR
//!   searches, all answered from PostgreSQL, and again after a restart;
//! - two nodes on one database: every message delivered to both at once is acknowledged by
//!   both and stored once; what one node ingested the other serves.
#![allow(missing_docs)]

mod common;

use common::{Gateway, KEY, free_port, loopback, mllp, msa};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A gateway node on the PostgreSQL database `database`.
type Node = Gateway;

impl Gateway {
    fn start(database: &str) -> Node {
        Gateway::launch("pg-e2e", vec!["--database".into(), database.to_owned()])
    }
}
/// Messages each delivered to both nodes at once.
const N: usize = 20;

fn pg_url() -> Option<String> {
    let u = std::env::var("XENRAD_PG_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if u.is_none() {
        println!("skipped: XENRAD_PG_URL not set (XENRAD_POSTGRES=1 scripts/test.sh)");
    }
    u
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .expect("psql (Debian postgresql-client, installed with postgresql)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A fresh database for one test; dropped when this is dropped.
struct Db {
    admin: String,
    name: String,
    url: String,
}

impl Db {
    fn new(admin: &str, tag: &str) -> Db {
        let name = format!("xenrad_e2e_{tag}_{}", std::process::id());
        psql(
            admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        psql(admin, &format!("CREATE DATABASE {name}"));
        let (head, query) = admin.split_once('?').unwrap_or((admin, ""));
        let base = head.rsplit_once('/').map_or(head, |(b, _)| b);
        let mut url = format!("{base}/{name}");
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        Db {
            admin: admin.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin,
                "-qAt",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// An HTTP/1.1 request on a fresh connection; returns status and body.
fn http(addr: SocketAddr, method: &str, path: &str, ctype: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {KEY}\r\nAccept: application/fhir+json\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // Bodies are small in these tests; a chunked one is de-chunked naively.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut b = String::new();
        let mut rest = body;
        while let Some((len, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            b.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        b
    } else {
        body.to_owned()
    };
    (status, body)
}

fn fhir(n: &Node, path: &str) -> Value {
    let (status, body) = http(n.fhir, "GET", path, "application/fhir+json", b"");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn adt(control: &str, id: &str, family: &str) -> String {
    format!(
        "MSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|{control}|P|2.5.1\rPID|1||{id}||{family}^John||19800101|M\r"
    )
}

fn dcmtk() -> Option<PathBuf> {
    std::env::var_os("XENRAD_PEERS")?;
    let data = PathBuf::from(std::env::var_os("XENRAD_PYDICOM_DATA")?);
    Some(data.join("CT_small.dcm"))
}

#[test]
fn mixed_ingest_and_fhir_search_on_postgres_survive_a_restart() {
    let Some(admin) = pg_url() else { return };
    let db = Db::new(&admin, "mixed");
    let mut n = Node::start(&db.url);
    let (status, ack) = http(
        n.hl7,
        "POST",
        "/v2/ingest",
        "text/plain",
        adt("1", "ID1", "Doe").as_bytes(),
    );
    assert_eq!((status, msa(&ack).as_str()), (200, "AA"), "{ack}");
    let ack = mllp(n.mllp, &adt("2", "ID2", "Müller"));
    assert_eq!(msa(&ack), "AA", "{ack}");
    // An order with its accession (OBR-18): a ServiceRequest and a worklist item.
    let orm = "MSH|^~\\&|RIS|FAC|XEN|FAC|20240101120500||ORM^O01|3|P|2.5.1\rPID|1||ID1||Doe^John||19800101|M\rORC|NW|PL123|FL456\rOBR|1|PL123|FL456|CTCHEST^CT chest^LOCAL||||||||||||||ACC123\r";
    assert_eq!(msa(&mllp(n.mllp, orm)), "AA");
    // A duplicate delivery: acknowledged, stored once.
    assert_eq!(msa(&mllp(n.mllp, &adt("2", "ID2", "Müller"))), "AA");
    let ct = dcmtk();
    if let Some(ct) = &ct {
        let out = Command::new("storescu")
            .args(["-aec", "XENRAD", "127.0.0.1", &n.dicom.port().to_string()])
            .arg(ct)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "storescu: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        println!("DICOM part skipped: real peers not installed (run scripts/test.sh)");
    }
    let check = |n: &Node| {
        assert_eq!(fhir(n, "/fhir/Patient?name=doe")["total"], 1);
        assert_eq!(
            fhir(n, "/fhir/Patient?name=mull")["total"],
            1,
            "accent-insensitive"
        );
        assert_eq!(fhir(n, "/fhir/Patient?identifier=ID2")["total"], 1);
        assert_eq!(
            fhir(n, "/fhir/Patient?birthdate=ge1979-12-31&gender=male")["total"],
            2
        );
        let p = fhir(n, "/fhir/Patient?identifier=ID1");
        let pid = p["entry"][0]["resource"]["id"].as_str().unwrap().to_owned();
        let sr = fhir(n, &format!("/fhir/ServiceRequest?subject=Patient/{pid}"));
        assert_eq!(sr["total"], 1, "{sr}");
        assert_eq!(
            fhir(n, &format!("/fhir/ServiceRequest?subject={pid}"))["total"],
            1
        );
        let sorted = fhir(n, "/fhir/Patient?_sort=-family");
        let families: Vec<&str> = sorted["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["name"][0]["family"].as_str().unwrap())
            .collect();
        assert!(
            families.len() >= 2 && families[0] == "Müller",
            "{families:?}"
        );
        if ct.is_some() {
            let s = fhir(n, "/fhir/ImagingStudy?status=available");
            assert_eq!(s["total"], 1, "{s}");
            assert_eq!(
                s["entry"][0]["resource"]["series"][0]["modality"]["code"],
                "CT"
            );
        }
    };
    check(&n);
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM messages WHERE protocol = 'hl7v2'"
        ),
        "3",
        "three distinct messages, the duplicate stored once"
    );
    n.restart();
    check(&n);
}

#[test]
fn messages_delivered_to_two_nodes_at_once_are_stored_once_and_acknowledged_by_both() {
    let Some(admin) = pg_url() else { return };
    let db = Db::new(&admin, "twonodes");
    // Both nodes start at once on an empty database: the migration runs once.
    let url = db.url.clone();
    let b = std::thread::spawn(move || Node::start(&url));
    let a = Node::start(&db.url);
    let b = b.join().unwrap();
    let mut acks = Vec::new();
    for i in 0..N {
        let msg = adt(&format!("C{i}"), &format!("X{i}"), "Twin");
        let (ma, mb) = (msg.clone(), msg);
        let (a_http, b_mllp) = (a.hl7, b.mllp);
        // One copy over HTTP to node A, the other over MLLP to node B, at the same time.
        let ta = std::thread::spawn(move || {
            let (status, body) = http(a_http, "POST", "/v2/ingest", "text/plain", ma.as_bytes());
            (status, msa(&body))
        });
        let tb = std::thread::spawn(move || msa(&mllp(b_mllp, &mb)));
        acks.push((ta.join().unwrap(), tb.join().unwrap()));
    }
    for (i, ((status, a_ack), b_ack)) in acks.iter().enumerate() {
        assert_eq!(
            (*status, a_ack.as_str(), b_ack.as_str()),
            (200, "AA", "AA"),
            "message {i}"
        );
    }
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM messages WHERE protocol = 'hl7v2'"
        ),
        N.to_string()
    );
    // Each node serves what either ingested, every patient at version 1 (never re-applied).
    for node in [&a, &b] {
        let all = fhir(node, "/fhir/Patient?family=twin&_count=100");
        assert_eq!(all["total"], N, "{all}");
        for e in all["entry"].as_array().unwrap() {
            assert_eq!(e["resource"]["meta"]["versionId"], "1", "{e}");
        }
    }
    // Every migration applied once, in order (both nodes migrated the empty database at once).
    assert_eq!(
        psql(&db.url, "SELECT count(*) = max(version) FROM xenrad_schema"),
        "t"
    );
}

/// A cluster of the test's own (scripts/postgres.sh with its own directory and port), so
/// that stopping it disturbs no other test.
struct OwnCluster {
    env: [(String, String); 2],
}

impl OwnCluster {
    fn script(&self, cmd: &str) -> String {
        let out = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/postgres.sh"
        ))
        .arg(cmd)
        .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("scripts/postgres.sh");
        assert!(
            out.status.success(),
            "postgres.sh {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.script("stop")));
    }
}

#[test]
fn nothing_is_acknowledged_while_the_database_is_down_and_the_node_recovers_by_itself() {
    if pg_url().is_none() {
        return;
    }
    let port = free_port();
    let cluster = OwnCluster {
        env: [
            (
                "XENRAD_PG_DIR".into(),
                std::env::temp_dir()
                    .join(format!("xenrad-pg-down-{}", std::process::id()))
                    .display()
                    .to_string(),
            ),
            ("XENRAD_PG_PORT".into(), port.to_string()),
        ],
    };
    let url = cluster
        .script("start")
        .strip_prefix("export XENRAD_PG_URL=")
        .expect("postgres.sh prints the URL")
        .to_owned();
    let n = Node::start(&url);
    let send = |i: u32| {
        http(
            n.hl7,
            "POST",
            "/v2/ingest",
            "text/plain",
            adt(&format!("D{i}"), &format!("D{i}"), "Down").as_bytes(),
        )
    };
    let (status, ack) = send(1);
    assert_eq!((status, msa(&ack).as_str()), (200, "AA"), "{ack}");

    cluster.script("halt");
    // While the database is down: HTTP 503 with AE, MLLP AE, never AA.
    let (status, ack) = send(2);
    assert_eq!((status, msa(&ack).as_str()), (503, "AE"), "{ack}");
    let ack = mllp(n.mllp, &adt("D3", "D3", "Down"));
    assert_ne!(msa(&ack), "AA", "{ack}");
    let (status, _) = http(n.fhir, "GET", "/fhir/Patient?family=down", "", b"");
    assert_ne!(status, 200, "searches fail while the database is down");

    cluster.script("start");
    // The sender's retry is stored without restarting the node.
    let (status, ack) = send(2);
    assert_eq!((status, msa(&ack).as_str()), (200, "AA"), "{ack}");
    let all = fhir(&n, "/fhir/Patient?family=down");
    assert_eq!(all["total"], 2, "{all}");
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) FROM messages WHERE protocol = 'hl7v2'"
        ),
        "2"
    );
}

/// `scripts/fleet.sh` with its own directory and ports; `down` when dropped.
struct Fleet {
    env: Vec<(String, String)>,
    public: [u16; 5],
    nodes: Vec<[u16; 5]>,
    url: String,
}

impl Fleet {
    fn script(env: &[(String, String)], args: &[&str]) -> String {
        let out = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/fleet.sh"
        ))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("scripts/fleet.sh");
        assert!(
            out.status.success(),
            "fleet.sh {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn up(nodes: usize) -> Fleet {
        let public = [
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        ];
        // Node ports: base + 10 i + k, on a base that is free now (best effort).
        let base = 20000 + (std::process::id() % 2000) * 10;
        let dir = std::env::temp_dir().join(format!("xenrad-fleet-{}", std::process::id()));
        let env: Vec<(String, String)> = vec![
            ("XENRAD_FLEET_DIR".into(), dir.display().to_string()),
            (
                "XENRAD_FLEET_PORTS".into(),
                public.map(|p| p.to_string()).join(" "),
            ),
            ("XENRAD_FLEET_NODE_BASE".into(), base.to_string()),
            ("XENRAD_FLEET_PG_PORT".into(), free_port().to_string()),
            (
                "XENRAD_GATEWAY_BIN".into(),
                env!("CARGO_BIN_EXE_xenrad-gateway").into(),
            ),
            ("XENRAD_API_KEY".into(), KEY.into()),
        ];
        let mut f = Fleet {
            nodes: (1..=nodes)
                .map(|i| {
                    let b = u16::try_from(base as usize + 10 * i).unwrap();
                    [b, b + 1, b + 2, b + 3, b + 4]
                })
                .collect(),
            public,
            url: String::new(),
            env,
        };
        Fleet::script(&f.env, &["up", "--nodes", &nodes.to_string()]);
        let url = std::fs::read_to_string(dir.join("database-url")).unwrap();
        url.trim().clone_into(&mut f.url);
        f
    }

    fn node(&self, i: usize) -> Node {
        Fleet::view(self.nodes[i])
    }

    /// A view of running ports (no child: never killed by its drop).
    fn view(p: [u16; 5]) -> Node {
        Node {
            child: None,
            extra: Vec::new(),
            log_file: None,
            quiet: false,
            dir: std::env::temp_dir().join("xenrad-fleet-view-unused"),
            fhir: loopback(p[0]),
            hl7: loopback(p[1]),
            mpps: loopback(p[2]),
            mllp: loopback(p[3]),
            dicom: loopback(p[4]),
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Fleet::script(&self.env, &["down"])
        }));
    }
}

#[test]
fn a_two_node_fleet_behind_haproxy_stores_duplicates_once_and_serves_from_any_node() {
    if pg_url().is_none() {
        return;
    }
    if Command::new("haproxy").arg("-v").output().is_err() {
        println!("skipped: haproxy not installed (XENRAD_FLEET=1 scripts/peers.sh)");
        return;
    }
    let fleet = Fleet::up(2);
    let lb = Fleet::view(fleet.public);
    let (n1, n2) = (fleet.node(0), fleet.node(1));
    // Every node is ready (database reachable) and says so without a key.
    for n in [&n1, &n2] {
        assert_eq!(http(n.fhir, "GET", "/readyz", "", b"").0, 200);
    }
    // One message sent 8 times at once through HAProxy's MLLP port (round robin: both nodes
    // get copies) and once to each node directly: every copy AA, stored once.
    let msg = adt("F1", "F1", "Fleet");
    let mut threads = Vec::new();
    for addr in std::iter::repeat_n(lb.mllp, 8).chain([n1.mllp, n2.mllp]) {
        let m = msg.clone();
        threads.push(std::thread::spawn(move || msa(&mllp(addr, &m))));
    }
    for t in threads {
        assert_eq!(t.join().unwrap(), "AA");
    }
    assert_eq!(
        psql(
            &fleet.url,
            "SELECT count(*) FROM messages WHERE message_id = 'F1'"
        ),
        "1"
    );
    // Ingested through HAProxy's HTTP door, read on each node directly.
    let (status, ack) = http(
        lb.hl7,
        "POST",
        "/v2/ingest",
        "text/plain",
        adt("F2", "F2", "Fleet").as_bytes(),
    );
    assert_eq!((status, msa(&ack).as_str()), (200, "AA"), "{ack}");
    for n in [&n1, &n2, &lb] {
        let b = fhir(n, "/fhir/Patient?family=fleet");
        assert_eq!(b["total"], 2, "{b}");
    }
    // A C-STORE through HAProxy's DICOM port (TCP mode) is served by every node's FHIR door.
    if let Some(ct) = dcmtk() {
        let out = Command::new("storescu")
            .args(["-aec", "XENRAD", "127.0.0.1", &lb.dicom.port().to_string()])
            .arg(&ct)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "storescu: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for n in [&n1, &n2] {
            let s = fhir(n, "/fhir/ImagingStudy?status=available");
            assert_eq!(s["total"], 1, "{s}");
            // C-FIND on each node finds it too: the node that did not store it indexes it
            // from the shared database before answering.
            let out = Command::new("findscu")
                .args(["-v", "-S", "-aec", "XENRAD", "127.0.0.1"])
                .arg(n.dicom.port().to_string())
                .args(["-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID"])
                .output()
                .unwrap();
            let log = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "findscu: {log}");
            assert_eq!(log.matches("(Pending)").count(), 1, "{log}");
        }
    }
    let status = Fleet::script(&fleet.env, &["status"]);
    assert!(
        status.contains("node-2: running") && status.contains("haproxy: running"),
        "{status}"
    );
}
