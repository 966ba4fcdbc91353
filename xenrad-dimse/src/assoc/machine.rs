//! The Upper Layer state machine (PS3.8 §9.2, table 9-10) as a sans-IO object.
//!
//! Bytes and the current time go in ([`Association::handle_input`], [`Association::handle_timeout`]);
//! PDUs to send ([`Association::poll_transmit`]) and [`Event`]s come out. The transport
//! connection is the caller's: it closes it when [`Association::is_closed`] turns true.

use super::policy::{AcceptorPolicy, Negotiated, Refusal};
use crate::pdu::{
    self, AssociateRj, AssociateRq, Pdu, PduError, PduErrorKind, abort_reason, encode,
    reader::{PduReader, ReaderLimits},
};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The states of PS3.8 §9.2 (table 9-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Sta1: idle, no association (terminal here: the transport is to be closed).
    Sta1,
    /// Sta2: transport open, awaiting A-ASSOCIATE-RQ (acceptor, ARTIM running).
    Sta2,
    /// Sta3: awaiting the local A-ASSOCIATE response (acceptor, manual responses only).
    Sta3,
    /// Sta4: awaiting the transport connection to open (requestor).
    Sta4,
    /// Sta5: awaiting A-ASSOCIATE-AC or -RJ (requestor).
    Sta5,
    /// Sta6: association established, ready for data transfer.
    Sta6,
    /// Sta7: awaiting A-RELEASE-RP (we sent A-RELEASE-RQ).
    Sta7,
    /// Sta8: awaiting the local A-RELEASE response (the peer asked to release).
    Sta8,
    /// Sta9: release collision, requestor side; awaiting the local A-RELEASE response.
    Sta9,
    /// Sta10: release collision, acceptor side; awaiting A-RELEASE-RP.
    Sta10,
    /// Sta11: release collision, requestor side; awaiting A-RELEASE-RP.
    Sta11,
    /// Sta12: release collision, acceptor side; awaiting the local A-RELEASE response.
    Sta12,
    /// Sta13: awaiting transport close (after RJ, RP or A-ABORT sent; ARTIM running).
    Sta13,
}

impl State {
    /// Every state, in order.
    pub const ALL: [State; 13] = [
        State::Sta1,
        State::Sta2,
        State::Sta3,
        State::Sta4,
        State::Sta5,
        State::Sta6,
        State::Sta7,
        State::Sta8,
        State::Sta9,
        State::Sta10,
        State::Sta11,
        State::Sta12,
        State::Sta13,
    ];
}

/// The events of PS3.8 table 9-9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UlEvent {
    /// Evt1: A-ASSOCIATE request (local user).
    AssociateRequest,
    /// Evt2: transport connection confirmation.
    TransportConnected,
    /// Evt3: A-ASSOCIATE-AC PDU received.
    AssociateAcPdu,
    /// Evt4: A-ASSOCIATE-RJ PDU received.
    AssociateRjPdu,
    /// Evt5: transport connection indication (a connection was accepted).
    TransportIndication,
    /// Evt6: A-ASSOCIATE-RQ PDU received.
    AssociateRqPdu,
    /// Evt7: A-ASSOCIATE response primitive (accept).
    AssociateAccept,
    /// Evt8: A-ASSOCIATE response primitive (reject).
    AssociateReject,
    /// Evt9: P-DATA request primitive.
    PDataRequest,
    /// Evt10: P-DATA-TF PDU received.
    PDataPdu,
    /// Evt11: A-RELEASE request primitive.
    ReleaseRequest,
    /// Evt12: A-RELEASE-RQ PDU received.
    ReleaseRqPdu,
    /// Evt13: A-RELEASE-RP PDU received.
    ReleaseRpPdu,
    /// Evt14: A-RELEASE response primitive.
    ReleaseResponse,
    /// Evt15: A-ABORT request primitive.
    AbortRequest,
    /// Evt16: A-ABORT PDU received.
    AbortPdu,
    /// Evt17: transport connection closed indication.
    TransportClosed,
    /// Evt18: ARTIM timer expired.
    ArtimExpired,
    /// Evt19: unrecognized or invalid PDU received.
    InvalidPdu,
}

impl UlEvent {
    /// Every event, Evt1 to Evt19.
    pub const ALL: [UlEvent; 19] = [
        UlEvent::AssociateRequest,
        UlEvent::TransportConnected,
        UlEvent::AssociateAcPdu,
        UlEvent::AssociateRjPdu,
        UlEvent::TransportIndication,
        UlEvent::AssociateRqPdu,
        UlEvent::AssociateAccept,
        UlEvent::AssociateReject,
        UlEvent::PDataRequest,
        UlEvent::PDataPdu,
        UlEvent::ReleaseRequest,
        UlEvent::ReleaseRqPdu,
        UlEvent::ReleaseRpPdu,
        UlEvent::ReleaseResponse,
        UlEvent::AbortRequest,
        UlEvent::AbortPdu,
        UlEvent::TransportClosed,
        UlEvent::ArtimExpired,
        UlEvent::InvalidPdu,
    ];
}

