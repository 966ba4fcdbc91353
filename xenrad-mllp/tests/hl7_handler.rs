//! The ready-made HL7 handler over loopback: ACK modes, duplicate suppression, rejects, store
//! failures and release 2 commit blocks.
#![cfg(feature = "hl7")]

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use xenrad_hl7v2::Message;
use xenrad_hl7v2::ack::{AckCode, ErrorCode, ErrorDetail};
use xenrad_mllp::client::{Client, ClientConfig, Response};
use xenrad_mllp::hl7::{
    Disposition, Hl7Handler, Hl7Store, Hl7StoreError, MemoryStore, MessageKey, MessageStore,
    StoreError, Stored,
};
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
        Err(StoreError::new("disk full"))
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

/// An application store: needs a PID segment, refuses control id `FAIL` as a storage failure,
/// de-duplicates on the key, and records the message type it saw in the parsed message.
#[derive(Default)]
struct AppStore {
    seen: std::sync::Mutex<Vec<(MessageKey, String)>>,
}

impl Hl7Store for AppStore {
    async fn store(
        &self,
        msg: &Message<'_>,
        key: &MessageKey,
        _raw: &Bytes,
    ) -> Result<Stored, Hl7StoreError> {
        if msg.segment("PID").is_none() {
            return Err(Hl7StoreError::Invalid(ErrorDetail::new(
                ErrorCode::SegmentSequence,
                "PID segment missing",
            )));
        }
        // Something awaited while the parsed message is borrowed.
        tokio::task::yield_now().await;
        if key.control_id == "FAIL" {
            return Err(Hl7StoreError::Failed(ErrorDetail::new(
                ErrorCode::InternalError,
                "could not store the message; retry later",
            )));
        }
        let mtype = msg.message_type().map(|t| t.code.into_owned()).unwrap();
        let mut seen = self.seen.lock().unwrap();
        if seen.iter().any(|(k, _)| k == key) {
            return Ok(Stored::Duplicate);
        }
        seen.push((key.clone(), mtype));
        Ok(Stored::New)
    }
}

fn err_text(ack: &[u8]) -> Option<String> {
    let m = Message::parse(ack).unwrap();
    m.get("ERR-3-1")
        .map(|c| format!("{c} {}", m.get("ERR-8").unwrap_or_default()))
}

#[tokio::test]
async fn process_reports_every_disposition_with_its_ack() {
    let h = Hl7Handler::new(AppStore::default());
    // Stored, then the same key (with white space around MSH-10) is a duplicate.
    let out = h.process(msg("RIS", "P-1", "").into()).await;
    assert_eq!(
        (out.code, out.disposition),
        (AckCode::AA, Disposition::Stored)
    );
    assert!(out.accepted() && out.wanted && out.error.is_none());
    assert_eq!(peek::msa(&out.ack), Some((&b"AA"[..], &b"P-1"[..])));
    assert_eq!(out.key.as_ref().unwrap().control_id, "P-1");
    let out = h.process(msg("RIS", " P-1 ", "").into()).await;
    assert_eq!(out.disposition, Disposition::Duplicate);
    assert_eq!(out.code, AckCode::AA);
    assert_eq!(h.store().seen.lock().unwrap()[0].1, "ORM");

    // Content refused by the store: AE with the store's ERR, in enhanced mode CE.
    let no_pid = b"MSH|^~\\&|RIS|FAC|X|Y|20240101||ORM^O01|P-2|P|2.5.1\r".to_vec();
    let out = h.process(no_pid.into()).await;
    assert_eq!(
        (out.code, out.disposition),
        (AckCode::AE, Disposition::Invalid)
    );
    assert!(!out.accepted());
    assert_eq!(
        err_text(&out.ack).as_deref(),
        Some("100 PID segment missing")
    );
    let no_pid_enh = b"MSH|^~\\&|RIS|FAC|X|Y|20240101||ORM^O01|P-3|P|2.5.1|||AL|NE\r".to_vec();
    let out = h.process(no_pid_enh.into()).await;
    assert_eq!(
        (out.code, out.disposition),
        (AckCode::CE, Disposition::Invalid)
    );

    // Store failure: AE with the store's own (safe) text.
    let out = h.process(msg("RIS", "FAIL", "").into()).await;
    assert_eq!(
        (out.code, out.disposition),
        (AckCode::AE, Disposition::Failed)
    );
    assert_eq!(
        err_text(&out.ack).as_deref(),
        Some("207 could not store the message; retry later")
    );

    // Not HL7, and no MSH-10: AR, no key.
    let out = h.process(Bytes::from_static(b"not hl7")).await;
    assert_eq!(
        (out.code, out.disposition),
        (AckCode::AR, Disposition::Rejected)
    );
    assert!(out.key.is_none() && out.error.is_some());
    let out = h.process(msg("RIS", "", "AL").into()).await;
    assert_eq!(
        (out.code, out.disposition),
        (AckCode::CR, Disposition::Rejected)
    );

    // Enhanced mode with MSH-15 = NE: the ACK is built but not wanted.
    let out = h.process(msg("RIS", "P-4", "NE").into()).await;
    assert_eq!(
        (out.code, out.disposition),
        (AckCode::CA, Disposition::Stored)
    );
    assert!(!out.wanted);

    let s = h.stats();
    assert_eq!(
        (
            s.stored,
            s.duplicates,
            s.invalid,
            s.store_errors,
            s.rejected
        ),
        (2, 1, 2, 1, 2)
    );
}

