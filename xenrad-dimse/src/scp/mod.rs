//! The service-class provider for one association, on top of [`Association`] and
//! [`Assembler`]: C-ECHO is answered by the session itself; everything that needs the
//! application (a C-STORE's commit, N-CREATE/N-SET/N-ACTION, C-FIND/C-MOVE/C-GET) becomes an
//! [`ScpEvent`] that the application answers later with a command
//! ([`ScpSession::answer_store`], [`ScpSession::answer_n`], [`ScpSession::query_match`],
//! [`ScpSession::query_done`]), in the manner of quinn-proto.
//!
//! This is transport-free: bytes and time in, bytes and events out. No application code and
//! no commit runs inside [`ScpSession::process`]: instance bytes stream into the configured
//! [`StorageSink`] as they arrive (page-cache writes), and the commit that makes them durable
//! (fsync) is the application's, through [`StoreCommit::commit`], wherever it likes (the
//! tokio adapter runs it on the blocking pool, so a slow disk never stalls another
//! association). The first bytes of every data set are scanned in place
//! ([`crate::store::peek_header`], at most 64 KiB kept) for the header facts in
//! [`StoredInstance::header`].
//!
//! While a C-STORE or N-* request waits for its answer, the session processes nothing
//! after it, so responses keep the order of the requests (PS3.7 §9.1: the default of one
//! outstanding operation). While a C-FIND/C-MOVE/C-GET streams its pending responses, the
//! session keeps reading only for the C-CANCEL-RQ of that request (PS3.7 §9.3.2.3) and for
//! responses to its own requests; any other request waits until the query is done.
//!
//! The session also sends requests of its own: the C-STORE sub-operations of a C-GET on this
//! association ([`ScpSession::sub_store_begin`], [`ScpSession::sub_store_data`]: the data set
//! in pieces as the application reads it, PS3.4 C.4.3.3.1) and the N-EVENT-REPORT of a Storage
//! Commitment ([`ScpSession::send_event_report`], PS3.4 J.3.3); their responses come back as
//! [`ScpEvent::Response`]. [`retrieve`] and [`commitment`] (feature `retrieve`) hold the
//! counting and the data sets.

#[cfg(feature = "retrieve")]
pub mod commitment;
mod complete;
mod handler;
#[cfg(feature = "retrieve")]
pub mod retrieve;
pub use handler::{Handler, QueryOutcome, StoreOnly, answer_with, n_with, store_with};
#[cfg(feature = "retrieve")]
pub use handler::{commitment_result, n_answer, send_commitment_report};

use crate::assoc::policy::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, sop};
use crate::assoc::{AcceptorPolicy, Association, Event, Negotiated, Timeouts};
use crate::dimse::{Assembler, Command, DimseEvent, field, status};
use crate::store::{
    FileMeta, InstanceHeader, InstanceSink, InstanceStart, PeekOutcome, StorageSink, peek_header,
};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// An instance received by C-STORE: staged in the sink while [`StoreCommit`] holds it,
/// durably stored once [`StoreCommit::commit`] returned it.
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
    /// Where the sink put it: the Part 10 file's final path for the file sink (empty until
    /// committed).
    pub path: PathBuf,
    /// Calling AE title of the association.
    pub calling_ae: String,
    /// Data set bytes received.
    pub dataset_len: u64,
    /// The first bytes of the data set as received (at most 64 KiB): with them a handler can
    /// read the header attributes (e.g. [`InstanceRecord::from_dataset_head`]) without
    /// reading the stored file again. Empty when none were kept.
    ///
    /// [`InstanceRecord::from_dataset_head`]: crate::query::InstanceRecord::from_dataset_head
    pub head: DatasetHead,
}

/// The first bytes of a received data set ([`StoredInstance::head`]); `Debug` shows only
/// their number.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DatasetHead(pub Vec<u8>);

impl std::fmt::Debug for DatasetHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatasetHead({} bytes)", self.0.len())
    }
}

/// An N-CREATE or N-SET request, as the [`Handler`] sees it.
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
    /// Concurrent associations from one IP address (used by transport adapters), so one
    /// flooding peer cannot take every slot of `max_associations`.
    pub max_associations_per_ip: usize,
}

impl ScpConfig {
    /// Defaults for a storage directory (feature `fs`): a durable [`crate::store::FileSink`]
    /// into `storage_dir`, and the defaults of [`ScpConfig::with_sink`].
    #[cfg(feature = "fs")]
    pub fn new(storage_dir: impl Into<PathBuf>) -> Self {
        Self::with_sink(Arc::new(crate::store::FileSink::new(storage_dir)))
    }

    /// Defaults for a sink: AE `XENRAD`, all storage SOP classes, MPPS, 128 KiB PDUs, 64
    /// associations (64 from one IP address).
    pub fn with_sink(sink: Arc<dyn StorageSink>) -> Self {
        Self {
            policy: Arc::new(AcceptorPolicy::default()),
            sink,
            timeouts: Timeouts::default(),
            max_n_dataset: 16 << 20,
            max_command: 64 << 10,
            max_associations: 64,
            max_associations_per_ip: 64,
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
    /// Not a data set in the negotiated transfer syntax (byte offset).
    Invalid(usize),
    /// Ends inside an element or with a sequence or item open (bytes received).
    Truncated(u64),
}

/// What was received of one C-STORE data set: the peek's result, its length and its first bytes.
#[derive(Debug)]
struct Received {
    peeked: Peeked,
    len: u64,
    head: DatasetHead,
}

/// The header peek of one C-STORE data set: in place on the first fragment, or over at
/// most [`PEEK_LIMIT`] bytes kept from the first fragments.
#[derive(Debug, Default)]
struct HeaderPeek {
    buf: Vec<u8>,
    result: Option<Peeked>,
    len: u64,
    /// The first [`PEEK_LIMIT`] bytes of the data set, handed to the handler.
    head: Vec<u8>,
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
            PeekOutcome::Invalid(at) => Some(Peeked::Invalid(*at)),
        };
    }

