//! A ready-made HL7 v3 handler beside [`Hl7Handler`](crate::hl7::Hl7Handler): parses each
//! message with `xenrad-hl7v3`'s strict pass, stores it through a caller-supplied
//! [`V3Store`], and answers with an MCCI_IN000002UV01 accept acknowledgement.
//!
//! Rules (HL7 v3 NE Transmission Infrastructure, "Accept Level Acknowledgement",
//! MCCI_MT000200UV01):
//! - a message that is not well-formed XML, is not in the `urn:hl7-org:v3` namespace, or has
//!   no message `id` is rejected (`CR`, detail code `SYN102`/`SYN105`, the parse error's line
//!   and column) and not stored;
//! - a stored message, or one stored earlier under the same [`V3MessageKey`] (sender device id
//!   and message id), is accepted (`CA`) — the accept is built only after the store returned,
//!   so a durable store makes it a durable commit; de-duplication is the store's job;
//! - a message the store refuses or fails to store gets `CE` with the store's detail;
//! - `acceptAckCode` decides whether the sender wants the ack: `AL` (or absent) always, `ER`
//!   only on error or reject, `NE` never ([`V3Outcome::wanted`]).
//!
//! [`V3Handler::process`] is the transport-free core for HTTP or other adapters; the MLLP
//! [`Handler`] impl (MLLP release 2 is also an HL7 v3 transport) maps it to a [`Reply`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use xenrad_hl7v3::{AckBuilder, AckDetail, Message, Outcome};

use crate::hl7::{Counters, Disposition, Hl7Stats, Stored};
use crate::server::{ConnectionInfo, Handler, Reply};

/// Identity of an HL7 v3 message for duplicate suppression: the first sender device id and
/// the message `id` (each root and extension as written).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct V3MessageKey {
    /// `sender/device/id/@root`.
    pub sender_root: Option<String>,
    /// `sender/device/id/@extension`.
    pub sender_extension: Option<String>,
    /// `id/@root` of the message (never empty: a message without it is rejected).
    pub id_root: String,
    /// `id/@extension` of the message.
    pub id_extension: Option<String>,
}

/// Why a [`V3Store`] did not store a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V3StoreError {
    /// The content is not acceptable to the application: answered `CE` with this detail;
    /// resending the same message will not help.
    Invalid(AckDetail),
    /// Storing failed (I/O, database): answered `CE` with this detail (what the sender sees;
    /// keep internals out of it); the sender should resend later.
    Failed(AckDetail),
}

/// A store that sees the parsed message: the hook an application uses to check content,
/// project it and store it durably and idempotently. Return only once the message is as
/// durable as the acknowledgement you want to give.
pub trait V3Store: Send + Sync + 'static {
    /// Checks and stores `msg` (parsed from `raw`) under `key`, unless that key is already
    /// stored ([`Stored::Duplicate`]).
    fn store(
        &self,
        msg: &Message<'_>,
        key: &V3MessageKey,
        raw: &Bytes,
    ) -> impl Future<Output = Result<Stored, V3StoreError>> + Send;
}

/// The result of [`V3Handler::process`].
#[derive(Debug, Clone)]
pub struct V3Outcome {
    /// The MCCI_IN000002UV01 accept acknowledgement (always built, also when
    /// [`wanted`](Self::wanted) is false).
    pub ack: Bytes,
    /// What the ack acknowledges: accept, error or reject.
    pub outcome: Outcome,
    /// What happened to the message.
    pub disposition: Disposition,
    /// Whether the received `acceptAckCode` asks for this ack. The MLLP handler sends nothing
    /// when false; an HTTP adapter answers anyway.
    pub wanted: bool,
    /// The message's key, when it parsed and had an id.
    pub key: Option<V3MessageKey>,
    /// The `acknowledgementDetail` carried by the ack, if any.
    pub detail: Option<AckDetail>,
}

impl V3Outcome {
    /// True if the message is stored (now or earlier) and the ack is an accept.
    pub fn accepted(&self) -> bool {
        self.disposition.is_accepted()
    }
}

/// A callback told about every processed message (see [`V3Handler::observe`]).
type Observer = Arc<dyn Fn(&V3Outcome, usize) + Send + Sync>;

/// The HL7 v3 handler; see the [module documentation](self).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use bytes::Bytes;
/// use xenrad_mllp::hl7::{Disposition, Stored};
/// use xenrad_mllp::hl7v3::{V3Handler, V3MessageKey, V3Store, V3StoreError};
///
/// /// Keeps nothing (an example): every message is new.
/// struct Accept;
/// impl V3Store for Accept {
///     async fn store(&self, _m: &xenrad_hl7v3::Message<'_>, _k: &V3MessageKey, _r: &Bytes)
///         -> Result<Stored, V3StoreError> {
///         Ok(Stored::New)
///     }
/// }
/// let h = V3Handler::new(Accept);
/// let xml = br#"<PRPA_IN201301UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="1.2.3" extension="42"/></PRPA_IN201301UV02>"#;
/// let out = h.process(Bytes::from_static(xml)).await;
/// assert_eq!(out.disposition, Disposition::Stored);
/// assert!(std::str::from_utf8(&out.ack).unwrap().contains(r#"code="CA""#));
/// assert_eq!(h.process(Bytes::from_static(b"<a>")).await.disposition, Disposition::Rejected);
/// # });
/// ```
pub struct V3Handler<S> {
    store: S,
    commit_blocks: bool,
    observer: Option<Observer>,
    counters: Counters,
}

