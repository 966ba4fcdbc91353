//! The service-class provider for one association: C-ECHO, streaming C-STORE, N-CREATE and
//! N-SET plumbing, on top of [`Association`] and [`Assembler`].
//!
//! This is transport-free: bytes and time in, bytes out. Storage goes through the
//! configured [`StorageSink`] (the file adapter [`crate::store::FileSink`] is behind feature
//! `fs`; the tokio adapter runs the session on a blocking-capable thread when the sink says
//! it may block). The first bytes of every data set are scanned in place
//! ([`crate::store::peek_header`], at most 64 KiB kept) for the header facts handed to the
//! [`Handler`] in [`StoredInstance::header`]. What happens after an instance is durably
//! stored, and the N-CREATE/N-SET semantics, are the caller's [`Handler`].

use crate::assoc::policy::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, sop};
use crate::assoc::{AcceptorPolicy, Association, Event, Negotiated, Timeouts};
use crate::dimse::{Assembler, Command, DimseEvent, field, status};
use crate::store::{
    FileMeta, InstanceHeader, InstanceSink, InstanceStart, PeekOutcome, StorageSink, peek_header,
};
use bytes::{Bytes, BytesMut};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// An instance that is durably stored, passed to [`Handler::on_stored`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInstance {
    /// Affected SOP Class UID of the C-STORE.
    pub sop_class_uid: String,
    /// Affected SOP Instance UID of the C-STORE (equal to the data set's).
    pub sop_instance_uid: String,
    /// (0020,000D) peeked from the data set, when it was found.
    pub study_instance_uid: Option<String>,
    /// Header facts scanned from the first bytes of the data set (SOP, study, series,
    /// patient, …, everything up to (0020,0013)); `None` when the transfer syntax is not
    /// scanned (deflated). Facts beyond the first 64 KiB of the data set are missing.
    pub header: Option<InstanceHeader>,
    /// Negotiated transfer syntax (the stored file's).
    pub transfer_syntax: String,
    /// Where the sink put it: the Part 10 file's final path for the file sink.
    pub path: PathBuf,
    /// Calling AE title of the association.
    pub calling_ae: String,
    /// Data set bytes received.
    pub dataset_len: u64,
}

/// An N-CREATE or N-SET request, passed to the [`Handler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NRequest<'a> {
    /// Calling AE title of the association.
    pub calling_ae: &'a str,
    /// Affected (N-CREATE) or Requested (N-SET) SOP Class UID.
    pub sop_class_uid: &'a str,
    /// Affected (N-CREATE, may be absent) or Requested (N-SET) SOP Instance UID.
    pub sop_instance_uid: Option<&'a str>,
    /// Transfer syntax of `dataset`.
    pub transfer_syntax: &'a str,
    /// The encoded data set (empty when none was sent).
    pub dataset: &'a [u8],
}

/// Optional failure detail of a response command.
#[derive(Debug, Clone, Copy, Default)]
struct ErrorFields<'a> {
    id: Option<u16>,
    comment: Option<&'a str>,
}

/// The answer to an N-CREATE or N-SET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NResponse {
    /// DIMSE status.
    pub status: u16,
    /// Affected SOP Instance UID to return (N-CREATE when the SCP assigned it).
    pub sop_instance_uid: Option<String>,
    /// Response data set, encoded in the request's transfer syntax.
    pub dataset: Option<Vec<u8>>,
    /// Error ID (0000,0903) for a failure status (PS3.7 C.4), e.g. 0xA710.
    pub error_id: Option<u16>,
    /// Error Comment (0000,0902), at most 64 characters (PS3.7 C.4).
    pub error_comment: Option<String>,
}

impl NResponse {
    /// A response with only a status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }
}

/// What the embedding application does with DIMSE operations.
///
/// The methods are synchronous and run on the association's task (inside
/// `tokio::task::block_in_place` when the sink may block, e.g. fsync on): keep them short,
/// e.g. record the event or send it on a channel, and do slow work elsewhere.
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
}

/// A handler that accepts every stored instance and knows no N-* SOP class.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOnly;
impl Handler for StoreOnly {}