    fn feed(&mut self, data: &[u8], ts: &str) {
        self.len += data.len() as u64;
        let room = PEEK_LIMIT.saturating_sub(self.head.len());
        if room > 0 {
            self.head.extend_from_slice(&data[..data.len().min(room)]);
        }
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
    /// N-CREATE/N-SET/N-ACTION answered.
    N {
        /// Command field of the request.
        field: u16,
        /// Status sent.
        status: u16,
    },
    /// C-FIND/C-MOVE/C-GET finished with this final status.
    Query {
        /// Command field of the request.
        field: u16,
        /// Final status sent.
        status: u16,
        /// Pending responses sent before it.
        pending: u32,
    },
    /// An association-level event (established, released, aborted) described.
    Association(String),
    /// The association request was refused by the acceptor policy (calling or called AE
    /// title, peer host, user identity): who, from where and why, passcodes never kept.
    Refused(Box<crate::assoc::Refusal>),
}

/// Identifies one request of a session that waits for the application's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(u64);

/// What the session needs the application for; answer each with the matching command.
#[derive(Debug)]
pub enum ScpEvent {
    /// A C-STORE's data set is complete and checked, staged in the sink: commit it
    /// ([`StoreCommit::commit`], may block) or abort it, then answer with
    /// [`ScpSession::answer_store`].
    Store(StoreCommit),
    /// An N-CREATE, N-SET or N-ACTION request: answer with [`ScpSession::answer_n`].
    N(NOperation),
    /// A C-FIND, C-MOVE or C-GET request: send matches with [`ScpSession::query_match`]
    /// (C-FIND) or progress with [`ScpSession::query_progress`] (C-MOVE/C-GET), then the
    /// final response with [`ScpSession::query_done`].
    Query(QueryRequest),
    /// The peer sent C-CANCEL-RQ for this query (PS3.7 §9.3.2.3): stop producing matches or
    /// sub-operations and answer [`ScpSession::query_done`] with status 0xFE00.
    Cancel(RequestId),
    /// The peer answered a request this SCP sent on the association: the C-STORE-RSP of a
    /// C-GET sub-operation ([`ScpSession::sub_store_begin`]) or an N-EVENT-REPORT-RSP
    /// ([`ScpSession::send_event_report`]). Nothing to answer.
    Response(PeerResponse),
}

/// A response to a request the SCP sent (see [`ScpEvent::Response`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerResponse {
    /// Message ID of our request (the response's Message ID Being Responded To).
    pub message_id: u16,
    /// Command Field of the response ([`field::C_STORE_RSP`], …).
    pub field: u16,
    /// Status (0xFFFF when the response carried none).
    pub status: u16,
    /// Affected SOP Instance UID of the response.
    pub sop_instance_uid: Option<String>,
    /// Error Comment (0000,0902), if any.
    pub error_comment: Option<String>,
    /// The C-GET a C-STORE sub-operation belongs to.
    pub query: Option<RequestId>,
}

/// A C-STORE sub-operation of a C-GET (PS3.4 C.4.3.3.1): the instance to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubStore<'a> {
    /// SOP Class UID of the instance (Affected SOP Class UID of the C-STORE-RQ).
    pub sop_class_uid: &'a str,
    /// SOP Instance UID of the instance.
    pub sop_instance_uid: &'a str,
    /// Transfer syntax of the data set bytes the application will supply (the Part 10 file's):
    /// a presentation context with exactly this transfer syntax is required, so the bytes go
    /// out as they are stored, without re-encoding.
    pub transfer_syntax: &'a str,
}

/// A started C-STORE sub-operation (see [`ScpSession::sub_store_begin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubStoreStarted {
    /// Message ID of the C-STORE-RQ (its C-STORE-RSP names it).
    pub message_id: u16,
    /// Presentation context the data set goes on.
    pub pc_id: u8,
    /// Chunk size that fills one P-DATA-TF PDU of the peer's maximum length: supplying
    /// chunks of this size avoids short PDUs.
    pub chunk_size: usize,
}

/// Why a request of the SCP (sub-operation, event report) cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The id names no outstanding C-GET of this session.
    #[error("no outstanding C-GET with this request id")]
    NoSuchQuery,
    /// The previous C-STORE sub-operation has not been answered yet (one outstanding
    /// operation per direction, PS3.7 D.3.3.3 default).
    #[error("a C-STORE sub-operation is still in progress")]
    Busy,
    /// Data for a sub-operation that was not started (or already complete).
    #[error("no C-STORE sub-operation is being sent")]
    NotStarted,
    /// No accepted presentation context for the SOP class and transfer syntax in which the
    /// requestor took the SCP role (PS3.7 D.3.3.4, PS3.4 C.4.3.1).
    #[error("no presentation context for {sop_class} in {transfer_syntax} with the peer as SCP")]
    NoContext {
        /// SOP class asked for.
        sop_class: String,
        /// Transfer syntax asked for.
        transfer_syntax: String,
    },
    /// The association is not established any more.
    #[error("the association is closed")]
    Closed,
}

/// A received C-STORE instance waiting for its commit (see [`ScpEvent::Store`]).
pub struct StoreCommit {
    id: RequestId,
    instance: Box<StoredInstance>,
    writer: Box<dyn InstanceSink>,
}

impl std::fmt::Debug for StoreCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCommit")
            .field("id", &self.id)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl StoreCommit {
    /// The request this answers.
    pub fn id(&self) -> RequestId {
        self.id
    }
    /// What was received (its `path` is empty until committed).
    pub fn instance(&self) -> &StoredInstance {
        &self.instance
    }
    /// Makes the instance durable through the sink (may block: fsync), and returns it with
    /// its final path. On error nothing is stored; answer 0xA700 (PS3.4 B.2.3).
    pub fn commit(self) -> std::io::Result<StoredInstance> {
        let mut inst = *self.instance;
        inst.path = self.writer.commit()?;
        Ok(inst)
    }
    /// Discards the staged instance.
    pub fn abort(self) {
        self.writer.abort();
    }
}

