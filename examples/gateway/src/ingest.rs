//! Message semantics shared by every transport: parse with the protocol crate,
//! store durably and idempotently (with the FHIR projection in the same
//! transaction), then build the acknowledgement. HTTP and MLLP (and the DICOM
//! port for MPPS) are thin mappings of these functions.

use super::projection::{self, OrderFacts, PatientFacts, fhir_date, gender_code};
use super::store::{ReadTx, Store, StoreError, WriteTx};
use super::{Config, Gateway, http};
use bytes::Bytes;
use std::borrow::Cow;
use xenrad_hl7v2::Message;
use xenrad_hl7v2::ack::{AckCode, ErrorCode, ErrorDetail};
use xenrad_mllp::hl7::{Disposition, Hl7Handler, Hl7Store, Hl7StoreError, MessageKey, Stored};

/// Result of one HL7 v2 ingest.
#[derive(Debug)]
pub struct V2Outcome {
    /// The ACK message (always built, even when MSH-15 asks for none).
    pub ack: Bytes,
    /// MSA-1 of that ACK.
    pub code: AckCode,
    /// Whether the sender asked for this acknowledgement (MSH-15, table 0155);
    /// MLLP sends nothing when it did not, HTTP always answers.
    pub wanted: bool,
    /// The HTTP status the HTTP surface answers with.
    pub http_status: u16,
}

tokio::task_local! {
    /// Set by [`V2Store`] / [`V3Store`] when the write failed for lack of space, so the HTTP door can
    /// answer 507 (the ACK is AE with an ERR either way).
    static STORAGE_FULL: std::cell::Cell<bool>;
}

/// The gateway's HL7 v2 semantics, shared by `POST /v2/ingest` and MLLP :3000:
/// `xenrad-mllp`'s [`Hl7Handler`] (parse, MSH-10, ACK/NAK in original or enhanced
/// mode, duplicate answers) over [`V2Store`].
pub type V2Handler = Hl7Handler<V2Store>;

/// [`Hl7Store`] that checks what a message means for the FHIR projection (an ADT
/// without a patient identifier is refused with AE and an ERR naming the field),
/// then stores the message and its projection in one durable transaction,
/// de-duplicated on (sender, MSH-10).
pub struct V2Store {
    store: Store,
}

impl V2Store {
    /// Over the gateway's store.
    pub fn new(store: Store) -> Self {
        V2Store { store }
    }
}

impl Hl7Store for V2Store {
    async fn store(
        &self,
        msg: &Message<'_>,
        key: &MessageKey,
        raw: &Bytes,
    ) -> Result<Stored, Hl7StoreError> {
        let effect = v2_effect(msg).map_err(Hl7StoreError::Invalid)?;
        let sender = format!("{}^{}", key.sending_application, key.sending_facility);
        let control_id = key.control_id.clone();
        let mtype = msg
            .message_type()
            .map(|t| format!("{}^{}", t.code, t.trigger_event))
            .unwrap_or_default();
        let raw = raw.clone();
        let r = self
            .store
            .write(move |tx| {
                let new = tx.record_message("hl7v2", &sender, &control_id, &mtype, &raw)?;
                if new {
                    apply_v2(tx, &effect)?;
                }
                Ok(new)
            })
            .await;
        match r {
            Ok(true) => Ok(Stored::New),
            Ok(false) => Ok(Stored::Duplicate),
            Err(e) => {
                tracing::error!(error = %e, "hl7v2 store failed");
                let full = e.is_full();
                let _ = STORAGE_FULL.try_with(|f| f.set(full));
                Err(Hl7StoreError::Failed(ErrorDetail::new(
                    ErrorCode::InternalError,
                    if full {
                        "storage full: the message was not stored; retry later"
                    } else {
                        "could not store the message; retry later"
                    },
                )))
            }
        }
    }
}

/// What an HL7 v2 message changes, extracted (owned) before the store job runs.
#[derive(Debug, Clone)]
enum V2Effect {
    /// Nothing beyond storing the message.
    None,
    /// Create or update a Patient.
    Patient(PatientFacts),
    /// Merge: the surviving patient, then the identifier of the one it replaces.
    Merge(PatientFacts, (String, String)),
    /// Create or update a ServiceRequest.
    Order(Box<OrderFacts>),
}