#[tokio::test]
async fn hl7_store_refusal_reaches_the_mllp_client_as_ae() {
    let (addr, server) = start(Hl7Handler::new(AppStore::default())).await;
    let mut client = Client::new(addr.to_string(), ClientConfig::default());
    let r = client
        .send(b"MSH|^~\\&|RIS|FAC|X|Y|20240101||ORM^O01|M-1|P|2.5.1\r")
        .await
        .unwrap();
    assert_eq!(r.code(), Some(&b"AE"[..]));
    let Response::Ack(ack) = r else { panic!() };
    assert_eq!(err_text(&ack).as_deref(), Some("100 PID segment missing"));
    let r = client.send(&msg("RIS", "M-2", "")).await.unwrap();
    assert!(r.is_accept());
    assert_eq!(server.handler().stats().invalid, 1);
}

#[tokio::test]
async fn ack_control_ids_are_unique_and_timestamps_well_formed() {
    let h = Hl7Handler::new(MemoryStore::default());
    let mut ids = std::collections::HashSet::new();
    for i in 0..200 {
        let out = h.process(msg("RIS", &format!("U-{i}"), "").into()).await;
        let m = Message::parse(&out.ack).unwrap();
        let id = m.get("MSH-10").unwrap().into_owned();
        assert_eq!(id.len(), 20);
        assert!(ids.insert(id));
        let ts = m.get("MSH-7").unwrap();
        assert!(xenrad_hl7v2::datetime::parse_dtm(&ts).is_ok(), "{ts}");
    }
}

/// The handler takes its ACK clock from `xenrad_hl7v2::ack::AckIds` (UTC): an injected clock
/// gives reproducible MSH-7/MSH-10, also for the best-effort reject of unparseable input.
#[tokio::test]
async fn injected_clock_sets_ack_msh7_and_msh10_in_utc() {
    use std::time::{Duration, UNIX_EPOCH};
    use xenrad_hl7v2::ack::AckIds;
    let clock = || UNIX_EPOCH + Duration::from_secs(1_704_067_200); // 2024-01-01T00:00:00Z
    let h = Hl7Handler::new(MemoryStore::default()).ack_ids(AckIds::with_clock(clock));
    for raw in [msg("RIS", "CLK-1", ""), b"MSH|^~\\&|broken".to_vec()] {
        let out = h.process(raw.into()).await;
        let m = Message::parse(&out.ack).unwrap();
        assert_eq!(m.get("MSH-7").as_deref(), Some("20240101000000+0000"));
        let id = m.get("MSH-10").unwrap().into_owned();
        assert_eq!((id.len(), &id[..14]), (20, "20240101000000"));
    }
}