/// An N-CREATE, N-SET or N-ACTION request (see [`ScpEvent::N`]), owned.
#[derive(Debug, Clone)]
pub struct NOperation {
    /// Answer with this.
    pub id: RequestId,
    /// Command Field of the request ([`field::N_CREATE_RQ`], …).
    pub field: u16,
    /// Calling AE title of the association.
    pub calling_ae: String,
    /// Affected (N-CREATE) or Requested (N-SET, N-ACTION) SOP Class UID.
    pub sop_class_uid: String,
    /// Affected or Requested SOP Instance UID.
    pub sop_instance_uid: Option<String>,
    /// Action Type ID (N-ACTION).
    pub action_type_id: Option<u16>,
    /// Transfer syntax of `dataset`.
    pub transfer_syntax: String,
    /// The encoded data set (empty when none was sent).
    pub dataset: Bytes,
}

impl NOperation {
    /// The borrowed view the [`Handler`] takes.
    pub fn as_request(&self) -> NRequest<'_> {
        NRequest {
            calling_ae: &self.calling_ae,
            sop_class_uid: &self.sop_class_uid,
            sop_instance_uid: self.sop_instance_uid.as_deref(),
            transfer_syntax: &self.transfer_syntax,
            dataset: &self.dataset,
        }
    }
}

/// Which query/retrieve service a [`QueryRequest`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// C-FIND (PS3.4 C.4.1, K.4.1).
    Find,
    /// C-MOVE to [`QueryRequest::move_destination`] (PS3.4 C.4.2).
    Move,
    /// C-GET: sub-operations on this association (PS3.4 C.4.3).
    Get,
}

/// A C-FIND, C-MOVE or C-GET request (see [`ScpEvent::Query`]), owned.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// Answer with this.
    pub id: RequestId,
    /// The service.
    pub kind: QueryKind,
    /// Calling AE title of the association.
    pub calling_ae: String,
    /// Affected SOP Class UID (the information model).
    pub sop_class_uid: String,
    /// Message ID of the request.
    pub message_id: Option<u16>,
    /// Priority (0000,0700).
    pub priority: Option<u16>,
    /// Move Destination (C-MOVE).
    pub move_destination: Option<String>,
    /// Transfer syntax of `identifier` (and of the identifiers to answer with).
    pub transfer_syntax: String,
    /// The encoded identifier.
    pub identifier: Bytes,
}

/// Sub-operation counts of a C-MOVE/C-GET response (PS3.7 §9.3.4.2, §9.3.3.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubOperations {
    /// Number of Remaining Sub-operations (pending responses only).
    pub remaining: u16,
    /// Number of Completed Sub-operations.
    pub completed: u16,
    /// Number of Failed Sub-operations.
    pub failed: u16,
    /// Number of Warning Sub-operations.
    pub warning: u16,
}

/// The final response of a query (see [`ScpSession::query_done`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryFinal {
    /// Final status: 0x0000, 0xFE00 (cancelled), 0xB000, 0xA700, 0xA801, 0xA900, 0xC000, …
    pub status: u16,
    /// Error Comment (0000,0902) for a failure, at most 64 characters.
    pub error_comment: Option<String>,
    /// Sub-operation counts (C-MOVE/C-GET).
    pub counts: Option<SubOperations>,
    /// A data set to send with it, e.g. the Failed SOP Instance UID List (0008,0058) of a
    /// C-MOVE with failures (PS3.4 C.4.2.1.4), in the request's transfer syntax.
    pub dataset: Option<Vec<u8>>,
}

impl QueryFinal {
    /// A final response with only a status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }
}

struct RqInfo {
    pc_id: u8,
    field: u16,
    message_id: Option<u16>,
    sop_class: String,
    sop_instance: Option<String>,
}

/// What the data set being received is for.
enum Pending {
    Idle,
    /// C-STORE receiving into the sink (None after a failure: drain and answer `status`).
    Store {
        rq: RqInfo,
        sink: Option<Box<dyn InstanceSink>>,
        status: u16,
        ts: String,
        peek: HeaderPeek,
        /// Structure of the whole data set, to refuse one cut off inside an element.
        walk: Box<complete::Walker>,
    },
    /// An N-* request or a query collecting its data set.
    Collect {
        rq: RqInfo,
        buf: BytesMut,
        ts: String,
        too_big: bool,
        extra: Extra,
    },
    /// Another request with a data set: drain and answer with `status`.
    Drain {
        rq: RqInfo,
        status: u16,
    },
    /// The data set of a response to one of our requests: dropped.
    Skip {
        pc_id: u8,
    },
}

/// The C-STORE sub-operation in flight (PS3.4 C.4.3.3.1): sent or being sent, not answered.
struct SubOp {
    query: RequestId,
    message_id: u16,
    pc_id: u8,
    /// The data set's last fragment has not been queued yet.
    sending: bool,
    /// A response that came before the data set was complete (a peer refusing early):
    /// reported once the data set is complete, so the stream stays well-formed.
    early: Option<PeerResponse>,
}

/// Requests of ours remembered for their responses (N-EVENT-REPORT): at most this many.
const MAX_SENT: usize = 64;

/// Command fields a collected request keeps beyond [`RqInfo`].
#[derive(Default)]
struct Extra {
    priority: Option<u16>,
    move_destination: Option<String>,
    action_type_id: Option<u16>,
}

/// A request handed to the application, waiting for its answer.
enum Outstanding {
    Store {
        id: RequestId,
        rq: RqInfo,
    },
    N {
        id: RequestId,
        rq: RqInfo,
    },
    Query {
        id: RequestId,
        rq: RqInfo,
        kind: QueryKind,
        cancelled: bool,
        pending: u32,
        priority: Option<u16>,
    },
}

