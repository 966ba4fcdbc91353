//! Test handler and helpers shared by the listener tests.
#![allow(dead_code)]

use std::sync::Mutex;

use bytes::Bytes;
use xenrad_mllp::peek;
use xenrad_mllp::server::{ConnectionEnd, ConnectionInfo, Handler, Reply};

/// Acknowledges every message with a minimal original-mode ACK (`MSA|AA|<MSH-10>`), records
/// the control ids it saw, and closes when a message's MSH-10 is `CLOSE`.
#[derive(Default)]
pub struct Recorder {
    pub seen: Mutex<Vec<String>>,
    pub ends: Mutex<Vec<String>>,
}

pub fn ack_for(msg: &[u8]) -> Vec<u8> {
    let id = peek::control_id(msg).unwrap_or_default();
    let mut ack = b"MSH|^~\\&|XENRAD|TEST|SND|FAC|20240101000000||ACK|A".to_vec();
    ack.extend_from_slice(id);
    ack.extend_from_slice(b"|P|2.5.1\rMSA|AA|");
    ack.extend_from_slice(id);
    ack.push(b'\r');
    ack
}

pub fn message(id: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|SND|FAC|XENRAD|TEST|20240101000000||ADT^A01|{id}|P|2.5.1\rPID|1||{id}^^^FAC\r"
    )
    .into_bytes()
}

pub fn framed(id: &str) -> Vec<u8> {
    let mut v = vec![0x0b];
    v.extend_from_slice(&message(id));
    v.extend_from_slice(b"\x1c\r");
    v
}

impl Handler for Recorder {
    async fn handle(&self, msg: Bytes, _conn: &ConnectionInfo) -> Reply {
        let id = String::from_utf8_lossy(peek::control_id(&msg).unwrap_or_default()).into_owned();
        self.seen.lock().unwrap().push(id.clone());
        match id.as_str() {
            "CLOSE" => Reply::ack(ack_for(&msg)).and_close(),
            "COMMIT" => Reply::commit_ack(),
            "SILENT" => Reply::none(),
            _ => Reply::ack(ack_for(&msg)),
        }
    }

    fn closed(&self, _conn: &ConnectionInfo, end: &ConnectionEnd) {
        let name = format!("{end:?}");
        let name = name.split(['(', ' ']).next().unwrap_or_default().to_owned();
        self.ends.lock().unwrap().push(name);
    }
}