/// The actions of PS3.8 tables 9-6 to 9-9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // named as in the standard; see `action` for what each does
pub enum Action {
    Ae1,
    Ae2,
    Ae3,
    Ae4,
    Ae5,
    Ae6,
    Ae7,
    Ae8,
    Dt1,
    Dt2,
    Ar1,
    Ar2,
    Ar3,
    Ar4,
    Ar5,
    Ar6,
    Ar7,
    Ar8,
    Ar9,
    Ar10,
    Aa1,
    Aa2,
    Aa3,
    Aa4,
    Aa5,
    Aa6,
    Aa7,
    Aa8,
}

/// PS3.8 table 9-10: the action for `event` in `state`, or `None` where the table has no
/// entry (a local primitive not allowed in that state; PDUs and transport events always
/// have one outside Sta1/Sta4).
///
/// - AE-1 connect; AE-2 send A-ASSOCIATE-RQ; AE-3 AC confirmation; AE-4 RJ confirmation,
///   close; AE-5 accept the connection, start ARTIM; AE-6 stop ARTIM, accept → Sta3 or send
///   RJ → Sta13; AE-7 send AC; AE-8 send RJ, start ARTIM.
/// - DT-1 send P-DATA-TF; DT-2 P-DATA indication.
/// - AR-1 send A-RELEASE-RQ; AR-2 release indication; AR-3 release confirmation, close;
///   AR-4 send A-RELEASE-RP, start ARTIM; AR-5 stop ARTIM; AR-6 P-DATA indication in Sta7;
///   AR-7 send P-DATA-TF in Sta8; AR-8 release collision indication (→ Sta9 requestor,
///   Sta10 acceptor); AR-9 send A-RELEASE-RP (→ Sta11); AR-10 release confirmation (→ Sta12).
/// - AA-1 send A-ABORT (service user), (re)start ARTIM; AA-2 stop ARTIM, close; AA-3
///   A-ABORT / A-P-ABORT indication, close; AA-4 A-P-ABORT indication; AA-5 stop ARTIM;
///   AA-6 ignore the PDU; AA-7 send A-ABORT; AA-8 send A-ABORT (service provider), A-P-ABORT
///   indication, start ARTIM.
///
/// ```
/// use xenrad_dimse::assoc::machine::{Action, State, UlEvent, action};
/// assert_eq!(action(State::Sta7, UlEvent::ReleaseRqPdu), Some(Action::Ar8));
/// assert_eq!(action(State::Sta13, UlEvent::PDataPdu), Some(Action::Aa6));
/// ```
#[allow(clippy::enum_glob_use, clippy::match_same_arms)] // the table reads as in the standard
pub fn action(state: State, event: UlEvent) -> Option<Action> {
    use Action::*;
    use State::*;
    use UlEvent::*;
    let a = match (event, state) {
        (AssociateRequest, Sta1) => Ae1,
        (TransportConnected, Sta4) => Ae2,
        (TransportIndication, Sta1) => Ae5,
        (AssociateAccept, Sta3) => Ae7,
        (AssociateReject, Sta3) => Ae8,
        (PDataRequest, Sta6) => Dt1,
        (PDataRequest, Sta8) => Ar7,
        (ReleaseRequest, Sta6) => Ar1,
        (ReleaseResponse, Sta8 | Sta12) => Ar4,
        (ReleaseResponse, Sta9) => Ar9,
        (AbortRequest, Sta4) => Aa2,
        (AbortRequest, Sta3 | Sta5 | Sta6 | Sta7 | Sta8 | Sta9 | Sta10 | Sta11 | Sta12) => Aa1,
        // Received PDUs.
        (AssociateAcPdu, Sta5) => Ae3,
        (AssociateRjPdu, Sta5) => Ae4,
        (AssociateRqPdu, Sta2) => Ae6,
        (PDataPdu, Sta6) => Dt2,
        (PDataPdu, Sta7) => Ar6,
        (ReleaseRqPdu, Sta6) => Ar2,
        (ReleaseRqPdu, Sta7) => Ar8,
        (ReleaseRpPdu, Sta7 | Sta11) => Ar3,
        (ReleaseRpPdu, Sta10) => Ar10,
        (AbortPdu, Sta2 | Sta13) => Aa2,
        (AbortPdu, Sta3 | Sta5 | Sta6 | Sta7 | Sta8 | Sta9 | Sta10 | Sta11 | Sta12) => Aa3,
        (AssociateRqPdu | InvalidPdu, Sta13) => Aa7,
        (AssociateAcPdu | AssociateRjPdu | PDataPdu | ReleaseRqPdu | ReleaseRpPdu, Sta13) => Aa6,
        (
            AssociateAcPdu | AssociateRjPdu | PDataPdu | ReleaseRqPdu | ReleaseRpPdu | InvalidPdu,
            Sta2,
        ) => Aa1,
        (
            AssociateAcPdu | AssociateRjPdu | AssociateRqPdu | PDataPdu | ReleaseRqPdu
            | ReleaseRpPdu | InvalidPdu,
            Sta3 | Sta5 | Sta6 | Sta7 | Sta8 | Sta9 | Sta10 | Sta11 | Sta12,
        ) => Aa8,
        // Transport and timer.
        (TransportClosed, Sta2) => Aa5,
        (
            TransportClosed,
            Sta3 | Sta4 | Sta5 | Sta6 | Sta7 | Sta8 | Sta9 | Sta10 | Sta11 | Sta12,
        ) => Aa4,
        (TransportClosed, Sta13) => Ar5,
        (ArtimExpired, Sta2 | Sta13) => Aa2,
        _ => return None,
    };
    Some(a)
}