/// Configuration of the SCP.
#[derive(Clone)]
pub struct ScpConfig {
    /// Negotiation policy (AE title, SOP classes, transfer syntaxes, max PDU).
    pub policy: Arc<AcceptorPolicy>,
    /// Where instances go (durability is the sink's: a C-STORE is acknowledged only after
    /// its commit returned).
    pub sink: Arc<dyn StorageSink>,
    /// Timers.
    pub timeouts: Timeouts,
    /// Largest N-CREATE/N-SET data set accepted in memory.
    pub max_n_dataset: usize,
    /// Largest command set.
    pub max_command: usize,
    /// Concurrent associations (used by transport adapters).
    pub max_associations: usize,
}

impl ScpConfig {
    /// Defaults for a storage directory (feature `fs`): a durable [`crate::store::FileSink`]
    /// into `storage_dir`, and the defaults of [`ScpConfig::with_sink`].
    #[cfg(feature = "fs")]
    pub fn new(storage_dir: impl Into<PathBuf>) -> Self {
        Self::with_sink(Arc::new(crate::store::FileSink::new(storage_dir)))
    }

    /// Defaults for a sink: AE `XENRAD`, all storage SOP classes, MPPS, 128 KiB PDUs, 64
    /// associations.
    pub fn with_sink(sink: Arc<dyn StorageSink>) -> Self {
        Self {
            policy: Arc::new(AcceptorPolicy::default()),
            sink,
            timeouts: Timeouts::default(),
            max_n_dataset: 16 << 20,
            max_command: 64 << 10,
            max_associations: 64,
        }
    }
}

impl std::fmt::Debug for ScpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScpConfig")
            .field("policy", &self.policy)
            .field("timeouts", &self.timeouts)
            .field("max_n_dataset", &self.max_n_dataset)
            .field("max_command", &self.max_command)
            .field("max_associations", &self.max_associations)
            .finish_non_exhaustive()
    }
}

/// Bytes of the data set start kept for the header peek when the first fragment is not
/// enough.
const PEEK_LIMIT: usize = 64 * 1024;

/// What the peek at the data set start found.
#[derive(Debug, Clone)]
enum Peeked {
    Found(Box<InstanceHeader>),
    Unsupported,
    Invalid,
}

/// The header peek of one C-STORE data set: in place on the first fragment, or over at
/// most [`PEEK_LIMIT`] bytes kept from the first fragments.
#[derive(Debug, Default)]
struct HeaderPeek {
    buf: Vec<u8>,
    result: Option<Peeked>,
    len: u64,
}

impl HeaderPeek {
    fn conclude(&mut self, o: &PeekOutcome<'_>, final_: bool) {
        self.result = match o {
            PeekOutcome::Done(h) => Some(Peeked::Found(Box::new(InstanceHeader::from_peeked(h)))),
            PeekOutcome::NeedMore(h) if final_ => {
                // Too far in without reaching (0020,0013): keep what was found.
                Some(Peeked::Found(Box::new(InstanceHeader::from_peeked(h))))
            }
            PeekOutcome::NeedMore(_) => None,
            PeekOutcome::Unsupported => Some(Peeked::Unsupported),
            PeekOutcome::Invalid(_) => Some(Peeked::Invalid),
        };
    }

    fn feed(&mut self, data: &[u8], ts: &str) {
        self.len += data.len() as u64;
        if self.result.is_some() {
            return;
        }
        if self.buf.is_empty() {
            let o = peek_header(data, ts, false);
            self.conclude(&o, data.len() >= PEEK_LIMIT);
            if self.result.is_none() {
                self.buf.extend_from_slice(data);
            }
        } else {
            let room = PEEK_LIMIT.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&data[..data.len().min(room)]);
            let buf = std::mem::take(&mut self.buf);
            let o = peek_header(&buf, ts, false);
            self.conclude(&o, buf.len() >= PEEK_LIMIT);
            self.buf = buf;
        }
        if self.result.is_some() {
            self.buf = Vec::new();
        }
    }

    fn finish(&mut self, ts: &str) -> Peeked {
        if self.result.is_none() {
            let buf = std::mem::take(&mut self.buf);
            let o = peek_header(&buf, ts, true);
            self.conclude(&o, true);
        }
        self.result.take().unwrap_or(Peeked::Unsupported)
    }
}

/// A message that was answered, for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completed {
    /// C-ECHO answered.
    Echo,
    /// C-STORE answered with this status (and the stored instance on success).
    Store {
        /// Status sent.
        status: u16,
        /// Affected SOP Instance UID.
        sop_instance_uid: String,
        /// The stored instance, if storage succeeded.
        stored: Option<Box<StoredInstance>>,
    },
    /// N-CREATE/N-SET answered.
    N {
        /// Command field of the request.
        field: u16,
        /// Status sent.
        status: u16,
    },
    /// An association-level event (established, released, aborted) described.
    Association(String),
}

