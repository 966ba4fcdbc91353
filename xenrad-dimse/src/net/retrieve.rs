//! The I/O half of C-GET, C-MOVE and Storage Commitment reports for the [`super::Server`]:
//! Part 10 files read on the blocking pool and streamed through the sans-IO session (C-GET
//! sub-operations on the same association, PS3.4 C.4.3), or sent by C-STORE on an
//! association of our own to the Move Destination (PS3.4 C.4.2), and the N-EVENT-REPORT of
//! a Storage Commitment on a new association when the requester's is gone (PS3.4 J.3.3).

use super::client::{ClientConfig, ClientError, SEND_PIECE, ScuAssociation};
use super::server::Answer;
use crate::assoc::Timeouts;
use crate::assoc::policy::{sop, ts};
use crate::dimse::status;
use crate::scp::commitment::CommitmentResult;
use crate::scp::retrieve::{Part10Source, RetrieveInstance, RetrieveTally, SubOutcome};
use crate::scp::{Handler, QueryFinal, QueryRequest, SubOperations};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// AE titles this server may open associations to (C-MOVE destinations, Storage
/// Commitment requesters), each with its `host:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    map: HashMap<String, String>,
}

impl Peers {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a peer.
    pub fn insert(&mut self, ae: impl Into<String>, addr: impl Into<String>) {
        self.map.insert(ae.into(), addr.into());
    }

    /// The `host:port` of an AE title.
    pub fn get(&self, ae: &str) -> Option<&str> {
        self.map.get(ae.trim()).map(String::as_str)
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True without peers.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Parses `AE=HOST:PORT` (AE title 1–16 characters, a port number after the last `:`).
    pub fn parse_entry(s: &str) -> Result<(String, String), String> {
        let (ae, addr) = s
            .split_once('=')
            .ok_or_else(|| format!("peer {s:?}: expected AE=HOST:PORT"))?;
        let ae = ae.trim();
        if ae.is_empty() || ae.len() > 16 {
            return Err(format!("peer {s:?}: AE title must be 1 to 16 characters"));
        }
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("peer {s:?}: expected HOST:PORT after '='"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("peer {s:?}: bad host or port"));
        }
        Ok((ae.to_string(), addr.to_string()))
    }
}

impl FromIterator<(String, String)> for Peers {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self {
            map: iter.into_iter().collect(),
        }
    }
}

/// What the server needs for the associations it opens itself.
#[derive(Debug, Clone)]
pub struct RetrieveConfig {
    /// Move destinations and Storage Commitment requesters by AE title.
    pub peers: Peers,
    /// Associations this server keeps open at once for C-MOVE sub-operations and
    /// commitment reports, over all its associations; a C-MOVE beyond it is refused 0xA702
    /// with an Error Comment (PS3.4 C.4.2.1.5).
    pub max_sub_associations: usize,
    /// Connect + negotiate limit for such an association.
    pub connect_timeout: Duration,
    /// Our maximum PDU length on them.
    pub max_pdu: u32,
}

impl Default for RetrieveConfig {
    fn default() -> Self {
        Self {
            peers: Peers::default(),
            max_sub_associations: 8,
            connect_timeout: Duration::from_secs(10),
            max_pdu: 128 * 1024,
        }
    }
}

/// What a C-GET worker hands the association task, in order, through a bounded channel
/// of [`GET_QUEUE`] items: the association task takes the next instance's items while the
/// peer writes the previous one, so the file is open and its first pieces read (prefetched)
/// by the time the C-STORE-RSP comes back, and no thread hand-off sits between that
/// response and the next C-STORE-RQ.
pub(crate) enum GetItem {
    /// The handler selected this many instances.
    Total(usize),
    /// The handler refused the retrieve: its final response.
    Refused(QueryFinal),
    /// Start the next sub-operation with this stored instance.
    Begin(Box<RetrieveInstance>),
    /// The next piece of its stored data set; true: the last.
    Data(bytes::Bytes, bool),
    /// An instance whose file could not be opened: a failed sub-operation.
    Unreadable(String),
    /// A data set whose first bytes went out could not be read to its end.
    Abort(String),
    /// No more instances (all sent, or the retrieve was cancelled).
    End,
}

/// Items a C-GET worker reads ahead of the association task (each piece at most
/// [`GET_PIECE`] bytes): this bounds what one association holds for sending, 2 MiB (see the
/// crate README).
pub const GET_QUEUE: usize = 4;

/// Bytes of a stored data set per C-GET item (sliced into PDUs without copying): large
/// enough that a CT-sized instance is one or two items, so the reading thread is woken once
/// or twice per instance, not once per 128 KiB.
pub const GET_PIECE: usize = 4 * SEND_PIECE;