fn text<'a>(m: &Message<'a>, path: &str) -> Option<Cow<'a, str>> {
    m.get(path).filter(|s| !s.trim().is_empty())
}

fn owned(m: &Message<'_>, path: &str) -> Option<String> {
    text(m, path).map(|s| s.trim().to_owned())
}

/// Assigning authority of a CX (component 4, an HD): the universal id as a URI when
/// it is an ISO OID, else the namespace id (HL7 v2.5.1 §2.A.14 HD, §2.A.14 CX).
fn cx_system(m: &Message<'_>, base: &str) -> String {
    let ns = owned(m, &format!("{base}-4-1"));
    let uid = owned(m, &format!("{base}-4-2"));
    let uid_type = owned(m, &format!("{base}-4-3"));
    match (uid, uid_type.as_deref()) {
        (Some(u), Some("ISO")) => format!("urn:oid:{u}"),
        (Some(u), _) if u.contains(':') => u,
        (Some(u), _) => ns.unwrap_or(u),
        (None, _) => ns.unwrap_or_default(),
    }
}

/// Patient facts from the PID segment (HL7 v2.5.1 §3.4.2).
#[allow(clippy::result_large_err)] // one ErrorDetail per rejected message
fn pid_facts(m: &Message<'_>, source: &str) -> Result<PatientFacts, ErrorDetail> {
    if m.segment("PID").is_none() {
        return Err(ErrorDetail::new(
            ErrorCode::SegmentSequence,
            "PID segment missing",
        ));
    }
    let mut f = PatientFacts {
        source: source.to_owned(),
        ..PatientFacts::default()
    };
    for r in 1..=64 {
        let base = format!("PID-3({r})");
        let Some(v) = owned(m, &format!("{base}-1")) else {
            if text(m, &base).is_none() {
                break;
            }
            continue;
        };
        f.identifiers.push((cx_system(m, &base), v));
    }
    if f.identifiers.is_empty() {
        return Err(ErrorDetail::new(
            ErrorCode::RequiredFieldMissing,
            "PID-3 (patient identifier list) is empty",
        ));
    }
    f.family = owned(m, "PID-5-1-1").or_else(|| owned(m, "PID-5-1"));
    f.given = ["PID-5-2", "PID-5-3"]
        .iter()
        .filter_map(|p| owned(m, p))
        .collect();
    if let Some(b) = owned(m, "PID-7-1").or_else(|| owned(m, "PID-7")) {
        f.birth_date = Some(fhir_date(&b).ok_or_else(|| {
            ErrorDetail::new(ErrorCode::DataType, format!("PID-7 {b:?} is not a date"))
        })?);
    }
    f.gender = owned(m, "PID-8").and_then(|g| gender_code(&g));
    for r in 1..=8 {
        let base = format!("PID-11({r})");
        if text(m, &base).is_none() {
            break;
        }
        let lines: Vec<String> = [format!("{base}-1-1"), format!("{base}-2")]
            .iter()
            .filter_map(|p| owned(m, p))
            .collect();
        f.addresses.push((
            lines,
            owned(m, &format!("{base}-3")),
            owned(m, &format!("{base}-4")),
            owned(m, &format!("{base}-5")),
            owned(m, &format!("{base}-6")),
        ));
    }
    Ok(f)
}

/// ServiceRequest.status from ORC-1 order control and ORC-5 order status (tables 0119, 0038).
fn order_status(control: &str, status: Option<&str>) -> &'static str {
    match (control, status) {
        (_, Some("CM")) => "completed",
        (_, Some("CA" | "DC")) | ("CA" | "DC" | "OC" | "OD", _) => "revoked",
        ("HD" | "OH", _) | (_, Some("HD")) => "on-hold",
        _ => "active",
    }
}

