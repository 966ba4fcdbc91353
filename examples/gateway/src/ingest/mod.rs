//! Message semantics shared by every transport: parse with the protocol crate,
//! store durably and idempotently (with the FHIR projection in the same
//! transaction), then build the acknowledgement. HTTP and MLLP (and the DICOM
//! port for MPPS) are thin mappings of these functions.

pub mod dicom;
pub mod fhir;
pub mod log;
pub mod resources;
pub mod worklist;

use crate::map::{self, PatientFacts, hl7v2::V2Effect};
use crate::metrics::Metrics;
use crate::store::{ReadTx, Store, StoreError, WriteTx};
use crate::{Config, Gateway};
use bytes::Bytes;
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
    /// Sender and control id, when the message had them (for the audit trail).
    pub key: Option<xenrad_mllp::hl7::MessageKey>,
}

/// The audit entity of an HL7 v2 message: its sending application and facility and its
/// control id (MSH-3, MSH-4, MSH-10), identifiers only.
pub fn v2_audit_entity(key: &xenrad_mllp::hl7::MessageKey) -> crate::audit::Entity {
    crate::audit::Entity::Identifier(
        "urn:xenrad:hl7v2-message",
        format!(
            "{}|{}|{}",
            key.sending_application, key.sending_facility, key.control_id
        ),
    )
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
    workflow: worklist::WorkflowSettings,
}

impl V2Store {
    /// Over the gateway's store, with the default scheduled-workflow settings.
    pub fn new(store: Store) -> Self {
        Self::with_workflow(store, worklist::WorkflowSettings::default())
    }

    /// Over the gateway's store, with these scheduled-workflow settings.
    pub fn with_workflow(store: Store, workflow: worklist::WorkflowSettings) -> Self {
        V2Store { store, workflow }
    }
}

