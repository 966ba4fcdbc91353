//! A ready-made HL7 v2 [`Handler`]: parses each message with `xenrad-hl7v2`, stores it through a
//! caller-supplied store, and answers with an ACK built by `xenrad_hl7v2::ack`.
//!
//! Acknowledgement rules (HL7 v2.5.1 ch. 2.9):
//! - original mode (MSH-15 and MSH-16 empty, 2.9.2): `AA` once stored, `AE` if the store
//!   refused the content or failed, `AR` for a message that does not parse or has no MSH-10;
//! - enhanced mode (2.9.3): commit codes `CA`/`CE`/`CR`, sent or not as MSH-15 (accept
//!   acknowledgement type, table 0155) asks;
//! - a commit/accept is sent only after the store returned, so a durable store makes the ACK
//!   a durable commit;
//! - duplicates (same sender MSH-3/MSH-4 and MSH-10) are acknowledged again without being
//!   stored twice: deciding that is the store's job (it sees the [`MessageKey`]).
//!
//! Two store traits: [`MessageStore`] sees the key and the raw bytes; [`Hl7Store`] also sees
//! the parsed [`Message`] and may refuse its content with an ERR detail
//! ([`Hl7StoreError::Invalid`], answered `AE`/`CE`). Every `MessageStore` is an `Hl7Store`.
//!
//! [`Hl7Handler::process`] is the transport-free core (message in, [`Hl7Outcome`] with the
//! ACK out) for HTTP or other adapters; the MLLP [`Handler`] impl maps it to a [`Reply`].
//! With [`Hl7Handler::commit_blocks`] the MLLP handler answers with MLLP release 2 commit
//! blocks (`<ACK>`/`<NAK>`) instead of HL7 ACK messages.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use xenrad_hl7v2::Message;
use xenrad_hl7v2::ack::{
    AckCode, AckIds, AckMode, ErrorCode, ErrorDetail, Outcome, ack_unparseable_with, ack_with,
};

use crate::server::{ConnectionInfo, Handler, Reply};

/// Identity of a message for duplicate suppression: sender (MSH-3 and MSH-4, as written) and
/// control id (MSH-10, surrounding white space removed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey {
    /// Sending application (MSH-3), raw.
    pub sending_application: String,
    /// Sending facility (MSH-4), raw.
    pub sending_facility: String,
    /// Message control id (MSH-10).
    pub control_id: String,
}

/// What [`MessageStore::store`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored now.
    New,
    /// Already stored earlier under the same key; not stored again.
    Duplicate,
}

/// A storage failure; the message is acknowledged with `AE`/`CE` and should be resent. Keeps
/// the underlying error, if any, as its [`source`](std::error::Error::source).
///
/// ```
/// use std::error::Error as _;
/// let e = xenrad_mllp::hl7::StoreError::with_source("append", std::io::Error::other("disk full"));
/// assert_eq!(e.to_string(), "message store: append");
/// assert_eq!(e.source().unwrap().to_string(), "disk full");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("message store: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A failure described by `message` alone.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A failure described by `message`, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The message (without the cause).
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Where accepted messages go. Return only once the message is as durable as the
/// acknowledgement you want to give: the ACK is sent right after `store` returns.
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `msg` under `key` unless that key is already stored.
    fn store(
        &self,
        key: &MessageKey,
        msg: Bytes,
    ) -> impl Future<Output = Result<Stored, StoreError>> + Send;
}

/// In-memory store (not durable: for tests, load runs and examples).
#[derive(Debug, Default)]
pub struct MemoryStore {
    messages: Mutex<HashMap<MessageKey, Bytes>>,
}

impl MemoryStore {
    /// Number of distinct messages stored.
    pub fn len(&self) -> usize {
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// True if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message stored under `key`.
    pub fn get(&self, key: &MessageKey) -> Option<Bytes> {
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }
}

impl MessageStore for MemoryStore {
    async fn store(&self, key: &MessageKey, msg: Bytes) -> Result<Stored, StoreError> {
        let mut m = self
            .messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.contains_key(key) {
            return Ok(Stored::Duplicate);
        }
        m.insert(key.clone(), msg);
        Ok(Stored::New)
    }
}

/// Why an [`Hl7Store`] did not store a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hl7StoreError {
    /// The content is not acceptable to the application (e.g. a segment or field it needs is
    /// missing or malformed): answered `AE`/`CE` with this ERR detail; not stored, and resending
    /// the same message will not help.
    Invalid(ErrorDetail),
    /// Storing failed (I/O, database): answered `AE`/`CE` with this ERR detail (what the
    /// sender sees; keep internals out of it); the sender should resend later.
    Failed(ErrorDetail),
}

