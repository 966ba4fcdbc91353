//! The DICOM port (:11112) through `xenrad-dimse`'s streaming SCP: C-ECHO, C-STORE
//! (instances as Part 10 files under `<data-dir>/dicom`, indexed and projected into
//! ImagingStudy) and MPPS N-CREATE / N-SET through `xenrad-mpps` on the same state
//! as the HTTP doors.

use super::Gateway;
use super::ingest::{self, MppsRecords};
use super::projection::{self, InstanceFacts, PatientFacts, fhir_date, gender_code};
use super::store::InstanceRow;
use dicom_dictionary_std::tags;
use std::path::Path;
use std::sync::Arc;
use xenrad_dimse::dimse::status;
use xenrad_dimse::scp::commitment::{CommitmentRequest, CommitmentResult};
use xenrad_dimse::scp::retrieve::RetrieveInstance;
use xenrad_dimse::scp::{
    Handler, NRequest, NResponse, QueryFinal, QueryRequest, ScpConfig, StoredInstance,
};
use xenrad_dimse::store::InstanceHeader;
use xenrad_mpps::{MPPS_SOP_CLASS_UID, TransferSyntaxKind};

/// DIMSE status 0x0213 Resource limitation (PS3.7 C.4.1, N-CREATE/N-SET).
const RESOURCE_LIMITATION: u16 = 0x0213;

/// The gateway's DIMSE handler.
pub struct GatewayScp {
    gw: Gateway,
}

/// The header of an instance read from the stored file up to the pixel data, for the rare
/// instance whose facts did not come with [`StoredInstance::header`] (scanned from the data
/// set as it streamed in): a deflated transfer syntax, or a header longer than 64 KiB.
fn read_header_from_file(path: &Path) -> Option<InstanceHeader> {
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .ok()?;
    let text = |tag| -> Option<String> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    Some(InstanceHeader {
        study_instance_uid: text(tags::STUDY_INSTANCE_UID),
        series_instance_uid: text(tags::SERIES_INSTANCE_UID),
        modality: text(tags::MODALITY),
        patient_id: text(tags::PATIENT_ID),
        issuer_of_patient_id: text(tags::ISSUER_OF_PATIENT_ID),
        patient_name: text(tags::PATIENT_NAME),
        patient_birth_date: text(tags::PATIENT_BIRTH_DATE),
        patient_sex: text(tags::PATIENT_SEX),
        ..InstanceHeader::default()
    })
}