/// One association served by the SCP; see the module documentation.
pub struct ScpSession {
    assoc: Association,
    asm: Assembler,
    cfg: Arc<ScpConfig>,
    neg: Option<Negotiated>,
    pending: Pending,
    completed: Vec<Completed>,
    events: VecDeque<ScpEvent>,
    outstanding: Option<Outstanding>,
    /// A message received while a query was outstanding, processed after it.
    stashed: Option<DimseEvent>,
    next_id: u64,
    /// The C-STORE sub-operation of a C-GET in flight.
    sub: Option<SubOp>,
    /// Message IDs of our N-EVENT-REPORT requests not answered yet.
    sent: VecDeque<u16>,
    /// Message ID of our next request.
    next_message_id: u16,
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
    pub fn new(cfg: Arc<ScpConfig>, now: Instant) -> Self {
        Self {
            assoc: Association::acceptor(cfg.policy.clone(), cfg.timeouts, now),
            asm: Assembler::new(cfg.max_command),
            cfg,
            neg: None,
            pending: Pending::Idle,
            completed: Vec::new(),
            events: VecDeque::new(),
            outstanding: None,
            stashed: None,
            next_id: 0,
            sub: None,
            sent: VecDeque::new(),
            next_message_id: 1,
        }
    }

    /// The underlying association (state, timers, receive buffer).
    pub fn association(&mut self) -> &mut Association {
        &mut self.assoc
    }