struct RqInfo {
    pc_id: u8,
    field: u16,
    message_id: Option<u16>,
    sop_class: String,
    sop_instance: Option<String>,
}

enum Pending {
    Idle,
    /// C-STORE receiving into the sink (None after a failure: drain and answer `status`).
    Store {
        rq: RqInfo,
        sink: Option<Box<dyn InstanceSink>>,
        status: u16,
        ts: String,
        peek: HeaderPeek,
    },
    /// N-CREATE/N-SET collecting its data set.
    N {
        rq: RqInfo,
        buf: BytesMut,
        ts: String,
        too_big: bool,
    },
    /// Another request with a data set: drain and answer with `status`.
    Drain {
        rq: RqInfo,
        status: u16,
    },
}

/// One association served by the SCP; see the module documentation.
pub struct ScpSession {
    assoc: Association,
    asm: Assembler,
    cfg: Arc<ScpConfig>,
    handler: Arc<dyn Handler>,
    neg: Option<Negotiated>,
    pending: Pending,
    completed: Vec<Completed>,
    /// Leave commits to [`ScpSession::commit_ready`] (see [`ScpSession::set_defer_commits`]).
    defer_commits: bool,
    /// A C-STORE whose data set is complete, waiting for its commit.
    ready: Option<ReadyStore>,
}

/// A received C-STORE waiting for the sink's commit (deferred commits).
struct ReadyStore {
    rq: RqInfo,
    sink: Option<Box<dyn InstanceSink>>,
    status: u16,
    ts: String,
    peeked: Peeked,
    len: u64,
}

impl std::fmt::Debug for ScpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScpSession")
            .field("state", &self.assoc.state())
            .finish_non_exhaustive()
    }
}

impl ScpSession {
    /// A session for a freshly accepted connection.
    pub fn new(cfg: Arc<ScpConfig>, handler: Arc<dyn Handler>, now: Instant) -> Self {
        Self {
            assoc: Association::acceptor(cfg.policy.clone(), cfg.timeouts, now),
            asm: Assembler::new(cfg.max_command),
            cfg,
            handler,
            neg: None,
            pending: Pending::Idle,
            completed: Vec::new(),
            defer_commits: false,
            ready: None,
        }
    }

    /// With `true`, processing stops when a C-STORE's data set is complete, before the
    /// sink's commit (which may block for an fsync): [`ScpSession::has_ready_commit`] then
    /// says so and [`ScpSession::commit_ready`] commits, answers and goes on processing. A
    /// transport adapter thus runs only the commit off its async workers, while the
    /// streaming writes (page cache) stay inline. Default `false`: commits run inside
    /// `process`.
    pub fn set_defer_commits(&mut self, defer: bool) {
        self.defer_commits = defer;
    }

    /// True when a complete C-STORE waits for [`ScpSession::commit_ready`].
    pub fn has_ready_commit(&self) -> bool {
        self.ready.is_some()
    }

    /// Commits the waiting C-STORE (the sink's `commit`: may block), queues its response,
    /// and processes what was received after it (stopping at the next complete C-STORE).
    pub fn commit_ready(&mut self, now: Instant) {
        if let Some(r) = self.ready.take() {
            self.finish_store(&r.rq, r.sink, r.status, &r.ts, r.peeked, r.len);
        }
        self.drain_events(now);
    }

    /// The underlying association (state, timers, receive buffer).
    pub fn association(&mut self) -> &mut Association {
        &mut self.assoc
    }