impl Hl7Store for V2Store {
    async fn store(
        &self,
        msg: &Message<'_>,
        key: &MessageKey,
        raw: &Bytes,
    ) -> Result<Stored, Hl7StoreError> {
        let effect = map::hl7v2::effect(msg).map_err(Hl7StoreError::Invalid)?;
        // Orders also schedule (or cancel) worklist steps; an order that cannot is refused
        // whole before anything is written.
        let order = match effect {
            V2Effect::Order(_) => Some(
                map::order::read_order(msg, &self.workflow.order)
                    .map_err(|e| Hl7StoreError::Invalid(worklist::order_error(&e)))?,
            ),
            _ => None,
        };
        // Appointments (SIU^S12–S15): times without an offset are the gateway's local time.
        let appointment = match msg.message_type() {
            Some(t)
                if t.code == "SIU"
                    && matches!(&*t.trigger_event, "S12" | "S13" | "S14" | "S15") =>
            {
                let source = format!("HL7v2 SIU^{}", t.trigger_event);
                Some((
                    map::appointment::read_appointment(msg, &t.trigger_event, &chrono::Local)
                        .map_err(Hl7StoreError::Invalid)?,
                    map::hl7v2::patient(msg, &source).map_err(Hl7StoreError::Invalid)?,
                ))
            }
            _ => None,
        };
        let workflow = self.workflow.clone();
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
                // A report must name a known order: refused before anything is written.
                let report_order = match &effect {
                    V2Effect::Report(f, _) => match worklist::report_order(tx, f)? {
                        Ok(link) => Some(link),
                        Err(refusal) => return Ok(Err(refusal)),
                    },
                    _ => None,
                };
                let new = tx.record_message("hl7v2", &sender, &control_id, &mtype, &raw)?;
                if new {
                    match (&effect, &order) {
                        (V2Effect::Order(f), Some(order)) => {
                            // The worklist first: the ServiceRequest names the steps'
                            // Study Instance UIDs (kept, given or generated now).
                            let uids = worklist::apply_order(tx, order, &workflow)?;
                            let f = worklist::order_facts(f, order, uids);
                            resources::upsert_service_request(tx, &f)?;
                        }
                        (V2Effect::Report(f, patient), _) => {
                            let link = report_order.unwrap_or(worklist::OrderLink {
                                row: None,
                                service_request: None,
                            });
                            resources::upsert_report(tx, f, patient, &link)?;
                        }
                        _ => apply_v2(tx, &effect)?,
                    }
                    if let Some((a, patient)) = &appointment {
                        resources::upsert_appointment(tx, a, patient)?;
                    }
                }
                Ok(Ok(new))
            })
            .await;
        match r {
            Ok(Ok(true)) => Ok(Stored::New),
            Ok(Ok(false)) => Ok(Stored::Duplicate),
            Ok(Err(refusal)) => Err(Hl7StoreError::Invalid(refusal)),
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

fn apply_v2(tx: &dyn WriteTx, effect: &V2Effect) -> Result<(), StoreError> {
    match effect {
        // Reports are written by the HL7 v2 store (they need their order, found first).
        V2Effect::None | V2Effect::Report(..) => Ok(()),
        V2Effect::Patient(f) => resources::upsert_patient(tx, f).map(drop),
        V2Effect::Merge(f, old) => {
            let id = resources::upsert_patient(tx, f)?;
            resources::merge_patient(tx, old, &id)?;
            worklist::move_patient(tx, &old.1, f)
        }
        V2Effect::Order(f) => resources::upsert_service_request(tx, f).map(drop),
    }
}

/// The gateway's HL7 v2 handler over `store`, shared by `POST /v2/ingest` and MLLP :3000:
/// every message it processes is counted in `metrics` (whichever door it came through), and
/// with `--mllp-commit-blocks` MLLP senders get release 2 commit blocks.
pub fn v2_handler(store: &Store, metrics: &Metrics, config: &Config) -> V2Handler {
    let metrics = metrics.clone();
    V2Handler::new(V2Store::with_workflow(store.clone(), config.workflow()))
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
    let raw = body.clone();
    let (out, full) = STORAGE_FULL
        .scope(std::cell::Cell::new(false), async {
            let out = gw.hl7v2.process(body).await;
            (out, STORAGE_FULL.with(std::cell::Cell::get))
        })
        .await;
    gw.console.hl7v2(log::Door::Hl7Http, &raw, &out);
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
        key: out.key,
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
pub fn v3_handler(store: &Store, metrics: &Metrics) -> V3Handler {
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
        let sender =
            map::hl7v3::ii_parts(key.sender_root.as_deref(), key.sender_extension.as_deref())
                .map(|(s, v)| format!("{s}^{v}"))
                .unwrap_or_default();
        let h = msg.header();
        let interaction = h.interaction.to_owned();
        let patients: Vec<PatientFacts> = match h.interaction {
            "PRPA_IN201301UV02" | "PRPA_IN201302UV02" => msg
                .patients()
                .iter()
                .map(|p| map::hl7v3::patient(&p.to_record(), &format!("HL7v3 {interaction}")))
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
                        resources::upsert_patient(tx, p)?;
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

/// Ingests one HL7 v3 message through the gateway's [`V3Handler`]: strict pass, durable
/// idempotent store (keyed on the sender device id and the message id), patient projection
/// for PRPA_IN201301/201302UV02, MCCI_IN000002UV01 accept ack (CA/CE/CR).
pub async fn v3(gw: &Gateway, body: Bytes) -> V3Outcome {
    let raw = body.clone();
    let (out, full) = STORAGE_FULL
        .scope(std::cell::Cell::new(false), async {
            let out = gw.hl7v3.process(body).await;
            (out, STORAGE_FULL.with(std::cell::Cell::get))
        })
        .await;
    gw.console.hl7v3(log::Door::Hl7Http, &raw, &out);
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

/// Projects a stored MPPS instance into FHIR (Procedure + ImagingStudy status) and onto the
/// order it performs (ServiceRequest status, worklist step; `keep_done` keeps a finished step
/// listed).
pub fn project_mpps_instance(
    tx: &dyn WriteTx,
    uid: &str,
    inst: &xenrad_mpps::MppsInstance,
    keep_done: bool,
) -> Result<(), StoreError> {
    resources::project_mpps(
        tx,
        &map::mpps::procedure(uid, inst, &chrono::Local),
        keep_done,
    )
    .map(drop)
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
pub async fn mpps(gw: &Gateway, op: MppsOp, body: Bytes) -> HttpOutcome {
    let len = body.len();
    let keep_done = gw.config.worklist_keep_done;
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
                        project_mpps_instance(
                            tx,
                            &o.instance.sop_instance_uid,
                            &o.instance,
                            keep_done,
                        )?;
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

/// MPPS N-CREATE (`create`) or N-SET of instance `uid` over DIMSE (PS3.4 F.7.2), durably and
/// with its FHIR projection in the same transaction. The state machine's response carries the
/// instance as stored, which is projected as is (no second load of the record). Blocks until
/// the commit is durable (the DIMSE handler is synchronous). `keep_done` keeps a finished
/// worklist step listed (`--worklist-keep-done`).
pub fn mpps_dimse(
    store: &Store,
    uid: String,
    data: Vec<u8>,
    ts: xenrad_mpps::TransferSyntaxKind,
    create: bool,
    keep_done: bool,
) -> Result<xenrad_mpps::DimseResponse, StoreError> {
    store.write_blocking(move |tx| {
        let svc = xenrad_mpps::Mpps::new(MppsRecords::Write(tx));
        let resp = if create {
            svc.n_create_dataset(&uid, &data, ts)
        } else {
            svc.n_set_dataset(&uid, &data, ts)
        };
        if resp.status == xenrad_dimse::dimse::status::SUCCESS
            && !resp.replay
            && let Some(inst) = &resp.instance
        {
            project_mpps_instance(tx, &uid, inst, keep_done)?;
        }
        Ok(resp)
    })
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

/// Writes (or refreshes) the DICOMweb Endpoint in the store, once at start.
pub async fn publish_endpoint(store: &Store, url: &str) -> Result<(), StoreError> {
    let url = url.to_owned();
    store
        .write(move |tx| resources::publish_endpoint(tx, &url))
        .await
}