/// Order facts from ORC/OBR (HL7 v2.5.1 §4.5.1, §4.5.3), accession from IPC-1 (OMI) or OBR-18.
#[allow(clippy::result_large_err)] // one ErrorDetail per rejected message
fn order_facts(m: &Message<'_>, source: &str) -> Result<OrderFacts, ErrorDetail> {
    let patient = pid_facts(m, source)?;
    let mut ids = Vec::new();
    for (path, kind) in [
        ("ORC-2", "placer"),
        ("OBR-2", "placer"),
        ("ORC-3", "filler"),
        ("OBR-3", "filler"),
    ] {
        if let Some(v) = owned(m, &format!("{path}-1")) {
            let ns = owned(m, &format!("{path}-2")).unwrap_or_default();
            let system = if ns.is_empty() {
                format!("urn:xenrad:{kind}")
            } else {
                format!("urn:xenrad:{kind}:{ns}")
            };
            if !ids.contains(&(system.clone(), v.clone())) {
                ids.push((system, v));
            }
        }
    }
    if let Some(acc) = owned(m, "IPC-1-1").or_else(|| owned(m, "OBR-18")) {
        ids.push(("urn:xenrad:accession".to_owned(), acc));
    }
    if ids.is_empty() {
        return Err(ErrorDetail::new(
            ErrorCode::RequiredFieldMissing,
            "ORC-2/ORC-3 (placer/filler order number) are empty",
        ));
    }
    let control = owned(m, "ORC-1").unwrap_or_else(|| "NW".to_owned());
    let status = owned(m, "ORC-5");
    let code = owned(m, "OBR-4-1").map(|c| {
        (
            owned(m, "OBR-4-3").unwrap_or_default(),
            c,
            owned(m, "OBR-4-2").unwrap_or_default(),
        )
    });
    let occurrence = owned(m, "OBR-7-1")
        .or_else(|| owned(m, "TQ1-7-1"))
        .and_then(|t| fhir_date(&t));
    Ok(OrderFacts {
        identifiers: ids,
        status: order_status(&control, status.as_deref()),
        code,
        patient,
        occurrence,
    })
}

#[allow(clippy::result_large_err)] // one ErrorDetail per rejected message
fn v2_effect(m: &Message<'_>) -> Result<V2Effect, ErrorDetail> {
    let Some(t) = m.message_type() else {
        return Err(ErrorDetail::new(
            ErrorCode::RequiredFieldMissing,
            "MSH-9 (message type) is empty",
        ));
    };
    let source = format!("HL7v2 {}^{}", t.code, t.trigger_event);
    match (t.code.as_ref(), t.trigger_event.as_ref()) {
        ("ADT", "A40") => {
            let f = pid_facts(m, &source)?;
            let old = owned(m, "MRG-1-1").ok_or_else(|| {
                ErrorDetail::new(
                    ErrorCode::RequiredFieldMissing,
                    "MRG-1 (prior patient identifier) is empty",
                )
            })?;
            Ok(V2Effect::Merge(f, (cx_system(m, "MRG-1"), old)))
        }
        ("ADT", _) if m.segment("PID").is_some() => Ok(V2Effect::Patient(pid_facts(m, &source)?)),
        ("ORM", "O01") | ("OMI", "O23") | ("OMG", "O19") => {
            Ok(V2Effect::Order(Box::new(order_facts(m, &source)?)))
        }
        _ => Ok(V2Effect::None),
    }
}

fn apply_v2(tx: &dyn WriteTx, effect: &V2Effect) -> Result<(), StoreError> {
    match effect {
        V2Effect::None => Ok(()),
        V2Effect::Patient(f) => projection::upsert_patient(tx, f).map(drop),
        V2Effect::Merge(f, old) => {
            let id = projection::upsert_patient(tx, f)?;
            projection::merge_patient(tx, old, &id).map(drop)
        }
        V2Effect::Order(f) => projection::upsert_service_request(tx, f).map(drop),
    }
}

/// The gateway's HL7 v2 handler over `store`, shared by `POST /v2/ingest` and MLLP :3000:
/// every message it processes is counted in `metrics` (whichever door it came through), and
/// with `--mllp-commit-blocks` MLLP senders get release 2 commit blocks.
pub fn v2_handler(store: &Store, metrics: &http::Metrics, config: &Config) -> V2Handler {
    let metrics = metrics.clone();
    V2Handler::new(V2Store::new(store.clone()))
        .commit_blocks(config.mllp_commit_blocks)
        .observe(move |out, len| metrics.ingest("hl7v2", v2_label(out.disposition), len))
}

