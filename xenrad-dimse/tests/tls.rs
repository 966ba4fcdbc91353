//! DICOM TLS (PS3.15 B.1): the tokio server with a rustls acceptor, against our SCU and,
//! with real peers installed, against DCMTK `echoscu +tls`.
#![cfg(feature = "tls")]

mod common;
use common::*;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use xenrad_dimse::net::{ClientConfig, ScuAssociation, Server};
use xenrad_dimse::scp::StoreOnly;

struct Pki {
    cert_pem: String,
    key_pem: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Pki {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn acceptor(p: &Pki) -> TlsAcceptor {
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![p.cert.clone()], p.key.clone_key())
        .unwrap();
    TlsAcceptor::from(Arc::new(cfg))
}

fn connector(p: &Pki) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(p.cert.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(cfg))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_echo_store_and_dcmtk_echoscu() {
    let p = pki();
    let dir = std::env::temp_dir().join(format!("xenrad-dimse-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server =
        Server::new(common::small_journal_config(&dir), Arc::new(StoreOnly)).with_tls(acceptor(&p));
    let task = tokio::spawn(async move {
        server
            .run(listener, async {
                let _ = stop_rx.await;
            })
            .await
    });

    let cfg = ClientConfig {
        calling_ae: "TLSSCU".into(),
        called_ae: "XENRAD".into(),
        contexts: vec![
            (VERIFICATION.into(), vec![ILE.into()]),
            (CT.into(), vec![ELE.into()]),
        ],
        max_pdu: 16384,
        timeouts: xenrad_dimse::assoc::Timeouts::default(),
    };
    let name = ServerName::try_from("localhost").unwrap();
    let mut a = ScuAssociation::connect_tls(addr, &cfg, &connector(&p), name)
        .await
        .unwrap();
    assert_eq!(a.echo().await.unwrap().status, 0);
    let ds = bytes::Bytes::from(dataset_ele(CT, "1.2.3.88", "1.2.3.8", 300_000));
    assert_eq!(
        a.store(CT, "1.2.3.88", ELE, ds.clone())
            .await
            .unwrap()
            .status,
        0
    );
    a.release().await.unwrap();
    assert!(
        std::fs::read(dir.join("1.2.3.88.dcm"))
            .unwrap()
            .ends_with(&ds)
    );

    // A plain-TCP client cannot talk to the TLS port.
    assert!(ScuAssociation::connect(addr, &cfg).await.is_err());

    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!("skipped: DCMTK echoscu +tls needs real peers (eval \"$(scripts/peers.sh)\")");
    } else {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &p.cert_pem).unwrap();
        std::fs::write(&key, &p.key_pem).unwrap();
        let port = addr.port().to_string();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("echoscu")
                .arg("+tls")
                .arg(&key)
                .arg(&cert)
                .arg("+cf")
                .arg(&cert)
                .args(["-aec", "XENRAD", "--repeat", "2", "-v", "127.0.0.1"])
                .arg(port)
                .output()
                .expect("echoscu")
        })
        .await
        .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert_eq!(
            text.matches("Received Echo Response (Success)").count(),
            2,
            "{text}"
        );
    }
    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