/// Runs a C-GET's reading half on the blocking pool (PS3.4 C.4.3.3): the handler's
/// instances, each opened and streamed as [`GetItem`]s to the association task, which
/// sends them as C-STORE sub-operations, tallies their responses and sends the pending and
/// final C-GET-RSPs. Stops at a cancel, or when the association task is gone.
pub(crate) fn run_get(
    h: &dyn Handler,
    q: &QueryRequest,
    cancel: &AtomicBool,
    tx: &mpsc::Sender<GetItem>,
) {
    let items = match h.retrieve(q) {
        Ok(v) => v,
        Err(fin) => {
            let _ = tx.blocking_send(GetItem::Refused(fin));
            return;
        }
    };
    if tx.blocking_send(GetItem::Total(items.len())).is_err() {
        return;
    }
    for item in items {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        if !stream_one(item, tx) {
            return;
        }
    }
    let _ = tx.blocking_send(GetItem::End);
}

/// Streams one stored instance; false when nothing more can be sent.
fn stream_one(item: RetrieveInstance, tx: &mpsc::Sender<GetItem>) -> bool {
    let Ok(mut src) = Part10Source::open(&item.path) else {
        return tx
            .blocking_send(GetItem::Unreadable(item.sop_instance_uid))
            .is_ok();
    };
    let path = item.path.clone();
    // The File Meta of the file is what goes out (the index may predate a rewrite).
    let begin = RetrieveInstance {
        sop_class_uid: std::mem::take(&mut src.sop_class_uid),
        sop_instance_uid: std::mem::take(&mut src.sop_instance_uid),
        transfer_syntax_uid: std::mem::take(&mut src.transfer_syntax_uid),
        path: item.path,
    };
    if tx.blocking_send(GetItem::Begin(Box::new(begin))).is_err() {
        return false;
    }
    if src.remaining() == 0 {
        return tx
            .blocking_send(GetItem::Data(bytes::Bytes::new(), true))
            .is_ok();
    }
    while src.remaining() > 0 {
        let Ok(Some(chunk)) = src.read_chunk(GET_PIECE) else {
            // The data set cannot be finished and the peer is waiting for it: the
            // association has to go (PS3.8 §7.3.1, A-ABORT).
            let _ = tx.blocking_send(GetItem::Abort(format!(
                "{}: could not be read to its end",
                path.display()
            )));
            return false;
        };
        let last = src.remaining() == 0;
        if tx.blocking_send(GetItem::Data(chunk, last)).is_err() {
            return false;
        }
    }
    true
}

/// Re-encodes a stored instance's data set into another native transfer syntax with
/// dicom-rs: the one case of a C-GET where a whole instance is in memory (no context was
/// accepted for the transfer syntax it is stored in).
pub(crate) fn transcode(path: &std::path::Path, ts_uid: &str) -> Result<bytes::Bytes, String> {
    let obj = dicom_object::open_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::scp::retrieve::encode_dataset(&obj, ts_uid)
        .map(bytes::Bytes::from)
        .map_err(|e| format!("{}: cannot re-encode: {e}", path.display()))
}

/// One presentation context per (SOP class, transfer syntax) of the instances to send,
/// so each goes out in the transfer syntax it is stored in (at most 128, PS3.8 §9.3.2.2).
fn store_contexts(items: &[RetrieveInstance]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for i in items {
        if out.len() == 128 {
            break;
        }
        if !out
            .iter()
            .any(|(c, t)| *c == i.sop_class_uid && t[0] == i.transfer_syntax_uid)
        {
            out.push((i.sop_class_uid.clone(), vec![i.transfer_syntax_uid.clone()]));
        }
    }
    out
}

