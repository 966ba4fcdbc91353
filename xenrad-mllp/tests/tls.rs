//! MLLP over TLS with mutual authentication: certificates made on the fly (rcgen), the
//! listener's `serve_tls` and the client's TLS mode, with the ring provider chosen explicitly.
#![cfg(feature = "tls")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Recorder, message};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
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
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), der)
    };
    Pki {
        ca: ca.der().clone(),
        server: leaf(vec!["localhost".into()]),
        client: leaf(vec!["modality.example".into()]),
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
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
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
    let mut client = Client::new(
        addr.to_string(),
        ClientConfig {
            tls: Some(tls_client(&pki, true)),
            ..ClientConfig::default()
        },
    );
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
    let mut anonymous = Client::new(
        addr.to_string(),
        ClientConfig {
            tls: Some(tls_client(&pki, false)),
            max_attempts: 1,
            ack_timeout: Duration::from_secs(5),
            ..ClientConfig::default()
        },
    );
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