impl From<StoreError> for Hl7StoreError {
    fn from(e: StoreError) -> Self {
        Self::Failed(ErrorDetail::new(ErrorCode::InternalError, e.to_string()))
    }
}

/// A store that sees the parsed message: the hook an application uses to check content,
/// project it and store it durably and idempotently. Return only once the message is as
/// durable as the acknowledgement you want to give: the ACK is built right after `store`
/// returns.
///
/// Every [`MessageStore`] is an `Hl7Store` (it ignores the parsed message and never returns
/// [`Hl7StoreError::Invalid`]).
///
/// ```
/// use bytes::Bytes;
/// use xenrad_hl7v2::Message;
/// use xenrad_hl7v2::ack::{ErrorCode, ErrorDetail};
/// use xenrad_mllp::hl7::{Hl7Store, Hl7StoreError, MessageKey, Stored};
///
/// /// Accepts only messages with a PID segment (and keeps nothing: an example).
/// struct NeedsPid;
/// impl Hl7Store for NeedsPid {
///     async fn store(&self, msg: &Message<'_>, _key: &MessageKey, _raw: &Bytes)
///         -> Result<Stored, Hl7StoreError> {
///         if msg.segment("PID").is_none() {
///             return Err(Hl7StoreError::Invalid(
///                 ErrorDetail::new(ErrorCode::SegmentSequence, "PID segment missing")));
///         }
///         Ok(Stored::New)
///     }
/// }
/// ```
pub trait Hl7Store: Send + Sync + 'static {
    /// Checks and stores `msg` (parsed from `raw`) under `key`, unless that key is already
    /// stored ([`Stored::Duplicate`]).
    fn store(
        &self,
        msg: &Message<'_>,
        key: &MessageKey,
        raw: &Bytes,
    ) -> impl Future<Output = Result<Stored, Hl7StoreError>> + Send;
}

impl<T: MessageStore> Hl7Store for T {
    async fn store(
        &self,
        _msg: &Message<'_>,
        key: &MessageKey,
        raw: &Bytes,
    ) -> Result<Stored, Hl7StoreError> {
        Ok(MessageStore::store(self, key, raw.clone()).await?)
    }
}

/// What happened to one message in [`Hl7Handler::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// Stored now; `AA`/`CA`.
    Stored,
    /// Stored earlier under the same key; acknowledged again (`AA`/`CA`), not stored twice.
    Duplicate,
    /// Not understood (does not parse, or MSH-10 is empty): `AR`/`CR`, not stored.
    Rejected,
    /// Refused by the store's content check ([`Hl7StoreError::Invalid`]): `AE`/`CE`, not stored.
    Invalid,
    /// The store failed ([`Hl7StoreError::Failed`]): `AE`/`CE`; the sender should resend.
    Failed,
}

impl Disposition {
    /// `stored`, `duplicate`, `rejected`, `invalid` or `failed` (for logs and metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Duplicate => "duplicate",
            Self::Rejected => "rejected",
            Self::Invalid => "invalid",
            Self::Failed => "failed",
        }
    }

    /// True for [`Stored`](Self::Stored) and [`Duplicate`](Self::Duplicate): the message is
    /// safely stored and the ACK is an accept.
    pub fn is_accepted(self) -> bool {
        matches!(self, Self::Stored | Self::Duplicate)
    }
}

/// The result of [`Hl7Handler::process`]: the acknowledgement and what happened.
#[derive(Debug, Clone)]
pub struct Hl7Outcome {
    /// The HL7 ACK message (unframed; always built, also when [`wanted`](Self::wanted) is
    /// false).
    pub ack: Bytes,
    /// MSA-1 of [`ack`](Self::ack).
    pub code: AckCode,
    /// What happened to the message.
    pub disposition: Disposition,
    /// Whether the sender asked for this acknowledgement: always in original mode; in
    /// enhanced mode as MSH-15 (accept acknowledgement type, table 0155) says for this
    /// outcome. The MLLP handler sends nothing when false; an HTTP adapter answers anyway.
    pub wanted: bool,
    /// The message's key, when it parsed and had an MSH-10.
    pub key: Option<MessageKey>,
    /// The ERR detail carried by the ACK, if any.
    pub error: Option<ErrorDetail>,
}

