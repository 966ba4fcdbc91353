//! The ready-made HL7 handler over loopback: ACK modes, duplicate suppression, rejects, store
//! failures and release 2 commit blocks.
#![cfg(feature = "hl7")]

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use xenrad_mllp::client::{Client, ClientConfig, Response};
use xenrad_mllp::hl7::{Hl7Handler, MemoryStore, MessageKey, MessageStore, StoreError, Stored};
use xenrad_mllp::server::{Handler, Server, ServerConfig};
use xenrad_mllp::{Decoder, Encoder, Frame, peek};

fn msg(sender: &str, id: &str, msh15: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|{sender}|FAC|XENRAD|TEST|20240101000000||ORM^O01^ORM_O01|{id}|P|2.5.1|||{msh15}|\rPID|1||{id}^^^FAC\r"
    )
    .into_bytes()
}

async fn start<H: Handler>(handler: H) -> (SocketAddr, Server<H>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(handler, ServerConfig::default());
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener, std::future::pending()).await });
    (addr, server)
}

#[tokio::test]
async fn duplicates_are_acked_again_but_stored_once() {
    let (addr, server) = start(Hl7Handler::new(MemoryStore::default())).await;
    let mut client = Client::new(addr.to_string(), ClientConfig::default());
    for _ in 0..3 {
        let r = client.send(&msg("RIS", "DUP-1", "")).await.unwrap();
        assert_eq!(r.code(), Some(&b"AA"[..]));
        assert_eq!(r.control_id(), Some(&b"DUP-1"[..]));
    }
    // Same control id from another sender is a different message.
    let r = client.send(&msg("LAB", "DUP-1", "")).await.unwrap();
    assert!(r.is_accept());
    let h = server.handler();
    assert_eq!(h.store().len(), 2);
    let stats = h.stats();
    assert_eq!((stats.stored, stats.duplicates), (2, 2));
    let key = MessageKey {
        sending_application: "RIS".into(),
        sending_facility: "FAC".into(),
        control_id: "DUP-1".into(),
    };
    assert_eq!(
        h.store().get(&key).as_deref(),
        Some(&msg("RIS", "DUP-1", "")[..])
    );
}

#[tokio::test]
async fn enhanced_mode_gets_commit_accept_or_nothing_as_msh15_asks() {
    let (addr, _server) = start(Hl7Handler::new(MemoryStore::default())).await;
    let mut client = Client::new(addr.to_string(), ClientConfig::default());
    let r = client.send(&msg("RIS", "ENH-AL", "AL")).await.unwrap();
    assert_eq!(r.code(), Some(&b"CA"[..]));
    // MSH-15 = NE: no accept ACK. Pipeline it before a normal message: the only reply that
    // comes back is the second message's.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = BytesMut::new();
    Encoder::default()
        .encode(&msg("RIS", "ENH-NE", "NE"), &mut out)
        .unwrap();
    Encoder::default()
        .encode(&msg("RIS", "AFTER-NE", ""), &mut out)
        .unwrap();
    s.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    let mut dec = Decoder::default();
    let frame = loop {
        if let Some(f) = dec.decode(&mut buf).unwrap() {
            break f;
        }
        assert!(s.read_buf(&mut buf).await.unwrap() > 0);
    };
    let Frame::Message(ack) = frame else { panic!() };
    assert_eq!(peek::msa(&ack), Some((&b"AA"[..], &b"AFTER-NE"[..])));
}

#[tokio::test]
async fn unparseable_and_missing_control_id_are_rejected() {
    let (addr, server) = start(Hl7Handler::new(MemoryStore::default())).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = BytesMut::new();
    Encoder::default()
        .encode(b"this is not HL7", &mut out)
        .unwrap();
    Encoder::default()
        .encode(&msg("RIS", "", ""), &mut out)
        .unwrap();
    s.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    let mut dec = Decoder::default();
    let mut codes = Vec::new();
    while codes.len() < 2 {
        while let Some(Frame::Message(a)) = dec.decode(&mut buf).unwrap() {
            codes.push(peek::msa(&a).unwrap().0.to_vec());
        }
        if codes.len() < 2 {
            assert!(s.read_buf(&mut buf).await.unwrap() > 0);
        }
    }
    assert_eq!(codes, [b"AR".to_vec(), b"AR".to_vec()]);
    assert_eq!(server.handler().stats().rejected, 2);
    assert!(server.handler().store().is_empty());
}

struct FailingStore;

impl MessageStore for FailingStore {
    async fn store(&self, _key: &MessageKey, _msg: Bytes) -> Result<Stored, StoreError> {
        Err(StoreError("disk full".into()))
    }
}

#[tokio::test]
async fn store_failure_is_an_application_error_never_an_accept() {
    let (addr, server) = start(Hl7Handler::new(FailingStore)).await;
    let mut client = Client::new(addr.to_string(), ClientConfig::default());
    let r = client.send(&msg("RIS", "FAIL-1", "")).await.unwrap();
    assert_eq!(r.code(), Some(&b"AE"[..]));
    assert!(!r.is_accept());
    let r = client.send(&msg("RIS", "FAIL-2", "AL")).await.unwrap();
    assert_eq!(r.code(), Some(&b"CE"[..]));
    assert_eq!(server.handler().stats().store_errors, 2);
}

#[tokio::test]
async fn release2_commit_blocks_mode() {
    let (addr, server) = start(Hl7Handler::new(MemoryStore::default()).commit_blocks(true)).await;
    let mut client = Client::new(addr.to_string(), ClientConfig::default());
    assert_eq!(
        client.send(&msg("RIS", "R2-1", "")).await.unwrap(),
        Response::CommitAck
    );
    assert_eq!(server.handler().store().len(), 1);
    let (addr, _server) = start(Hl7Handler::new(FailingStore).commit_blocks(true)).await;
    let mut client = Client::new(addr.to_string(), ClientConfig::default());
    assert_eq!(
        client.send(&msg("RIS", "R2-2", "")).await.unwrap(),
        Response::CommitNak
    );
}