/// What the header of a stored instance says.
fn read_facts(inst: &StoredInstance) -> InstanceFacts {
    let mut f = InstanceFacts {
        sop_class_uid: inst.sop_class_uid.clone(),
        sop_instance_uid: inst.sop_instance_uid.clone(),
        study_uid: inst.study_instance_uid.clone().unwrap_or_default(),
        ..InstanceFacts::default()
    };
    let file_header;
    let h = match &inst.header {
        Some(h) if h.study_instance_uid.is_some() => h,
        // Not scanned (deflated), or the Study Instance UID lies beyond the first 64 KiB
        // the SCP looks at: read the stored file once.
        _ => match read_header_from_file(&inst.path) {
            Some(h) => {
                file_header = h;
                &file_header
            }
            None => return f,
        },
    };
    let text = |v: &Option<String>| -> Option<String> {
        v.as_deref()
            .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    if f.study_uid.is_empty() {
        f.study_uid = text(&h.study_instance_uid).unwrap_or_default();
    }
    f.series_uid = text(&h.series_instance_uid).unwrap_or_default();
    f.modality = text(&h.modality).unwrap_or_default();
    if let Some(pid) = text(&h.patient_id) {
        let issuer = text(&h.issuer_of_patient_id).unwrap_or_default();
        let name = text(&h.patient_name).unwrap_or_default();
        // PN: components separated by ^ within the first (alphabetic) group (PS3.5 §6.2.1).
        let alpha = name.split('=').next().unwrap_or_default();
        let mut parts = alpha.split('^').map(str::trim);
        let family = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
        let given: Vec<String> = parts
            .take(2)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        f.patient = Some(PatientFacts {
            identifiers: vec![(issuer, pid)],
            family,
            given,
            birth_date: text(&h.patient_birth_date).and_then(|d| fhir_date(&d)),
            gender: text(&h.patient_sex).and_then(|g| gender_code(&g)),
            addresses: Vec::new(),
            source: "DICOM C-STORE".to_owned(),
        });
    }
    f
}

impl Handler for GatewayScp {
    /// Indexes the instance (idempotent on its SOP Instance UID) and refreshes its
    /// ImagingStudy before the C-STORE-RSP goes out; a store failure answers 0xA700.
    fn on_stored(&self, inst: &StoredInstance) -> u16 {
        let facts = read_facts(inst);
        if facts.study_uid.is_empty() {
            // Nothing to file it under: the dataset has no Study Instance UID.
            self.gw.metrics.ingest(
                "dicom",
                "rejected",
                usize::try_from(inst.dataset_len).unwrap_or(usize::MAX),
            );
            return status::CANNOT_UNDERSTAND;
        }
        // The query attributes go into the same durable write as the instance row
        // (`qr` module); an instance whose header cannot be indexed is still stored.
        let qr = match crate::qr::records_from_file(
            &inst.path,
            &inst.sop_class_uid,
            &inst.sop_instance_uid,
        ) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "stored instance not indexed for query/retrieve");
                None
            }
        };
        let qrow = qr.as_ref().map(|(_, row)| row.clone());
        let row = InstanceRow {
            sop_instance_uid: facts.sop_instance_uid.clone(),
            sop_class_uid: facts.sop_class_uid.clone(),
            study_uid: facts.study_uid.clone(),
            series_uid: facts.series_uid.clone(),
            transfer_syntax: inst.transfer_syntax.clone(),
            path: inst.path.display().to_string(),
            size: inst.dataset_len,
            calling_ae: inst.calling_ae.clone(),
        };
        let r = self.gw.store.write_blocking(move |tx| {
            if let Some(q) = &qrow {
                tx.record_query_row(q)?;
            }
            projection::record_instance(tx, &facts, &row)
        });
        let len = usize::try_from(inst.dataset_len).unwrap_or(usize::MAX);
        match r {
            Ok(new) => {
                if let Some((record, _)) = qr
                    && let Err(e) = self.gw.images.insert(record)
                {
                    tracing::warn!(error = %e, "stored instance not indexed for query/retrieve");
                }
                self.gw
                    .metrics
                    .ingest("dicom", if new { "stored" } else { "duplicate" }, len);
                status::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "indexing a stored instance failed");
                self.gw.metrics.ingest("dicom", "failed", len);
                status::OUT_OF_RESOURCES
            }
        }
    }

    fn n_create(&self, req: &NRequest<'_>) -> NResponse {
        self.n_op(req, true)
    }

    fn n_set(&self, req: &NRequest<'_>) -> NResponse {
        self.n_op(req, false)
    }

    /// C-FIND, Patient Root and Study Root (PS3.4 C.4.1), from the Q/R index.
    fn find(&self, req: &QueryRequest, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> QueryFinal {
        self.gw.images.find(req, emit)
    }

    /// C-MOVE / C-GET (PS3.4 C.4.2, C.4.3): the stored files the identifier selects.
    fn retrieve(&self, req: &QueryRequest) -> Result<Vec<RetrieveInstance>, QueryFinal> {
        self.gw.images.retrieve(req)
    }

    /// Storage Commitment (PS3.4 J.3) against the durable store.
    fn commitment(&self, _calling_ae: &str, req: &CommitmentRequest) -> Option<CommitmentResult> {
        Some(crate::qr::commitment(&self.gw.store, req))
    }
}

