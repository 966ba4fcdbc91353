//! The Upper Layer state machine (PS3.8 §9.2, table 9-10) as a sans-IO object.
//!
//! Bytes and the current time go in ([`Association::handle_input`], [`Association::handle_timeout`]);
//! PDUs to send ([`Association::poll_transmit`]) and [`Event`]s come out. The transport
//! connection is the caller's: it closes it when [`Association::is_closed`] turns true.

use super::policy::{AcceptorPolicy, Negotiated};
use crate::pdu::{
    self, AssociateRj, AssociateRq, Pdu, PduError, PduErrorKind, abort_reason, encode,
    reader::{PduReader, ReaderLimits},
};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// PS3.8 §9.2 states that this implementation can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Sta1: idle, no association (terminal here: the transport is to be closed).
    Sta1,
    /// Sta2: transport open, awaiting A-ASSOCIATE-RQ (acceptor, ARTIM running).
    Sta2,
    /// Sta5: awaiting A-ASSOCIATE-AC or -RJ (requestor).
    Sta5,
    /// Sta6: association established, ready for data transfer.
    Sta6,
    /// Sta7: awaiting A-RELEASE-RP (requestor sent A-RELEASE-RQ).
    Sta7,
    /// Sta13: awaiting transport close (after RJ, RP or A-ABORT sent; ARTIM running).
    Sta13,
}

/// Timers (PS3.8 §9.1.5 ARTIM, plus a stalled-PDU guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// ARTIM: how long to wait for the A-ASSOCIATE-RQ and for the peer to close.
    pub artim: Duration,
    /// How long a partially received PDU may stall before the association is aborted.
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
    /// The request was rejected (by us as acceptor, or by the peer).
    Rejected(AssociateRj),
    /// A PDV arrived.
    Data(PdvData),
    /// The peer asked to release; we answered A-RELEASE-RP (acceptor).
    ReleaseRequested,
    /// Our release request was answered (requestor).
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

/// A DICOM association endpoint (acceptor or requestor), sans-IO.
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
    out: VecDeque<Bytes>,
    out_bytes: usize,
    events: VecDeque<Event>,
    negotiated: Option<Negotiated>,
}