/// Timers (PS3.8 §9.1.5 ARTIM, plus a stalled-PDU guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// ARTIM: how long to wait for the A-ASSOCIATE-RQ and for the peer to close.
    pub artim: Duration,
    /// How long a PDU may take from its first received bytes to its last before the
    /// association is aborted: a minimum-rate guard (a peer dribbling a byte now and then
    /// no longer keeps a PDU, and its association, open forever).
    pub stalled_pdu: Duration,
    /// Idle limit in Sta6 with nothing buffered (`None` = no limit).
    pub idle: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            artim: Duration::from_secs(30),
            stalled_pdu: Duration::from_secs(60),
            idle: None,
        }
    }
}

/// One received PDV, its data a zero-copy slice of the received PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdvData {
    /// Presentation context ID.
    pub pc_id: u8,
    /// Command (true) or data set fragment.
    pub is_command: bool,
    /// Last fragment of the command or data set.
    pub is_last: bool,
    /// The fragment.
    pub data: Bytes,
}

/// What the state machine reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The association is established (A-ASSOCIATE-AC sent or received).
    Established(Box<Negotiated>),
    /// Manual responses only: an acceptable A-ASSOCIATE-RQ arrived (Sta3); answer with
    /// [`Association::accept`] or [`Association::reject`]. Carries what accepting would give.
    AssociationRequested(Box<Negotiated>),
    /// The request was rejected (by us as acceptor, or by the peer).
    Rejected(AssociateRj),
    /// A PDV arrived.
    Data(PdvData),
    /// The peer asked to release (AR-2, or AR-8 in a release collision). Answered at once
    /// unless manual responses are on (then call [`Association::release_response`]).
    ReleaseRequested,
    /// Our release request was answered (AR-3, or AR-10 in a collision).
    Released,
    /// The peer aborted the association.
    PeerAborted(pdu::Abort),
    /// We aborted the association (malformed or unexpected input, timeout).
    Aborted {
        /// The reason sent in A-ABORT.
        reason: u8,
        /// A description with its position.
        detail: String,
    },
    /// The association is over; the transport should be closed.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Acceptor,
    Requestor,
}

/// A DICOM association endpoint (acceptor or requestor), sans-IO: the PS3.8 §9.2 state
/// machine (see [`action`] for the table it follows).
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use xenrad_dimse::assoc::{AcceptorPolicy, Association, Event, State};
/// let now = Instant::now();
/// let mut a = Association::acceptor(Arc::new(AcceptorPolicy::default()), Default::default(), now);
/// a.handle_input(&[0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0], now); // A-RELEASE-RQ in Sta2: unexpected
/// assert!(matches!(a.poll_event(), Some(Event::Aborted { .. })));
/// assert_eq!(a.state(), State::Sta13);
/// ```
#[derive(Debug)]
pub struct Association {
    role: Role,
    state: State,
    policy: Option<Arc<AcceptorPolicy>>,
    reader: PduReader,
    timeouts: Timeouts,
    artim: Option<Instant>,
    last_progress: Instant,
    /// When the PDU now partially in the receive buffer began to arrive.
    partial_since: Option<Instant>,
    out: VecDeque<Bytes>,
    out_bytes: usize,
    events: VecDeque<Event>,
    negotiated: Option<Negotiated>,
    /// Manual A-ASSOCIATE / A-RELEASE responses (Sta3, Sta8, Sta9, Sta12 wait for the user).
    manual: bool,
    /// Sta4: the A-ASSOCIATE-RQ to send once connected. Sta3: the A-ASSOCIATE-AC to send.
    pending_pdu: Option<Bytes>,
    /// The input could not be framed (bad header): nothing after it is read.
    unframed: bool,
    /// Acceptor: the transport's peer address, handed to negotiation.
    peer: Option<IpAddr>,
    /// Acceptor: why the association request was refused, if it was.
    refusal: Option<Refusal>,
}

