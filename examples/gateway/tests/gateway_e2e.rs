//! End-to-end tests of `xenrad-gateway` with real clients: the reference page's curl
//! commands, raw MLLP sockets from Python, DCMTK, pynetdicom and headless Chromium.
//!
//! Each test starts the gateway binary on free loopback ports with a fresh data dir.
//! Peers come from `scripts/peers.sh` (`XENRAD_PEERS=1`); without it the tests that
//! need a peer print why they are skipped.
#![allow(missing_docs, clippy::many_single_char_names, clippy::unused_self)]

mod common;

use common::{Gateway, KEY, free_port, peers};
use serde_json::Value;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The arguments every gateway of these tests runs with.
fn base_args() -> Vec<String> {
    vec!["--max-body".into(), "1048576".into()]
}

impl Gateway {
    fn start() -> Gateway {
        Gateway::launch("e2e", base_args())
    }
}

/// Reference page (../shared/seeds/000_8504d27a6240d7c2.txt) ADT^A08.
const REF_ADT: &str = "MSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|1|P|2.5.1\rPID|1||ID1||Doe^John||19800101|M\r";

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
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let (code, ct) = tail.split_once(' ').unwrap_or((tail, ""));
    Resp {
        status: code.parse().unwrap(),
        content_type: ct.to_owned(),
        body: body.to_owned(),
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

    let r = curl(&[
        &g.url(g.fhir, "/fhir/Patient?name=smith"),
        "-H",
        "Accept: application/fhir+json",
    ]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
    let r = curl(&[
        &g.url(g.fhir, "/fhir/Patient?name=smith"),
        "-H",
        "X-API-Key: wrong",
    ]);
    assert_eq!(r.status, 401);

    let r = curl(&[
        &g.url(g.fhir, "/fhir/Patient?name=smith"),
        "-H",
        "Accept: application/fhir+json",
        "-H",
        &format!("X-API-Key: {KEY}"),
    ]);
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    assert_eq!(b["total"], 0);

    for addr in [g.hl7, g.mpps] {
        let r = curl(&[
            "-X",
            "POST",
            &g.url(addr, "/v2/ingest"),
            "--data-binary",
            "x",
        ]);
        assert_eq!(r.status, 401, "{addr}");
        assert!(r.content_type.starts_with("application/problem+json"));
        let r = curl(&[&g.url(addr, "/metrics")]);
        assert_eq!(r.status, 401);
    }
    let r = curl(&[
        &g.url(g.fhir, "/fhir/Unicorn?code=x"),
        "-H",
        &format!("X-API-Key: {KEY}"),
    ]);
    assert_eq!(
        r.status, 404,
        "not an R4 resource type (every R4 type is served)"
    );
    let r = curl(&[
        &g.url(g.fhir, "/fhir/Patient?birthdate=yesterday"),
        "-H",
        &format!("X-API-Key: {KEY}"),
    ]);
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
        assert!(
            !r.body.contains("http://") && !r.body.contains("https://"),
            "docs page must not load anything remote"
        );
        let r = curl(&[&g.url(addr, "/api/documentation/openapi.json")]);
        assert_eq!(r.status, 200);
        let doc = r.json();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
        if std::env::var_os("XENRAD_PEERS").is_some() {
            // A real validator (openapi-spec-validator, installed by scripts/peers.sh).
            let file = g.dir.join(format!("openapi-{}.json", addr.port()));
            std::fs::write(&file, &r.body).unwrap();
            let out = Command::new(std::env::var("XENRAD_PYTHON").unwrap())
                .args(["-c", "import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')"])
                .arg(&file)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "valid",
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
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
    assert!(
        dom.contains("/fhir/{resource_type}/{id}"),
        "operations not rendered"
    );
    assert!(dom.contains("Try it"));
}

fn read_shared(rel: &str) -> Option<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(_) if std::env::var_os("CI").is_none() => {
            println!("skipped: {} not found", p.display());
            None
        }
        Err(e) => panic!("{}: {e}", p.display()),
    }
}

fn key_header() -> String {
    format!("X-API-Key: {KEY}")
}

fn post(g: &Gateway, addr: SocketAddr, path: &str, ctype: &str, body: &[u8]) -> Resp {
    let file = g.dir.join(format!("body-{}", free_port()));
    std::fs::create_dir_all(&g.dir).unwrap();
    std::fs::write(&file, body).unwrap();
    let r = curl(&[
        "-X",
        "POST",
        &g.url(addr, path),
        "-H",
        &key_header(),
        "-H",
        &format!("Content-Type: {ctype}"),
        "--data-binary",
        &format!("@{}", file.display()),
    ]);
    let _ = std::fs::remove_file(file);
    r
}

