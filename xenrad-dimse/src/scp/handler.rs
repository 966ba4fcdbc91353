//! The callback form of the application: a [`Handler`] answers the session's events, and
//! [`answer_with`] drives one session with it synchronously (the tokio adapter does the same
//! off its async workers).

#[cfg(feature = "retrieve")]
use super::commitment::{CommitmentRequest, CommitmentResult};
#[cfg(feature = "retrieve")]
use super::retrieve::RetrieveInstance;
use super::{
    NOperation, NRequest, NResponse, QueryFinal, QueryKind, QueryRequest, RequestId, ScpEvent,
    ScpSession, StoreCommit, StoredInstance,
};
use crate::dimse::{field, status};
use std::time::Instant;

/// What the embedding application does with DIMSE operations, as callbacks.
///
/// The methods are synchronous and may block (a database commit, a file read): adapters run
/// them off their async workers (the tokio adapter on the blocking pool), never inside
/// [`ScpSession::process`].
pub trait Handler: Send + Sync + 'static {
    /// Called after an instance is durably stored, before it is acknowledged; the returned
    /// status goes into the C-STORE-RSP.
    fn on_stored(&self, instance: &StoredInstance) -> u16 {
        let _ = instance;
        status::SUCCESS
    }
    /// N-CREATE (e.g. MPPS in progress, PS3.4 F.7.2.1). Default: no such SOP class.
    fn n_create(&self, req: &NRequest<'_>) -> NResponse {
        let _ = req;
        NResponse::status(status::NO_SUCH_SOP_CLASS)
    }
    /// N-SET (e.g. MPPS completed/discontinued, PS3.4 F.7.2.2). Default: no such SOP class.
    fn n_set(&self, req: &NRequest<'_>) -> NResponse {
        let _ = req;
        NResponse::status(status::NO_SUCH_SOP_CLASS)
    }
    /// N-ACTION (e.g. Storage Commitment Request, PS3.4 J.3.2). Default: no such SOP class.
    fn n_action(&self, req: &NRequest<'_>, action_type_id: Option<u16>) -> NResponse {
        let _ = (req, action_type_id);
        NResponse::status(status::NO_SUCH_SOP_CLASS)
    }
    /// C-FIND (PS3.4 C.4.1, K.4.1): call `emit` with each match's identifier, encoded in
    /// `req.transfer_syntax`, as it is found; `emit` returns false once the peer cancelled,
    /// and the answer is then [`QueryOutcome::cancelled`]. Default: SOP class not supported.
    fn find(&self, req: &QueryRequest, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> QueryFinal {
        let _ = (req, emit);
        QueryFinal::status(status::SOP_CLASS_NOT_SUPPORTED)
    }
    /// C-MOVE/C-GET (PS3.4 C.4.2, C.4.3): the instances `req.identifier` selects, with their
    /// Part 10 files; the transport adapter sends them (C-STORE sub-operations on this
    /// association for C-GET, on its own association to the Move Destination for C-MOVE)
    /// and makes the pending and final responses. `Err` is the final response for a request
    /// refused outright (0xA900/0xC000 for an identifier that does not parse, 0xA701, …).
    /// Default: SOP class not supported.
    #[cfg(feature = "retrieve")]
    fn retrieve(&self, req: &QueryRequest) -> Result<Vec<RetrieveInstance>, QueryFinal> {
        let _ = req;
        Err(QueryFinal::status(status::SOP_CLASS_NOT_SUPPORTED))
    }
    /// Storage Commitment Push Model (PS3.4 J.3.2): which of the referenced instances this
    /// application has committed to keep. Called after the N-ACTION-RSP went out (the
    /// service is offered by accepting its SOP class in the policy); the result is sent as
    /// N-EVENT-REPORT on the request's association while it is open, else on a new one
    /// (PS3.4 J.3.3). `None` (the default): every reference fails 0x0110.
    #[cfg(feature = "retrieve")]
    fn commitment(&self, calling_ae: &str, req: &CommitmentRequest) -> Option<CommitmentResult> {
        let _ = (calling_ae, req);
        None
    }
}

/// A handler that accepts every stored instance and knows no other service.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOnly;
impl Handler for StoreOnly {}

/// Helpers for final query statuses.
#[derive(Debug, Clone, Copy)]
pub struct QueryOutcome;

impl QueryOutcome {
    /// The final response of a cancelled query (PS3.4 C.4.1.1.4: 0xFE00).
    pub fn cancelled() -> QueryFinal {
        QueryFinal::status(status::CANCEL)
    }
}

/// Commits a received instance and asks the handler for the C-STORE status (blocking: the
/// sink's fsync and the handler run here). Returns what [`ScpSession::answer_store`] takes.
pub fn store_with(
    handler: &dyn Handler,
    commit: StoreCommit,
) -> (RequestId, u16, Option<StoredInstance>) {
    let id = commit.id();
    match commit.commit() {
        Ok(inst) => {
            let st = handler.on_stored(&inst);
            (id, st, Some(inst))
        }
        // PS3.4 B.2.3: a storage failure → 0xA700 (out of resources).
        Err(_) => (id, status::OUT_OF_RESOURCES, None),
    }
}

