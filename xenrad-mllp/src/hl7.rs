//! A ready-made HL7 v2 [`Handler`]: parses each message with `xenrad-hl7v2`, stores it through a
//! caller-supplied [`MessageStore`], and answers with an ACK built by `xenrad_hl7v2::ack`.
//!
//! Acknowledgement rules (HL7 v2.5.1 ch. 2.9):
//! - original mode (MSH-15 and MSH-16 empty, 2.9.2): `AA` once stored, `AE` if storing failed,
//!   `AR` for a message that does not parse or has no MSH-10;
//! - enhanced mode (2.9.3): commit codes `CA`/`CE`/`CR`, sent or not as MSH-15 (accept
//!   acknowledgement type, table 0155) asks;
//! - a commit/accept is sent only after [`MessageStore::store`] returned, so a durable store
//!   makes the ACK a durable commit;
//! - duplicates (same sender MSH-3/MSH-4 and MSH-10) are acknowledged again without being
//!   stored twice: deciding that is the store's job (it sees the [`MessageKey`]).
//!
//! With [`Hl7Handler::commit_blocks`] the handler answers with MLLP release 2 commit blocks
//! (`<ACK>`/`<NAK>`) instead of HL7 ACK messages.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use xenrad_hl7v2::ack::{AckCode, ErrorCode, ErrorDetail, Outcome, ack, ack_unparseable};
use xenrad_hl7v2::{AckCondition, Message};

use crate::server::{ConnectionInfo, Handler, Reply};

/// Identity of a message for duplicate suppression: sender (MSH-3 and MSH-4, as written) and
/// control id (MSH-10).
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

/// A storage failure; the message is acknowledged with `AE`/`CE` and should be resent.
#[derive(Debug, thiserror::Error)]
#[error("message store: {0}")]
pub struct StoreError(pub String);

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

/// Counters of an [`Hl7Handler`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hl7Stats {
    /// Messages stored (first time seen).
    pub stored: u64,
    /// Duplicates acknowledged again without storing.
    pub duplicates: u64,
    /// Messages rejected (unparseable, no MSH-10).
    pub rejected: u64,
    /// Store failures.
    pub store_errors: u64,
}

/// The HL7 handler; see the [module documentation](self).
///
/// ```
/// use xenrad_mllp::hl7::{Hl7Handler, MemoryStore};
/// use xenrad_mllp::server::{Server, ServerConfig};
///
/// let server = Server::new(Hl7Handler::new(MemoryStore::default()), ServerConfig::default());
/// assert_eq!(server.handler().stats().stored, 0);
/// ```
#[derive(Debug)]
pub struct Hl7Handler<S> {
    store: S,
    commit_blocks: bool,
    stored: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    store_errors: AtomicU64,
}

impl<S: MessageStore> Hl7Handler<S> {
    /// A handler storing into `store` and answering with HL7 ACK messages.
    pub fn new(store: S) -> Self {
        Self {
            store,
            commit_blocks: false,
            stored: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
        }
    }

    /// Answer with MLLP release 2 commit blocks (`<ACK>` once stored, `<NAK>` otherwise)
    /// instead of HL7 ACK messages.
    #[must_use]
    pub fn commit_blocks(mut self, on: bool) -> Self {
        self.commit_blocks = on;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Counters so far.
    pub fn stats(&self) -> Hl7Stats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Hl7Stats {
            stored: r(&self.stored),
            duplicates: r(&self.duplicates),
            rejected: r(&self.rejected),
            store_errors: r(&self.store_errors),
        }
    }

    fn reject(&self, msg: &[u8], error: Option<&ErrorDetail>) -> Reply {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        if self.commit_blocks {
            Reply::commit_nak()
        } else {
            Reply::ack(ack_unparseable(msg, error))
        }
    }
}

/// Whether MSH-15 (enhanced mode) asks for an accept acknowledgement for this outcome
/// (table 0155); original mode always gets one.
fn wants_ack(enhanced: bool, cond: Option<AckCondition>, success: bool) -> bool {
    if !enhanced {
        return true;
    }
    match cond {
        Some(AckCondition::Never) => false,
        Some(AckCondition::Error) => !success,
        Some(AckCondition::Successful) => success,
        Some(AckCondition::Always) | None => true,
    }
}

impl<S: MessageStore> Handler for Hl7Handler<S> {
    async fn handle(&self, msg: Bytes, _conn: &ConnectionInfo) -> Reply {
        // Everything needed after the store call is computed first, so no borrow of the
        // parsed message is held across the await.
        let (key, enhanced, cond, accept) = {
            let parsed = match Message::parse(&msg) {
                Ok(m) => m,
                Err(e) => return self.reject(&msg, Some(&ErrorDetail::from_parse_error(&e))),
            };
            let Some(control_id) = parsed.control_id().filter(|c| !c.is_empty()) else {
                let e = ErrorDetail::new(ErrorCode::RequiredFieldMissing, "MSH-10 is empty");
                return self.reject(&msg, Some(&e));
            };
            let raw = |f: Option<xenrad_hl7v2::Field<'_>>| {
                f.map(|f| String::from_utf8_lossy(f.raw()).into_owned())
                    .unwrap_or_default()
            };
            let key = MessageKey {
                sending_application: raw(parsed.sending_application()),
                sending_facility: raw(parsed.sending_facility()),
                control_id: control_id.into_owned(),
            };
            let enhanced = parsed.is_enhanced_mode();
            let accept = (!self.commit_blocks).then(|| {
                ack(
                    &parsed,
                    AckCode::for_message(&parsed, Outcome::Accept),
                    None,
                )
            });
            (key, enhanced, parsed.accept_ack_type(), accept)
        };
        match self.store.store(&key, msg.clone()).await {
            Ok(stored) => {
                let counter = match stored {
                    Stored::New => &self.stored,
                    Stored::Duplicate => &self.duplicates,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                match accept {
                    None => Reply::commit_ack(),
                    Some(a) if wants_ack(enhanced, cond, true) => Reply::ack(a),
                    Some(_) => Reply::none(),
                }
            }
            Err(e) => {
                self.store_errors.fetch_add(1, Ordering::Relaxed);
                if self.commit_blocks {
                    return Reply::commit_nak();
                }
                if !wants_ack(enhanced, cond, false) {
                    return Reply::none();
                }
                let detail = ErrorDetail::new(ErrorCode::InternalError, e.to_string());
                match Message::parse(&msg) {
                    Ok(parsed) => Reply::ack(ack(
                        &parsed,
                        AckCode::for_message(&parsed, Outcome::Error),
                        Some(&detail),
                    )),
                    Err(_) => Reply::ack(ack_unparseable(&msg, Some(&detail))),
                }
            }
        }
    }
}
