//! The tokio adapter against our own SCU (no external peers): echo, store, association limit,
//! graceful shutdown.
#![cfg(feature = "tokio")]

mod common;
use common::*;
use std::sync::Arc;
use xenrad_dimse::net::{ClientConfig, ClientError, ScuAssociation, Server};
use xenrad_dimse::scp::StoreOnly;

fn client(contexts: Vec<(String, Vec<String>)>) -> ClientConfig {
    ClientConfig {
        calling_ae: "NETTEST".into(),
        called_ae: "XENRAD".into(),
        contexts,
        max_pdu: 8192,
        timeouts: xenrad_dimse::assoc::Timeouts::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_store_limit_and_shutdown() {
    let dir = std::env::temp_dir().join(format!("xenrad-dimse-net-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = common::small_journal_config(&dir);
    cfg.max_associations = 1;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        Server::new(cfg, Arc::new(StoreOnly))
            .run(listener, async {
                let _ = stop_rx.await;
            })
            .await
    });

    let contexts = vec![
        (VERIFICATION.to_string(), vec![ILE.to_string()]),
        (CT.to_string(), vec![ELE.to_string()]),
    ];
    let mut a = ScuAssociation::connect(addr, &client(contexts.clone()))
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(a.echo().await.unwrap().status, 0);
    }
    let ds = bytes::Bytes::from(dataset_ele(CT, "1.2.3.77", "1.2.3.7", 200_000));
    let r = a.store(CT, "1.2.3.77", ELE, ds.clone()).await.unwrap();
    assert_eq!(
        (r.status, r.sop_instance_uid.as_deref()),
        (0, Some("1.2.3.77"))
    );
    let stored = std::fs::read(dir.join("1.2.3.77.dcm")).unwrap();
    assert!(stored.ends_with(&ds));

    // A second association beyond max_associations = 1 is rejected transiently.
    match ScuAssociation::connect(addr, &client(contexts.clone())).await {
        Err(ClientError::Rejected(rj)) => assert_eq!((rj.result, rj.source, rj.reason), (2, 3, 2)),
        other => panic!("expected a rejection, got {other:?}"),
    }
    a.release().await.unwrap();

    // Shutdown waits for running associations and returns.
    // (The first association's permit is returned once the server saw it close.)
    let mut b = None;
    for _ in 0..100 {
        match ScuAssociation::connect(addr, &client(contexts.clone())).await {
            Ok(x) => {
                b = Some(x);
                break;
            }
            Err(ClientError::Rejected(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let mut b = b.expect("association accepted after the first one ended");
    stop_tx.send(()).unwrap();
    assert_eq!(b.echo().await.unwrap().status, 0);
    b.release().await.unwrap();
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Holds every C-STORE's handler for 2 s (a slow disk or database).
struct SlowStore;
impl xenrad_dimse::scp::Handler for SlowStore {
    fn on_stored(&self, _: &xenrad_dimse::scp::StoredInstance) -> u16 {
        std::thread::sleep(std::time::Duration::from_secs(2));
        0
    }
}

/// Issue 15: with one association's store held for 2 s, a C-ECHO on another association is
/// answered within 50 ms (the handler runs on the blocking pool, never on an async worker,
/// even on a runtime with a single worker thread).
#[tokio::test(flavor = "current_thread")]
async fn a_held_store_does_not_stall_another_association() {
    let dir = std::env::temp_dir().join(format!("xenrad-dimse-held-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = common::small_journal_config(&dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        Server::new(cfg, Arc::new(SlowStore))
            .run(listener, async {
                let _ = stop_rx.await;
            })
            .await
    });
    let contexts = vec![
        (VERIFICATION.to_string(), vec![ILE.to_string()]),
        (CT.to_string(), vec![ELE.to_string()]),
    ];
    let mut a = ScuAssociation::connect(addr, &client(contexts.clone()))
        .await
        .unwrap();
    let mut b = ScuAssociation::connect(addr, &client(contexts))
        .await
        .unwrap();
    let ds = bytes::Bytes::from(dataset_ele(CT, "1.2.3.88", "1.2.3.8", 50_000));
    let started = std::time::Instant::now();
    let store = tokio::spawn(async move {
        let r = a.store(CT, "1.2.3.88", ELE, ds).await.unwrap();
        (r.status, std::time::Instant::now(), a)
    });
    // Let the store reach its handler.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut echo_ms = Vec::new();
    for _ in 0..5 {
        let t = std::time::Instant::now();
        assert_eq!(b.echo().await.unwrap().status, 0);
        echo_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let echoes_done = std::time::Instant::now();
    let (st, store_done, a) = store.await.unwrap();
    assert_eq!(st, 0);
    assert!(
        echoes_done < store_done,
        "the echoes were answered while the store was held"
    );
    assert!(store_done - started >= std::time::Duration::from_secs(2));
    echo_ms.sort_by(f64::total_cmp);
    assert!(echo_ms[2] < 50.0, "echo latencies {echo_ms:?} ms");
    a.release().await.unwrap();
    b.release().await.unwrap();
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