/// The metrics/log label of a v2 disposition.
fn v2_label(d: Disposition) -> &'static str {
    match d {
        Disposition::Stored => "stored",
        Disposition::Duplicate => "duplicate",
        Disposition::Rejected | Disposition::Invalid => "rejected",
        Disposition::Failed => "failed",
    }
}

/// Ingests one HL7 v2 message: parse, store with its projection, acknowledge.
///
/// The ACK is AA/CA only after the commit; a repeated (sender, MSH-10) is answered
/// AA/CA again without storing anything; a message that cannot be understood gets
/// AR/CR, one whose content cannot be projected AE/CE, each with an ERR segment,
/// and nothing is stored. Counted in the metrics by the handler's observer.
pub async fn v2(gw: &Gateway, body: Bytes) -> V2Outcome {
    let (out, full) = STORAGE_FULL
        .scope(std::cell::Cell::new(false), async {
            let out = gw.hl7v2.process(body).await;
            (out, STORAGE_FULL.with(std::cell::Cell::get))
        })
        .await;
    let http_status = match out.disposition {
        Disposition::Stored | Disposition::Duplicate => 200,
        Disposition::Rejected | Disposition::Invalid => 400,
        // 507 Insufficient Storage (RFC 4918 §11.5): retry once space returns.
        Disposition::Failed if full => 507,
        Disposition::Failed => 503,
    };
    V2Outcome {
        ack: out.ack,
        code: out.code,
        wanted: out.wanted,
        http_status,
    }
}

/// Result of one HL7 v3 ingest.
#[derive(Debug)]
pub struct V3Outcome {
    /// The MCCI_IN000002UV01 accept acknowledgement.
    pub ack: Bytes,
    /// The HTTP status.
    pub http_status: u16,
}

/// The gateway's HL7 v3 semantics: `xenrad-mllp`'s [`V3Handler`](xenrad_mllp::hl7v3::V3Handler)
/// (strict parse, de-duplication key, MCCI accept ack and its policy) over [`V3Store`].
pub type V3Handler = xenrad_mllp::hl7v3::V3Handler<V3Store>;

/// The gateway's HL7 v3 handler over `store`, counted in `metrics`.
pub fn v3_handler(store: &Store, metrics: &http::Metrics) -> V3Handler {
    let metrics = metrics.clone();
    V3Handler::new(V3Store {
        store: store.clone(),
    })
    .observe(move |out, len| metrics.ingest("hl7v3", v2_label(out.disposition), len))
}

/// [`xenrad_mllp::hl7v3::V3Store`] that stores the message, keyed on the sender device id
/// and the message id, with the patient projection of PRPA_IN201301/201302UV02 in the
/// same durable transaction.
pub struct V3Store {
    store: Store,
}

impl xenrad_mllp::hl7v3::V3Store for V3Store {
    async fn store(
        &self,
        msg: &xenrad_hl7v3::Message<'_>,
        key: &xenrad_mllp::hl7v3::V3MessageKey,
        raw: &Bytes,
    ) -> Result<Stored, xenrad_mllp::hl7v3::V3StoreError> {
        let message_id = format!(
            "{}^{}",
            key.id_root,
            key.id_extension.as_deref().unwrap_or_default()
        );
        let sender = ii_parts(key.sender_root.as_deref(), key.sender_extension.as_deref())
            .map(|(s, v)| format!("{s}^{v}"))
            .unwrap_or_default();
        let h = msg.header();
        let interaction = h.interaction.to_owned();
        let patients: Vec<PatientFacts> = match h.interaction {
            "PRPA_IN201301UV02" | "PRPA_IN201302UV02" => msg
                .patients()
                .iter()
                .map(|p| v3_patient_facts(&p.to_record(), &format!("HL7v3 {interaction}")))
                .filter(|f| !f.identifiers.is_empty())
                .collect(),
            _ => Vec::new(),
        };
        let stored = raw.clone();
        let r = self
            .store
            .write(move |tx| {
                let new =
                    tx.record_message("hl7v3", &sender, &message_id, &interaction, &stored)?;
                if new {
                    for p in &patients {
                        projection::upsert_patient(tx, p)?;
                    }
                }
                Ok(new)
            })
            .await;
        match r {
            Ok(true) => Ok(Stored::New),
            Ok(false) => Ok(Stored::Duplicate),
            Err(e) => {
                tracing::error!(error = %e, "hl7v3 store failed");
                let full = e.is_full();
                let _ = STORAGE_FULL.try_with(|f| f.set(full));
                Err(xenrad_mllp::hl7v3::V3StoreError::Failed(
                    xenrad_hl7v3::AckDetail::error(if full {
                        "storage full: the message was not stored; retry later"
                    } else {
                        "could not store the message; retry later"
                    })
                    .with_code("INTERR"),
                ))
            }
        }
    }
}