impl<S: std::fmt::Debug> std::fmt::Debug for V3Handler<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V3Handler")
            .field("store", &self.store)
            .field("commit_blocks", &self.commit_blocks)
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: V3Store> V3Handler<S> {
    /// A handler storing into `store` and answering with MCCI accept acks.
    pub fn new(store: S) -> Self {
        Self {
            store,
            commit_blocks: false,
            observer: None,
            counters: Counters::default(),
        }
    }

    /// Answer MLLP senders with MLLP release 2 commit blocks (`<ACK>` once stored, `<NAK>`
    /// otherwise) instead of accept acks.
    #[must_use]
    pub fn commit_blocks(mut self, on: bool) -> Self {
        self.commit_blocks = on;
        self
    }

    /// Calls `f` once for every message processed (through MLLP or
    /// [`process`](Self::process)), with its outcome and size in bytes: the hook for metrics
    /// and logs. `f` runs on the task processing the message; keep it short.
    #[must_use]
    pub fn observe(mut self, f: impl Fn(&V3Outcome, usize) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(f));
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Counters so far.
    pub fn stats(&self) -> Hl7Stats {
        self.counters.snapshot()
    }

    /// Processes one HL7 v3 message without any transport: strict parse, key, store through
    /// the [`V3Store`], accept ack.
    pub async fn process(&self, raw: Bytes) -> V3Outcome {
        let len = raw.len();
        let out = self.process_unobserved(raw).await;
        if let Some(f) = &self.observer {
            f(&out, len);
        }
        out
    }

    async fn process_unobserved(&self, raw: Bytes) -> V3Outcome {
        let msg = match xenrad_hl7v3::strict(&raw) {
            Ok(m) => m,
            Err(e) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                // The lenient header pass may still name the message being rejected.
                let h = xenrad_hl7v3::header(&raw).unwrap_or_default();
                let detail = AckDetail::from_error(&e);
                let ack = AckBuilder::new(&h, Outcome::Reject).detail(detail.clone());
                return V3Outcome {
                    wanted: ack.is_requested(),
                    ack: ack.build().into(),
                    outcome: Outcome::Reject,
                    disposition: Disposition::Rejected,
                    key: None,
                    detail: Some(detail),
                };
            }
        };
        let h = msg.header();
        let finish = |outcome, disposition, key, detail: Option<AckDetail>| {
            let mut ack = AckBuilder::new(h, outcome);
            if let Some(d) = &detail {
                ack = ack.detail(d.clone());
            }
            V3Outcome {
                wanted: ack.is_requested(),
                ack: ack.build().into(),
                outcome,
                disposition,
                key,
                detail,
            }
        };
        if !msg.is_hl7() {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            let d = AckDetail::error("the root element is not in the urn:hl7-org:v3 namespace")
                .with_code("SYN102");
            return finish(Outcome::Reject, Disposition::Rejected, None, Some(d));
        }
        // The message id identifies the message (MCCI_MT000100UV01 `id`, 1..1): without it
        // there is nothing to acknowledge against or to de-duplicate on.
        let Some(id_root) = h
            .message_id
            .as_ref()
            .and_then(|i| i.root.as_deref())
            .map(str::to_owned)
        else {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            let d = AckDetail::error("the message has no id").with_code("SYN105");
            return finish(Outcome::Reject, Disposition::Rejected, None, Some(d));
        };
        let owned = |c: Option<&str>| c.map(str::to_owned);
        let key = V3MessageKey {
            sender_root: owned(h.sender.as_ref().and_then(|i| i.root.as_deref())),
            sender_extension: owned(h.sender.as_ref().and_then(|i| i.extension.as_deref())),
            id_root,
            id_extension: owned(h.message_id.as_ref().and_then(|i| i.extension.as_deref())),
        };
        match self.store.store(&msg, &key, &raw).await {
            Ok(stored) => {
                let (counter, disposition) = match stored {
                    Stored::New => (&self.counters.stored, Disposition::Stored),
                    Stored::Duplicate => (&self.counters.duplicates, Disposition::Duplicate),
                };
                counter.fetch_add(1, Ordering::Relaxed);
                finish(Outcome::Accept, disposition, Some(key), None)
            }
            Err(V3StoreError::Invalid(d)) => {
                self.counters.invalid.fetch_add(1, Ordering::Relaxed);
                finish(Outcome::Error, Disposition::Invalid, Some(key), Some(d))
            }
            Err(V3StoreError::Failed(d)) => {
                self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                finish(Outcome::Error, Disposition::Failed, Some(key), Some(d))
            }
        }
    }
}

impl<S: V3Store> Handler for V3Handler<S> {
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