/// Runs a C-MOVE (PS3.4 C.4.2.3): the destination looked up in the peer table (unknown:
/// 0xA801), the handler's instances sent by C-STORE on our own association to it with the
/// Move Originator fields (PS3.7 §9.1.1.1), a pending response after each sub-operation.
pub(crate) async fn run_move(
    h: Arc<dyn Handler>,
    q: &QueryRequest,
    cancel: &AtomicBool,
    tx: &mpsc::Sender<Answer>,
    rc: &RetrieveConfig,
    permits: Arc<Semaphore>,
    our_ae: &str,
) -> QueryFinal {
    let dest = q
        .move_destination
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_string();
    let Some(addr) = rc.peers.get(&dest).map(str::to_string) else {
        return QueryFinal {
            status: status::MOVE_DESTINATION_UNKNOWN,
            error_comment: Some(format!("move destination {dest:?} is not known here")),
            ..QueryFinal::default()
        };
    };
    let q2 = q.clone();
    let items = match tokio::task::spawn_blocking(move || h.retrieve(&q2)).await {
        Ok(Ok(v)) => v,
        Ok(Err(fin)) => return fin,
        Err(_) => {
            return QueryFinal {
                status: status::PROCESSING_FAILURE,
                error_comment: Some("the retrieve handler failed".into()),
                ..QueryFinal::default()
            };
        }
    };
    if items.is_empty() {
        return QueryFinal {
            status: status::SUCCESS,
            counts: Some(SubOperations::default()),
            ..QueryFinal::default()
        };
    }
    let refused = |why: String| QueryFinal {
        status: status::OUT_OF_RESOURCES_SUBOPS,
        error_comment: Some(why),
        ..QueryFinal::default()
    };
    let Ok(_permit) = permits.try_acquire_owned() else {
        return refused(format!(
            "limit of {} sub-associations reached",
            rc.max_sub_associations
        ));
    };
    let cfg = ClientConfig {
        calling_ae: our_ae.to_string(),
        called_ae: dest.clone(),
        contexts: store_contexts(&items),
        max_pdu: rc.max_pdu,
        timeouts: Timeouts::default(),
    };
    let mut assoc = match tokio::time::timeout(
        rc.connect_timeout,
        ScuAssociation::connect(&addr, &cfg),
    )
    .await
    {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return refused(format!("{dest}: {e}")),
        Err(_) => return refused(format!("{dest}: no association in time")),
    };
    let mut tally = RetrieveTally::new(items.len());
    let originator = (q.calling_ae.as_str(), q.message_id.unwrap_or(0));
    let mut cancelled = false;
    let mut alive = true;
    for item in &items {
        if cancel.load(Ordering::Relaxed) {
            cancelled = true;
            break;
        }
        if !alive {
            tally.record(&item.sop_instance_uid, SubOutcome::Failed);
            continue;
        }
        match assoc.store_file(&item.path, Some(originator)).await {
            Ok(r) => tally.record_status(&item.sop_instance_uid, r.status),
            Err(ClientError::NoContext(_) | ClientError::Local(_)) => {
                tally.record(&item.sop_instance_uid, SubOutcome::Failed);
            }
            Err(_) => {
                // The destination's association is gone: this and the rest fail.
                tally.record(&item.sop_instance_uid, SubOutcome::Failed);
                alive = false;
            }
        }
        if tx
            .send(Answer::Progress(q.id, tally.counts()))
            .await
            .is_err()
        {
            cancelled = true;
            break;
        }
    }
    if alive {
        let _ = assoc.release().await;
    }
    tally.finish(cancelled, &q.transfer_syntax)
}

/// Sends a Storage Commitment result on a new association to the requester (PS3.4
/// J.3.3): as association requestor we propose the SCP role for the Storage Commitment
/// Push Model SOP class (PS3.7 D.3.3.4).
pub(crate) async fn send_report_elsewhere(
    rc: &RetrieveConfig,
    permits: Arc<Semaphore>,
    our_ae: &str,
    requester: &str,
    r: &CommitmentResult,
) -> Result<(), ClientError> {
    let addr = rc
        .peers
        .get(requester)
        .ok_or_else(|| ClientError::Local(format!("{requester} is not in the peer table")))?
        .to_string();
    let _permit = permits
        .acquire_owned()
        .await
        .map_err(|e| ClientError::Local(e.to_string()))?;
    let cfg = ClientConfig {
        calling_ae: our_ae.to_string(),
        called_ae: requester.to_string(),
        contexts: vec![(
            sop::STORAGE_COMMITMENT_PUSH.to_string(),
            vec![
                ts::EXPLICIT_VR_LE.to_string(),
                ts::IMPLICIT_VR_LE.to_string(),
            ],
        )],
        max_pdu: rc.max_pdu,
        timeouts: Timeouts::default(),
    };
    let roles = [(sop::STORAGE_COMMITMENT_PUSH.to_string(), false, true)];
    let mut a = tokio::time::timeout(
        rc.connect_timeout,
        ScuAssociation::connect_with_roles(&addr, &cfg, &roles),
    )
    .await
    .map_err(|_| ClientError::TimedOut("the association to the requester"))??;
    let rsp = a.commitment_report(r).await;
    let _ = a.release().await;
    let rsp = rsp?;
    if rsp.status != status::SUCCESS {
        return Err(ClientError::Status {
            operation: "N-EVENT-REPORT",
            status: rsp.status,
            comment: rsp.error_comment,
        });
    }
    Ok(())
}
