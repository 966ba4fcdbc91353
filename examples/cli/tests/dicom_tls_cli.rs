//! `xenrad dicom scp|echo|store` with DICOM TLS (PS3.15 B.1) and client certificates: our
//! SCU against our SCP, and DCMTK `echoscu +tls` / `storescu +tls` against our SCP when the
//! real peers are installed (`eval "$(scripts/peers.sh)"`).
#![allow(missing_docs)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};
use xenrad_dimse::store::{FileMeta, encode_file_meta};

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM
/// files in `dir`.
fn pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "xenrad test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    for (name, sans) in [
        (
            "server",
            vec!["localhost".to_string(), "127.0.0.1".to_string()],
        ),
        ("client", vec!["modality.example".to_string()]),
    ] {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// A small Part 10 file (Explicit VR Little Endian CT) at `path`.
fn part10(path: &Path, inst: &str) {
    let mut f = encode_file_meta(&FileMeta {
        sop_class_uid: CT,
        sop_instance_uid: inst,
        transfer_syntax: "1.2.840.10008.1.2.1",
        implementation_class_uid: "1.2.3.4",
        implementation_version_name: "TEST",
        source_ae: None,
    });
    let mut put = |g: u16, e: u16, vr: &[u8; 2], v: &[u8]| {
        f.extend_from_slice(&g.to_le_bytes());
        f.extend_from_slice(&e.to_le_bytes());
        f.extend_from_slice(vr);
        f.extend_from_slice(&(v.len() as u16).to_le_bytes());
        f.extend_from_slice(v);
    };
    let mut uid = inst.as_bytes().to_vec();
    if uid.len() % 2 == 1 {
        uid.push(0);
    }
    put(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0");
    put(0x0008, 0x0018, b"UI", &uid);
    put(0x0008, 0x0060, b"CS", b"CT");
    put(0x0010, 0x0020, b"LO", b"TLS1");
    put(0x0020, 0x000D, b"UI", b"1.2.826.0.1.77");
    std::fs::write(path, f).unwrap();
}

struct Scp(Child);
impl Drop for Scp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn xenrad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xenrad"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn dicom_cli_tls_with_client_certificates() {
    let dir = std::env::temp_dir().join(format!("xenrad-cli-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    pki(&dir);
    let p = |n: &str| -> String { dir.join(n).to_str().unwrap().to_owned() };
    let out = dir.join("out");
    let port = free_port();
    let _scp = Scp(Command::new(env!("CARGO_BIN_EXE_xenrad"))
        .args([
            "dicom",
            "scp",
            "--journal-mb",
            "4",
            "--port",
            &port.to_string(),
            "--out",
        ])
        .arg(&out)
        .args([
            "--tls-cert",
            &p("server.pem"),
            "--tls-key",
            &p("server.key"),
        ])
        .args(["--tls-ca", &p("ca.pem"), "--quiet"])
        .spawn()
        .unwrap());
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "scp did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let addr = format!("127.0.0.1:{port}");
    let client = [
        "--tls-ca",
        &p("ca.pem"),
        "--tls-cert",
        &p("client.pem"),
        "--tls-key",
        &p("client.key"),
    ];
    // Our SCU, verified both ways.
    let o = xenrad(
        &[
            &[
                "dicom",
                "echo",
                &addr,
                "--repeat",
                "2",
                "--called-aet",
                "XENRAD",
            ][..],
            &client[..],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(text(&o).matches("status 0x0000").count(), 2, "{}", text(&o));
    let file = dir.join("in.dcm");
    part10(&file, "1.2.826.0.1.77.1");
    let o = xenrad(
        &[
            &["dicom", "store", &addr, file.to_str().unwrap()][..],
            &client[..],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let stored = std::fs::read(out.join("1.2.826.0.1.77.1.dcm")).unwrap();
    let sent = std::fs::read(&file).unwrap();
    assert_eq!(stored[stored.len() - 40..], sent[sent.len() - 40..]);
    // Without a client certificate the SCP refuses the handshake.
    let o = xenrad(&["dicom", "echo", &addr, "--tls-ca", &p("ca.pem")]);
    assert!(!o.status.success(), "{}", text(&o));
    // Plain TCP against the TLS port fails too.
    let o = xenrad(&["dicom", "echo", &addr]);
    assert!(!o.status.success(), "{}", text(&o));

    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!(
            "skipped: DCMTK echoscu/storescu +tls need real peers (eval \"$(scripts/peers.sh)\")"
        );
    } else {
        let tls = |cmd: &str| {
            let mut c = Command::new(cmd);
            c.arg("+tls")
                .arg(p("client.key"))
                .arg(p("client.pem"))
                .arg("+cf")
                .arg(p("ca.pem"))
                .args(["-aec", "XENRAD", "-v"]);
            c
        };
        let o = tls("echoscu")
            .args(["--repeat", "2", "127.0.0.1", &port.to_string()])
            .output()
            .expect("echoscu");
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            text(&o).matches("Received Echo Response (Success)").count(),
            2,
            "{}",
            text(&o)
        );
        let file2: PathBuf = dir.join("in2.dcm");
        part10(&file2, "1.2.826.0.1.77.2");
        let o = tls("storescu")
            .args(["127.0.0.1", &port.to_string()])
            .arg(&file2)
            .output()
            .expect("storescu");
        assert!(o.status.success(), "{}", text(&o));
        assert!(out.join("1.2.826.0.1.77.2.dcm").exists(), "{}", text(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