fn fhir_get(g: &Gateway, path: &str) -> Value {
    let r = curl(&[
        &g.url(g.fhir, path),
        "-H",
        "Accept: application/fhir+json",
        "-H",
        &key_header(),
    ]);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

fn metric(g: &Gateway, line_prefix: &str) -> u64 {
    let r = curl(&[&g.url(g.hl7, "/metrics"), "-H", &key_header()]);
    assert_eq!(r.status, 200);
    r.body
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn msa(ack: &str) -> (String, String) {
    let seg = ack
        .split(['\r', '\n'])
        .find(|s| s.starts_with("MSA"))
        .unwrap_or_else(|| panic!("no MSA in {ack:?}"));
    let f: Vec<&str> = seg.split('|').collect();
    (
        f.get(1).copied().unwrap_or_default().to_owned(),
        f.get(2).copied().unwrap_or_default().to_owned(),
    )
}

#[test]
fn hl7v2_ingest_acknowledges_after_storing_projects_a_patient_and_is_idempotent() {
    let mut g = Gateway::start();
    // Reference page curl: POST /v2/ingest with the ADT^A08 for Doe^John.
    let r = curl(&[
        "-X",
        "POST",
        &g.url(g.hl7, "/v2/ingest"),
        "-H",
        &key_header(),
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        REF_ADT,
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.content_type.starts_with("application/hl7-v2"));
    assert_eq!(msa(&r.body), ("AA".to_owned(), "1".to_owned()));
    assert!(
        r.body.starts_with("MSH|^~\\&|XEN|FAC|APP|FAC|"),
        "sending/receiving swapped: {}",
        r.body
    );

    let b = fhir_get(&g, "/fhir/Patient?name=doe");
    assert_eq!(b["total"], 1, "{b}");
    let p = &b["entry"][0]["resource"];
    assert_eq!(p["name"][0]["family"], "Doe");
    assert_eq!(p["name"][0]["given"][0], "John");
    assert_eq!(p["birthDate"], "1980-01-01");
    assert_eq!(p["gender"], "male");
    assert_eq!(p["identifier"][0]["value"], "ID1");
    // Case- and accent-insensitive prefix; other parameters.
    for q in [
        "name=DO",
        "family=doe",
        "given=jo",
        "birthdate=1980",
        "birthdate=ge1979-12-31",
        "gender=male",
        "identifier=ID1",
    ] {
        assert_eq!(
            fhir_get(&g, &format!("/fhir/Patient?{q}"))["total"],
            1,
            "{q}"
        );
    }
    for q in [
        "name=smith",
        "birthdate=lt1980-01-01",
        "gender=female",
        "identifier=other|ID1",
    ] {
        assert_eq!(
            fhir_get(&g, &format!("/fhir/Patient?{q}"))["total"],
            0,
            "{q}"
        );
    }
    // Read with ETag.
    let id = p["id"].as_str().unwrap().to_owned();
    let r = curl(&[
        "-i",
        &g.url(g.fhir, &format!("/fhir/Patient/{id}")),
        "-H",
        &key_header(),
    ]);
    assert!(
        r.body.to_ascii_lowercase().contains("etag: w/\"1\""),
        "{}",
        r.body
    );

    // The same delivery again: AA again, stored once.
    let r = post(&g, g.hl7, "/v2/ingest", "text/plain", REF_ADT.as_bytes());
    assert_eq!(msa(&r.body).0, "AA");
    assert_eq!(
        metric(
            &g,
            "xenrad_ingest_total{protocol=\"hl7v2\",outcome=\"stored\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &g,
            "xenrad_ingest_total{protocol=\"hl7v2\",outcome=\"duplicate\"}"
        ),
        1
    );

    // Broken HL7: not a message at all, and an ADT without PID-3.
    let r = post(&g, g.hl7, "/v2/ingest", "text/plain", b"hello world");
    assert_eq!(r.status, 400);
    assert_eq!(msa(&r.body).0, "AR", "{}", r.body);
    assert!(
        r.body.contains("\rERR|") || r.body.contains("\nERR|"),
        "{}",
        r.body
    );
    let bad = "MSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|2|P|2.5.1\rPID|1||||Roe^Jane\r";
    let r = post(&g, g.hl7, "/v2/ingest", "text/plain", bad.as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(msa(&r.body), ("AE".to_owned(), "2".to_owned()));
    assert!(r.body.contains("PID-3"), "{}", r.body);
    assert_eq!(fhir_get(&g, "/fhir/Patient?name=roe")["total"], 0);
    assert_eq!(
        metric(
            &g,
            "xenrad_ingest_total{protocol=\"hl7v2\",outcome=\"stored\"}"
        ),
        1
    );

    // An order (ORM^O01) becomes a ServiceRequest for the same patient; one without an
    // accession number (OBR-18) cannot be scheduled and is refused whole.
    let orm = "MSH|^~\\&|RIS|FAC|XEN|FAC|20240101120500||ORM^O01|3|P|2.5.1\rPID|1||ID1||Doe^John||19800101|M\rORC|NW|PL123|FL456\rOBR|1|PL123|FL456|CTCHEST^CT chest^LOCAL\r";
    let r = post(&g, g.hl7, "/v2/ingest", "text/plain", orm.as_bytes());
    assert_eq!(msa(&r.body).0, "AE", "{}", r.body);
    assert!(r.body.contains("OBR^1^18"), "{}", r.body);
    let sr = fhir_get(&g, &format!("/fhir/ServiceRequest?subject=Patient/{id}"));
    assert_eq!(sr["total"], 0, "{sr}");
    let orm = orm
        .replace("|3|P|", "|3b|P|")
        .replace("CT chest^LOCAL\r", "CT chest^LOCAL||||||||||||||ACC123\r");
    let r = post(&g, g.hl7, "/v2/ingest", "text/plain", orm.as_bytes());
    assert_eq!(msa(&r.body).0, "AA", "{}", r.body);
    let sr = fhir_get(&g, &format!("/fhir/ServiceRequest?subject=Patient/{id}"));
    assert_eq!(sr["total"], 1, "{sr}");
    assert_eq!(sr["entry"][0]["resource"]["status"], "active");

    // Oversized body (limit 1 MiB in these tests).
    let r = post(&g, g.hl7, "/v2/ingest", "text/plain", &vec![b'A'; 2 << 20]);
    assert_eq!(r.status, 413);

    // A restart keeps everything.
    g.stop();
    g.spawn();
    assert_eq!(fhir_get(&g, "/fhir/Patient?name=doe")["total"], 1);
    let r = post(&g, g.hl7, "/v2/ingest", "text/plain", REF_ADT.as_bytes());
    assert_eq!(msa(&r.body).0, "AA");
    assert_eq!(
        fhir_get(&g, "/fhir/Patient?name=doe")["entry"][0]["resource"]["meta"]["versionId"],
        "1"
    );
}

#[test]
fn hl7v2_over_mllp_from_a_raw_python_socket() {
    if !peers() {
        return;
    }
    let g = Gateway::start();
    let script = r#"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
msg = b"MSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|M1|P|2.5.1\rPID|1||ID7||Mllp^Mary||19700202|F\r"
def frame(m): return b"\x0b" + m + b"\x1c\x0d"
s = socket.create_connection((host, port))
# Pipelined: the same message twice (a retry), then garbage, split into small writes.
data = frame(msg) + frame(msg) + frame(b"not hl7")
for i in range(0, len(data), 7):
    s.sendall(data[i:i+7])
buf = b""
acks = []
while len(acks) < 3:
    chunk = s.recv(65536)
    if not chunk: break
    buf += chunk
    while b"\x1c\x0d" in buf:
        start = buf.index(b"\x0b")
        end = buf.index(b"\x1c\x0d")
        acks.append(buf[start+1:end])
        buf = buf[end+2:]
for a in acks:
    msa = [seg for seg in a.split(b"\r") if seg.startswith(b"MSA")][0].split(b"|")
    print(msa[1].decode(), msa[2].decode() if len(msa) > 2 else "")
"#;
    let out = Command::new(std::env::var("XENRAD_PYTHON").unwrap())
        .args(["-c", script, "127.0.0.1", &g.mllp.port().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, vec!["AA M1", "AA M1", "AR "], "{text}");
    assert_eq!(fhir_get(&g, "/fhir/Patient?family=mllp")["total"], 1);
    assert_eq!(
        metric(
            &g,
            "xenrad_ingest_total{protocol=\"hl7v2\",outcome=\"stored\"}"
        ),
        1
    );
}

#[test]
fn hl7v3_ingest_answers_mcci_and_projects_the_patient() {
    let Some(xml) =
        read_shared("corpus/hl7v3/ihe-iti-examples/PIXV3__01_PatientRegistryRecordAdded1.xml")
    else {
        return;
    };
    let g = Gateway::start();
    let r = post(&g, g.hl7, "/v3/ingest", "application/xml", &xml);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("MCCI_IN000002UV01"));
    assert!(r.body.contains("code=\"CA\""), "{}", r.body);
    assert!(
        r.body.contains("22a0f9e0-4454-11dc-a6be-3603d6866807"),
        "targetMessage id: {}",
        r.body
    );
    let b = fhir_get(&g, "/fhir/Patient?family=dean");
    assert_eq!(b["total"], 1, "{b}");
    assert_eq!(b["entry"][0]["resource"]["name"][0]["given"][0], "Jimmy");
    // Again: acknowledged, stored once.
    let r = post(&g, g.hl7, "/v3/ingest", "application/xml", &xml);
    assert_eq!(r.status, 200);
    assert_eq!(
        metric(
            &g,
            "xenrad_ingest_total{protocol=\"hl7v3\",outcome=\"duplicate\"}"
        ),
        1
    );
    // Malformed XML and entity expansion are rejected with a position.
    let r = post(
        &g,
        g.hl7,
        "/v3/ingest",
        "application/xml",
        b"<PRPA_IN201301UV02 xmlns=\"urn:hl7-org:v3\"><id root=\"1\"></PRPA_IN201301UV02>",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("line 1"), "{}", r.body);
    let bomb = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>";
    assert_eq!(
        post(&g, g.hl7, "/v3/ingest", "application/xml", bomb).status,
        400
    );
    for f in std::fs::read_dir(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/corpus/hl7v3/ihe-iti-examples/malformed"),
    )
    .unwrap()
    {
        let body = std::fs::read(f.unwrap().path()).unwrap();
        assert_eq!(
            post(&g, g.hl7, "/v3/ingest", "application/xml", &body).status,
            400
        );
    }
    assert_eq!(
        metric(
            &g,
            "xenrad_ingest_total{protocol=\"hl7v3\",outcome=\"stored\"}"
        ),
        1
    );
}

/// Expected (HTTP status, replay) of a transition vector outcome, idempotent policy.
fn mpps_expect(name: &str) -> u16 {
    match name {
        "created" | "replay_or_duplicate" => 201,
        "updated" | "updated_noop" | "replay_or_may_no_longer_be_updated" => 200,
        "invalid_attribute_value" | "missing_attribute" => 400,
        "duplicate_sop_instance" | "may_no_longer_be_updated" | "conflict_not_settable" => 409,
        "no_such_object_instance" => 404,
        other => panic!("unknown expectation {other}"),
    }
}

#[test]
fn mpps_transition_vectors_through_the_seed_endpoint() {
    let Some(raw) = read_shared("corpus/mpps/transition_vectors.json") else {
        return;
    };
    let v: Value = serde_json::from_slice(&raw).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 17);
    let mut g = Gateway::start();
    for case in cases {
        // Each case starts from an empty store.
        g.stop();
        let _ = std::fs::remove_dir_all(&g.dir);
        g.spawn();
        for step in case["steps"].as_array().unwrap() {
            let body = step["body"].to_string();
            // Reference page curl shape; `op` says which DIMSE operation the step mirrors.
            let path = format!("/ingest?op={}", step["op"].as_str().unwrap());
            let r = curl(&[
                "-X",
                "POST",
                &g.url(g.mpps, &path),
                "-H",
                &key_header(),
                "-H",
                "Content-Type: application/json",
                "-d",
                &body,
            ]);
            let want = mpps_expect(step["expect"].as_str().unwrap());
            assert_eq!(
                r.status, want,
                "case {} step {}: {}",
                case["name"], step, r.body
            );
        }
    }
    // The projection: a completed step is a completed Procedure, its study available.
    g.stop();
    let _ = std::fs::remove_dir_all(&g.dir);
    g.spawn();
    for status in ["IN PROGRESS", "COMPLETED"] {
        let body = format!(
            r#"{{"sop_instance_uid":"1.2.3.4.5","study_uid":"1.2.3.4.5.6","status":"{status}"}}"#
        );
        assert!(post(&g, g.mpps, "/ingest", "application/json", body.as_bytes()).status < 300);
    }
    let p = fhir_get(&g, "/fhir/Procedure?identifier=1.2.3.4.5");
    assert_eq!(p["entry"][0]["resource"]["status"], "completed", "{p}");
    let s = fhir_get(
        &g,
        "/fhir/ImagingStudy?identifier=urn:dicom:uid|urn:oid:1.2.3.4.5.6",
    );
    assert_eq!(s["entry"][0]["resource"]["status"], "available", "{s}");
    // MPPS-RS view of the same state.
    let r = curl(&[
        &g.url(g.mpps, "/modality-performed-procedure-steps/1.2.3.4.5"),
        "-H",
        &key_header(),
    ]);
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains(r#""00400252":{"vr":"CS","Value":["COMPLETED"]}"#),
        "{}",
        r.body
    );
    let r = post(&g, g.mpps, "/ingest", "application/json", b"{not json");
    assert_eq!(r.status, 400);
    assert!(r.content_type.starts_with("application/problem+json"));
}

#[test]
fn dicom_echo_store_and_find_the_study_with_dcmtk() {
    if !peers() {
        return;
    }
    let g = Gateway::start();
    let port = g.dicom.port().to_string();
    // echoscu --repeat: every response must carry its request's message id.
    let out = Command::new("echoscu")
        .args(["-aec", "XENRAD", "--repeat", "3", "127.0.0.1", &port])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "echoscu: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = PathBuf::from(std::env::var("XENRAD_PYDICOM_DATA").unwrap());
    let ct = data.join("CT_small.dcm");
    for _ in 0..2 {
        // Sent twice: the second is a duplicate and must be idempotent.
        let out = Command::new("storescu")
            .args(["-aec", "XENRAD", "127.0.0.1", &port])
            .arg(&ct)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "storescu: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let py = std::env::var("XENRAD_PYTHON").unwrap();
    let study = Command::new(&py)
        .args(["-c", "import pydicom,sys; d=pydicom.dcmread(sys.argv[1]); print(d.StudyInstanceUID, d.SOPInstanceUID, d.PatientID)"])
        .arg(&ct)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&study.stdout).into_owned();
    let mut it = text.split_whitespace();
    let (study_uid, sop_uid, patient_id) = (
        it.next().unwrap().to_owned(),
        it.next().unwrap().to_owned(),
        it.next().unwrap().to_owned(),
    );
    let b = fhir_get(&g, &format!("/fhir/ImagingStudy?identifier={study_uid}"));
    assert_eq!(b["total"], 1, "{b}");
    let s = &b["entry"][0]["resource"];
    assert_eq!(s["numberOfInstances"], 1);
    assert_eq!(s["series"][0]["instance"][0]["uid"], sop_uid.as_str());
    assert_eq!(s["series"][0]["modality"]["code"], "CT");
    let subject = s["subject"]["reference"]
        .as_str()
        .expect("subject is the patient")
        .to_owned();
    let p = fhir_get(&g, &format!("/fhir/{subject}"));
    assert_eq!(p["identifier"][0]["value"], patient_id.as_str());
    // The stored file equals the source, element by element, with a correct File Meta.
    let stored: Vec<PathBuf> = walk(&g.dir.join("dicom"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    let cmp = Command::new(&py)
        .args(["-c", "import pydicom,sys\na=pydicom.dcmread(sys.argv[1]); b=pydicom.dcmread(sys.argv[2])\n# storescu drops trailing padding (FFFC,FFFC) when it sends\nif 0xFFFCFFFC in a: del a[0xFFFCFFFC]\nassert a==b\nm=b.file_meta\nassert m.MediaStorageSOPInstanceUID==b.SOPInstanceUID and m.MediaStorageSOPClassUID==b.SOPClassUID\nprint('same')"])
        .arg(&ct)
        .arg(&stored[0])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cmp.stdout).trim(),
        "same",
        "{}",
        String::from_utf8_lossy(&cmp.stderr)
    );
    assert_eq!(
        metric(
            &g,
            "xenrad_ingest_total{protocol=\"dicom\",outcome=\"duplicate\"}"
        ),
        1
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if p.extension().is_some_and(|x| x == "dcm") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn mpps_n_create_and_n_set_from_pynetdicom_on_separate_associations() {
    if !peers() {
        return;
    }
    let g = Gateway::start();
    let script = r#"
import sys
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS
port = int(sys.argv[1])
uid = "1.2.826.0.1.3680043.2.1143.777"
def assoc():
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(MPPS)
    a = ae.associate("127.0.0.1", port, ae_title="XENRAD")
    assert a.is_established
    return a
ds = Dataset()
ds.PerformedProcedureStepStatus = "IN PROGRESS"
ds.PerformedProcedureStepID = "PPS1"
ds.PerformedStationAETitle = "MODALITY"
ds.PerformedProcedureStepStartDate = "20240101"
ds.PerformedProcedureStepStartTime = "120000"
ds.Modality = "CT"
ds.PatientName = "Mpps^Pat"
ds.PatientID = "P77"
ssa = Dataset(); ssa.StudyInstanceUID = "1.2.826.0.1.3680043.2.1143.778"
ds.ScheduledStepAttributesSequence = Sequence([ssa])
for k in ["PatientBirthDate","PatientSex","ReferencedPatientSequence","PerformedProcedureStepDescription","PerformedProcedureTypeDescription","ProcedureCodeSequence","PerformedProcedureStepEndDate","PerformedProcedureStepEndTime","PerformedStationName","PerformedLocation","PerformedSeriesSequence"]:
    setattr(ds, k, Sequence([]) if k.endswith("Sequence") else "")
a = assoc()
st, _ = a.send_n_create(ds, MPPS, uid)
print(hex(st.Status)); a.release()
a = assoc()
st, _ = a.send_n_create(ds, MPPS, uid)
print(hex(st.Status)); a.release()
upd = Dataset()
upd.PerformedProcedureStepStatus = "COMPLETED"
upd.PerformedProcedureStepEndDate = "20240101"
upd.PerformedProcedureStepEndTime = "121500"
ser = Dataset(); ser.SeriesInstanceUID = "1.2.826.0.1.3680043.2.1143.779"; ser.RetrieveAETitle = ""; ser.SeriesDescription = ""
ser.PerformingPhysicianName = ""; ser.OperatorsName = ""; ser.ProtocolName = "P"
img = Dataset(); img.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"; img.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.2.1143.780"
ser.ReferencedImageSequence = Sequence([img]); ser.ReferencedNonImageCompositeSOPInstanceSequence = Sequence([])
upd.PerformedSeriesSequence = Sequence([ser])
a = assoc()
st, _ = a.send_n_set(upd, MPPS, uid)
print(hex(st.Status)); a.release()
late = Dataset(); late.PerformedProcedureStepStatus = "DISCONTINUED"
a = assoc()
st, _ = a.send_n_set(late, MPPS, uid)
print(hex(st.Status), hex(st.get("ErrorID", 0))); a.release()
"#;
    let out = Command::new(std::env::var("XENRAD_PYTHON").unwrap())
        .args(["-c", script, &g.dicom.port().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    // create, identical retry (idempotent), final N-SET, update after final state.
    // The refusal carries Error ID A710 (PS3.4 F.7.2.2: may no longer be updated).
    assert_eq!(lines, vec!["0x0", "0x0", "0x0", "0x110 0xa710"], "{text}");
    let r = curl(&[
        &g.url(
            g.mpps,
            "/modality-performed-procedure-steps/1.2.826.0.1.3680043.2.1143.777",
        ),
        "-H",
        &key_header(),
    ]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("COMPLETED"), "{}", r.body);
    let p = fhir_get(
        &g,
        "/fhir/Procedure?identifier=1.2.826.0.1.3680043.2.1143.777",
    );
    assert_eq!(p["entry"][0]["resource"]["status"], "completed", "{p}");
}

#[test]
fn tls_on_every_listener_with_real_clients() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "xenrad-e2e-tls-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let (c, k) = (
        cert_path.display().to_string(),
        key_path.display().to_string(),
    );
    let mut g = Gateway::start();
    g.stop();
    for surface in ["fhir", "hl7", "mpps", "mllp", "dicom"] {
        g.extra.extend([
            format!("--{surface}-tls-cert"),
            c.clone(),
            format!("--{surface}-tls-key"),
            k.clone(),
        ]);
    }
    g.spawn();
    // HTTPS with the certificate as the only trust anchor.
    let https = |addr: SocketAddr, path: &str| {
        let resolve = format!("localhost:{}:127.0.0.1", addr.port());
        let url = format!("https://localhost:{}{path}", addr.port());
        curl(&[
            "--cacert",
            &c,
            "--resolve",
            &resolve,
            &url,
            "-H",
            &key_header(),
        ])
    };
    let r = https(g.fhir, "/fhir/metadata");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["fhirVersion"], "4.0.1");
    assert_eq!(https(g.mpps, "/api/documentation/openapi.json").status, 200);
    let resolve = format!("localhost:{}:127.0.0.1", g.hl7.port());
    let r = curl(&[
        "--cacert",
        &c,
        "--resolve",
        &resolve,
        "-X",
        "POST",
        &format!("https://localhost:{}/v2/ingest", g.hl7.port()),
        "-H",
        &key_header(),
        "--data-binary",
        REF_ADT,
    ]);
    assert_eq!(msa(&r.body).0, "AA", "{}", r.body);
    // Plain HTTP to a TLS listener gets no HTTP answer.
    let plain = Command::new("curl")
        .args(["-sS", "-m", "5", &g.url(g.fhir, "/fhir/metadata")])
        .output()
        .unwrap();
    assert!(!plain.status.success());
    if peers() {
        // MLLPS from Python's ssl module, DICOM TLS from DCMTK.
        let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
s = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2]))), server_hostname="localhost")
s.sendall(b"\x0bMSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|T1|P|2.5.1\rPID|1||IDT||Tls^Tom\r\x1c\x0d")
buf = b""
while b"\x1c\x0d" not in buf:
    buf += s.recv(4096)
print([seg for seg in buf.split(b"\r") if seg.startswith(b"MSA")][0].decode())
"#;
        let out = Command::new(std::env::var("XENRAD_PYTHON").unwrap())
            .args(["-c", script, "127.0.0.1", &g.mllp.port().to_string(), &c])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "MSA|AA|T1",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("echoscu")
            .args([
                "+tls",
                &k,
                &c,
                "+cf",
                &c,
                "-aec",
                "XENRAD",
                "127.0.0.1",
                &g.dicom.port().to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Mutual TLS: with `--*-tls-client-ca`, a client must present a certificate issued
/// by that CA. curl on the FHIR surface, Python `ssl` on MLLP and DCMTK `echoscu`
/// on the DICOM port, each with and without a client certificate.
#[test]
fn mutual_tls_requires_a_client_certificate() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Xenrad test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let issue = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        (p.signed_by(&key, &issuer).unwrap(), key)
    };
    let (server, server_key) = issue("localhost");
    let (client, client_key) = issue("modality-1");
    let dir = std::env::temp_dir().join(format!(
        "xenrad-e2e-mtls-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, pem: String| {
        let p = dir.join(name);
        std::fs::write(&p, pem).unwrap();
        p.display().to_string()
    };
    let ca_pem = write("ca.pem", ca.pem());
    let srv_c = write("server.pem", server.pem());
    let srv_k = write("server.key", server_key.serialize_pem());
    let cli_c = write("client.pem", client.pem());
    let cli_k = write("client.key", client_key.serialize_pem());
    let mut g = Gateway::start();
    g.stop();
    for surface in ["fhir", "mllp", "dicom"] {
        g.extra.extend([
            format!("--{surface}-tls-cert"),
            srv_c.clone(),
            format!("--{surface}-tls-key"),
            srv_k.clone(),
            format!("--{surface}-tls-client-ca"),
            ca_pem.clone(),
        ]);
    }
    g.spawn();
    let resolve = format!("localhost:{}:127.0.0.1", g.fhir.port());
    let url = format!("https://localhost:{}/fhir/metadata", g.fhir.port());
    let with_cert = curl(&[
        "--cacert",
        &ca_pem,
        "--resolve",
        &resolve,
        "--cert",
        &cli_c,
        "--key",
        &cli_k,
        &url,
    ]);
    assert_eq!(with_cert.status, 200);
    assert_eq!(with_cert.json()["fhirVersion"], "4.0.1");
    let without = Command::new("curl")
        .args([
            "-sS",
            "-m",
            "5",
            "--cacert",
            &ca_pem,
            "--resolve",
            &resolve,
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        !without.status.success(),
        "a client without a certificate was served: {}",
        String::from_utf8_lossy(&without.stdout)
    );
    if peers() {
        let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
if len(sys.argv) > 4:
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
try:
    s = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2]))), server_hostname="localhost")
    s.sendall(b"\x0bMSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|MT1|P|2.5.1\rPID|1||IDM||Mutual^Mia\r\x1c\x0d")
    buf = b""
    while b"\x1c\x0d" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    print([seg for seg in buf.split(b"\r") if seg.startswith(b"MSA")][0].decode())
