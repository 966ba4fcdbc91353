//! The message log's tap on the HL7 doors (what the operator console shows): every HL7 v2/v3 message the gateway processes is
//! counted per door and written to the store's message log (its outcome, the error position,
//! the ACK, and the raw content when it was not stored) by one background task that batches
//! whatever queued while the previous batch committed. The tap never delays an
//! acknowledgement: the entry is queued after the ACK is built, and when the queue is full
//! the entry is dropped and counted instead.

use crate::store::{LogBounds, MessageLogEntry, Store};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use xenrad_hl7v2::ack::ErrorDetail;
use xenrad_mllp::hl7::{Disposition, Hl7Outcome};

/// Where a message came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// `POST /v2/ingest` or `POST /v3/ingest`.
    Hl7Http,
    /// HL7 v2 over MLLP.
    Mllp,
    /// Re-processed from the console.
    Console,
}

impl Door {
    /// The name in the log and in the console.
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Hl7Http => "hl7-http",
            Door::Mllp => "mllp",
            Door::Console => "console",
        }
    }
}

/// Messages accepted and refused at one door since start.
#[derive(Debug, Default)]
pub struct DoorCount {
    /// Stored or acknowledged again as a duplicate.
    pub accepted: AtomicU64,
    /// Rejected, invalid or failed.
    pub errors: AtomicU64,
}