/// `urn:oid:` for OIDs, `urn:uuid:` for UUIDs (HL7 v3 II.root; FHIR R4 §2.24.0.1 uri).
fn root_uri(root: &str) -> String {
    if root.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        format!("urn:oid:{root}")
    } else if root.len() == 36 && root.bytes().filter(|b| *b == b'-').count() == 4 {
        format!("urn:uuid:{}", root.to_ascii_lowercase())
    } else {
        root.to_owned()
    }
}

fn ii_pair(ii: &xenrad_hl7v3::types::Ii<'_>) -> Option<(String, String)> {
    ii_parts(ii.root.as_deref(), ii.extension.as_deref())
}

/// (system, value) of an instance identifier's root and extension.
fn ii_parts(root: Option<&str>, extension: Option<&str>) -> Option<(String, String)> {
    match (root, extension) {
        (Some(r), Some(e)) if !e.is_empty() => Some((root_uri(r), e.to_owned())),
        (Some(r), _) if !r.is_empty() => Some((String::new(), root_uri(r))),
        _ => None,
    }
}

/// Patient facts from a PRPA patient record (HL7 v3 NE PRPA_RM201301UV02).
fn v3_patient_facts(rec: &xenrad_hl7v3::payload::PatientRecord, source: &str) -> PatientFacts {
    use xenrad_hl7v3::types::AddrPartKind as A;
    let mut f = PatientFacts {
        source: source.to_owned(),
        ..PatientFacts::default()
    };
    f.identifiers = rec
        .ids
        .iter()
        .chain(rec.other_ids.iter())
        .filter_map(ii_pair)
        .collect();
    if let Some(n) = rec.names.first() {
        f.family = n.family().next().map(str::to_owned);
        f.given = n.given().map(str::to_owned).collect();
    }
    f.gender = rec.gender.as_deref().and_then(gender_code);
    f.birth_date = rec.birth_time.as_deref().and_then(fhir_date);
    for a in &rec.addresses {
        let part = |k: A| {
            a.parts
                .iter()
                .find(|(kind, _)| *kind == k)
                .map(|(_, v)| v.clone())
        };
        let lines: Vec<String> = a
            .parts
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k,
                    A::StreetAddressLine | A::StreetName | A::HouseNumber | A::UnitId | A::PostBox
                )
            })
            .map(|(_, v)| v.clone())
            .collect();
        f.addresses.push((
            lines,
            part(A::City),
            part(A::State),
            part(A::PostalCode),
            part(A::Country),
        ));
    }
    f
}

/// Ingests one HL7 v3 message through the gateway's [`V3Handler`]: strict pass, durable
/// idempotent store (keyed on the sender device id and the message id), patient projection
/// for PRPA_IN201301/201302UV02, MCCI_IN000002UV01 accept ack (CA/CE/CR).
pub async fn v3(gw: &Gateway, body: Bytes) -> V3Outcome {
    let (out, full) = STORAGE_FULL
        .scope(std::cell::Cell::new(false), async {
            let out = gw.hl7v3.process(body).await;
            (out, STORAGE_FULL.with(std::cell::Cell::get))
        })
        .await;
    let http_status = match out.disposition {
        Disposition::Stored | Disposition::Duplicate => 200,
        Disposition::Rejected | Disposition::Invalid => 400,
        Disposition::Failed if full => 507,
        Disposition::Failed => 503,
    };
    V3Outcome {
        ack: out.ack,
        http_status,
    }
}

