//! The audit trail: every ingest, read, search and write, and every refused
//! authentication, recorded as a FHIR `AuditEvent` (R4, in the spirit of IHE Basic Audit
//! Log Patterns) and searchable at `/fhir/AuditEvent`.
//!
//! Events carry identifiers only (the API key's name or the calling AE title / sending
//! application, the peer address, resource references, message control ids, SOP Instance
//! UIDs, search parameter *names*), never message content or search values. They are built
//! with `xenrad-fhir-model`'s [`AuditEventBuilder`] and written off the hot path: the doors
//! hand them to a bounded queue and answer at once; one writer task takes whatever is
//! queued (up to [`BATCH`]) and writes it in one durable, group-committed store
//! transaction. A full queue drops the event and counts it (`xenrad_audit_dropped_total`)
//! rather than slowing a door down; shutdown writes what is queued before the store closes.

use crate::search::IndexEntry;
use crate::store::{Store, StoredResource};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use xenrad_fhir_model::builders::AuditEventBuilder;

/// Most events written in one transaction.
pub const BATCH: usize = 1024;
/// Events queued before new ones are dropped (and counted).
pub const QUEUE: usize = 65_536;

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL: &str = "http://hl7.org/fhir/restful-interaction";
/// `agent.who.identifier.system` of an API key's name.
pub const WHO_API_KEY: &str = "urn:xenrad:api-key";
/// … of a DICOM calling AE title.
pub const WHO_AE: &str = "urn:xenrad:dicom-ae";
/// … of an HL7 v2 sending application (MSH-3).
pub const WHO_HL7_SENDER: &str = "urn:xenrad:hl7v2-sender";

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A message, MPPS or instance received (HL7 v2/v3, MPPS, C-STORE, STOW-RS).
    Ingest,
    /// A read of one resource or object.
    Read,
    /// A search or query.
    Search,
    /// A create or update through an API.
    Write,
    /// A refused authentication or authorization (401/403, a rejected association).
    Refused,
}

/// What the event touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entity {
    /// A resource (`Patient/123`).
    Reference(String),
    /// An identifier (`urn:dicom:uid` + `urn:oid:…`, a message control id).
    Identifier(&'static str, String),
}

/// One event, as the doors report it.
#[derive(Clone, Debug)]
pub struct Event {
    /// What happened.
    pub kind: Kind,
    /// The door (`fhir`, `dicomweb`, `hl7`, `mpps`, `mllp`, `dicom`), `source.site`.
    pub door: &'static str,
    /// Who asked: identifier system and value (an API key's name, an AE title).
    pub who: Option<(&'static str, String)>,
    /// Their address.
    pub address: Option<IpAddr>,
    /// Whether it succeeded (`true`) or failed.
    pub success: bool,
    /// What it touched.
    pub entities: Vec<Entity>,
    /// Why it failed, in a few words (never content).
    pub detail: Option<String>,
    /// The interaction (`read`, `search-type`, `create`, or a door's own word).
    pub subtype: Option<&'static str>,
    /// When (UTC).
    pub recorded: chrono::DateTime<chrono::Utc>,
}

impl Event {
    /// An event of `kind` at `door`, now, successful, with nothing else.
    pub fn new(kind: Kind, door: &'static str) -> Self {
        Event {
            kind,
            door,
            who: None,
            address: None,
            success: true,
            entities: Vec::new(),
            detail: None,
            subtype: None,
            recorded: chrono::Utc::now(),
        }
    }
}

enum Msg {
    Event(Box<Event>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The handle the doors record through; cheap to clone. A disabled one (`--no-audit`)
/// records nothing.
#[derive(Clone)]
pub struct Audit {
    tx: Option<tokio::sync::mpsc::Sender<Msg>>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl Audit {
    /// A handle that records nothing.
    pub fn disabled() -> Self {
        Audit {
            tx: None,
            dropped: Arc::default(),
            written: Arc::default(),
        }
    }

    /// Starts the writer task on the current runtime.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let a = Audit {
            tx: Some(tx),
            dropped: Arc::default(),
            written: Arc::default(),
        };
        tokio::spawn(writer(rx, store, a.written.clone()));
        a
    }

    /// Queues an event; never waits.
    pub fn record(&self, e: Event) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(Msg::Event(Box::new(e))).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::error!(dropped = n + 1, "audit queue full: audit events dropped");
            }
        }
    }

    /// Waits until everything queued before this call is durably written.
    pub async fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = tokio::sync::oneshot::channel();
        if tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events written.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