except (ssl.SSLError, OSError, IndexError) as e:
    print("refused", type(e).__name__)
"#;
        let py = std::env::var("XENRAD_PYTHON").unwrap();
        let port = g.mllp.port().to_string();
        let run = |extra: &[&str]| {
            let out = Command::new(&py)
                .args(["-c", script, "127.0.0.1", &port, &ca_pem])
                .args(extra)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        assert_eq!(run(&[&cli_c, &cli_k]), "MSA|AA|MT1");
        assert!(
            run(&[]).starts_with("refused"),
            "MLLPS without a client certificate was served"
        );
        let port = g.dicom.port().to_string();
        // `+tls key cert` presents a client certificate; `+tla` is anonymous TLS.
        let echo = |tls: &[&str]| {
            Command::new("echoscu")
                .args(tls)
                .args(["+cf", &ca_pem, "-aec", "XENRAD", "127.0.0.1", &port])
                .output()
                .unwrap()
        };
        let ok = echo(&["+tls", &cli_k, &cli_c]);
        assert!(
            ok.status.success(),
            "{}{}",
            String::from_utf8_lossy(&ok.stdout),
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(
            !echo(&["+tla"]).status.success(),
            "DICOM TLS without a client certificate was accepted"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `--log-format json`: one JSON object per line, one per ingested message, with
/// protocol and outcome but no message content or patient data.
#[test]
fn json_logs_carry_no_patient_data() {
    let mut g = Gateway::start();
    g.stop();
    let log = g.dir.with_extension("log");
    g.log_file = Some(log.clone());
    g.extra
        .extend(["--log-format".to_owned(), "json".to_owned()]);
    g.spawn();
    let r = curl(&[
        "-X",
        "POST",
        &g.url(g.hl7, "/v2/ingest"),
        "-H",
        &key_header(),
        "--data-binary",
        REF_ADT,
    ]);
    assert_eq!(msa(&r.body).0, "AA", "{}", r.body);
    g.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["protocol"] == "hl7v2"
            && l["fields"]["outcome"] == "stored"
            && l["level"] == "INFO"),
        "{text}"
    );
    assert!(!text.contains("Doe"), "patient data in the logs: {text}");
    let _ = std::fs::remove_file(log);
}

/// Sends MLLP frames on one connection and reads one reply frame per message (the
/// payload between the start block and `<FS><CR>`).
fn mllp_exchange(addr: SocketAddr, messages: &[&[u8]]) -> Vec<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for m in messages {
        let mut frame = vec![0x0b];
        frame.extend_from_slice(m);
        frame.extend_from_slice(b"\x1c\r");
        s.write_all(&frame).unwrap();
    }
    let (mut buf, mut replies) = (Vec::new(), Vec::new());
    while replies.len() < messages.len() {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed after {} replies", replies.len());
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.windows(2).position(|w| w == b"\x1c\r") {
            let start = buf.iter().position(|&b| b == 0x0b).unwrap();
            replies.push(buf[start + 1..end].to_vec());
            buf.drain(..end + 2);
        }
    }
    replies
}