impl GatewayScp {
    /// MPPS N-CREATE / N-SET (PS3.4 F.7.2) through the shared state machine.
    fn n_op(&self, req: &NRequest<'_>, create: bool) -> NResponse {
        if req.sop_class_uid.trim_end_matches('\0') != MPPS_SOP_CLASS_UID {
            return NResponse::status(status::NO_SUCH_SOP_CLASS);
        }
        let Some(ts) = TransferSyntaxKind::from_uid(req.transfer_syntax) else {
            return NResponse::status(status::PROCESSING_FAILURE);
        };
        // PS3.7 §10.1.5.1.1: without an Affected SOP Instance UID the SCP assigns one.
        let (uid, assigned) = match req
            .sop_instance_uid
            .map(|u| u.trim_end_matches('\0').to_owned())
        {
            Some(u) if !u.is_empty() => (u, false),
            _ if create => match new_uid() {
                Ok(u) => (u, true),
                Err(e) => {
                    tracing::error!(error = %e, "no OS randomness for a new SOP Instance UID");
                    return NResponse::status(status::PROCESSING_FAILURE);
                }
            },
            _ => return NResponse::status(status::PROCESSING_FAILURE),
        };
        let data = req.dataset.to_vec();
        let len = data.len();
        let uid2 = uid.clone();
        let r = self.gw.store.write_blocking(move |tx| {
            let svc = xenrad_mpps::Mpps::new(MppsRecords::Write(tx));
            let resp = if create {
                svc.n_create_dataset(&uid2, &data, ts)
            } else {
                svc.n_set_dataset(&uid2, &data, ts)
            };
            if resp.status == status::SUCCESS
                && !resp.replay
                && let Ok(inst) = svc.get(&uid2)
            {
                ingest::project_mpps_instance(tx, &uid2, &inst)?;
            }
            Ok(resp)
        });
        match r {
            Ok(resp) => {
                let outcome = match (resp.status, resp.replay) {
                    (status::SUCCESS, true) => "duplicate",
                    (status::SUCCESS, false) => "stored",
                    _ => "rejected",
                };
                self.gw.metrics.ingest("mpps", outcome, len);
                NResponse {
                    status: resp.status,
                    sop_instance_uid: assigned.then_some(uid),
                    dataset: resp.dataset,
                    error_id: resp.error_id,
                    error_comment: resp.error_comment,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "MPPS over DIMSE: store failed");
                // PS3.7 C.4.1: 0x0213 Resource limitation, when there is no space to store.
                NResponse::status(if e.is_full() {
                    RESOURCE_LIMITATION
                } else {
                    status::PROCESSING_FAILURE
                })
            }
        }
    }
}

/// A fresh UID under the UUID-derived root 2.25 (PS3.5 §B.2) from a version 4 (random) UUID
/// (RFC 9562 §5.4: 122 bits from the OS random source, version and variant bits set). No
/// fallback: without OS randomness there is no UID, and the caller answers a failure.
fn new_uid() -> Result<String, getrandom::Error> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw)?;
    raw[6] = (raw[6] & 0x0f) | 0x40; // version 4
    raw[8] = (raw[8] & 0x3f) | 0x80; // variant 10xx
    Ok(xenrad_mpps::uid::uuid_uid(u128::from_be_bytes(raw)))
}

/// Opens the Part 10 file store under `<data-dir>/dicom` (the C-STORE SCP and STOW-RS share
/// it). Opening the journal replays what a crash left in it, before anything is served.
pub fn open_sink(config: &crate::Config) -> std::io::Result<xenrad_dimse::store::FileSink> {
    let dir = config.data_dir.join("dicom");
    std::fs::create_dir_all(&dir)?;
    let opts = xenrad_dimse::store::journal::JournalOptions::with_lane_mib(config.dicom_journal_mb);
    let (sink, recovery) = xenrad_dimse::store::FileSink::open_with(&dir, opts)?;
    if !recovery.files.is_empty() {
        tracing::warn!(
            protocol = "dicom",
            replayed = recovery.files.len(),
            "DICOM journal: instances written back after an unclean stop"
        );
    }
    Ok(sink)
}