/// The observer sees every message once, whichever door it came through, with its outcome
/// and size; commit-block mode answers the MLLP sender with `<ACK>` all the same.
#[tokio::test]
async fn observer_sees_every_message_from_mllp_and_process() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let h = Arc::new(
        Hl7Handler::new(MemoryStore::default())
            .commit_blocks(true)
            .observe(move |out, len| log.lock().unwrap().push((out.disposition, len))),
    );
    assert!(h.uses_commit_blocks());
    let (addr, _server) = start(Arc::clone(&h)).await;
    let m = msg("RIS", "OBS-1", "");
    let mut client = Client::new(addr.to_string(), ClientConfig::default());
    assert_eq!(client.send(&m).await.unwrap(), Response::CommitAck);
    let again = h.process(m.clone().into()).await;
    assert_eq!(again.disposition, Disposition::Duplicate);
    let bad = h.process(Bytes::from_static(b"not hl7")).await;
    assert_eq!(bad.disposition, Disposition::Rejected);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (Disposition::Stored, m.len()),
            (Disposition::Duplicate, m.len()),
            (Disposition::Rejected, 7)
        ]
    );
}

/// One handler shared by MLLP and a transport-free caller (as an HTTP route would be):
/// both see the same store and counters, duplicates across the two are recognised.
#[tokio::test]
async fn one_shared_handler_for_mllp_and_process() {
    let h = std::sync::Arc::new(Hl7Handler::new(MemoryStore::default()));
    let (addr, _server) = start(std::sync::Arc::clone(&h)).await;
    let out = h.process(msg("RIS", "SH-1", "").into()).await;
    assert_eq!(out.disposition, Disposition::Stored);
    let mut client = Client::new(addr.to_string(), ClientConfig::default());
    let r = client.send(&msg("RIS", "SH-1", "")).await.unwrap();
    assert!(r.is_accept());
    assert_eq!(h.stats().stored, 1);
    assert_eq!(h.stats().duplicates, 1);
}

/// Messages whose delimiters or acknowledgment fields are not what MSH says (issue 20's
/// malformed public samples) are refused with the located ERR and never reach the store.
#[tokio::test]
async fn syntax_errors_are_refused_before_the_store() {
    let h = Hl7Handler::new(MemoryStore::default());
    let cases: [(&[u8], &str, &str); 3] = [
        // MSH-2 declares '&' the escape character; PID-3 uses it as a subcomponent separator.
        (
            b"MSH|^~&|RIS|FAC|X|Y|20240101||ADT^A08|E-1|P|2.5.1\rPID|1||1^^^&1.2.3^ISO\r",
            "AR",
            "PID^1^3",
        ),
        // MSH-15 outside table 0155 (enhanced mode, so the refusal is CR).
        (
            b"MSH|^~\\&|RIS|FAC|X|Y|20240101||ADT^A08|E-2|P|2.5.1||| EVN|A08\r",
            "CR",
            "MSH^1^15",
        ),
        // A stray MLLP start block after the last segment.
        (
            b"MSH|^~\\&|RIS|FAC|X|Y|20240101||ADT^A08|E-3|P|2.5.1\rPID|1\r\x0b\r\n",
            "AR",
            "0x0B",
        ),
    ];
    for (raw, code, where_) in cases {
        let out = h.process(Bytes::from_static(raw)).await;
        assert_eq!(
            out.disposition,
            Disposition::Rejected,
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(peek::msa(&out.ack).map(|(c, _)| c), Some(code.as_bytes()));
        let ack = String::from_utf8_lossy(&out.ack);
        assert!(ack.contains(where_), "{ack}");
    }
    assert_eq!(h.store().len(), 0);
    assert_eq!(h.stats().rejected, 3);
}