impl Hl7Outcome {
    /// True if the message is stored (now or earlier) and the ACK is an accept.
    pub fn accepted(&self) -> bool {
        self.disposition.is_accepted()
    }
}

/// Counters of an [`Hl7Handler`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hl7Stats {
    /// Messages stored (first time seen).
    pub stored: u64,
    /// Duplicates acknowledged again without storing.
    pub duplicates: u64,
    /// Messages rejected (unparseable, no MSH-10).
    pub rejected: u64,
    /// Messages whose content the store refused ([`Hl7StoreError::Invalid`]).
    pub invalid: u64,
    /// Store failures.
    pub store_errors: u64,
}

/// The counters behind [`Hl7Stats`], shared by [`Hl7Handler`] and the v3 handler.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) stored: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) invalid: AtomicU64,
    pub(crate) store_errors: AtomicU64,
}

impl Counters {
    /// The counts so far.
    pub(crate) fn snapshot(&self) -> Hl7Stats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Hl7Stats {
            stored: r(&self.stored),
            duplicates: r(&self.duplicates),
            rejected: r(&self.rejected),
            invalid: r(&self.invalid),
            store_errors: r(&self.store_errors),
        }
    }
}

/// A callback told about every message [`Hl7Handler::process`] handled (see
/// [`Hl7Handler::observe`]).
type Observer = std::sync::Arc<dyn Fn(&Hl7Outcome, usize) + Send + Sync>;

/// The HL7 handler; see the [module documentation](self).
///
/// ```
/// use xenrad_mllp::hl7::{Hl7Handler, MemoryStore};
/// use xenrad_mllp::server::{Server, ServerConfig};
///
/// let server = Server::new(Hl7Handler::new(MemoryStore::default()), ServerConfig::default());
/// assert_eq!(server.handler().stats().stored, 0);
/// ```
pub struct Hl7Handler<S> {
    store: S,
    commit_blocks: bool,
    ids: AckIds,
    observer: Option<Observer>,
    counters: Counters,
}

impl<S: Hl7Store> Hl7Handler<S> {
    /// A handler storing into `store` and answering with HL7 ACK messages.
    pub fn new(store: S) -> Self {
        Self {
            store,
            commit_blocks: false,
            ids: AckIds::system(),
            observer: None,
            counters: Counters::default(),
        }
    }

    /// Answer with MLLP release 2 commit blocks (`<ACK>` once stored, `<NAK>` otherwise)
    /// instead of HL7 ACK messages.
    #[must_use]
    pub fn commit_blocks(mut self, on: bool) -> Self {
        self.commit_blocks = on;
        self
    }

    /// Generate the ACKs' MSH-7 and MSH-10 with `ids` (e.g. on an injected clock) instead of
    /// [`AckIds::system`] (UTC, see [`AckIds`]).
    #[must_use]
    pub fn ack_ids(mut self, ids: AckIds) -> Self {
        self.ids = ids;
        self
    }

    /// Calls `f` once for every message processed (through MLLP or [`process`](Self::process)),
    /// with its outcome and its size in bytes, after the store returned and before the reply
    /// is sent: the hook for metrics and logs, so that every transport sharing this handler
    /// counts alike. `f` runs on the task processing the message; keep it short.
    #[must_use]
    pub fn observe(mut self, f: impl Fn(&Hl7Outcome, usize) + Send + Sync + 'static) -> Self {
        self.observer = Some(std::sync::Arc::new(f));
        self
    }