/// Answers an N-CREATE/N-SET/N-ACTION with the handler (blocking). A Storage Commitment
/// request (PS3.4 J.3.2.1: N-ACTION, Action Type 1, on a context the application accepted)
/// is answered here, success when its data set decodes, and returned: the result is made
/// afterwards ([`commitment_result`]) and reported with N-EVENT-REPORT (PS3.4 J.3.3).
#[cfg(feature = "retrieve")]
pub fn n_answer(handler: &dyn Handler, op: &NOperation) -> (NResponse, Option<CommitmentRequest>) {
    use super::commitment::ACTION_REQUEST_COMMITMENT;
    use crate::assoc::policy::sop;
    if op.field != field::N_ACTION_RQ || op.sop_class_uid != sop::STORAGE_COMMITMENT_PUSH {
        return (n_with(handler, op), None);
    }
    // PS3.4 J.3.2.1: only Action Type 1 exists (0x0123: no such action type).
    if op.action_type_id != Some(ACTION_REQUEST_COMMITMENT) {
        return (NResponse::status(0x0123), None);
    }
    match CommitmentRequest::decode(&op.dataset, &op.transfer_syntax) {
        Ok(req) => (
            NResponse {
                status: status::SUCCESS,
                sop_instance_uid: op.sop_instance_uid.clone(),
                ..NResponse::default()
            },
            Some(req),
        ),
        // PS3.7 C.4: the data set does not parse → processing failure with a comment.
        Err(e) => (
            NResponse {
                status: status::PROCESSING_FAILURE,
                error_comment: Some(e.to_string()),
                ..NResponse::default()
            },
            None,
        ),
    }
}

/// The result of an accepted Storage Commitment request: the handler's
/// ([`Handler::commitment`], may block), or every reference failed with 0x0110 (processing
/// failure, PS3.4 J.3.3.1.1.2) when the handler offers none.
#[cfg(feature = "retrieve")]
pub fn commitment_result(
    handler: &dyn Handler,
    calling_ae: &str,
    req: &CommitmentRequest,
) -> CommitmentResult {
    use super::commitment::reason;
    handler
        .commitment(calling_ae, req)
        .unwrap_or_else(|| CommitmentResult {
            transaction_uid: req.transaction_uid.clone(),
            committed: Vec::new(),
            failed: req
                .references
                .iter()
                .map(|r| (r.clone(), reason::PROCESSING_FAILURE))
                .collect(),
        })
}

/// Sends a Storage Commitment result as N-EVENT-REPORT-RQ on the association the request
/// came on (PS3.4 J.3.3: Event Type 1 or 2, encoded in the context's transfer syntax).
#[cfg(feature = "retrieve")]
pub fn send_commitment_report(
    session: &mut ScpSession,
    result: &CommitmentResult,
) -> Result<u16, super::SendError> {
    use crate::assoc::policy::sop;
    let ts = session
        .transfer_syntax_for(sop::STORAGE_COMMITMENT_PUSH)
        .ok_or(super::SendError::Closed)?
        .to_string();
    let ds = result
        .encode(&ts)
        .map_err(|_| super::SendError::NoContext {
            sop_class: sop::STORAGE_COMMITMENT_PUSH.into(),
            transfer_syntax: ts,
        })?;
    session.send_event_report(
        sop::STORAGE_COMMITMENT_PUSH,
        sop::STORAGE_COMMITMENT_PUSH_INSTANCE,
        result.event_type_id(),
        &bytes::Bytes::from(ds),
    )
}

/// Answers an N-CREATE/N-SET/N-ACTION with the handler (blocking).
pub fn n_with(handler: &dyn Handler, op: &NOperation) -> NResponse {
    let req = op.as_request();
    match op.field {
        field::N_CREATE_RQ => handler.n_create(&req),
        field::N_SET_RQ => handler.n_set(&req),
        field::N_ACTION_RQ => handler.n_action(&req, op.action_type_id),
        _ => NResponse::status(status::UNRECOGNIZED_OPERATION),
    }
}

/// Answers every event of `session` with `handler`, synchronously, until the session has
/// nothing left to ask (queries run to their end; a C-MOVE/C-GET is answered 0x0122 since
/// retrieval needs a transport: see `net::Server`).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use xenrad_dimse::scp::{ScpConfig, ScpSession, StoreOnly, answer_with};
/// use xenrad_dimse::store::MemorySink;
/// let cfg = Arc::new(ScpConfig::with_sink(Arc::new(MemorySink::new(1 << 20, 1 << 24))));
/// let now = Instant::now();
/// let mut session = ScpSession::new(cfg, now);
/// session.handle_input(b"", now); // bytes from the peer go here
/// answer_with(&mut session, &StoreOnly, now);
/// assert!(!session.is_waiting());
/// ```
pub fn answer_with(session: &mut ScpSession, handler: &dyn Handler, now: Instant) {
    while let Some(ev) = session.poll_event() {
        match ev {
            ScpEvent::Store(c) => {
                let (id, st, inst) = store_with(handler, c);
                session.answer_store(id, st, inst, now);
            }
            #[cfg(feature = "retrieve")]
            ScpEvent::N(op) => {
                let (resp, req) = n_answer(handler, &op);
                session.answer_n(op.id, resp, now);
                if let Some(req) = req {
                    let r = commitment_result(handler, &op.calling_ae, &req);
                    // Same association (PS3.4 J.3.3); a closed one loses the report here
                    // (the tokio adapter opens a new association instead).
                    let _ = send_commitment_report(session, &r);
                }
            }
            #[cfg(not(feature = "retrieve"))]
            ScpEvent::N(op) => {
                let resp = n_with(handler, &op);
                session.answer_n(op.id, resp, now);
            }
            ScpEvent::Query(q) => {
                let fin = match q.kind {
                    QueryKind::Find => {
                        let fin = handler.find(&q, &mut |m| session.query_match(q.id, &m));
                        if session.is_cancelled(q.id) {
                            QueryOutcome::cancelled()
                        } else {
                            fin
                        }
                    }
                    QueryKind::Move | QueryKind::Get => {
                        QueryFinal::status(status::SOP_CLASS_NOT_SUPPORTED)
                    }
                };
                session.query_done(q.id, fin, now);
            }
            ScpEvent::Cancel(_) | ScpEvent::Response(_) => {}
        }
    }
}