/// `--mllp-commit-blocks`: the gateway's MLLP door is the HL7 handler's own MLLP handler, so
/// MLLP release 2 commit blocks reach the sender: `<ACK>` (0x06) once stored, also for a
/// retry, `<NAK>` (0x15) for what cannot be stored; counted like every other v2 message.
#[test]
fn mllp_release2_commit_blocks_through_the_gateway() {
    let mut g = Gateway::start();
    g.stop();
    g.extra.push("--mllp-commit-blocks".to_owned());
    g.spawn();
    let adt: &[u8] = b"MSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|R2-1|P|2.5.1\rPID|1||IDR2||Release^Two||19700202|F\r";
    let replies = mllp_exchange(g.mllp, &[adt, adt, b"not hl7"]);
    assert_eq!(replies, vec![vec![0x06], vec![0x06], vec![0x15]]);
    let count = |outcome: &str| {
        metric(
            &g,
            &format!("xenrad_ingest_total{{protocol=\"hl7v2\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(
        (count("stored"), count("duplicate"), count("rejected")),
        (1, 1, 1)
    );
    assert_eq!(fhir_get(&g, "/fhir/Patient?family=release")["total"], 1);
    // Without the flag the same door answers HL7 ACK messages (release 1 behaviour).
    g.stop();
    g.extra = base_args();
    g.spawn();
    let again = mllp_exchange(g.mllp, &[adt]);
    assert!(
        again[0].starts_with(b"MSH|"),
        "{:?}",
        String::from_utf8_lossy(&again[0])
    );
    assert_eq!(
        msa(&String::from_utf8_lossy(&again[0])),
        ("AA".to_owned(), "R2-1".to_owned())
    );
}

/// Security headers on every answer, refusals and 404s included (issue 20); over plain
/// HTTP without HSTS (the TLS campaign, `scripts/reliability/tlsinterop.py`, checks HSTS
/// over HTTPS).
#[test]
fn security_headers_on_every_http_answer() {
    if !peers() {
        return;
    }
    let g = Gateway::start();
    let headers = |url: String, key: bool| {
        let mut c = Command::new("curl");
        c.args(["-sS", "-o", "/dev/null", "-D", "-"]);
        if key {
            c.args(["-H", &key_header()]);
        }
        let out = c.arg(url).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
    };
    let cases = [
        (g.url(g.fhir, "/fhir/Patient"), true, "no-store"),
        (g.url(g.fhir, "/fhir/Patient"), false, "no-store"),
        (g.url(g.hl7, "/no/such/path"), true, "no-store"),
        (g.url(g.mpps, "/healthz"), false, "no-store"),
        (g.url(g.fhir, "/api/documentation"), false, "no-cache"),
    ];
    for (url, key, cache) in cases {
        let h = headers(url.clone(), key);
        for want in [
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "x-frame-options: deny",
            "content-security-policy: ",
            &format!("cache-control: {cache}"),
        ] {
            assert!(h.contains(want), "{url}: no {want:?} in\n{h}");
        }
        assert!(
            !h.contains("strict-transport-security"),
            "HSTS over plain HTTP: {url}"
        );
        if url.ends_with("/api/documentation") {
            assert!(h.contains("script-src 'sha256-"), "{h}");
        } else {
            assert!(
                h.contains("content-security-policy: default-src 'none'"),
                "{h}"
            );
        }
    }
}

/// API keys with names and scopes from `--api-key-file`, reloaded on SIGHUP (issue 20): a
/// key without the scope gets 403, a removed key 401 from the next request on, a file that
/// does not parse leaves the keys as they were, and `XENRAD_API_KEY` keeps working.
#[test]
fn scoped_api_keys_reload_on_sighup_and_revoke_at_once() {
    if !peers() {
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "xenrad-e2e-keys-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    std::fs::write(
        &file,
        "# name: key scopes\nris: ris-key hl7:write\nviewer: viewer-key fhir:read dicomweb:read\nold: old-key\n",
    )
    .unwrap();
    let mut extra = base_args();
    extra.extend(["--api-key-file".into(), file.display().to_string()]);
    let mut g = Gateway::new(dir.join("data"), extra);
    g.log_file = Some(dir.join("gateway.log"));
    g.spawn();
    let status = |key: &str, method: &str, addr: SocketAddr, path: &str| -> u16 {
        let mut args = vec![
            "-X".to_owned(),
            method.to_owned(),
            g.url(addr, path),
            "-H".to_owned(),
            format!("X-API-Key: {key}"),
        ];
        if method == "POST" {
            args.extend([
                "-H".into(),
                "Content-Type: text/plain".into(),
                "--data-binary".into(),
                REF_ADT.into(),
            ]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&refs).status
    };
    let fhir_read = |k: &str| status(k, "GET", g.fhir, "/fhir/Patient");
    let v2_write = |k: &str| status(k, "POST", g.hl7, "/v2/ingest");
    let stow = |k: &str| status(k, "POST", g.fhir, "/dicomweb/studies");
    let qido = |k: &str| status(k, "GET", g.fhir, "/dicomweb/studies");
    assert_eq!(v2_write("ris-key"), 200);
    assert_eq!(fhir_read("ris-key"), 403);
    assert_eq!(fhir_read("viewer-key"), 200);
    assert!(matches!(qido("viewer-key"), 200 | 204));
    assert_eq!(v2_write("viewer-key"), 403);
    assert_eq!(stow("viewer-key"), 403);
    assert_eq!(fhir_read("old-key"), 200);
    assert_eq!(
        fhir_read(KEY),
        200,
        "the single-key environment variable keeps working"
    );
    assert_eq!(fhir_read("nobody"), 401);

    // Revoke `old`, add `new`, SIGHUP: no restart, `old` refused from the next request on.
    std::fs::write(&file, "ris: ris-key hl7:write\nnew: new-key fhir:read\n").unwrap();
    let pid = g.child.as_ref().unwrap().id().to_string();
    let hup = || {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    hup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fhir_read("new-key") != 200 {
        assert!(
            Instant::now() < deadline,
            "new key not accepted after SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fhir_read("old-key"), 401);
    assert_eq!(fhir_read("viewer-key"), 401);
    assert_eq!(v2_write("new-key"), 403);
    assert_eq!(fhir_read(KEY), 200);

    // A broken file: the keys in force stay.
    std::fs::write(&file, "new: new-key fhir:delete\n").unwrap();
    hup();
    let log = dir.join("gateway.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("not reloaded")
    {
        assert!(Instant::now() < deadline, "no reload error logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fhir_read("new-key"), 200);
    assert_eq!(v2_write("ris-key"), 200);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("line 1: unknown scope"), "{text}");
    assert!(
        !text.contains("new-key") && !text.contains("ris-key"),
        "a key in the log: {text}"
    );
    g.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The audit trail (issue 20): ingest over HTTP, MLLP and C-STORE, a FHIR read and
/// search, and refused authentications are AuditEvents, searchable at /fhir/AuditEvent,
/// durable across a restart, and holding identifiers only (no patient name from the
/// messages, no search values).
#[test]
fn audit_trail_records_every_door_and_is_searchable() {
    if !peers() {
        return;
    }
    let mut g = Gateway::start();
    let get = |g: &Gateway, path: &str| curl(&[&g.url(g.fhir, path), "-H", &key_header()]);
    // Ingest over HTTP and MLLP (the patient name must never reach the audit trail).
    let r = post(&g, g.hl7, "/v2/ingest", "text/plain", REF_ADT.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let acks = mllp_exchange(
        g.mllp,
        &[b"MSH|^~\\&|RIS|HOSP|XEN|FAC|20240101120000||ADT^A08|AUD-MLLP-1|P|2.5.1\rPID|1||AUD1||Secretname^Hidden\r"],
    );
    assert!(String::from_utf8_lossy(&acks[0]).contains("MSA|AA"));
    // A C-STORE.
    let ct = PathBuf::from(std::env::var("XENRAD_PYDICOM_DATA").unwrap()).join("CT_small.dcm");
    let out = Command::new("storescu")
        .args([
            "-aet",
            "AUDITSCU",
            "-aec",
            "XENRAD",
            "127.0.0.1",
            &g.dicom.port().to_string(),
        ])
        .arg(&ct)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A search and a read, and two refusals.
    let bundle = get(&g, "/fhir/Patient?name=doe").json();
    let pid = bundle["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get(&g, &format!("/fhir/Patient/{pid}")).status, 200);
    assert_eq!(
        curl(&[&g.url(g.fhir, "/fhir/Patient"), "-H", "X-API-Key: wrong"]).status,
        401
    );
    assert_eq!(
        curl(&[&g.url(g.hl7, "/v2/ingest"), "-X", "POST"]).status,
        401
    );

    let search = |g: &Gateway, q: &str| -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let b = get(g, &format!("/fhir/AuditEvent?{q}")).json();
            if b["entry"].as_array().is_some_and(|e| !e.is_empty()) || Instant::now() > deadline {
                return b;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let first = |b: &Value| b["entry"][0]["resource"].clone();
    let mllp = first(&search(&g, "site=mllp"));
    assert_eq!(mllp["agent"][0]["who"]["identifier"]["value"], "RIS");
    assert_eq!(
        mllp["entity"][0]["what"]["identifier"]["value"],
        "RIS|HOSP|AUD-MLLP-1"
    );
    assert_eq!(mllp["type"]["code"], "110107");
    let http = first(&search(&g, "site=hl7&outcome=0"));
    assert_eq!(http["agent"][0]["name"], "default");
    assert_eq!(http["agent"][0]["network"]["address"], "127.0.0.1");
    assert_eq!(
        http["entity"][0]["what"]["identifier"]["value"],
        "APP|FAC|1"
    );
    let dicom = first(&search(&g, "site=dicom"));
    assert_eq!(dicom["type"]["code"], "110104");
    assert_eq!(dicom["agent"][0]["who"]["identifier"]["value"], "AUDITSCU");
    let read = first(&search(&g, &format!("patient=Patient/{pid}&subtype=read")));
    assert_eq!(read["action"], "R");
    // Searches of AuditEvent are audited too: look for the Patient search among them.
    let searches = search(&g, "subtype=search-type&agent-name=default&_count=100");
    let values: Vec<&Value> = searches["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"]["entity"][0]["what"]["identifier"]["value"])
        .collect();
    assert!(values.iter().any(|v| *v == "Patient?name"), "{values:?}");
    let refused = search(&g, "outcome=4");
    assert!(refused["entry"].as_array().unwrap().len() >= 2, "{refused}");
    assert_eq!(first(&refused)["type"]["code"], "110114");

    // Metrics (issue 20): open connections and associations per door, ingest latency per
    // door, audit events written.
    let m = curl(&[&g.url(g.fhir, "/metrics"), "-H", &key_header()]).body;
    let value = |series: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse().unwrap()))
            .unwrap_or_else(|| panic!("no {series} in\n{m}"))
    };
    assert!(
        value("xenrad_open_connections{door=\"fhir\"}") >= 1,
        "this request's own"
    );
    for door in ["hl7", "mpps", "mllp"] {
        value(&format!("xenrad_open_connections{{door=\"{door}\"}}"));
    }
    value("xenrad_open_associations{door=\"dicom\"}");
    for door in ["hl7", "mllp", "dicom"] {
        assert_eq!(
            value(&format!("xenrad_ingest_seconds_count{{door=\"{door}\"}}")),
            1,
            "{door}"
        );
    }
    assert!(value("xenrad_audit_events_total{outcome=\"written\"}") >= 5);
    assert_eq!(value("xenrad_audit_events_total{outcome=\"dropped\"}"), 0);

    // The trail is read-only through the API.
    let w = post(
        &g,
        g.fhir,
        "/fhir/AuditEvent",
        "application/fhir+json",
        br#"{"resourceType":"AuditEvent"}"#,
    );
    assert_eq!(w.status, 405, "{}", w.body);

    // Durable: after a restart the events are still there.
    let before = search(&g, "_count=500")["entry"].as_array().unwrap().len();
    g.stop();
    g.spawn();
    let all = search(&g, "_count=500");
    let text = all.to_string();
    assert!(all["entry"].as_array().unwrap().len() >= before, "{text}");
    // Identifiers only: no name from the messages, no search value.
    for secret in ["Secretname", "Hidden", "Doe", "John", "name=doe"] {
        assert!(
            !text.contains(secret),
            "{secret} in the audit trail: {text}"
        );
    }
}