impl Association {
    /// A new acceptor on a freshly accepted transport connection (Evt5 in Sta1, AE-5:
    /// Sta2, ARTIM started).
    pub fn acceptor(policy: Arc<AcceptorPolicy>, timeouts: Timeouts, now: Instant) -> Self {
        let limits = ReaderLimits {
            max_pdata_len: policy.max_pdu,
            max_other_len: 1 << 16,
        };
        Self {
            role: Role::Acceptor,
            state: State::Sta2,
            policy: Some(policy),
            reader: PduReader::new(limits),
            timeouts,
            artim: Some(now + timeouts.artim),
            last_progress: now,
            partial_since: None,
            out: VecDeque::new(),
            out_bytes: 0,
            events: VecDeque::new(),
            negotiated: None,
            manual: false,
            pending_pdu: None,
            unframed: false,
            peer: None,
            refusal: None,
        }
    }

    /// A new requestor whose transport is still connecting (Evt1, AE-1: Sta4); call
    /// [`Association::transport_connected`] when it is. `rq.user.max_pdu_length` is our
    /// maximum length receivable.
    pub fn connecting(rq: &AssociateRq<'_>, timeouts: Timeouts, now: Instant) -> Self {
        let max = rq.user.max_pdu_length.unwrap_or(0);
        let mut buf = Vec::new();
        encode::associate_rq(&mut buf, rq);
        Self {
            role: Role::Requestor,
            state: State::Sta4,
            policy: None,
            reader: PduReader::new(ReaderLimits {
                max_pdata_len: max,
                max_other_len: 1 << 16,
            }),
            timeouts,
            // Not in PS3.8 for Sta4/Sta5: a guard against a peer that never answers.
            artim: Some(now + timeouts.artim),
            last_progress: now,
            partial_since: None,
            out: VecDeque::new(),
            out_bytes: 0,
            events: VecDeque::new(),
            negotiated: None,
            manual: false,
            pending_pdu: Some(buf.into()),
            unframed: false,
            peer: None,
            refusal: None,
        }
    }

    /// A new requestor on a connected transport: sends the A-ASSOCIATE-RQ (AE-2) and waits
    /// in Sta5.
    pub fn requestor(rq: &AssociateRq<'_>, timeouts: Timeouts, now: Instant) -> Self {
        let mut a = Self::connecting(rq, timeouts, now);
        a.transport_connected(now);
        a
    }

    /// Manual responses: an acceptable A-ASSOCIATE-RQ stops in Sta3 with
    /// [`Event::AssociationRequested`] until [`Association::accept`] / [`Association::reject`],
    /// and a release request stops in Sta8 (Sta9/Sta12 in a collision) until
    /// [`Association::release_response`]. Default: the policy answers and releases are
    /// answered at once.
    #[must_use]
    pub fn with_manual_responses(mut self) -> Self {
        self.manual = true;
        self
    }

    /// Acceptor: the transport's peer address, handed to [`AcceptorPolicy::negotiate`] when
    /// the A-ASSOCIATE-RQ arrives (for callers bound to a host). Set it before feeding
    /// input; the state machine itself does no I/O.
    pub fn set_peer_addr(&mut self, peer: IpAddr) {
        self.peer = Some(peer);
    }

    /// Acceptor: the refusal, once the policy refused the association request (the
    /// A-ASSOCIATE-RJ sent is reported as [`Event::Rejected`]).
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_ref()
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The negotiation result once established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// True once the transport should be closed (Sta1).
    pub fn is_closed(&self) -> bool {
        self.state == State::Sta1
    }

    /// True while P-DATA may be sent (Sta6, and Sta8 before answering a release: AR-7).
    pub fn can_send_data(&self) -> bool {
        matches!(self.state, State::Sta6 | State::Sta8)
    }

