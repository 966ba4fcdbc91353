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
use crate::scp::{Handler, QueryFinal, QueryRequest, SendError, SubOperations};
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

/// What the association task tells a C-GET worker.
pub(crate) enum Feedback {
    /// The sub-operation's C-STORE-RQ was queued in this other transfer syntax: the stored
    /// bytes were dropped, send the data set re-encoded.
    Transcode(String),
    /// The sub-operation could not start (its stored bytes were dropped).
    Failed(SendError),
    /// Its C-STORE-RSP status.
    Rsp(u16),
    /// The association cannot carry it any more.
    Lost,
}

/// How one C-GET sub-operation ended for the worker.
enum SubEnd {
    Status(u16),
    Failed,
    /// The association is gone: nothing more can be sent.
    Gone,
}

/// Runs a C-GET on the blocking pool (PS3.4 C.4.3.3): the handler's instances, each sent as
/// a C-STORE sub-operation on this association through the association task, a pending
/// C-GET-RSP with the counts after each, the final response from the tally.
pub(crate) fn run_get(
    h: &dyn Handler,
    q: &QueryRequest,
    cancel: &AtomicBool,
    tx: &mpsc::Sender<Answer>,
    mut fb: mpsc::UnboundedReceiver<Feedback>,
) -> QueryFinal {
    let items = match h.retrieve(q) {
        Ok(v) => v,
        Err(fin) => return fin,
    };
    let mut tally = RetrieveTally::new(items.len());
    for item in &items {
        if cancel.load(Ordering::Relaxed) {
            // PS3.4 C.4.3.3.3: Cancel with the counts so far.
            return tally.finish(true, &q.transfer_syntax);
        }
        match get_one(item, q, tx, &mut fb) {
            SubEnd::Status(st) => tally.record_status(&item.sop_instance_uid, st),
            SubEnd::Failed => tally.record(&item.sop_instance_uid, SubOutcome::Failed),
            SubEnd::Gone => return tally.finish(true, &q.transfer_syntax),
        }
        // PS3.4 C.4.3.1.5: a pending response after each sub-operation.
        if tx
            .blocking_send(Answer::Progress(q.id, tally.counts()))
            .is_err()
        {
            return tally.finish(true, &q.transfer_syntax);
        }
    }
    tally.finish(cancel.load(Ordering::Relaxed), &q.transfer_syntax)
}

fn get_one(
    item: &RetrieveInstance,
    q: &QueryRequest,
    tx: &mpsc::Sender<Answer>,
    fb: &mut mpsc::UnboundedReceiver<Feedback>,
) -> SubEnd {
    let Ok(mut src) = Part10Source::open(&item.path) else {
        return SubEnd::Failed;
    };
    let op = (
        src.sop_class_uid.clone(),
        src.sop_instance_uid.clone(),
        src.transfer_syntax_uid.clone(),
    );
    if tx
        .blocking_send(Answer::SubBegin(q.id, Box::new(op)))
        .is_err()
    {
        return SubEnd::Gone;
    }
    // The stored bytes follow SubBegin at once; the association task drops them when the
    // sub-operation cannot start as stored, and says so.
    if src.remaining() == 0
        && tx
            .blocking_send(Answer::SubData(bytes::Bytes::new(), true, true))
            .is_err()
    {
        return SubEnd::Gone;
    }
    while src.remaining() > 0 {
        let Ok(Some(chunk)) = src.read_chunk(SEND_PIECE) else {
            // The data set cannot be finished and the peer is waiting for it: the
            // association has to go (PS3.8 §7.3.1, A-ABORT).
            let _ = tx.blocking_send(Answer::Abort(format!(
                "{}: could not be read to its end",
                item.path.display()
            )));
            return SubEnd::Gone;
        };
        let last = src.remaining() == 0;
        if tx
            .blocking_send(Answer::SubData(chunk, last, true))
            .is_err()
        {
            return SubEnd::Gone;
        }
    }
    let used = match fb.blocking_recv() {
        Some(Feedback::Rsp(st)) => return SubEnd::Status(st),
        Some(Feedback::Transcode(t)) => t,
        // No context for this SOP class/transfer syntax with the peer as SCP: failed.
        Some(Feedback::Failed(SendError::NoContext { .. })) => return SubEnd::Failed,
        _ => return SubEnd::Gone,
    };
    // Only between native transfer syntaxes, re-encoded with dicom-rs: the one case where a
    // whole instance is in memory.
    let ds = dicom_object::open_file(&item.path)
        .map_err(|e| e.to_string())
        .and_then(|obj| {
            crate::scp::retrieve::encode_dataset(&obj, &used).map_err(|e| e.to_string())
        });
    match ds {
        Ok(ds) => {
            if tx
                .blocking_send(Answer::SubData(bytes::Bytes::from(ds), true, false))
                .is_err()
            {
                return SubEnd::Gone;
            }
            match fb.blocking_recv() {
                Some(Feedback::Rsp(st)) => SubEnd::Status(st),
                _ => SubEnd::Gone,
            }
        }
        Err(why) => {
            let _ = tx.blocking_send(Answer::Abort(format!(
                "{}: cannot re-encode: {why}",
                item.path.display()
            )));
            SubEnd::Gone
        }
    }
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