    /// The negotiation result, once the association is established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.neg.as_ref()
    }

    /// The transport's peer address, for callers bound to a host
    /// ([`crate::assoc::AllowedCaller`]); see [`Association::set_peer_addr`].
    pub fn set_peer_addr(&mut self, peer: std::net::IpAddr) {
        self.assoc.set_peer_addr(peer);
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

    /// The transport closed. Events not yet taken are dropped (a staged instance is
    /// aborted); answers to requests already taken are ignored.
    pub fn handle_transport_closed(&mut self, now: Instant) {
        self.assoc.handle_transport_closed();
        self.drain_events(now);
        self.drop_requests();
    }

    /// The next request the application must answer.
    pub fn poll_event(&mut self) -> Option<ScpEvent> {
        self.events.pop_front()
    }

    /// False while more input would only be buffered: a C-STORE or N-* answer is awaited, or
    /// a message that arrived during a query waits for it to finish. A transport adapter
    /// stops reading then, so the peer's TCP window bounds memory.
    pub fn wants_input(&self) -> bool {
        match &self.outstanding {
            Some(Outstanding::Store { .. } | Outstanding::N { .. }) => false,
            Some(Outstanding::Query { .. }) => self.stashed.is_none(),
            None => true,
        }
    }

    /// True while a request handed out by [`ScpSession::poll_event`] waits for its answer.
    pub fn is_waiting(&self) -> bool {
        self.outstanding.is_some()
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

    /// Answers a C-STORE ([`ScpEvent::Store`]): `stored` is the committed instance (its
    /// status should then be 0x0000 or a warning), `None` when it was not stored. Never
    /// answer success before the commit returned. Unknown or stale ids are ignored.
    pub fn answer_store(
        &mut self,
        id: RequestId,
        status: u16,
        stored: Option<StoredInstance>,
        now: Instant,
    ) {
        let Some(Outstanding::Store { rq, .. }) = self.take_outstanding(id) else {
            return;
        };
        let inst = rq.sop_instance.clone().unwrap_or_default();
        self.store_answered(&rq, status, inst, stored.map(Box::new));
        self.drain_events(now);
    }

    /// Answers an N-CREATE, N-SET or N-ACTION ([`ScpEvent::N`]).
    pub fn answer_n(&mut self, id: RequestId, resp: NResponse, now: Instant) {
        let Some(Outstanding::N { mut rq, .. }) = self.take_outstanding(id) else {
            return;
        };
        if let Some(i) = resp.sop_instance_uid {
            rq.sop_instance = Some(i);
        }
        let error = ErrorFields {
            id: resp.error_id,
            comment: resp.error_comment.as_deref(),
        };
        self.respond_with(
            &rq,
            resp.status,
            resp.dataset.map(Bytes::from),
            &error,
            None,
        );
        self.completed.push(Completed::N {
            field: rq.field,
            status: resp.status,
        });
        self.drain_events(now);
    }

    /// Sends one C-FIND match as a pending response (status 0xFF00, PS3.4 C.4.1.2.2) with
    /// `identifier` encoded in the request's transfer syntax. Returns false when the query
    /// was cancelled or is unknown: stop producing matches then.
    pub fn query_match(&mut self, id: RequestId, identifier: &[u8]) -> bool {
        self.pending_response(id, Some(Bytes::copy_from_slice(identifier)), None)
    }

    /// Sends a C-MOVE/C-GET pending response with the sub-operation counts so far (PS3.4
    /// C.4.2.1.5). Returns false when the retrieve was cancelled or is unknown.
    pub fn query_progress(&mut self, id: RequestId, counts: SubOperations) -> bool {
        self.pending_response(id, None, Some(counts))
    }

    /// A pending (0xFF00) response to the outstanding query `id`, unless it was cancelled.
    fn pending_response(
        &mut self,
        id: RequestId,
        dataset: Option<Bytes>,
        counts: Option<SubOperations>,
    ) -> bool {
        let Some(Outstanding::Query {
            id: qid,
            rq,
            cancelled,
            pending,
            ..
        }) = &mut self.outstanding
        else {
            return false;
        };
        if *qid != id || *cancelled {
            return false;
        }
        *pending += 1;
        let rq = RqInfo {
            pc_id: rq.pc_id,
            field: rq.field,
            message_id: rq.message_id,
            sop_class: rq.sop_class.clone(),
            sop_instance: None,
        };
        self.respond_with(
            &rq,
            status::PENDING,
            dataset,
            &ErrorFields::default(),
            counts,
        );
        true
    }

    /// Starts a C-STORE sub-operation of the outstanding C-GET `query` (PS3.4 C.4.3.3.1,
    /// PS3.7 §9.1.1): queues the C-STORE-RQ on a presentation context the requestor accepted
    /// for `op.sop_class_uid` in `op.transfer_syntax` with itself as SCP (PS3.7 D.3.3.4).
    /// Then supply the data set with [`ScpSession::sub_store_data`], in pieces as it is read;
    /// its C-STORE-RSP comes back as [`ScpEvent::Response`]. One sub-operation at a time
    /// (PS3.7 D.3.3.3: one outstanding operation unless negotiated otherwise).
    ///
    /// A [`SendError::NoContext`] is a failed sub-operation for the counts (PS3.4 C.4.3.1.3).
    pub fn sub_store_begin(
        &mut self,
        query: RequestId,
        op: &SubStore<'_>,
    ) -> Result<SubStoreStarted, SendError> {
        if self.assoc.is_closed() || !self.assoc.can_send_data() {
            return Err(SendError::Closed);
        }
        if !matches!(&self.outstanding, Some(Outstanding::Query { id, kind: QueryKind::Get, .. }) if *id == query)
        {
            return Err(SendError::NoSuchQuery);
        }
        if self.sub.is_some() {
            return Err(SendError::Busy);
        }
        let Some(neg) = self.neg.as_ref() else {
            return Err(SendError::Closed);
        };
        let pc_id = neg
            .contexts
            .iter()
            .find(|c| {
                c.abstract_syntax == op.sop_class_uid && c.transfer_syntax == op.transfer_syntax
            })
            .filter(|_| neg.requestor_is_scp(op.sop_class_uid))
            .map(|c| c.id)
            .ok_or_else(|| SendError::NoContext {
                sop_class: op.sop_class_uid.to_string(),
                transfer_syntax: op.transfer_syntax.to_string(),
            })?;
        let message_id = self.take_message_id();
        let priority = match &self.outstanding {
            Some(Outstanding::Query { priority, .. }) => *priority,
            _ => None,
        };
        // PS3.7 §9.3.1.1: C-STORE-RQ of a C-GET carries no Move Originator.
        let cmd = Command {
            field: field::C_STORE_RQ,
            message_id: Some(message_id),
            affected_sop_class: Some(op.sop_class_uid),
            affected_sop_instance: Some(op.sop_instance_uid),
            priority: Some(priority.unwrap_or(0)),
            has_dataset: true,
            ..Command::default()
        };
        let enc = Bytes::from(cmd.encode());
        if !self.assoc.send_pdata(pc_id, true, &enc) {
            return Err(SendError::Closed);
        }
        self.sub = Some(SubOp {
            query,
            message_id,
            pc_id,
            sending: true,
            early: None,
        });
        Ok(SubStoreStarted {
            message_id,
            pc_id,
            chunk_size: self.chunk_size(),
        })
    }

    /// Queues the next piece of the sub-operation's data set as P-DATA-TF PDVs (sliced, not
    /// copied); `last` marks the end of the data set (PS3.8 E.2). Call
    /// [`ScpSession::poll_transmit`] and write the bytes before reading the next piece, so
    /// memory stays at one piece per association.
    pub fn sub_store_data(&mut self, chunk: &Bytes, last: bool) -> Result<(), SendError> {
        let Some(sub) = self.sub.as_mut().filter(|s| s.sending) else {
            return Err(SendError::NotStarted);
        };
        let pc = sub.pc_id;
        if last {
            sub.sending = false;
        }
        let sent = self.assoc.send_pdata_part(pc, false, chunk, last);
        if last
            && self.sub.as_ref().is_some_and(|s| s.early.is_some())
            && let Some(r) = self.sub.take().and_then(|s| s.early)
        {
            self.events.push_back(ScpEvent::Response(r));
        }
        if sent { Ok(()) } else { Err(SendError::Closed) }
    }

    /// Transfer syntaxes accepted for `sop_class` on contexts where the requestor took the
    /// SCP role (PS3.7 D.3.3.4): where a C-GET sub-operation of that class can go when the
    /// stored transfer syntax has no context of its own (the application then re-encodes).
    pub fn sub_store_syntaxes(&self, sop_class: &str) -> Vec<&str> {
        let Some(neg) = self.neg.as_ref().filter(|n| n.requestor_is_scp(sop_class)) else {
            return Vec::new();
        };
        neg.contexts
            .iter()
            .filter(|c| c.abstract_syntax == sop_class)
            .map(|c| c.transfer_syntax.as_str())
            .collect()
    }

    /// Data set bytes per P-DATA-TF PDU of the peer's maximum length (PS3.8 D.1).
    pub fn chunk_size(&self) -> usize {
        crate::pdu::encode::max_fragment(self.neg.as_ref().map_or(0, |n| n.peer_max_pdu))
    }

    /// True while a C-STORE sub-operation is sent or waits for its response.
    pub fn sub_store_in_flight(&self) -> bool {
        self.sub.is_some()
    }

    /// Sends an N-EVENT-REPORT-RQ (PS3.7 §10.1.1) on this association, e.g. the Storage
    /// Commitment result (PS3.4 J.3.3: Event Type 1 or 2) to the requestor of an N-ACTION
    /// on the same association; `dataset` is encoded in the context's transfer syntax (see
    /// [`ScpSession::transfer_syntax_for`]). Returns the request's Message ID; its response
    /// comes back as [`ScpEvent::Response`].
    pub fn send_event_report(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        event_type_id: u16,
        dataset: &Bytes,
    ) -> Result<u16, SendError> {
        if self.assoc.is_closed() || !self.assoc.can_send_data() {
            return Err(SendError::Closed);
        }
        let pc_id = self
            .neg
            .as_ref()
            .and_then(|n| n.context_for(sop_class))
            .map(|c| c.id)
            .ok_or_else(|| SendError::NoContext {
                sop_class: sop_class.to_string(),
                transfer_syntax: String::new(),
            })?;
        let message_id = self.take_message_id();
        let cmd = Command {
            field: field::N_EVENT_REPORT_RQ,
            message_id: Some(message_id),
            affected_sop_class: Some(sop_class),
            affected_sop_instance: Some(sop_instance),
            event_type_id: Some(event_type_id),
            has_dataset: true,
            ..Command::default()
        };
        let enc = Bytes::from(cmd.encode());
        if !self.assoc.send_pdata(pc_id, true, &enc)
            || !self.assoc.send_pdata(pc_id, false, dataset)
        {
            return Err(SendError::Closed);
        }
        if self.sent.len() == MAX_SENT {
            self.sent.pop_front();
        }
        self.sent.push_back(message_id);
        Ok(message_id)
    }

    /// The transfer syntax accepted for an abstract syntax on this association.
    pub fn transfer_syntax_for(&self, sop_class: &str) -> Option<&str> {
        self.neg
            .as_ref()
            .and_then(|n| n.context_for(sop_class))
            .map(|c| c.transfer_syntax.as_str())
    }

    fn take_message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    /// A response from the peer: to our C-STORE sub-operation or N-EVENT-REPORT, else
    /// ignored (PS3.7 §9.1: a response to nothing outstanding).
    fn on_response(&mut self, cmd: &Command<'_>) {
        let Some(mid) = cmd.responded_to else {
            return;
        };
        let mut rsp = PeerResponse {
            message_id: mid,
            field: cmd.field,
            status: cmd.status.unwrap_or(0xFFFF),
            sop_instance_uid: cmd.affected_sop_instance.map(str::to_string),
            error_comment: cmd.error_comment.map(str::to_string),
            query: None,
        };
        if cmd.field == field::C_STORE_RSP
            && let Some(sub) = self.sub.as_mut().filter(|s| s.message_id == mid)
        {
            rsp.query = Some(sub.query);
            if sub.sending {
                sub.early.get_or_insert(rsp);
                return;
            }
            self.sub = None;
        } else if let Some(i) = self.sent.iter().position(|m| *m == mid) {
            self.sent.remove(i);
        } else {
            return;
        }
        self.events.push_back(ScpEvent::Response(rsp));
    }

    /// True when the peer cancelled this query.
    pub fn is_cancelled(&self, id: RequestId) -> bool {
        matches!(&self.outstanding, Some(Outstanding::Query { id: q, cancelled: true, .. }) if *q == id)
    }

    /// Sends the final response of a query and goes on with what was received after it.
    pub fn query_done(&mut self, id: RequestId, fin: QueryFinal, now: Instant) {
        let Some(Outstanding::Query {
            rq, pending, kind, ..
        }) = self.take_outstanding(id)
        else {
            return;
        };
        let error = ErrorFields {
            id: None,
            comment: fin.error_comment.as_deref(),
        };
        // PS3.7 §9.1.2.1.6 (C-FIND-RSP): no counts; C-MOVE/C-GET finals carry completed,
        // failed and warning (remaining only on pending responses, PS3.7 §9.3.4.2).
        // A Cancel may report the sub-operations left undone (PS3.7 §9.3.3.2, §9.3.4.2).
        let counts = match kind {
            QueryKind::Find => None,
            _ if fin.status == status::CANCEL => fin.counts,
            _ => fin.counts.map(|c| SubOperations { remaining: 0, ..c }),
        };
        let rq = RqInfo {
            sop_instance: None,
            ..rq
        };
        self.respond_with(
            &rq,
            fin.status,
            fin.dataset.map(Bytes::from),
            &error,
            counts,
        );
        self.completed.push(Completed::Query {
            field: rq.field,
            status: fin.status,
            pending,
        });
        self.drain_events(now);
    }

    fn take_outstanding(&mut self, id: RequestId) -> Option<Outstanding> {
        let matches = match &self.outstanding {
            Some(
                Outstanding::Store { id: o, .. }
                | Outstanding::N { id: o, .. }
                | Outstanding::Query { id: o, .. },
            ) => *o == id,
            None => false,
        };
        if matches && !self.assoc.is_closed() {
            self.outstanding.take()
        } else {
            None
        }
    }

    fn new_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    fn drain_events(&mut self, now: Instant) {
        loop {
            match &self.outstanding {
                // Nothing after a C-STORE or N-* request is processed before its answer.
                Some(Outstanding::Store { .. } | Outstanding::N { .. }) => return,
                // While a query streams, only its C-CANCEL is looked for.
                Some(Outstanding::Query { .. }) if self.stashed.is_some() => return,
                Some(Outstanding::Query { .. }) => {}
                None => {
                    if let Some(m) = self.stashed.take() {
                        self.on_message(m, now);
                        continue;
                    }
                }
            }
            let Some(ev) = self.assoc.poll_event() else {
                return;
            };
            match ev {
                Event::Data(pdv) => match self.asm.push(pdv) {
                    Ok(Some(m)) => {
                        if self.outstanding.is_some() {
                            self.during_query(m, now);
                        } else {
                            self.on_message(m, now);
                        }
                    }
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
                Event::Closed => {
                    self.reset_pending();
                    self.drop_requests();
                }
                Event::Rejected(rj) => self.completed.push(match self.assoc.refusal() {
                    Some(r) => Completed::Refused(Box::new(r.clone())),
                    None => Completed::Association(format!("{:?}", Event::Rejected(rj))),
                }),
                other => self
                    .completed
                    .push(Completed::Association(format!("{other:?}"))),
            }
        }
    }

    /// A message arriving while a query is outstanding: its C-CANCEL-RQ is taken, anything
    /// else waits.
    fn during_query(&mut self, m: DimseEvent, now: Instant) {
        if matches!(self.pending, Pending::Skip { .. }) && matches!(m, DimseEvent::Data { .. }) {
            return self.on_message(m, now);
        }
        if let DimseEvent::Command { pc_id, bytes } = &m {
            let cmd = match Command::decode(bytes) {
                Ok(c) => c,
                Err(e) => return self.fail(&e.to_string(), now),
            };
            if !cmd.is_request() {
                // The C-STORE-RSPs of a C-GET's sub-operations arrive here (PS3.4 C.4.3.3.1).
                if !matches!(self.pending, Pending::Idle) {
                    return self.fail("command while a data set was expected", now);
                }
                self.on_response(&cmd);
                if cmd.has_dataset {
                    self.pending = Pending::Skip { pc_id: *pc_id };
                }
                return;
            }
            if cmd.field == field::C_CANCEL_RQ {
                // PS3.7 §9.3.2.3: C-CANCEL-RQ names the request in (0000,0120); no response.
                if let Some(Outstanding::Query {
                    id, rq, cancelled, ..
                }) = &mut self.outstanding
                    && cmd.responded_to == rq.message_id
                    && !*cancelled
                {
                    *cancelled = true;
                    let id = *id;
                    self.events.push_back(ScpEvent::Cancel(id));
                }
                return;
            }
            // A C-GET completes only when the peer's C-STORE-RSPs are read, and they would
            // queue behind a request held here: with the default window of one outstanding
            // operation (PS3.7 D.3.3.3) such a request is a protocol error, so the
            // association is aborted rather than left to hang.
            if matches!(
                self.outstanding,
                Some(Outstanding::Query {
                    kind: QueryKind::Get,
                    ..
                })
            ) {
                return self.fail("request while a C-GET is outstanding", now);
            }
        }
        self.stashed = Some(m);
    }

    /// Drops events not yet taken (aborting staged instances) and forgets the outstanding
    /// request.
    fn drop_requests(&mut self) {
        for ev in self.events.drain(..) {
            if let ScpEvent::Store(c) = ev {
                c.abort();
            }
        }
        self.outstanding = None;
        self.stashed = None;
        self.sub = None;
    }

    fn reset_pending(&mut self) {
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
        self.drop_requests();
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

    fn calling_ae(&self) -> String {
        self.neg
            .as_ref()
            .map(|n| n.calling_ae.clone())
            .unwrap_or_default()
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
                let walk = Box::new(complete::Walker::new(&ts));
                self.pending = Pending::Store {
                    rq,
                    sink,
                    status: st,
                    ts,
                    peek: HeaderPeek::default(),
                    walk,
                };
            }
            field::N_CREATE_RQ
            | field::N_SET_RQ
            | field::N_ACTION_RQ
            | field::C_FIND_RQ
            | field::C_MOVE_RQ
            | field::C_GET_RQ => {
                let extra = Extra {
                    priority: cmd.priority,
                    move_destination: cmd.move_destination.map(str::to_string),
                    action_type_id: cmd.action_type_id,
                };
                if cmd.has_dataset {
                    self.pending = Pending::Collect {
                        rq,
                        buf: BytesMut::new(),
                        ts,
                        too_big: false,
                        extra,
                    };
                } else if matches!(
                    cmd.field,
                    field::C_FIND_RQ | field::C_MOVE_RQ | field::C_GET_RQ
                ) {
                    // PS3.7 §9.1.2.1: the identifier is mandatory.
                    self.respond_with(
                        &rq,
                        status::CANNOT_UNDERSTAND,
                        None,
                        &ErrorFields {
                            id: None,
                            comment: Some("request without an identifier"),
                        },
                        None,
                    );
                } else {
                    self.hand_out(rq, ts, Bytes::new(), extra);
                }
            }
            field::C_CANCEL_RQ => {} // nothing outstanding to cancel: ignored (PS3.7 §9.3.2.3)
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
            _ => {
                // A response (PS3.7 §9.3): to our sub-operation or event report.
                self.on_response(cmd);
                if cmd.has_dataset {
                    self.pending = Pending::Skip { pc_id };
                }
            }
        }
    }

    /// Hands a collected N-* or query request to the application.
    fn hand_out(&mut self, rq: RqInfo, ts: String, data: Bytes, mut extra: Extra) {
        let id = self.new_id();
        let calling_ae = self.calling_ae();
        let kind = match rq.field {
            field::C_FIND_RQ => Some(QueryKind::Find),
            field::C_MOVE_RQ => Some(QueryKind::Move),
            field::C_GET_RQ => Some(QueryKind::Get),
            _ => None,
        };
        if let Some(kind) = kind {
            self.events.push_back(ScpEvent::Query(QueryRequest {
                id,
                kind,
                calling_ae,
                sop_class_uid: rq.sop_class.clone(),
                message_id: rq.message_id,
                priority: extra.priority,
                move_destination: extra.move_destination.take(),
                transfer_syntax: ts,
                identifier: data,
            }));
            self.outstanding = Some(Outstanding::Query {
                id,
                rq,
                kind,
                cancelled: false,
                pending: 0,
                priority: extra.priority,
            });
        } else {
            self.events.push_back(ScpEvent::N(NOperation {
                id,
                field: rq.field,
                calling_ae,
                sop_class_uid: rq.sop_class.clone(),
                sop_instance_uid: rq.sop_instance.clone(),
                action_type_id: extra.action_type_id,
                transfer_syntax: ts,
                dataset: data,
            }));
            self.outstanding = Some(Outstanding::N { id, rq });
        }
    }

    fn on_data(&mut self, pc_id: u8, data: &[u8], last: bool, now: Instant) {
        let pc = match &self.pending {
            Pending::Idle => return self.fail("data set without a command", now),
            Pending::Store { rq, .. } | Pending::Collect { rq, .. } | Pending::Drain { rq, .. } => {
                rq.pc_id
            }
            Pending::Skip { pc_id } => *pc_id,
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
                walk,
                ..
            } => {
                if let Some(w) = sink {
                    peek.feed(data, ts);
                    walk.feed(data);
                    if w.write(data).is_err() {
                        // PS3.4 B.2.3: storage failure → out of resources, keep draining.
                        if let Some(w) = sink.take() {
                            w.abort();
                        }
                        *st = status::OUT_OF_RESOURCES;
                    }
                }
            }
            Pending::Collect { buf, too_big, .. } => {
                if buf.len() + data.len() > self.cfg.max_n_dataset {
                    *too_big = true;
                } else if !*too_big {
                    buf.extend_from_slice(data);
                }
            }
            Pending::Drain { .. } | Pending::Skip { .. } | Pending::Idle => {}
        }
        if last {
            match std::mem::replace(&mut self.pending, Pending::Idle) {
                Pending::Store {
                    rq,
                    sink,
                    status: st,
                    ts,
                    mut peek,
                    walk,
                } => {
                    let peeked = peek.finish(&ts);
                    let peeked = match (peeked, walk.finish()) {
                        // PS3.4 B.2.3: a data set that cannot be parsed → 0xC000.
                        (
                            Peeked::Found(_) | Peeked::Unsupported,
                            complete::Completeness::Truncated(at),
                        ) => Peeked::Truncated(at),
                        (
                            Peeked::Found(_) | Peeked::Unsupported,
                            complete::Completeness::Invalid(at),
                        ) => Peeked::Invalid(usize::try_from(at).unwrap_or(usize::MAX)),
                        (p, _) => p,
                    };
                    let received = Received {
                        peeked,
                        len: peek.len,
                        head: DatasetHead(std::mem::take(&mut peek.head)),
                    };
                    self.store_received(rq, sink, st, &ts, received);
                }
                Pending::Collect {
                    rq,
                    buf,
                    ts,
                    too_big,
                    extra,
                } => {
                    if too_big {
                        let comment = "data set larger than this SCP accepts";
                        let st = if rq.field & 0x00F0 == 0x0020 || rq.field == field::C_GET_RQ {
                            status::OUT_OF_RESOURCES
                        } else {
                            status::PROCESSING_FAILURE
                        };
                        self.respond_with(
                            &rq,
                            st,
                            None,
                            &ErrorFields {
                                id: None,
                                comment: Some(comment),
                            },
                            None,
                        );
                    } else {
                        self.hand_out(rq, ts, buf.freeze(), extra);
                    }
                }
                Pending::Drain { rq, status: st } => self.respond(&rq, st, None),
                Pending::Skip { .. } | Pending::Idle => {}
            }
        }
    }

    /// A C-STORE data set is complete: checked here (PS3.4 B.2.3), then handed to the
    /// application for its commit.
    fn store_received(
        &mut self,
        rq: RqInfo,
        sink: Option<Box<dyn InstanceSink>>,
        st: u16,
        ts: &str,
        received: Received,
    ) {
        let Received { peeked, len, head } = received;
        let inst = rq.sop_instance.clone().unwrap_or_default();
        let Some(w) = sink else {
            return self.store_answered(&rq, st, inst, None);
        };
        let refuse = |this: &mut Self, w: Box<dyn InstanceSink>, st: u16, why: &str| {
            w.abort();
            this.respond_with(
                &rq,
                st,
                None,
                &ErrorFields {
                    id: None,
                    comment: Some(why),
                },
                None,
            );
            this.completed.push(Completed::Store {
                status: st,
                sop_instance_uid: inst.clone(),
                stored: None,
            });
        };
        let header = match peeked {
            Peeked::Found(h) => Some(*h),
            Peeked::Unsupported => None,
            // PS3.4 B.2.3: a data set that cannot be parsed → 0xC000.
            Peeked::Invalid(at) => {
                let why = format!("data set does not parse at byte {at}");
                return refuse(self, w, status::CANNOT_UNDERSTAND, &why);
            }
            Peeked::Truncated(at) => {
                let why = format!("data set ends inside an element (truncated after {at} bytes)");
                return refuse(self, w, status::CANNOT_UNDERSTAND, &why);
            }
        };
        if len == 0 {
            return refuse(self, w, status::CANNOT_UNDERSTAND, "empty data set");
        }
        if let Some(h) = &header {
            // PS3.4 B.2.3 / PS3.7 §9.3.1.1: the data set's SOP Instance UID (0008,0018) is
            // the Affected SOP Instance UID; one without it is not a composite instance.
            match h.sop_instance_uid.as_deref() {
                None => {
                    return refuse(
                        self,
                        w,
                        status::DATASET_MISMATCH,
                        "data set has no SOP Instance UID (0008,0018)",
                    );
                }
                Some(d) if d != inst => {
                    return refuse(
                        self,
                        w,
                        status::DATASET_MISMATCH,
                        "SOP Instance UID differs from the command's",
                    );
                }
                Some(_) => {}
            }
        }
        let id = self.new_id();
        let instance = StoredInstance {
            sop_class_uid: rq.sop_class.clone(),
            sop_instance_uid: inst,
            study_instance_uid: header.as_ref().and_then(|h| h.study_instance_uid.clone()),
            header,
            transfer_syntax: ts.to_string(),
            path: PathBuf::new(),
            calling_ae: self.calling_ae(),
            dataset_len: len,
            head,
        };
        self.events.push_back(ScpEvent::Store(StoreCommit {
            id,
            instance: Box::new(instance),
            writer: w,
        }));
        self.outstanding = Some(Outstanding::Store { id, rq });
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

    fn respond(&mut self, rq: &RqInfo, st: u16, dataset: Option<Bytes>) {
        self.respond_with(rq, st, dataset, &ErrorFields::default(), None);
    }

    fn respond_with(
        &mut self,
        rq: &RqInfo,
        st: u16,
        dataset: Option<Bytes>,
        error: &ErrorFields<'_>,
        counts: Option<SubOperations>,
    ) {
        if self.assoc.is_closed() {
            return;
        }
        // PS3.7 C.4: Error Comment is LO (64 characters at most).
        let comment = error.comment.map(|c| match c.char_indices().nth(64) {
            Some((i, _)) => &c[..i],
            None => c,
        });
        let pending = st == status::PENDING || st == status::PENDING_WARNING;
        let rsp = Command {
            error_id: error.id,
            error_comment: comment,
            field: rq.field | 0x8000,
            responded_to: rq.message_id,
            affected_sop_class: Some(rq.sop_class.as_str()).filter(|s| !s.is_empty()),
            affected_sop_instance: rq.sop_instance.as_deref(),
            status: Some(st),
            has_dataset: dataset.is_some(),
            remaining: counts
                .filter(|c| pending || (st == status::CANCEL && c.remaining > 0))
                .map(|c| c.remaining),
            completed: counts.map(|c| c.completed),
            failed: counts.map(|c| c.failed),
            warning: counts.map(|c| c.warning),
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
