//! The ready-made HL7 v3 handler: accept acks after the store, duplicates, rejects with
//! positions and detail codes, store refusals, `acceptAckCode`, and the MLLP door.
#![cfg(feature = "hl7v3")]

use std::sync::Mutex;

use bytes::Bytes;
use bytes::BytesMut;
use xenrad_hl7v3::{AckDetail, Outcome};
use xenrad_mllp::hl7::{Disposition, Stored};
use xenrad_mllp::hl7v3::{V3Handler, V3MessageKey, V3Store, V3StoreError};
use xenrad_mllp::server::{Server, ServerConfig};
use xenrad_mllp::{Decoder, Encoder, Frame};

fn prpa(id_ext: &str, accept_ack: &str) -> Bytes {
    format!(
        r#"<PRPA_IN201301UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">
  <id root="1.2.3" extension="{id_ext}"/><creationTime value="20240101120000"/>
  <interactionId root="2.16.840.1.113883.1.6" extension="PRPA_IN201301UV02"/>
  <processingCode code="P"/><processingModeCode code="T"/><acceptAckCode code="{accept_ack}"/>
  <receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE"><id root="1.9"/></device></receiver>
  <sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE"><id root="1.8" extension="PIX"/></device></sender>
</PRPA_IN201301UV02>"#
    )
    .into()
}

/// De-duplicates on the key; extension `FAIL` is a storage failure, `BAD` a content refusal.
#[derive(Default)]
struct Keys(Mutex<Vec<(V3MessageKey, String)>>);

impl V3Store for Keys {
    async fn store(
        &self,
        msg: &xenrad_hl7v3::Message<'_>,
        key: &V3MessageKey,
        _raw: &Bytes,
    ) -> Result<Stored, V3StoreError> {
        tokio::task::yield_now().await; // awaited while the parsed message is borrowed
        match key.id_extension.as_deref() {
            Some("FAIL") => {
                return Err(V3StoreError::Failed(
                    AckDetail::error("retry later").with_code("INTERR"),
                ));
            }
            Some("BAD") => return Err(V3StoreError::Invalid(AckDetail::error("no patient"))),
            _ => {}
        }
        let mut seen = self.0.lock().unwrap();
        if seen.iter().any(|(k, _)| k == key) {
            return Ok(Stored::Duplicate);
        }
        seen.push((key.clone(), msg.header().interaction.to_owned()));
        Ok(Stored::New)
    }
}