    /// The receive buffer, for transports that read straight into it; call
    /// [`Association::process`] afterwards.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        self.reader.buffer_mut()
    }

    /// Feeds received bytes and processes every complete PDU.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        self.reader.push(data);
        self.process(now);
    }

    /// Processes the PDUs completed in the receive buffer.
    pub fn process(&mut self, now: Instant) {
        self.last_progress = now;
        if self.unframed {
            self.reader.buffer_mut().clear();
            return;
        }
        let mut completed = false;
        while !matches!(self.state, State::Sta1 | State::Sta4) {
            match self.reader.next_frame() {
                Ok(Some(frame)) => {
                    completed = true;
                    self.on_frame(&frame, now);
                }
                Ok(None) => break,
                Err(e) => {
                    // PS3.8 §9.3.1 / annex D.1: unknown PDU type → unrecognized PDU; a PDU above
                    // our maximum length → invalid PDU parameter; nothing of it is buffered.
                    let reason = match e.kind {
                        PduErrorKind::UnknownPduType(_) => abort_reason::UNRECOGNIZED_PDU,
                        _ => abort_reason::INVALID_PDU_PARAMETER,
                    };
                    self.on_event(UlEvent::InvalidPdu, reason, &e.to_string(), now);
                    // The stream cannot be framed any further: drop it and what follows.
                    self.unframed = true;
                    self.reader.buffer_mut().clear();
                    break;
                }
            }
        }
        // A PDU left partial began in this input when one completed before it (or none was
        // partial); otherwise the one already partial goes on and keeps its start.
        if self.reader.buffered() == 0 {
            self.partial_since = None;
        } else if completed || self.partial_since.is_none() {
            self.partial_since = Some(now);
        }
    }

    /// The transport connection opened (Evt2 in Sta4, AE-2: the A-ASSOCIATE-RQ is queued).
    pub fn transport_connected(&mut self, now: Instant) {
        if action(self.state, UlEvent::TransportConnected) == Some(Action::Ae2)
            && let Some(rq) = self.pending_pdu.take()
        {
            self.last_progress = now;
            self.queue(rq);
            self.state = State::Sta5;
        }
    }

    /// The transport reported end of stream or an error (Evt17: AA-4, AA-5 or AR-5).
    pub fn handle_transport_closed(&mut self) {
        if self.state != State::Sta1 {
            self.artim = None;
            self.state = State::Sta1;
            self.events.push_back(Event::Closed);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Moves every queued outgoing chunk into `out` (send them in order, ideally vectored).
    pub fn poll_transmit(&mut self, out: &mut Vec<Bytes>) {
        out.extend(self.out.drain(..));
        self.out_bytes = 0;
    }

    /// Bytes queued for sending.
    pub fn pending_transmit(&self) -> usize {
        self.out_bytes
    }

    /// When [`Association::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let stalled = (self.reader.buffered() > 0)
            .then_some(self.partial_since)
            .flatten()
            .map(|t| t + self.timeouts.stalled_pdu);
        let idle = match (self.state, self.timeouts.idle) {
            (State::Sta6, Some(d)) => Some(self.last_progress + d),
            _ => None,
        };
        [self.artim, stalled, idle].into_iter().flatten().min()
    }

    /// Fires expired timers: ARTIM expiry (Evt18, AA-2) closes the transport in Sta2 and
    /// Sta13; elsewhere (our guard while connecting or awaiting the AC) it aborts and
    /// closes. A stalled PDU or an idle association is aborted (AA-1).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Sta1 {
            return;
        }
        if self.artim.is_some_and(|t| now >= t) {
            self.artim = None;
            if action(self.state, UlEvent::ArtimExpired).is_none() {
                self.send_abort(0, abort_reason::NOT_SPECIFIED);
                self.events.push_back(Event::Aborted {
                    reason: abort_reason::NOT_SPECIFIED,
                    detail: format!("no answer in {:?} before the ARTIM timer", self.state),
                });
            }
            self.close();
            return;
        }
        if self.reader.buffered() > 0
            && self
                .partial_since
                .is_some_and(|t| now >= t + self.timeouts.stalled_pdu)
        {
            self.local_abort(
                abort_reason::NOT_SPECIFIED,
                "peer stalled in the middle of a PDU",
                now,
            );
            return;
        }
        if let (State::Sta6, Some(d)) = (self.state, self.timeouts.idle)
            && now >= self.last_progress + d
        {
            self.local_abort(abort_reason::NOT_SPECIFIED, "idle timeout", now);
        }
    }

    /// Queues one already-encoded chunk (a PDU or part of one) for sending.
    pub fn queue(&mut self, chunk: Bytes) {
        self.out_bytes += chunk.len();
        self.out.push_back(chunk);
    }

    /// Queues one message part (command or data set) as P-DATA-TF PDUs no larger than the
    /// peer's maximum (PS3.8 annex D.1); data is sliced, not copied. Evt9: DT-1 in Sta6,
    /// AR-7 in Sta8; returns false (and queues nothing) in any other state.
    pub fn send_pdata(&mut self, pc_id: u8, is_command: bool, data: &Bytes) -> bool {
        self.send_pdata_part(pc_id, is_command, data, true)
    }

    /// Like [`Association::send_pdata`] for one piece of a message part that is streamed in
    /// pieces: only the last piece (`last`) sets the last-fragment bit of its final PDV
    /// (PS3.8 E.2), so a data set can go out as it is read without being assembled first.
    /// An empty non-last piece queues nothing.
    pub fn send_pdata_part(
        &mut self,
        pc_id: u8,
        is_command: bool,
        data: &Bytes,
        last: bool,
    ) -> bool {
        if action(self.state, UlEvent::PDataRequest).is_none() {
            return false;
        }
        if data.is_empty() && !last {
            return true;
        }
        let peer_max = self.negotiated.as_ref().map_or(0, |n| n.peer_max_pdu);
        let frag = encode::max_fragment(peer_max);
        let mut pos = 0;
        loop {
            let end = (pos + frag).min(data.len());
            let at_end = end == data.len();
            let hdr = encode::pdata_header(pc_id, is_command, at_end && last, (end - pos) as u32);
            self.queue(Bytes::copy_from_slice(&hdr));
            if end > pos {
                self.queue(data.slice(pos..end));
            }
            if at_end {
                return true;
            }
            pos = end;
        }
    }

    /// Requests release (Evt11, AR-1: A-RELEASE-RQ, Sta6 → Sta7). False in other states.
    pub fn release(&mut self) -> bool {
        if action(self.state, UlEvent::ReleaseRequest) != Some(Action::Ar1) {
            return false;
        }
        let mut b = Vec::with_capacity(10);
        encode::release_rq(&mut b);
        self.queue(b.into());
        self.state = State::Sta7;
        true
    }

    /// Answers a release request (Evt14): AR-4 in Sta8/Sta12 (A-RELEASE-RP, → Sta13), AR-9
    /// in Sta9 (A-RELEASE-RP, → Sta11). False in other states.
    pub fn release_response(&mut self, now: Instant) -> bool {
        match action(self.state, UlEvent::ReleaseResponse) {
            Some(Action::Ar4) => {
                self.send_release_rp();
                self.enter_sta13(now);
                true
            }
            Some(Action::Ar9) => {
                self.send_release_rp();
                self.state = State::Sta11;
                true
            }
            _ => false,
        }
    }

    /// Accepts the request waiting in Sta3 (Evt7, AE-7: A-ASSOCIATE-AC, → Sta6).
    pub fn accept(&mut self) -> bool {
        if action(self.state, UlEvent::AssociateAccept) != Some(Action::Ae7) {
            return false;
        }
        if let Some(ac) = self.pending_pdu.take() {
            self.queue(ac);
        }
        self.state = State::Sta6;
        if let Some(n) = &self.negotiated {
            self.events
                .push_back(Event::Established(Box::new(n.clone())));
        }
        true
    }

    /// Rejects the request waiting in Sta3 (Evt8, AE-8: A-ASSOCIATE-RJ, ARTIM, → Sta13).
    pub fn reject(&mut self, rj: AssociateRj, now: Instant) -> bool {
        if action(self.state, UlEvent::AssociateReject) != Some(Action::Ae8) {
            return false;
        }
        self.pending_pdu = None;
        self.negotiated = None;
        let mut b = Vec::with_capacity(10);
        encode::associate_rj(&mut b, rj);
        self.queue(b.into());
        self.events.push_back(Event::Rejected(rj));
        self.enter_sta13(now);
        true
    }

    /// Aborts as service user (Evt15: A-ABORT source 0, AA-1 → Sta13; while connecting,
    /// AA-2 → Sta1). In Sta2 (not in the table) it aborts like AA-1.
    pub fn abort(&mut self, now: Instant) {
        match action(self.state, UlEvent::AbortRequest) {
            Some(Action::Aa2) => self.close(),
            Some(_) => {
                self.send_abort(0, 0);
                self.enter_sta13(now);
            }
            None if self.state == State::Sta2 => {
                self.send_abort(0, 0);
                self.enter_sta13(now);
            }
            None => {}
        }
    }

    fn close(&mut self) {
        self.artim = None;
        if self.state != State::Sta1 {
            self.state = State::Sta1;
            self.events.push_back(Event::Closed);
        }
    }

    fn enter_sta13(&mut self, now: Instant) {
        self.state = State::Sta13;
        self.artim = Some(now + self.timeouts.artim);
    }

    fn send_abort(&mut self, source: u8, reason: u8) {
        let mut b = Vec::with_capacity(10);
        encode::abort(&mut b, source, reason);
        self.queue(b.into());
    }

    fn send_release_rp(&mut self) {
        let mut b = Vec::with_capacity(10);
        encode::release_rp(&mut b);
        self.queue(b.into());
    }

    /// Our own abort on a timer (stalled PDU, idle): A-ABORT (service provider) → Sta13.
    fn local_abort(&mut self, reason: u8, detail: &str, now: Instant) {
        if matches!(self.state, State::Sta1 | State::Sta13) {
            return;
        }
        self.send_abort(2, reason);
        self.events.push_back(Event::Aborted {
            reason,
            detail: detail.to_string(),
        });
        self.enter_sta13(now);
    }

    /// The abort actions for a received PDU or invalid input (AA-1, AA-6, AA-7, AA-8).
    fn on_event(&mut self, event: UlEvent, reason: u8, detail: &str, now: Instant) {
        match action(self.state, event) {
            Some(Action::Aa1) => {
                // AA-1: A-ABORT (service-user source), (re)start ARTIM.
                self.send_abort(0, 0);
                self.events.push_back(Event::Aborted {
                    reason,
                    detail: detail.to_string(),
                });
                self.enter_sta13(now);
            }
            Some(Action::Aa7) => self.send_abort(2, reason),
            Some(Action::Aa8) => {
                // AA-8: A-ABORT (service-provider source), A-P-ABORT indication, ARTIM.
                self.send_abort(2, reason);
                self.events.push_back(Event::Aborted {
                    reason,
                    detail: detail.to_string(),
                });
                self.enter_sta13(now);
            }
            // AA-6 (ignore) and anything else.
            _ => {}
        }
    }

    fn on_frame(&mut self, frame: &Bytes, now: Instant) {
        let pdu = match Pdu::parse(frame) {
            Ok(p) => p,
            Err(e) => {
                let reason = match e.kind {
                    PduErrorKind::UnexpectedItem(_) => abort_reason::UNRECOGNIZED_PDU_PARAMETER,
                    _ => abort_reason::INVALID_PDU_PARAMETER,
                };
                self.on_event(UlEvent::InvalidPdu, reason, &e.to_string(), now);
                return;
            }
        };
        let event = match &pdu {
            Pdu::AssociateRq(_) => UlEvent::AssociateRqPdu,
            Pdu::AssociateAc(_) => UlEvent::AssociateAcPdu,
            Pdu::AssociateRj(_) => UlEvent::AssociateRjPdu,
            Pdu::PData(_) => UlEvent::PDataPdu,
            Pdu::ReleaseRq => UlEvent::ReleaseRqPdu,
            Pdu::ReleaseRp => UlEvent::ReleaseRpPdu,
            Pdu::Abort(_) => UlEvent::AbortPdu,
        };
        let Some(act) = action(self.state, event) else {
            return;
        };
        match (act, pdu) {
            (Action::Aa2, _) => self.close(),
            (Action::Aa3, Pdu::Abort(a)) => {
                // AA-3: A-ABORT / A-P-ABORT indication, close.
                self.events.push_back(Event::PeerAborted(a));
                self.close();
            }
            (Action::Ae6, Pdu::AssociateRq(rq)) => self.on_associate_rq(&rq, now),
            (Action::Ae3, Pdu::AssociateAc(ac)) => self.on_associate_ac(&ac),
            (Action::Ae4, Pdu::AssociateRj(rj)) => {
                // AE-4: rejected, close.
                self.events.push_back(Event::Rejected(rj));
                self.close();
            }
            (Action::Dt2 | Action::Ar6, Pdu::PData(_)) => {
                // DT-2 / AR-6: hand every PDV up, each a slice of the frame.
                let base = frame.as_ptr() as usize;
                for pdv in
                    pdu::pdv_iter(&frame[pdu::PDU_HEADER_LEN..], pdu::PDU_HEADER_LEN).flatten()
                {
                    let start = pdv.data.as_ptr() as usize - base;
                    self.events.push_back(Event::Data(PdvData {
                        pc_id: pdv.pc_id,
                        is_command: pdv.is_command,
                        is_last: pdv.is_last,
                        data: frame.slice(start..start + pdv.data.len()),
                    }));
                }
            }
            (Action::Ar2, _) => {
                // AR-2: release indication → Sta8; answered at once unless manual (AR-4).
                self.events.push_back(Event::ReleaseRequested);
                self.state = State::Sta8;
                if !self.manual {
                    self.release_response(now);
                }
            }
            (Action::Ar8, _) => {
                // AR-8: release collision (PS3.8 §9.2.2): requestor → Sta9, acceptor → Sta10.
                self.events.push_back(Event::ReleaseRequested);
                if self.role == Role::Requestor {
                    self.state = State::Sta9;
                    if !self.manual {
                        self.release_response(now);
                    }
                } else {
                    self.state = State::Sta10;
                }
            }
            (Action::Ar3, _) => {
                // AR-3: release confirmation, close.
                self.events.push_back(Event::Released);
                self.close();
            }
            (Action::Ar10, _) => {
                // AR-10: release confirmation → Sta12, then our response (AR-4).
                self.events.push_back(Event::Released);
                self.state = State::Sta12;
                if !self.manual {
                    self.release_response(now);
                }
            }
            (Action::Aa6, _) => {}
            (act, other) => {
                // AA-1 / AA-7 / AA-8: an unexpected PDU.
                let detail = PduError {
                    offset: 0,
                    kind: PduErrorKind::UnexpectedItem(pdu_type(&other)),
                };
                let reason = if act == Action::Aa1 {
                    abort_reason::NOT_SPECIFIED
                } else {
                    abort_reason::UNEXPECTED_PDU
                };
                self.on_event(
                    event,
                    reason,
                    &format!("unexpected PDU in {:?}: {detail}", self.state),
                    now,
                );
            }
        }
    }

    fn on_associate_ac(&mut self, ac: &pdu::AssociateAc<'_>) {
        // AE-3: association established.
        self.artim = None;
        let mut neg = Negotiated {
            calling_ae: ac.calling_ae.to_string(),
            called_ae: ac.called_ae.to_string(),
            peer_max_pdu: ac.user.max_pdu_length.unwrap_or(0),
            our_max_pdu: self.reader.limits().max_pdata_len,
            peer_implementation_class_uid: ac.user.implementation_class_uid.map(str::to_string),
            peer_implementation_version_name: ac
                .user
                .implementation_version_name
                .map(str::to_string),
            extended: ac
                .user
                .sop_class_extended
                .iter()
                .map(|e| (e.sop_class_uid.to_string(), e.info.to_vec()))
                .collect(),
            // PS3.7 D.3.3.4: the acceptor's answer decides the roles.
            requestor_scp_roles: ac
                .user
                .role_selections
                .iter()
                .filter(|r| r.scp_role)
                .map(|r| r.sop_class_uid.to_string())
                .collect(),
            ..Negotiated::default()
        };
        for pc in &ac.presentation_contexts {
            if pc.result == pdu::PcResult::Acceptance {
                neg.contexts.push(super::AcceptedContext {
                    id: pc.id,
                    abstract_syntax: String::new(),
                    transfer_syntax: pc.transfer_syntax.to_string(),
                });
            }
        }
        self.state = State::Sta6;
        self.negotiated = Some(neg.clone());
        self.events.push_back(Event::Established(Box::new(neg)));
    }

    fn on_associate_rq(&mut self, rq: &AssociateRq<'_>, now: Instant) {
        // AE-6: stop ARTIM; acceptable → indication (Sta3), else A-ASSOCIATE-RJ (Sta13).
        self.artim = None;
        let policy = self.policy.clone().expect("acceptor has a policy");
        let mut buf = Vec::with_capacity(512);
        match policy.negotiate(rq, self.peer) {
            Ok((ac, neg)) => {
                encode::associate_ac(&mut buf, &ac);
                self.pending_pdu = Some(buf.into());
                self.state = State::Sta3;
                self.negotiated = Some(neg.clone());
                if self.manual {
                    self.events
                        .push_back(Event::AssociationRequested(Box::new(neg)));
                } else {
                    self.accept();
                }
            }
            Err(refusal) => {
                let rj = refusal.rj();
                self.refusal = Some(refusal);
                encode::associate_rj(&mut buf, rj);
                self.queue(buf.into());
                self.events.push_back(Event::Rejected(rj));
                self.enter_sta13(now);
            }
        }
    }
}

fn pdu_type(p: &Pdu<'_>) -> u8 {
    match p {
        Pdu::AssociateRq(_) => pdu::code::ASSOCIATE_RQ,
        Pdu::AssociateAc(_) => pdu::code::ASSOCIATE_AC,
        Pdu::AssociateRj(_) => pdu::code::ASSOCIATE_RJ,
        Pdu::PData(_) => pdu::code::P_DATA_TF,
        Pdu::ReleaseRq => pdu::code::RELEASE_RQ,
        Pdu::ReleaseRp => pdu::code::RELEASE_RP,
        Pdu::Abort(_) => pdu::code::ABORT,
    }
}