async fn writer(mut rx: tokio::sync::mpsc::Receiver<Msg>, store: Store, written: Arc<AtomicU64>) {
    let mut events = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(m) = rx.recv().await {
        let mut next = Some(m);
        while let Some(m) = next.take() {
            match m {
                Msg::Event(e) => events.push(e),
                Msg::Flush(f) => flushes.push(f),
            }
            if events.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !events.is_empty() {
            let rows: Vec<_> = events.drain(..).filter_map(|e| row(&e)).collect();
            let n = rows.len() as u64;
            let write = move |tx: &dyn crate::store::WriteTx| {
                for (id, res, index) in &rows {
                    tx.put_resource("AuditEvent", id, res, index)?;
                }
                Ok(())
            };
            match store.write(write).await {
                Ok(()) => {
                    written.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => tracing::error!(error = %e, events = n, "audit events not written"),
            }
        }
        for f in flushes.drain(..) {
            let _ = f.send(());
        }
    }
}

fn new_id() -> String {
    let mut raw = [0u8; 16];
    if getrandom::fill(&mut raw).is_err() {
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        raw[..8].copy_from_slice(&t.to_le_bytes());
    }
    raw.iter().fold(String::with_capacity(32), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The resource, its stored form and its index rows.
fn row(e: &Event) -> Option<(String, StoredResource, Vec<IndexEntry>)> {
    let id = new_id();
    let recorded = e
        .recorded
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (type_system, type_code, action, subtype): (&str, &str, &str, Option<(&str, &str)>) =
        match e.kind {
            // DCM 110107 Import (HL7, MPPS); 110104 DICOM Instances Transferred.
            Kind::Ingest if matches!(e.door, "dicom" | "dicomweb") => ("DCM", "110104", "C", None),
            Kind::Ingest => ("DCM", "110107", "C", None),
            Kind::Read => (
                "rest",
                "rest",
                "R",
                Some((RESTFUL, e.subtype.unwrap_or("read"))),
            ),
            Kind::Search => (
                "rest",
                "rest",
                "E",
                Some((RESTFUL, e.subtype.unwrap_or("search-type"))),
            ),
            Kind::Write => (
                "rest",
                "rest",
                "U",
                Some((RESTFUL, e.subtype.unwrap_or("update"))),
            ),
            // DCM 110114 User Authentication, subtype 110122 Login.
            Kind::Refused => ("DCM", "110114", "E", Some((DCM, "110122"))),
        };
    let type_system = if type_system == "DCM" {
        DCM
    } else {
        EVENT_TYPE
    };
    let outcome = if e.success {
        "0"
    } else if e.kind == Kind::Refused {
        "4"
    } else {
        "8"
    };
    let mut b = AuditEventBuilder::new(&id, type_system, type_code, action, &recorded, outcome);
    if let Some((s, c)) = subtype {
        b = b.subtype(s, c);
    }
    if let Some(d) = &e.detail {
        b = b.outcome_desc(d);
    }
    let address = e.address.map(|a| a.to_string());
    let (who_system, who) = e
        .who
        .clone()
        .unwrap_or((WHO_API_KEY, "anonymous".to_owned()));
    b = b.agent(who_system, &who, true, address.as_deref());
    b = b.source("xenrad-gateway", Some(e.door));
    for ent in &e.entities {
        match ent {
            Entity::Reference(r) => {
                let person = r.starts_with("Patient/");
                b = b.entity_reference(r, if person { "1" } else { "2" });
            }
            Entity::Identifier(system, value) => {
                b = b.entity_identifier(system, value, "2");
            }
        }
    }
    match b.build() {
        Ok(mut r) => {
            // Indexed like every resource: every R4 AuditEvent search parameter.
            let index = crate::search::index(&r);
            let now = crate::store::now();
            if let Err(err) = r.set_version("1".to_owned(), now.clone()) {
                tracing::error!(error = %err, "audit event not versioned");
                return None;
            }
            Some((
                id,
                StoredResource {
                    version: 1,
                    last_updated: now,
                    body: xenrad_fhir_model::to_json(&r),
                },
                index,
            ))
        }
        Err(oo) => {
            tracing::error!(outcome = %oo.to_json(), "audit event not built");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_builds_a_valid_audit_event() {
        for kind in [
            Kind::Ingest,
            Kind::Read,
            Kind::Search,
            Kind::Write,
            Kind::Refused,
        ] {
            let mut e = Event::new(kind, "fhir");
            e.who = Some((WHO_API_KEY, "viewer".into()));
            e.address = Some("127.0.0.1".parse().unwrap());
            e.entities = vec![
                Entity::Reference("Patient/p1".into()),
                Entity::Identifier("urn:dicom:uid", "urn:oid:1.2.3".into()),
            ];
            e.success = kind != Kind::Refused;
            e.detail = (kind == Kind::Refused).then(|| "X-API-Key is not valid".into());
            let (id, res, index) = row(&e).expect("builds");
            assert_eq!(id.len(), 32);
            let v: serde_json::Value = serde_json::from_str(&res.body).unwrap();
            assert_eq!(v["resourceType"], "AuditEvent");
            assert_eq!(v["agent"][0]["who"]["identifier"]["value"], "viewer");
            assert_eq!(v["source"]["site"], "fhir");
            assert!(
                index
                    .iter()
                    .any(|i| i.param == "patient" && i.value == "Patient/p1")
            );
            if kind == Kind::Refused {
                assert_eq!(v["outcome"], "4");
                assert_eq!(v["type"]["code"], "110114");
            }
        }
    }
}