impl DoorCount {
    fn add(&self, accepted: bool) {
        let c = if accepted {
            &self.accepted
        } else {
            &self.errors
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// `(accepted, errors)`.
    pub fn get(&self) -> (u64, u64) {
        (
            self.accepted.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

enum Msg {
    Entry(Box<MessageLogEntry>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

#[derive(Default)]
struct Inner {
    hl7_http: DoorCount,
    mllp: DoorCount,
    dropped: AtomicU64,
    log: Option<tokio::sync::mpsc::Sender<Msg>>,
}

/// The tap; cheap to clone. [`Tap::default`] counts but writes no log (tests, tools).
#[derive(Clone, Default)]
pub struct Tap(Arc<Inner>);

/// Entries waiting for the log writer at most; more are dropped (and counted).
const QUEUE: usize = 8192;
/// Entries written in one store job at most.
const BATCH: usize = 512;

impl Tap {
    /// A tap that writes the message log into `store`, trimmed to `bounds`. Needs a runtime.
    pub fn with_log(store: &Store, bounds: LogBounds) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(QUEUE);
        let store = store.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = Vec::new();
                let mut flushes = Vec::new();
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    match m {
                        Msg::Entry(e) => batch.push(*e),
                        Msg::Flush(f) => flushes.push(f),
                    }
                    if batch.len() < BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    let n = batch.len();
                    let r = store
                        .write(move |tx| {
                            for e in &batch {
                                tx.log_message(e, bounds)?;
                            }
                            Ok(())
                        })
                        .await;
                    if let Err(e) = r {
                        tracing::warn!(error = %e, entries = n, "message log: entries not written");
                    }
                }
                for f in flushes {
                    let _ = f.send(());
                }
            }
        });
        Tap(Arc::new(Inner {
            log: Some(tx),
            ..Inner::default()
        }))
    }

    /// Counts of the HL7 HTTP door.
    pub fn hl7_http(&self) -> &DoorCount {
        &self.0.hl7_http
    }

    /// Counts of the MLLP door.
    pub fn mllp(&self) -> &DoorCount {
        &self.0.mllp
    }

    /// Entries dropped because the log writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every entry queued so far is committed (at shutdown, and in tests).
    pub async fn flush(&self) {
        if let Some(log) = &self.0.log {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if log.send(Msg::Flush(tx)).await.is_ok() {
                let _ = rx.await;
            }
        }
    }

    fn count(&self, door: Door, accepted: bool) {
        match door {
            Door::Hl7Http => self.0.hl7_http.add(accepted),
            Door::Mllp => self.0.mllp.add(accepted),
            Door::Console => {}
        }
    }

    fn queue(&self, e: MessageLogEntry) {
        if let Some(log) = &self.0.log
            && log.try_send(Msg::Entry(Box::new(e))).is_err()
        {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notes one HL7 v2 message and what became of it.
    pub fn hl7v2(&self, door: Door, raw: &Bytes, out: &Hl7Outcome) {
        self.count(door, out.accepted());
        self.queue(v2_entry(door, raw, out));
    }

    /// Notes one HL7 v3 message and what became of it.
    pub fn hl7v3(&self, door: Door, raw: &Bytes, out: &xenrad_mllp::hl7v3::V3Outcome) {
        self.count(door, out.accepted());
        self.queue(v3_entry(door, raw, out));
    }
}

/// Field `n` (HL7 numbering, n >= 3) of the first segment, as raw text: MSH-9 and the like
/// without parsing the message again.
fn msh_field(raw: &[u8], n: usize) -> String {
    let line = raw
        .split(|b| *b == b'\r' || *b == b'\n')
        .next()
        .unwrap_or(&[]);
    if line.len() < 4 || !line.starts_with(b"MSH") {
        return String::new();
    }
    let sep = line[3];
    line.split(|b| *b == sep)
        .nth(n - 1)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .unwrap_or_default()
}

/// The first HL7 field reference (`PID-7`, `MSH-10`) in a text.
pub fn field_ref(text: &str) -> Option<String> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(4)).find_map(|i| {
        let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let id = &b[i..i + 3];
        let ok_id = id[0].is_ascii_uppercase()
            && id[1..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !boundary || !ok_id || b[i + 3] != b'-' {
            return None;
        }
        let digits: String = b[i + 4..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .map(|c| char::from(*c))
            .collect();
        (!digits.is_empty()).then(|| format!("{}-{digits}", &text[i..i + 3]))
    })
}

/// Where a v2 error is: the ERR location, else the parser's position, else a field named
/// in the error text.
fn v2_location(raw: &[u8], d: Disposition, e: Option<&ErrorDetail>) -> String {
    if d == Disposition::Rejected
        && let Err(p) = xenrad_hl7v2::Message::parse(raw)
    {
        return match (p.segment, p.field) {
            (Some(seg), Some(f)) => format!("segment {seg}, field {f}, byte {}", p.offset),
            (Some(seg), None) => format!("segment {seg}, byte {}", p.offset),
            _ => format!("byte {}", p.offset),
        };
    }
    let Some(e) = e else { return String::new() };
    if let Some(l) = &e.location {
        return l.to_string();
    }
    let text = format!(
        "{} {}",
        e.user_message.as_deref().unwrap_or_default(),
        e.diagnostic.as_deref().unwrap_or_default()
    );
    field_ref(&text).unwrap_or_default()
}

/// The log entry of a processed v2 message.
pub fn v2_entry(door: Door, raw: &Bytes, out: &Hl7Outcome) -> MessageLogEntry {
    let (sender, message_id) = match &out.key {
        Some(k) => (
            format!("{}^{}", k.sending_application, k.sending_facility),
            k.control_id.clone(),
        ),
        None => (
            format!("{}^{}", msh_field(raw, 3), msh_field(raw, 4)),
            msh_field(raw, 10),
        ),
    };
    let error = out
        .error
        .as_ref()
        .map(|e| {
            let mut t = e.user_message.clone().unwrap_or_default();
            if let Some(d) = &e.diagnostic {
                t.push_str(if t.is_empty() { "" } else { "; " });
                t.push_str(d);
            }
            t
        })
        .unwrap_or_default();
    let stored =
        out.disposition == Disposition::Stored || out.disposition == Disposition::Duplicate;
    MessageLogEntry {
        door: door.as_str().to_owned(),
        protocol: "hl7v2".to_owned(),
        sender,
        message_id,
        message_type: msh_field(raw, 9),
        outcome: out.disposition.as_str().to_owned(),
        error_location: v2_location(raw, out.disposition, out.error.as_ref()),
        error,
        ack: out.ack.to_vec(),
        body: (!stored).then(|| raw.to_vec()),
        ..MessageLogEntry::default()
    }
}

/// The log entry of a processed v3 message (the keys as the gateway's V3 store forms them).
pub fn v3_entry(door: Door, raw: &Bytes, out: &xenrad_mllp::hl7v3::V3Outcome) -> MessageLogEntry {
    let (sender, message_id) = match &out.key {
        Some(k) => (
            // As the v3 store keys the message (so the log finds its stored content).
            crate::map::hl7v3::ii_parts(k.sender_root.as_deref(), k.sender_extension.as_deref())
                .map(|(s, v)| format!("{s}^{v}"))
                .unwrap_or_default(),
            format!(
                "{}^{}",
                k.id_root,
                k.id_extension.as_deref().unwrap_or_default()
            ),
        ),
        None => (String::new(), String::new()),
    };
    let interaction = xenrad_hl7v3::header::header(raw)
        .map(|h| h.interaction.to_owned())
        .unwrap_or_default();
    let stored = out.accepted();
    MessageLogEntry {
        door: door.as_str().to_owned(),
        protocol: "hl7v3".to_owned(),
        sender,
        message_id,
        message_type: interaction,
        outcome: out.disposition.as_str().to_owned(),
        error: out
            .detail
            .as_ref()
            .map(|d| d.text.clone())
            .unwrap_or_default(),
        error_location: out
            .detail
            .as_ref()
            .and_then(|d| d.location.clone())
            .unwrap_or_default(),
        ack: out.ack.to_vec(),
        body: (!stored).then(|| raw.to_vec()),
        ..MessageLogEntry::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_field_references() {
        assert_eq!(
            field_ref("PID-7 \"x\" is not a date").as_deref(),
            Some("PID-7")
        );
        assert_eq!(
            field_ref("MSH-10 (message control id) is empty").as_deref(),
            Some("MSH-10")
        );
        assert_eq!(field_ref("no field here"), None);
        assert_eq!(field_ref("XPID-7"), None);
    }

    #[test]
    fn reads_msh_fields_without_parsing() {
        let raw = b"MSH|^~\\&|APP|FAC|XEN|FAC|20240101||ADT^A08|C1|P|2.5.1\rPID|1\r";
        assert_eq!(msh_field(raw, 9), "ADT^A08");
        assert_eq!(msh_field(raw, 10), "C1");
        assert_eq!(msh_field(raw, 3), "APP");
        assert_eq!(msh_field(b"garbage", 9), "");
    }
}