fn text(b: &Bytes) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[tokio::test]
async fn accepts_after_storing_and_acknowledges_duplicates_again() {
    let h = V3Handler::new(Keys::default());
    let out = h.process(prpa("42", "AL")).await;
    assert_eq!(
        (out.outcome, out.disposition, out.wanted),
        (Outcome::Accept, Disposition::Stored, true)
    );
    assert!(
        text(&out.ack).contains(r#"code="CA""#),
        "{}",
        text(&out.ack)
    );
    assert_eq!(
        out.key,
        Some(V3MessageKey {
            sender_root: Some("1.8".into()),
            sender_extension: Some("PIX".into()),
            id_root: "1.2.3".into(),
            id_extension: Some("42".into()),
        })
    );
    let again = h.process(prpa("42", "AL")).await;
    assert_eq!(again.disposition, Disposition::Duplicate);
    assert!(text(&again.ack).contains(r#"code="CA""#));
    let seen = h.store().0.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, "PRPA_IN201301UV02");
    drop(seen);
    let s = h.stats();
    assert_eq!((s.stored, s.duplicates), (1, 1));
}

#[tokio::test]
async fn rejects_carry_codes_and_positions() {
    let h = V3Handler::new(Keys::default());
    let bad_xml = h
        .process(Bytes::from_static(
            b"<PRPA_IN201301UV02 xmlns=\"urn:hl7-org:v3\"><id root=\"1\"></PRPA_IN201301UV02>",
        ))
        .await;
    assert_eq!(
        (bad_xml.outcome, bad_xml.disposition),
        (Outcome::Reject, Disposition::Rejected)
    );
    let d = bad_xml.detail.unwrap();
    assert_eq!(d.code.as_deref(), Some("SYN102"));
    assert!(d.location.unwrap().starts_with("line 1"));
    assert!(text(&bad_xml.ack).contains(r#"code="CR""#));

    let foreign = h
        .process(Bytes::from_static(
            b"<x xmlns=\"urn:other\"><id root=\"1\"/></x>",
        ))
        .await;
    assert_eq!(foreign.disposition, Disposition::Rejected);
    assert_eq!(foreign.detail.unwrap().code.as_deref(), Some("SYN102"));

    let no_id = h
        .process(Bytes::from_static(
            b"<PRPA_IN201301UV02 xmlns=\"urn:hl7-org:v3\"/>",
        ))
        .await;
    assert_eq!(no_id.disposition, Disposition::Rejected);
    assert_eq!(no_id.detail.unwrap().code.as_deref(), Some("SYN105"));
    assert_eq!(h.stats().rejected, 3);
    assert!(h.store().0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn store_refusals_and_failures_are_commit_errors() {
    let h = V3Handler::new(Keys::default());
    let failed = h.process(prpa("FAIL", "AL")).await;
    assert_eq!(
        (failed.outcome, failed.disposition),
        (Outcome::Error, Disposition::Failed)
    );
    assert!(text(&failed.ack).contains(r#"code="CE""#));
    assert!(text(&failed.ack).contains("INTERR"));
    let invalid = h.process(prpa("BAD", "AL")).await;
    assert_eq!(invalid.disposition, Disposition::Invalid);
    let s = h.stats();
    assert_eq!((s.store_errors, s.invalid), (1, 1));
}

#[tokio::test]
async fn accept_ack_code_decides_whether_the_ack_is_wanted() {
    let h = V3Handler::new(Keys::default());
    assert!(!h.process(prpa("NE-1", "NE")).await.wanted);
    assert!(!h.process(prpa("ER-1", "ER")).await.wanted);
    assert!(h.process(prpa("FAIL", "ER")).await.wanted);
}

/// Sends one framed message on a raw connection and reads the one reply frame.
async fn exchange(addr: std::net::SocketAddr, msg: &[u8]) -> Bytes {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = BytesMut::new();
    Encoder::default().encode(msg, &mut out).unwrap();
    sock.write_all(&out).await.unwrap();
    let mut dec = Decoder::default();
    let mut buf = BytesMut::new();
    loop {
        if let Some(f) = dec.decode(&mut buf).unwrap() {
            return match f {
                Frame::Message(m) => m,
                other => Bytes::from(format!("{other:?}")),
            };
        }
        assert!(sock.read_buf(&mut buf).await.unwrap() > 0, "closed");
    }
}

#[tokio::test]
async fn over_mllp_with_accept_acks_or_commit_blocks() {
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    for commit_blocks in [false, true] {
        let log = std::sync::Arc::clone(&seen);
        let handler = V3Handler::new(Keys::default())
            .commit_blocks(commit_blocks)
            .observe(move |o, _| log.lock().unwrap().push(o.disposition));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::new(handler, ServerConfig::default());
        let s = server.clone();
        tokio::spawn(async move { s.serve(listener, std::future::pending()).await });
        let reply = exchange(addr, &prpa("M-1", "AL")).await;
        if commit_blocks {
            assert_eq!(&reply[..], b"CommitAck");
            assert_eq!(&exchange(addr, &prpa("FAIL", "AL")).await[..], b"CommitNak");
        } else {
            assert!(text(&reply).contains("MCCI_IN000002UV01"), "{reply:?}");
            assert!(text(&reply).contains(r#"code="CA""#));
        }
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            Disposition::Stored,
            Disposition::Stored,
            Disposition::Failed
        ]
    );
}