impl Association {
    /// A new acceptor on a freshly accepted transport connection (Sta2, ARTIM started: AE-5).
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
            out: VecDeque::new(),
            out_bytes: 0,
            events: VecDeque::new(),
            negotiated: None,
        }
    }

    /// A new requestor on a connected transport: sends the A-ASSOCIATE-RQ (AE-2) and waits
    /// in Sta5. `max_pdu` is our maximum length receivable, also put in the request.
    pub fn requestor(rq: &AssociateRq<'_>, timeouts: Timeouts, now: Instant) -> Self {
        let max = rq.user.max_pdu_length.unwrap_or(0);
        let mut a = Self {
            role: Role::Requestor,
            state: State::Sta5,
            policy: None,
            reader: PduReader::new(ReaderLimits {
                max_pdata_len: max,
                max_other_len: 1 << 16,
            }),
            timeouts,
            artim: Some(now + timeouts.artim),
            last_progress: now,
            out: VecDeque::new(),
            out_bytes: 0,
            events: VecDeque::new(),
            negotiated: None,
        };
        let mut buf = Vec::new();
        encode::associate_rq(&mut buf, rq);
        a.queue(buf.into());
        a
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

    /// True while P-DATA may be sent (Sta6, or Sta7 awaiting release response).
    pub fn can_send_data(&self) -> bool {
        matches!(self.state, State::Sta6)
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
        while !matches!(self.state, State::Sta1) {
            match self.reader.next_frame() {
                Ok(Some(frame)) => self.on_frame(&frame, now),
                Ok(None) => break,
                Err(e) => {
                    // PS3.8 §9.3.1 / annex D.1: unknown PDU type → unrecognized PDU; a PDU above
                    // our maximum length → invalid PDU parameter; nothing of it is buffered.
                    let reason = match e.kind {
                        PduErrorKind::UnknownPduType(_) => abort_reason::UNRECOGNIZED_PDU,
                        _ => abort_reason::INVALID_PDU_PARAMETER,
                    };
                    self.abort_with(reason, &e.to_string(), now);
                    break;
                }
            }
        }
    }

    /// The transport reported end of stream or an error (AA-4 / AR-5).
    pub fn handle_transport_closed(&mut self) {
        if self.state != State::Sta1 {
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
        let stalled =
            (self.reader.buffered() > 0).then(|| self.last_progress + self.timeouts.stalled_pdu);
        let idle = match (self.state, self.timeouts.idle) {
            (State::Sta6, Some(d)) => Some(self.last_progress + d),
            _ => None,
        };
        [self.artim, stalled, idle].into_iter().flatten().min()
    }

    /// Fires expired timers: ARTIM expiry (AA-2) closes the transport; a stalled PDU or an
    /// idle association is aborted.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Sta1 {
            return;
        }
        if self.artim.is_some_and(|t| now >= t) {
            self.artim = None;
            if self.state == State::Sta13 {
                self.state = State::Sta1;
                self.events.push_back(Event::Closed);
            } else {
                self.abort_with(abort_reason::NOT_SPECIFIED, "ARTIM timer expired", now);
                self.state = State::Sta1;
                self.events.push_back(Event::Closed);
            }
            return;
        }
        if self.reader.buffered() > 0 && now >= self.last_progress + self.timeouts.stalled_pdu {
            self.abort_with(
                abort_reason::NOT_SPECIFIED,
                "peer stalled in the middle of a PDU",
                now,
            );
            return;
        }
        if let (State::Sta6, Some(d)) = (self.state, self.timeouts.idle)
            && now >= self.last_progress + d
        {
            self.abort_with(abort_reason::NOT_SPECIFIED, "idle timeout", now);
        }
    }

    /// Queues one already-encoded chunk (a PDU or part of one) for sending.
    pub fn queue(&mut self, chunk: Bytes) {
        self.out_bytes += chunk.len();
        self.out.push_back(chunk);
    }

    /// Queues one message part (command or data set) as P-DATA-TF PDUs no larger than the
    /// peer's maximum (PS3.8 annex D.1); data is sliced, not copied. Returns false (and
    /// queues nothing) outside Sta6.
    pub fn send_pdata(&mut self, pc_id: u8, is_command: bool, data: &Bytes) -> bool {
        if self.state != State::Sta6 {
            return false;
        }
        let peer_max = self.negotiated.as_ref().map_or(0, |n| n.peer_max_pdu);
        let frag = encode::max_fragment(peer_max);
        let mut pos = 0;
        loop {
            let end = (pos + frag).min(data.len());
            let last = end == data.len();
            let hdr = encode::pdata_header(pc_id, is_command, last, (end - pos) as u32);
            self.queue(Bytes::copy_from_slice(&hdr));
            if end > pos {
                self.queue(data.slice(pos..end));
            }
            if last {
                return true;
            }
            pos = end;
        }
    }

    /// Requests release (A-RELEASE-RQ, AR-1): Sta6 → Sta7.
    pub fn release(&mut self) {
        if self.state == State::Sta6 {
            let mut b = Vec::with_capacity(10);
            encode::release_rq(&mut b);
            self.queue(b.into());
            self.state = State::Sta7;
        }
    }

    /// Aborts as service user (A-ABORT source 0, AA-1): → Sta13.
    pub fn abort(&mut self, now: Instant) {
        if !matches!(self.state, State::Sta1 | State::Sta13) {
            let mut b = Vec::with_capacity(10);
            encode::abort(&mut b, 0, 0);
            self.queue(b.into());
            self.enter_sta13(now);
        }
    }

    fn enter_sta13(&mut self, now: Instant) {
        self.state = State::Sta13;
        self.artim = Some(now + self.timeouts.artim);
    }

    fn abort_with(&mut self, reason: u8, detail: &str, now: Instant) {
        if matches!(self.state, State::Sta1 | State::Sta13) {
            return;
        }
        let mut b = Vec::with_capacity(10);
        encode::abort(&mut b, 2, reason);
        self.queue(b.into());
        self.events.push_back(Event::Aborted {
            reason,
            detail: detail.to_string(),
        });
        self.enter_sta13(now);
    }

    fn on_frame(&mut self, frame: &Bytes, now: Instant) {
        let pdu = match Pdu::parse(frame) {
            Ok(p) => p,
            Err(e) => {
                let reason = match e.kind {
                    PduErrorKind::UnexpectedItem(_) => abort_reason::UNRECOGNIZED_PDU_PARAMETER,
                    _ => abort_reason::INVALID_PDU_PARAMETER,
                };
                self.abort_with(reason, &e.to_string(), now);
                return;
            }
        };
        match (self.state, pdu) {
            // Sta13: PDUs are ignored while waiting for the close (AA-6/AA-7).
            (State::Sta13, Pdu::Abort(_)) => {
                self.state = State::Sta1;
                self.events.push_back(Event::Closed);
            }
            (State::Sta13, _) => {}
            (_, Pdu::Abort(a)) => {
                // AA-3: peer abort, close the transport.
                self.events.push_back(Event::PeerAborted(a));
                self.state = State::Sta1;
                self.events.push_back(Event::Closed);
            }
            (State::Sta2, Pdu::AssociateRq(rq)) if self.role == Role::Acceptor => {
                self.on_associate_rq(&rq, now);
            }
            (State::Sta5, Pdu::AssociateAc(ac)) => {
                // AE-3: association established.
                self.artim = None;
                let mut neg = Negotiated {
                    calling_ae: ac.calling_ae.to_string(),
                    called_ae: ac.called_ae.to_string(),
                    peer_max_pdu: ac.user.max_pdu_length.unwrap_or(0),
                    our_max_pdu: self.reader.limits().max_pdata_len,
                    peer_implementation_class_uid: ac
                        .user
                        .implementation_class_uid
                        .map(str::to_string),
                    peer_implementation_version_name: ac
                        .user
                        .implementation_version_name
                        .map(str::to_string),
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
            (State::Sta5, Pdu::AssociateRj(rj)) => {
                // AE-4: rejected, close.
                self.events.push_back(Event::Rejected(rj));
                self.state = State::Sta1;
                self.events.push_back(Event::Closed);
            }
            (State::Sta6 | State::Sta7, Pdu::PData(_)) => {
                // DT-2: hand every PDV up, each a slice of the frame.
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
            (State::Sta6, Pdu::ReleaseRq) if self.role == Role::Acceptor => {
                // AR-2 then AR-4: we answer the release at once.
                self.events.push_back(Event::ReleaseRequested);
                let mut b = Vec::with_capacity(10);
                encode::release_rp(&mut b);
                self.queue(b.into());
                self.enter_sta13(now);
            }
            (State::Sta7, Pdu::ReleaseRq) => {
                // Release collision (PS3.8 §9.2.2, AR-8 → Sta9/Sta11): as requestor we answer
                // the peer's request and keep waiting for the response to ours.
                let mut b = Vec::with_capacity(10);
                encode::release_rp(&mut b);
                self.queue(b.into());
            }
            (State::Sta7, Pdu::ReleaseRp) => {
                // AR-3: released, close.
                self.events.push_back(Event::Released);
                self.state = State::Sta1;
                self.events.push_back(Event::Closed);
            }
            (_, other) => {
                // AA-8: unexpected PDU.
                let detail = PduError {
                    offset: 0,
                    kind: PduErrorKind::UnexpectedItem(pdu_type(&other)),
                };
                self.abort_with(
                    abort_reason::UNEXPECTED_PDU,
                    &format!("unexpected PDU in {:?}: {detail}", self.state),
                    now,
                );
            }
        }
    }

    fn on_associate_rq(&mut self, rq: &AssociateRq<'_>, now: Instant) {
        let policy = self.policy.clone().expect("acceptor has a policy");
        let mut buf = Vec::with_capacity(512);
        match policy.negotiate(rq) {
            Ok((ac, neg)) => {
                encode::associate_ac(&mut buf, &ac);
                self.queue(buf.into());
                self.artim = None;
                self.state = State::Sta6;
                self.negotiated = Some(neg.clone());
                self.events.push_back(Event::Established(Box::new(neg)));
            }
            Err(rj) => {
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