    /// Feeds received bytes.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        self.assoc.buffer_mut().extend_from_slice(data);
        self.process(now);
    }

    /// Processes bytes already placed in [`Association::buffer_mut`].
    pub fn process(&mut self, now: Instant) {
        self.assoc.process(now);
        self.drain_events(now);
    }

    /// Fires timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.assoc.handle_timeout(now);
        self.drain_events(now);
    }

    /// The transport closed.
    pub fn handle_transport_closed(&mut self, now: Instant) {
        // A C-STORE waiting for its commit can no longer be answered: not stored.
        if let Some(ReadyStore { sink: Some(w), .. }) = self.ready.take() {
            w.abort();
        }
        self.assoc.handle_transport_closed();
        self.drain_events(now);
    }

    /// Chunks to send, in order.
    pub fn poll_transmit(&mut self, out: &mut Vec<Bytes>) {
        self.assoc.poll_transmit(out);
    }

    /// Messages answered since the last call.
    pub fn take_completed(&mut self) -> Vec<Completed> {
        std::mem::take(&mut self.completed)
    }

    /// True when the transport should be closed.
    pub fn is_closed(&self) -> bool {
        self.assoc.is_closed()
    }

    fn drain_events(&mut self, now: Instant) {
        // A deferred commit must answer before anything received after it is processed.
        while self.ready.is_none()
            && let Some(ev) = self.assoc.poll_event()
        {
            match ev {
                Event::Data(pdv) => match self.asm.push(pdv) {
                    Ok(Some(m)) => self.on_message(m, now),
                    Ok(None) => {}
                    Err(e) => self.fail(&e.to_string(), now),
                },
                Event::Established(n) => {
                    self.completed.push(Completed::Association(format!(
                        "association from {} accepted, {} context(s), peer max PDU {}",
                        n.calling_ae,
                        n.contexts.len(),
                        n.peer_max_pdu
                    )));
                    self.neg = Some(*n);
                }
                Event::Closed => self.reset_pending(),
                other => self
                    .completed
                    .push(Completed::Association(format!("{other:?}"))),
            }
        }
    }

    fn reset_pending(&mut self) {
        if let Some(ReadyStore { sink: Some(w), .. }) = self.ready.take() {
            w.abort();
        }
        if let Pending::Store { sink: Some(w), .. } =
            std::mem::replace(&mut self.pending, Pending::Idle)
        {
            w.abort();
        }
    }

    fn fail(&mut self, detail: &str, now: Instant) {
        self.completed
            .push(Completed::Association(format!("aborting: {detail}")));
        self.reset_pending();
        self.assoc.abort(now);
    }

    fn on_message(&mut self, m: DimseEvent, now: Instant) {
        match m {
            DimseEvent::Command { pc_id, bytes } => {
                if !matches!(self.pending, Pending::Idle) {
                    return self.fail("command while a data set was expected", now);
                }
                let cmd = match Command::decode(&bytes) {
                    Ok(c) => c,
                    Err(e) => return self.fail(&e.to_string(), now),
                };
                self.on_command(pc_id, &cmd, now);
            }
            DimseEvent::Data { pc_id, data, last } => self.on_data(pc_id, &data, last, now),
        }
    }

    fn context(&self, pc_id: u8) -> Option<(&str, &str)> {
        let c = self.neg.as_ref()?.context(pc_id)?;
        Some((c.abstract_syntax.as_str(), c.transfer_syntax.as_str()))
    }

    fn on_command(&mut self, pc_id: u8, cmd: &Command<'_>, now: Instant) {
        let Some((abs, ts)) = self.context(pc_id) else {
            return self.fail(
                "command on a presentation context that was not accepted",
                now,
            );
        };
        let (abs, ts) = (abs.to_string(), ts.to_string());
        let rq = RqInfo {
            pc_id,
            field: cmd.field,
            message_id: cmd.message_id,
            sop_class: cmd
                .affected_sop_class
                .or(cmd.requested_sop_class)
                .unwrap_or("")
                .to_string(),
            sop_instance: cmd
                .affected_sop_instance
                .or(cmd.requested_sop_instance)
                .map(str::to_string),
        };
        match cmd.field {
            field::C_ECHO_RQ => {
                // PS3.7 §9.3.5: the response carries the request's Message ID.
                let st = if abs == sop::VERIFICATION {
                    status::SUCCESS
                } else {
                    status::SOP_CLASS_NOT_SUPPORTED
                };
                self.respond(&rq, st, None);
                self.completed.push(Completed::Echo);
            }
            field::C_STORE_RQ if cmd.has_dataset => {
                // PS3.4 B.2.3: the SOP class must match the negotiated context.
                let (sink, st) = match (&rq.sop_instance, rq.sop_class == abs) {
                    (Some(inst), true) => {
                        let start = InstanceStart {
                            meta: FileMeta {
                                sop_class_uid: &rq.sop_class,
                                sop_instance_uid: inst,
                                transfer_syntax: &ts,
                                implementation_class_uid: IMPLEMENTATION_CLASS_UID,
                                implementation_version_name: IMPLEMENTATION_VERSION_NAME,
                                source_ae: self.neg.as_ref().map(|n| n.calling_ae.as_str()),
                            },
                            message_id: rq.message_id,
                        };
                        // PS3.4 B.2.3: a storage failure → 0xA700 (out of resources).
                        match self.cfg.sink.begin(&start) {
                            Ok(w) => (Some(w), status::SUCCESS),
                            Err(_) => (None, status::OUT_OF_RESOURCES),
                        }
                    }
                    (None, _) => (None, status::CANNOT_UNDERSTAND),
                    (_, false) => (None, status::SOP_CLASS_NOT_SUPPORTED),
                };
                self.pending = Pending::Store {
                    rq,
                    sink,
                    status: st,
                    ts,
                    peek: HeaderPeek::default(),
                };
            }
            field::N_CREATE_RQ | field::N_SET_RQ if cmd.has_dataset => {
                self.pending = Pending::N {
                    rq,
                    buf: BytesMut::new(),
                    ts,
                    too_big: false,
                };
            }
            field::N_CREATE_RQ | field::N_SET_RQ => self.answer_n(&rq, &ts, &[]),
            _ if cmd.is_request() => {
                if cmd.has_dataset {
                    self.pending = Pending::Drain {
                        rq,
                        status: status::UNRECOGNIZED_OPERATION,
                    };
                } else {
                    self.respond(&rq, status::UNRECOGNIZED_OPERATION, None);
                }
            }
            _ => {} // a response we did not ask for: ignored
        }
    }

    fn on_data(&mut self, pc_id: u8, data: &[u8], last: bool, now: Instant) {
        let pc = match &self.pending {
            Pending::Idle => return self.fail("data set without a command", now),
            Pending::Store { rq, .. } | Pending::N { rq, .. } | Pending::Drain { rq, .. } => {
                rq.pc_id
            }
        };
        if pc != pc_id {
            return self.fail("data set on another presentation context", now);
        }
        match &mut self.pending {
            Pending::Store {
                sink,
                status: st,
                ts,
                peek,
                ..
            } => {
                if let Some(w) = sink {
                    peek.feed(data, ts);
                    if w.write(data).is_err() {
                        // PS3.4 B.2.3: storage failure → out of resources, keep draining.
                        if let Some(w) = sink.take() {
                            w.abort();
                        }
                        *st = status::OUT_OF_RESOURCES;
                    }
                }
            }
            Pending::N { buf, too_big, .. } => {
                if buf.len() + data.len() > self.cfg.max_n_dataset {
                    *too_big = true;
                } else if !*too_big {
                    buf.extend_from_slice(data);
                }
            }
            Pending::Drain { .. } | Pending::Idle => {}
        }
        if last {
            match std::mem::replace(&mut self.pending, Pending::Idle) {
                Pending::Store {
                    rq,
                    sink,
                    status: st,
                    ts,
                    mut peek,
                } => {
                    let peeked = peek.finish(&ts);
                    if self.defer_commits && sink.is_some() {
                        self.ready = Some(ReadyStore {
                            rq,
                            sink,
                            status: st,
                            ts,
                            peeked,
                            len: peek.len,
                        });
                    } else {
                        self.finish_store(&rq, sink, st, &ts, peeked, peek.len);
                    }
                }
                Pending::N {
                    rq,
                    buf,
                    ts,
                    too_big,
                } => {
                    if too_big {
                        self.respond(&rq, status::PROCESSING_FAILURE, None);
                    } else {
                        self.answer_n(&rq, &ts, &buf);
                    }
                }
                Pending::Drain { rq, status: st } => self.respond(&rq, st, None),
                Pending::Idle => {}
            }
        }
    }

    fn finish_store(
        &mut self,
        rq: &RqInfo,
        sink: Option<Box<dyn InstanceSink>>,
        st: u16,
        ts: &str,
        peeked: Peeked,
        len: u64,
    ) {
        let inst = rq.sop_instance.clone().unwrap_or_default();
        let mut stored = None;
        let st = match sink {
            None => st,
            Some(w) => {
                let header = match peeked {
                    Peeked::Found(h) => Some(*h),
                    Peeked::Unsupported => None,
                    Peeked::Invalid => {
                        // PS3.4 B.2.3: a data set that cannot be parsed → 0xC000.
                        w.abort();
                        return self.store_answered(rq, status::CANNOT_UNDERSTAND, inst, None);
                    }
                };
                if len == 0 {
                    w.abort();
                    return self.store_answered(rq, status::CANNOT_UNDERSTAND, inst, None);
                }
                if header
                    .as_ref()
                    .and_then(|h| h.sop_instance_uid.as_deref())
                    .is_some_and(|d| d != inst)
                {
                    w.abort();
                    return self.store_answered(rq, status::DATASET_MISMATCH, inst, None);
                }
                // Never acknowledged before the sink says the instance is durable.
                match w.commit() {
                    Ok(path) => {
                        let si = StoredInstance {
                            sop_class_uid: rq.sop_class.clone(),
                            sop_instance_uid: inst.clone(),
                            study_instance_uid: header
                                .as_ref()
                                .and_then(|h| h.study_instance_uid.clone()),
                            header,
                            transfer_syntax: ts.to_string(),
                            path,
                            calling_ae: self
                                .neg
                                .as_ref()
                                .map(|n| n.calling_ae.clone())
                                .unwrap_or_default(),
                            dataset_len: len,
                        };
                        let s = self.handler.on_stored(&si);
                        stored = Some(Box::new(si));
                        s
                    }
                    Err(_) => status::OUT_OF_RESOURCES,
                }
            }
        };
        self.store_answered(rq, st, inst, stored);
    }

    fn store_answered(
        &mut self,
        rq: &RqInfo,
        st: u16,
        inst: String,
        stored: Option<Box<StoredInstance>>,
    ) {
        self.respond(rq, st, None);
        self.completed.push(Completed::Store {
            status: st,
            sop_instance_uid: inst,
            stored,
        });
    }

    fn answer_n(&mut self, rq: &RqInfo, ts: &str, dataset: &[u8]) {
        let calling = self
            .neg
            .as_ref()
            .map(|n| n.calling_ae.clone())
            .unwrap_or_default();
        let req = NRequest {
            calling_ae: &calling,
            sop_class_uid: &rq.sop_class,
            sop_instance_uid: rq.sop_instance.as_deref(),
            transfer_syntax: ts,
            dataset,
        };
        let resp = if rq.field == field::N_CREATE_RQ {
            self.handler.n_create(&req)
        } else {
            self.handler.n_set(&req)
        };
        let mut rq2 = RqInfo {
            pc_id: rq.pc_id,
            field: rq.field,
            message_id: rq.message_id,
            sop_class: rq.sop_class.clone(),
            sop_instance: rq.sop_instance.clone(),
        };
        if let Some(i) = resp.sop_instance_uid {
            rq2.sop_instance = Some(i);
        }
        let error = ErrorFields {
            id: resp.error_id,
            comment: resp.error_comment.as_deref(),
        };
        self.respond_with(&rq2, resp.status, resp.dataset.map(Bytes::from), &error);
        self.completed.push(Completed::N {
            field: rq.field,
            status: resp.status,
        });
    }

    fn respond(&mut self, rq: &RqInfo, st: u16, dataset: Option<Bytes>) {
        self.respond_with(rq, st, dataset, &ErrorFields::default());
    }

    fn respond_with(
        &mut self,
        rq: &RqInfo,
        st: u16,
        dataset: Option<Bytes>,
        error: &ErrorFields<'_>,
    ) {
        // PS3.7 C.4: Error Comment is LO (64 characters at most).
        let comment = error.comment.map(|c| match c.char_indices().nth(64) {
            Some((i, _)) => &c[..i],
            None => c,
        });
        let rsp = Command {
            error_id: error.id,
            error_comment: comment,
            field: rq.field | 0x8000,
            responded_to: rq.message_id,
            affected_sop_class: Some(rq.sop_class.as_str()).filter(|s| !s.is_empty()),
            affected_sop_instance: rq.sop_instance.as_deref(),
            status: Some(st),
            has_dataset: dataset.is_some(),
            ..Command::default()
        };
        // PS3.8 annex E: command and data set go in separate PDVs.
        let enc = Bytes::from(rsp.encode());
        self.assoc.send_pdata(rq.pc_id, true, &enc);
        if let Some(ds) = dataset {
            self.assoc.send_pdata(rq.pc_id, false, &ds);
        }
    }
}
