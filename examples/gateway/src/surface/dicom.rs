//! The DICOM port (:11112) through `xenrad-dimse`'s streaming SCP: C-ECHO, C-STORE
//! (instances as Part 10 files under `<data-dir>/dicom`, indexed and projected into
//! ImagingStudy) and MPPS N-CREATE / N-SET through `xenrad-mpps` on the same state
//! as the HTTP doors.

use crate::Gateway;
use crate::ingest;
use crate::store::qr;
use std::sync::Arc;
use xenrad_dimse::assoc::policy::sop;
use xenrad_dimse::dimse::status;
use xenrad_dimse::query::{
    FindOptions, FindQuery, InformationModel, QueryError, decode_identifier, encode_identifier,
};
use xenrad_dimse::scp::commitment::{CommitmentRequest, CommitmentResult};
use xenrad_dimse::scp::retrieve::RetrieveInstance;
use xenrad_dimse::scp::{
    Handler, NRequest, NResponse, QueryFinal, QueryRequest, ScpConfig, StoredInstance,
};
use xenrad_mpps::{MPPS_SOP_CLASS_UID, TransferSyntaxKind};

/// DIMSE status 0x0213 Resource limitation (PS3.7 C.4.1, N-CREATE/N-SET).
const RESOURCE_LIMITATION: u16 = 0x0213;

fn refuse(e: &QueryError) -> QueryFinal {
    QueryFinal {
        status: e.status(),
        error_comment: Some(e.error_comment()),
        ..QueryFinal::default()
    }
}

/// Modality Worklist C-FIND (PS3.4 K.4.1.3): the store's indexed columns select the
/// candidates, K.6 matching decides ([`ingest::worklist::find`]); each match is encoded in
/// the request's transfer syntax. A malformed identifier or range is refused with 0xA900 and
/// an Error Comment naming the attribute; an unreadable store with 0xA700.
fn worklist_find(
    gw: &Gateway,
    req: &QueryRequest,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> QueryFinal {
    let query = match decode_identifier(&req.identifier, &req.transfer_syntax)
        .and_then(|id| FindQuery::parse(id, InformationModel::ModalityWorklist))
    {
        Ok(q) => q,
        Err(e) => return refuse(&e),
    };
    let opts = FindOptions::default();
    let (matches, truncated) = match ingest::worklist::find(&gw.store, &query, &opts) {
        Ok(r) => r,
        Err(ingest::worklist::FindError::Query(e)) => return refuse(&e),
        Err(ingest::worklist::FindError::Store(e)) => {
            tracing::error!(error = %e, "worklist C-FIND: the store cannot be read");
            return QueryFinal {
                status: status::OUT_OF_RESOURCES,
                error_comment: Some("the worklist cannot be read".into()),
                ..QueryFinal::default()
            };
        }
    };
    for m in matches {
        let bytes = match encode_identifier(&m, &req.transfer_syntax) {
            Ok(b) => b,
            Err(e) => return refuse(&e),
        };
        if !emit(bytes) {
            return QueryFinal::status(status::CANCEL);
        }
    }
    if truncated {
        QueryFinal {
            status: status::OUT_OF_RESOURCES,
            error_comment: Some("match limit reached".into()),
            ..QueryFinal::default()
        }
    } else {
        QueryFinal::status(status::SUCCESS)
    }
}

/// The gateway's DIMSE handler.
pub struct GatewayScp {
    gw: Gateway,
}

impl Handler for GatewayScp {
    /// Indexes the instance (idempotent on its SOP Instance UID) and refreshes its
    /// ImagingStudy before the C-STORE-RSP goes out ([`ingest::dicom::stored`]).
    fn on_stored(&self, inst: &StoredInstance) -> u16 {
        let started = std::time::Instant::now();
        let st = ingest::dicom::stored(&self.gw, inst);
        self.gw.metrics.observe_ingest("dicom", started.elapsed());
        let mut e = crate::audit::Event::new(crate::audit::Kind::Ingest, "dicom");
        e.who = Some((crate::audit::WHO_AE, inst.calling_ae.trim().to_owned()));
        e.success = st == status::SUCCESS;
        if !e.success {
            e.detail = Some(format!("C-STORE status 0x{st:04X}"));
        }
        e.entities.push(crate::audit::Entity::Identifier(
            "urn:dicom:uid",
            format!("urn:oid:{}", inst.sop_instance_uid.trim_end_matches('\0')),
        ));
        self.gw.audit.record(e);
        st
    }

    fn n_create(&self, req: &NRequest<'_>) -> NResponse {
        self.n_op(req, true)
    }

    fn n_set(&self, req: &NRequest<'_>) -> NResponse {
        self.n_op(req, false)
    }

    /// C-FIND, Patient Root and Study Root (PS3.4 C.4.1), from the Q/R index.
    fn find(&self, req: &QueryRequest, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> QueryFinal {
        if req.sop_class_uid == sop::MODALITY_WORKLIST_FIND {
            return worklist_find(&self.gw, req, emit);
        }
        self.gw.images.find(req, emit)
    }

    /// C-MOVE / C-GET (PS3.4 C.4.2, C.4.3): the stored files the identifier selects.
    fn retrieve(&self, req: &QueryRequest) -> Result<Vec<RetrieveInstance>, QueryFinal> {
        self.gw.images.retrieve(req)
    }

    /// Storage Commitment (PS3.4 J.3) against the durable store.
    fn commitment(&self, _calling_ae: &str, req: &CommitmentRequest) -> Option<CommitmentResult> {
        Some(qr::commitment(&self.gw.store, req))
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
        let keep_done = self.gw.config.worklist_keep_done;
        let r = ingest::mpps_dimse(&self.gw.store, uid.clone(), data, ts, create, keep_done);
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

/// Builds the SCP server for the gateway's configuration.
pub fn server(gw: Gateway) -> std::io::Result<xenrad_dimse::net::Server> {
    let mut cfg = ScpConfig::with_sink(gw.dicom_sink.clone());
    let secs = std::time::Duration::from_secs;
    let c = &gw.config;
    cfg.timeouts.artim = secs(c.dicom_artim_timeout.max(1));
    cfg.timeouts.stalled_pdu = secs(c.dicom_pdu_timeout.max(1));
    cfg.timeouts.idle = (c.dicom_idle_timeout > 0).then(|| secs(c.dicom_idle_timeout));
    cfg.max_associations = c.dicom_max_associations;
    cfg.max_associations_per_ip = c.dicom_max_associations_per_ip;
    let mut policy = (*cfg.policy).clone();
    policy.ae_title.clone_from(&gw.config.ae_title);
    policy.max_pdu = gw.config.max_pdu;
    policy
        .abstract_syntaxes
        .extend(qr::SOP_CLASSES.iter().map(|s| (*s).to_owned()));
    // The Modality Worklist information model (PS3.4 K), answered from the store.
    policy
        .abstract_syntaxes
        .push(sop::MODALITY_WORKLIST_FIND.to_owned());
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
    let audit = gw.audit.clone();
    let log = move |c: &xenrad_dimse::scp::Completed| {
        if let xenrad_dimse::scp::Completed::Refused(r) = c {
            let mut e = crate::audit::Event::new(crate::audit::Kind::Refused, "dicom");
            e.success = false;
            e.who = Some((crate::audit::WHO_AE, r.calling_ae.trim().to_owned()));
            e.address = r.peer;
            e.detail = Some(r.to_string());
            audit.record(e);
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
