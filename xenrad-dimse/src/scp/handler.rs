//! The callback form of the application: a [`Handler`] answers the session's events, and
//! [`answer_with`] drives one session with it synchronously (the tokio adapter does the same
//! off its async workers).

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
            ScpEvent::Cancel(_) => {}
        }
    }
}
