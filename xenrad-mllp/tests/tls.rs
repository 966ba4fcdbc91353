//! MLLP over TLS with mutual authentication: certificates made on the fly (rcgen), the
//! listener's `serve_tls` and the client's TLS mode, with the ring provider chosen explicitly.
#![cfg(feature = "tls")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Recorder, message};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use xenrad_mllp::client::{Client, ClientConfig, ClientError, TlsClient};
use xenrad_mllp::server::{Server, ServerConfig};

struct Pki {
    ca: CertificateDer<'static>,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    client: (CertificateDer<'static>, PrivateKeyDer<'static>),
    /// PEM of the CA certificate, and of the client certificate and key (for non-Rust peers).
    ca_pem: String,
    client_pem: (String, String),
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct subject names: OpenSSL takes a leaf whose subject equals its issuer for a
    // self-signed certificate (rustls does not look at names).
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Xenrad test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        let cert = params.signed_by(&key, &issuer).unwrap();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        ((cert.der().clone(), der), (cert.pem(), key.serialize_pem()))
    };
    let (server, _) = leaf(vec!["localhost".into()]);
    let (client, client_pem) = leaf(vec!["modality.example".into()]);
    Pki {
        ca: ca.der().clone(),
        server,
        client,
        ca_pem: ca.pem(),
        client_pem,
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(pki: &Pki) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    Arc::new(roots)
}

fn acceptor(pki: &Pki) -> TlsAcceptor {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(pki), provider())
        .build()
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

fn tls_client(pki: &Pki, with_cert: bool) -> TlsClient {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(pki));
    let config = if with_cert {
        builder
            .with_client_auth_cert(vec![pki.client.0.clone()], pki.client.1.clone_key())
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    TlsClient {
        connector: TlsConnector::from(Arc::new(config)),
        server_name: ServerName::try_from("localhost").unwrap(),
    }
}

#[tokio::test]
async fn mutual_tls_round_trip_and_refusals() {
    let pki = pki();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = {
        let mut c = ServerConfig::default();
        c.handshake_timeout = Duration::from_millis(500);
        c
    };
    let server = Server::new(Recorder::default(), config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let server = server.clone();
        let acceptor = acceptor(&pki);
        tokio::spawn(async move {
            server
                .serve_tls(listener, acceptor, async {
                    rx.await.ok();
                })
                .await
        })
    };

    // With a client certificate: messages are acknowledged, the handler sees the certificate.
    let mut client = Client::new(addr.to_string(), {
        let mut c = ClientConfig::default();
        c.tls = Some(tls_client(&pki, true));
        c
    });
    for i in 0..20 {
        let r = client.send(&message(&format!("TLS-{i}"))).await.unwrap();
        assert_eq!(r.control_id(), Some(format!("TLS-{i}").as_bytes()));
    }
    let conns = server.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(
        conns[0].client_certificate.as_deref(),
        Some(pki.client.0.as_ref())
    );
    drop(client);

    // Without a client certificate: the handshake is refused, nothing reaches the handler.
    let mut anonymous = Client::new(addr.to_string(), {
        let mut c = ClientConfig::default();
        c.tls = Some(tls_client(&pki, false));
        c.max_attempts = 1;
        c.ack_timeout = Duration::from_secs(5);
        c
    });
    let err = anonymous.send(&message("ANON")).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Io(_) | ClientError::Closed),
        "{err}"
    );

    // Plain MLLP on the TLS port: no handshake, the connection is closed after the timeout.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    let mut wire = vec![0x0b];
    wire.extend_from_slice(&message("PLAIN"));
    wire.extend_from_slice(b"\x1c\r");
    let _ = plain.write_all(&wire).await;
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), plain.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "plain client must be disconnected");

    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    let seen = server.handler().seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 20);
    let ends = server.handler().ends.lock().unwrap().clone();
    assert_eq!(
        ends.iter().filter(|e| *e == "Handshake").count(),
        2,
        "{ends:?}"
    );
}

/// A non-Rust peer: Python's `ssl` (OpenSSL) talks MLLPS to `serve_tls` with mutual TLS, once
/// with TLS 1.3 and once capped at TLS 1.2. With the client certificate its messages are
/// acknowledged in order and reach the handler; without one the handshake is refused and
/// nothing reaches the handler.
/// Needs `XENRAD_PEERS`/`XENRAD_PYTHON` from `scripts/peers.sh`; skipped without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ssl_client_with_and_without_client_certificate() {
    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!("skipped: XENRAD_PEERS is unset (run `eval \"$(scripts/peers.sh)\"`)");
        return;
    }
    let py = std::env::var("XENRAD_PYTHON").expect("XENRAD_PEERS is set, so XENRAD_PYTHON must be");
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("xenrad-mllp-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let ca = file("ca.pem", &pki.ca_pem);
    let cert = file("client.pem", &pki.client_pem.0);
    let key = file("client.key", &pki.client_pem.1);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let config = {
        let mut c = ServerConfig::default();
        c.handshake_timeout = Duration::from_secs(5);
        c
    };
    let server = Server::new(Recorder::default(), config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let server = server.clone();
        let acceptor = acceptor(&pki);
        tokio::spawn(async move {
            server
                .serve_tls(listener, acceptor, async {
                    rx.await.ok();
                })
                .await
        })
    };
    let script = format!("{}/tests/peer/tls_client.py", env!("CARGO_MANIFEST_DIR"));
    let run = |tls_max: &'static str, args: Vec<String>| {
        let (py, script) = (py.clone(), script.clone());
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(py)
                .arg(script)
                .args(args)
                .env("TLS_MAX", tls_max)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
    };

    for (tls_max, version) in [("", "TLSv1.3"), ("1.2", "TLSv1.2")] {
        let args = vec![
            port.clone(),
            ca.clone(),
            "5".into(),
            cert.clone(),
            key.clone(),
        ];
        let mutual = run(tls_max, args).await.unwrap();
        let lines: Vec<&str> = mutual.lines().collect();
        assert!(lines[0].starts_with(&format!("TLS {version} ")), "{mutual}");
        assert_eq!(lines.len(), 6, "{mutual}");
        for (i, line) in lines[1..].iter().enumerate() {
            assert_eq!(*line, format!("ACK AA PYTLS-{i} PYTLS-{i}"));
        }
        let anonymous = run(tls_max, vec![port.clone(), ca.clone(), "1".into()])
            .await
            .unwrap();
        println!("python ssl peer, with client certificate:\n{mutual}without:\n{anonymous}");
        assert!(anonymous.contains("REFUSED"), "{anonymous}");
        assert!(!anonymous.contains("ACK "), "{anonymous}");
    }

    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    // Both runs with the certificate reached the handler; neither anonymous one did.
    let seen = server.handler().seen.lock().unwrap().clone();
    let once: Vec<_> = (0..5).map(|i| format!("PYTLS-{i}")).collect();
    assert_eq!(seen, [once.clone(), once].concat());
    let ends = server.handler().ends.lock().unwrap().clone();
    assert_eq!(
        ends.iter().filter(|e| *e == "Handshake").count(),
        2,
        "{ends:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