/// Indexes and projects an instance the file sink committed, as a C-STORE does (STOW-RS
/// stores through here too); the returned status is the C-STORE status (PS3.4 B.2.3).
pub fn on_stored(gw: &Gateway, inst: &StoredInstance) -> u16 {
    GatewayScp { gw: gw.clone() }.on_stored(inst)
}

/// Builds the SCP server for the gateway's configuration.
pub fn server(gw: Gateway) -> std::io::Result<xenrad_dimse::net::Server> {
    let mut cfg = ScpConfig::with_sink(gw.dicom_sink.clone());
    let secs = std::time::Duration::from_secs;
    let c = &gw.config;
    cfg.timeouts.artim = secs(c.dicom_artim_timeout.max(1));
    cfg.timeouts.stalled_pdu = secs(c.dicom_pdu_timeout.max(1));
    cfg.timeouts.idle = (c.dicom_idle_timeout > 0).then(|| secs(c.dicom_idle_timeout));
    cfg.max_associations = c.dicom_max_associations;
    let mut policy = (*cfg.policy).clone();
    policy.ae_title.clone_from(&gw.config.ae_title);
    policy.max_pdu = gw.config.max_pdu;
    policy
        .abstract_syntaxes
        .extend(crate::qr::SOP_CLASSES.iter().map(|s| (*s).to_owned()));
    // Security (PS3.8 §7.1.1.3-4, PS3.7 D.3.3.7): allow-list, called AE, user identity.
    policy.check_called_ae = c.dicom_check_called_ae;
    if !c.dicom_allow.is_empty() {
        let allowed = c
            .dicom_allow
            .iter()
            .map(|s| xenrad_dimse::net::allowed_caller(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| std::io::Error::other(format!("--dicom-allow {e}")))?;
        policy.allowed_callers = Some(allowed);
    }
    if let Some(path) = &c.dicom_users {
        policy.user_identity = Some(
            xenrad_dimse::net::users_file(path)
                .map_err(|e| std::io::Error::other(format!("--dicom-users {e}")))?,
        );
    }
    cfg.policy = Arc::new(policy);
    // C-MOVE destinations and Storage Commitment requesters (PS3.4 C.4.2.1.2, J.3.3).
    let mut peers = xenrad_dimse::net::Peers::new();
    for p in &gw.config.dicom_peers {
        let (ae, addr) = xenrad_dimse::net::Peers::parse_entry(p).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("--dicom-peer {p:?}: {e}"),
            )
        })?;
        peers.insert(ae, addr);
    }
    let retrieve = xenrad_dimse::net::RetrieveConfig {
        peers,
        max_pdu: gw.config.max_pdu,
        ..xenrad_dimse::net::RetrieveConfig::default()
    };
    // Refused associations are logged: AE titles, peer address, user name, reason; the
    // passcode is never kept in the refusal.
    let log = |c: &xenrad_dimse::scp::Completed| {
        if let xenrad_dimse::scp::Completed::Refused(r) = c {
            tracing::warn!(
                protocol = "dicom",
                calling_ae = ?r.calling_ae,
                called_ae = ?r.called_ae,
                peer = ?r.peer,
                "{r}"
            );
        }
    };
    Ok(
        xenrad_dimse::net::Server::new(cfg, Arc::new(GatewayScp { gw }))
            .with_retrieve(retrieve)
            .with_log(log),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn new_uids_are_valid_distinct_v4_uuid_uids() {
        let (a, b) = (super::new_uid().unwrap(), super::new_uid().unwrap());
        assert_ne!(a, b);
        for u in [a, b] {
            assert_eq!(xenrad_mpps::uid::validate_uid(&u), Ok(()));
            let n: u128 = u.strip_prefix("2.25.").unwrap().parse().unwrap();
            assert_eq!((n >> 76) & 0xf, 4, "version nibble of {u}");
            assert_eq!((n >> 62) & 0b11, 0b10, "variant bits of {u}");
        }
    }
}