/// An HTTP answer computed by the ingest layer.
#[derive(Debug)]
pub struct HttpOutcome {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

/// Which MPPS door a request came through.
#[derive(Debug, Clone)]
pub enum MppsOp {
    /// Seed JSON on `POST /ingest` (create or update, decided by the state).
    Seed,
    /// Seed JSON, explicitly an N-CREATE (`POST /ingest?op=create`).
    SeedCreate,
    /// Seed JSON, explicitly an N-SET (`POST /ingest?op=set`).
    SeedSet,
    /// MPPS-RS create of this UID (DICOM JSON).
    RsCreate(String),
    /// MPPS-RS update of this UID (DICOM JSON).
    RsUpdate(String),
}

/// [`xenrad_mpps::Store`] over the gateway's store: a write job's transaction (so
/// every compare-and-set is atomic and durable together with the projection written
/// in the same transaction) or a read snapshot (loads only).
pub enum MppsRecords<'c> {
    /// Inside a write job.
    Write(&'c dyn WriteTx),
    /// On a read snapshot; inserts and updates are refused.
    Read(&'c dyn ReadTx),
}

impl MppsRecords<'_> {
    fn reader(&self) -> &dyn ReadTx {
        match self {
            MppsRecords::Write(w) => {
                let r: &dyn ReadTx = *w;
                r
            }
            MppsRecords::Read(r) => *r,
        }
    }

    fn writer(&self) -> Result<&dyn WriteTx, xenrad_mpps::StoreError> {
        match self {
            MppsRecords::Write(w) => Ok(*w),
            MppsRecords::Read(_) => Err(xenrad_mpps::StoreError::new("read-only snapshot")),
        }
    }
}

/// A store failure that keeps its cause.
fn mpps_err(e: impl std::error::Error + Send + Sync + 'static) -> xenrad_mpps::StoreError {
    xenrad_mpps::StoreError::with_source(e.to_string(), e)
}

impl xenrad_mpps::Store for MppsRecords<'_> {
    fn load(&self, uid: &str) -> Result<Option<xenrad_mpps::Record>, xenrad_mpps::StoreError> {
        let Some((version, state)) = self.reader().mpps(uid).map_err(mpps_err)? else {
            return Ok(None);
        };
        // Read back under the limits its requests passed (`Mpps::new` applies the defaults).
        let limits = xenrad_mpps::Limits::default();
        xenrad_mpps::codec::record::decode(state.as_bytes(), uid, version, &limits)
            .map(Some)
            .map_err(mpps_err)
    }

    fn insert_new(
        &self,
        record: xenrad_mpps::Record,
    ) -> Result<xenrad_mpps::store::Insert, xenrad_mpps::StoreError> {
        let inserted = self
            .writer()?
            .mpps_insert(
                &record.sop_instance_uid,
                record.version,
                &xenrad_mpps::codec::record::encode(&record),
            )
            .map_err(mpps_err)?;
        if inserted {
            Ok(xenrad_mpps::store::Insert::Inserted)
        } else {
            let existing = self
                .load(&record.sop_instance_uid)?
                .ok_or_else(|| xenrad_mpps::StoreError::new("record vanished"))?;
            Ok(xenrad_mpps::store::Insert::Exists(existing))
        }
    }

    fn compare_and_set(
        &self,
        record: xenrad_mpps::Record,
        expected: u64,
    ) -> Result<xenrad_mpps::store::Cas, xenrad_mpps::StoreError> {
        let swapped = self
            .writer()?
            .mpps_update(
                &record.sop_instance_uid,
                record.version,
                &xenrad_mpps::codec::record::encode(&record),
                expected,
            )
            .map_err(mpps_err)?;
        Ok(if swapped {
            xenrad_mpps::store::Cas::Swapped
        } else {
            xenrad_mpps::store::Cas::Stale
        })
    }
}