    /// Whether the MLLP [`Handler`] answers with release 2 commit blocks
    /// ([`commit_blocks`](Self::commit_blocks)).
    pub fn uses_commit_blocks(&self) -> bool {
        self.commit_blocks
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Counters so far.
    pub fn stats(&self) -> Hl7Stats {
        self.counters.snapshot()
    }

    /// Processes one HL7 v2 message without any transport: parse, check MSH-10, store through
    /// the [`Hl7Store`], build the ACK (HL7 v2.5.1 ch. 2.9). Usable from MLLP (the
    /// [`Handler`] impl calls it) and from HTTP or other adapters alike.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use xenrad_mllp::hl7::{Disposition, Hl7Handler, MemoryStore};
    /// use xenrad_hl7v2::ack::AckCode;
    ///
    /// let h = Hl7Handler::new(MemoryStore::default());
    /// let msg = b"MSH|^~\\&|RIS|HOSP|PACS|RAD|20240101||ORM^O01|ORD-1|P|2.5.1\r";
    /// let out = h.process(msg.to_vec().into()).await;
    /// assert_eq!((out.code, out.disposition), (AckCode::AA, Disposition::Stored));
    /// let again = h.process(msg.to_vec().into()).await;
    /// assert_eq!((again.code, again.disposition), (AckCode::AA, Disposition::Duplicate));
    /// assert_eq!(xenrad_mllp::peek::msa(&again.ack), Some((&b"AA"[..], &b"ORD-1"[..])));
    /// # });
    /// ```
    pub async fn process(&self, raw: Bytes) -> Hl7Outcome {
        let len = raw.len();
        let out = self.process_unobserved(raw).await;
        if let Some(f) = &self.observer {
            f(&out, len);
        }
        out
    }

    async fn process_unobserved(&self, raw: Bytes) -> Hl7Outcome {
        let parsed = match Message::parse(&raw) {
            Ok(m) => m,
            Err(e) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                let detail = ErrorDetail::from_parse_error(&e);
                return Hl7Outcome {
                    ack: ack_unparseable_with(&raw, Some(&detail), &self.ids.next()).into(),
                    code: AckCode::AR,
                    disposition: Disposition::Rejected,
                    wanted: true,
                    key: None,
                    error: Some(detail),
                };
            }
        };
        // Original or enhanced mode and MSH-15, read once (HL7 v2.5.1 ch. 2.9.2, 2.9.3).
        let mode = AckMode::of(&parsed);
        let finish = |outcome: Outcome, disposition, key, error: Option<ErrorDetail>| {
            let code = mode.code(outcome);
            Hl7Outcome {
                ack: ack_with(&parsed, code, error.as_slice(), &self.ids.next()).into(),
                code,
                disposition,
                wanted: mode.wants_ack(outcome),
                key,
                error,
            }
        };
        // Syntax every receiver checks whatever the message type: escape sequences closed
        // within their element (MSH-2 describes the delimiters really used) and MSH-15/16
        // from table 0155 (xenrad_hl7v2::validate::well_formed). Refused before storage.
        if let Err(p) = xenrad_hl7v2::validate::well_formed(&parsed) {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return finish(
                Outcome::Reject,
                Disposition::Rejected,
                None,
                Some(p.to_error_detail()),
            );
        }
        // HL7 v2.5.1 ch. 2.14.9.10: MSH-10 identifies the message; without it there is
        // nothing to acknowledge against or to de-duplicate on.
        let Some(control_id) = parsed
            .control_id()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
        else {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            let e = ErrorDetail::new(
                ErrorCode::RequiredFieldMissing,
                "MSH-10 (message control id) is empty",
            );
            return finish(Outcome::Reject, Disposition::Rejected, None, Some(e));
        };
        let raw_field = |f: Option<xenrad_hl7v2::Field<'_>>| {
            f.map(|f| String::from_utf8_lossy(f.raw()).into_owned())
                .unwrap_or_default()
        };
        let key = MessageKey {
            sending_application: raw_field(parsed.sending_application()),
            sending_facility: raw_field(parsed.sending_facility()),
            control_id,
        };
        match self.store.store(&parsed, &key, &raw).await {
            Ok(stored) => {
                let (counter, disposition) = match stored {
                    Stored::New => (&self.counters.stored, Disposition::Stored),
                    Stored::Duplicate => (&self.counters.duplicates, Disposition::Duplicate),
                };
                counter.fetch_add(1, Ordering::Relaxed);
                finish(Outcome::Accept, disposition, Some(key), None)
            }
            Err(Hl7StoreError::Invalid(e)) => {
                self.counters.invalid.fetch_add(1, Ordering::Relaxed);
                finish(Outcome::Error, Disposition::Invalid, Some(key), Some(e))
            }
            Err(Hl7StoreError::Failed(e)) => {
                self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                finish(Outcome::Error, Disposition::Failed, Some(key), Some(e))
            }
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Hl7Handler<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hl7Handler")
            .field("store", &self.store)
            .field("commit_blocks", &self.commit_blocks)
            .field("ids", &self.ids)
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Hl7Store> Handler for Hl7Handler<S> {
    async fn handle(&self, msg: Bytes, _conn: &ConnectionInfo) -> Reply {
        let out = self.process(msg).await;
        if self.commit_blocks {
            return if out.accepted() {
                Reply::commit_ack()
            } else {
                Reply::commit_nak()
            };
        }
        if out.wanted {
            Reply::ack(out.ack)
        } else {
            Reply::none()
        }
    }
}