/// DICOM DA + TM to a FHIR dateTime. DICOM times without (0008,0201) are local
/// time (PS3.5 §6.2), and a FHIR dateTime with a time needs an offset (FHIR R4
/// §2.24.0.1), so the gateway's local offset is attached.
fn dicom_dt(date: Option<&str>, time: Option<&str>) -> Option<String> {
    let d = fhir_date(date?)?;
    if d.len() != 10 {
        return Some(d);
    }
    let t: String = time
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if t.len() < 4 {
        return Some(d);
    }
    let ss = if t.len() >= 6 { &t[4..6] } else { "00" };
    let naive = chrono::NaiveDateTime::parse_from_str(
        &format!("{d}T{}:{}:{ss}", &t[..2], &t[2..4]),
        "%Y-%m-%dT%H:%M:%S",
    )
    .ok()?;
    let local = naive.and_local_timezone(chrono::Local).earliest()?;
    Some(local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
}

/// Projects a stored MPPS instance into FHIR (Procedure + ImagingStudy status).
pub fn project_mpps_instance(
    tx: &dyn WriteTx,
    uid: &str,
    inst: &xenrad_mpps::MppsInstance,
) -> Result<(), StoreError> {
    let (sd, st) = inst.start();
    let (ed, et) = inst.end();
    let facts = projection::ProcedureFacts {
        mpps_uid: uid.to_owned(),
        study_uid: inst.study_instance_uid().unwrap_or_default().to_owned(),
        status: inst
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        start: dicom_dt(sd, st),
        end: dicom_dt(ed, et),
    };
    projection::project_mpps(tx, &facts).map(drop)
}

fn problem(status: u16, code: &str, detail: &str, extra: &serde_json::Value) -> HttpOutcome {
    let mut body = serde_json::json!({
        "type": "about:blank",
        "title": axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("error"),
        "status": status,
        "code": code,
        "detail": detail,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    HttpOutcome {
        status,
        content_type: "application/problem+json",
        body: body.to_string().into_bytes(),
    }
}

/// Runs one MPPS request through the state machine, durably, with its FHIR projection.
pub async fn mpps(gw: &Gateway, op: MppsOp, body: &[u8]) -> HttpOutcome {
    let body = body.to_vec();
    let len = body.len();
    let r = gw
        .store
        .write(move |tx| {
            let svc = xenrad_mpps::Mpps::new(MppsRecords::Write(tx));
            let out = match &op {
                MppsOp::Seed => svc.ingest_seed_json(&body),
                MppsOp::SeedCreate => svc.seed_create(&body),
                MppsOp::SeedSet => svc.seed_set(&body),
                MppsOp::RsCreate(uid) => svc.create_dicom_json(uid, &body),
                MppsOp::RsUpdate(uid) => svc.update_dicom_json(uid, &body),
            };
            match out {
                Ok(o) => {
                    if !o.replay && o.changed {
                        project_mpps_instance(tx, &o.instance.sop_instance_uid, &o.instance)?;
                    }
                    let json = if matches!(op, MppsOp::Seed | MppsOp::SeedCreate | MppsOp::SeedSet)
                    {
                        xenrad_mpps::codec::seed::encode(&o.instance)
                    } else {
                        xenrad_mpps::codec::dicom_json::encode_instance(&o.instance)
                    };
                    Ok(Ok((o.http_status(), o.replay, json)))
                }
                Err(e) => Ok(Err(e)),
            }
        })
        .await;
    match r {
        Ok(Ok((status, replay, json))) => {
            gw.metrics
                .ingest("mpps", if replay { "duplicate" } else { "stored" }, len);
            HttpOutcome {
                status,
                content_type: "application/json",
                body: json,
            }
        }
        Ok(Err(e)) => {
            gw.metrics.ingest("mpps", "rejected", len);
            problem(
                e.http_status(),
                "mpps",
                e.message(),
                &serde_json::json!({"dimse_status": format!("0x{:04X}", e.dimse_status()),
                    "error_id": e.error_id().map(|i| format!("{i:04X}"))}),
            )
        }
        Err(e) => {
            gw.metrics.ingest("mpps", "failed", len);
            problem(
                if e.is_full() { 507 } else { 503 },
                "store",
                &format!("could not store: {e}"),
                &serde_json::Value::Null,
            )
        }
    }
}

/// MPPS-RS retrieve.
pub async fn mpps_get(gw: &Gateway, uid: String) -> HttpOutcome {
    let r = gw
        .store
        .read(move |c| Ok(xenrad_mpps::Mpps::new(MppsRecords::Read(c)).get_dicom_json(&uid)))
        .await;
    match r {
        Ok(Ok(json)) => HttpOutcome {
            status: 200,
            content_type: "application/dicom+json",
            body: json,
        },
        Ok(Err(e)) => problem(
            e.http_status(),
            "mpps",
            e.message(),
            &serde_json::Value::Null,
        ),
        Err(e) => problem(503, "store", &e.to_string(), &serde_json::Value::Null),
    }
}
