//! SCU side: one association, C-ECHO, C-STORE, N-CREATE and N-SET requests.

use super::{Stream, write_chunks};
use crate::assoc::policy::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
use crate::assoc::{Association, Event, Negotiated, Timeouts};
use crate::dimse::{Assembler, Command, DimseEvent, field};
use crate::pdu::{
    AssociateRj, AssociateRq, DICOM_APPLICATION_CONTEXT, PresentationContextRq, RoleSelection,
    UserInformation,
};
use bytes::{Bytes, BytesMut};
use std::time::Instant;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, ToSocketAddrs};

/// What the SCU proposes.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Our (calling) AE title.
    pub calling_ae: String,
    /// The peer's (called) AE title.
    pub called_ae: String,
    /// Presentation contexts: abstract syntax and its transfer syntaxes in our order.
    pub contexts: Vec<(String, Vec<String>)>,
    /// Our maximum length receivable.
    pub max_pdu: u32,
    /// Timers.
    pub timeouts: Timeouts,
}

/// SCU failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Transport error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The association was rejected.
    #[error("association rejected: result {}, source {}, reason {}", .0.result, .0.source, .0.reason)]
    Rejected(AssociateRj),
    /// The association ended (aborted or closed) before the answer.
    #[error("association ended: {0}")]
    Ended(String),
    /// No accepted presentation context for this SOP class and transfer syntax.
    #[error("no accepted presentation context for {0}")]
    NoContext(String),
    /// The peer sent something we cannot use.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The peer answered a request with a failure status.
    #[error("{operation} answered with status 0x{status:04X}{}", .comment.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        /// The request ("N-ACTION", …).
        operation: &'static str,
        /// The status.
        status: u16,
        /// The Error Comment, if any.
        comment: Option<String>,
    },
    /// A local file or data set could not be used (with its context).
    #[error("{0}")]
    Local(String),
    /// No answer in time.
    #[error("timed out waiting for {0}")]
    TimedOut(&'static str),
}

/// A response: status, and data set if one came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// DIMSE status.
    pub status: u16,
    /// Message ID Being Responded To.
    pub responded_to: Option<u16>,
    /// Affected SOP Instance UID of the response.
    pub sop_instance_uid: Option<String>,
    /// Response data set.
    pub dataset: Option<Bytes>,
    /// Error Comment (0000,0902), if any.
    pub error_comment: Option<String>,
    /// Sub-operation counts of a C-MOVE/C-GET response, if any.
    pub counts: Option<crate::scp::SubOperations>,
}

/// Largest response data set read into memory (identifiers, failed-UID lists, reports).
const MAX_RESPONSE_DATASET: usize = 16 << 20;

/// The response fields of a decoded command.
fn response_of(c: &Command<'_>) -> Response {
    let counts =
        (c.completed.is_some() || c.failed.is_some() || c.remaining.is_some()).then(|| {
            crate::scp::SubOperations {
                remaining: c.remaining.unwrap_or(0),
                completed: c.completed.unwrap_or(0),
                failed: c.failed.unwrap_or(0),
                warning: c.warning.unwrap_or(0),
            }
        });
    Response {
        status: c.status.unwrap_or(0xFFFF),
        responded_to: c.responded_to,
        sop_instance_uid: c.affected_sop_instance.map(str::to_string),
        dataset: None,
        error_comment: c.error_comment.map(str::to_string),
        counts,
    }
}

/// An established association as requestor.
#[derive(Debug)]
pub struct ScuAssociation {
    stream: Stream,
    assoc: Association,
    asm: Assembler,
    neg: Negotiated,
    next_id: u16,
    chunks: Vec<Bytes>,
}

impl ScuAssociation {
    /// Connects and negotiates.
    pub async fn connect(
        addr: impl ToSocketAddrs,
        cfg: &ClientConfig,
    ) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Self::negotiate(Stream::Plain(stream), cfg).await
    }

    /// Connects with DICOM TLS (PS3.15 B.1), then negotiates.
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        addr: impl ToSocketAddrs,
        cfg: &ClientConfig,
        connector: &tokio_rustls::TlsConnector,
        server_name: tokio_rustls::rustls::pki_types::ServerName<'static>,
    ) -> Result<Self, ClientError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let tls = connector.connect(server_name, tcp).await?;
        Self::negotiate(Stream::ClientTls(Box::new(tls)), cfg).await
    }

    /// Connects and negotiates, proposing SCP/SCU role selection (PS3.7 D.3.3.4) for each
    /// `(SOP class, scu_role, scp_role)`: e.g. the storage SOP classes of a C-GET with
    /// `scp_role` so the peer may send the instances on this association (PS3.4 C.4.3.1).
    /// The accepted roles are in [`Negotiated::requestor_scp_roles`].
    pub async fn connect_with_roles(
        addr: impl ToSocketAddrs,
        cfg: &ClientConfig,
        roles: &[(String, bool, bool)],
    ) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Self::negotiate_with_roles(Stream::Plain(stream), cfg, roles).await
    }

    /// Negotiates an association on an established [`Stream`].
    pub async fn negotiate(stream: Stream, cfg: &ClientConfig) -> Result<Self, ClientError> {
        Self::negotiate_with_roles(stream, cfg, &[]).await
    }

    /// Negotiates on an established [`Stream`] with SCP/SCU role selection items (see
    /// [`ScuAssociation::connect_with_roles`]).
    pub async fn negotiate_with_roles(
        stream: Stream,
        cfg: &ClientConfig,
        roles: &[(String, bool, bool)],
    ) -> Result<Self, ClientError> {
        let pcs: Vec<PresentationContextRq<'_>> = cfg
            .contexts
            .iter()
            .enumerate()
            .map(|(i, (a, t))| PresentationContextRq {
                id: (i * 2 + 1) as u8,
                abstract_syntax: a,
                transfer_syntaxes: t.iter().map(String::as_str).collect(),
            })
            .collect();
        let rq = AssociateRq {
            protocol_version: 1,
            called_ae: &cfg.called_ae,
            calling_ae: &cfg.calling_ae,
            application_context: DICOM_APPLICATION_CONTEXT,
            presentation_contexts: pcs,
            user: UserInformation {
                max_pdu_length: Some(cfg.max_pdu),
                implementation_class_uid: Some(IMPLEMENTATION_CLASS_UID),
                implementation_version_name: Some(IMPLEMENTATION_VERSION_NAME),
                role_selections: roles
                    .iter()
                    .map(|(c, scu, scp)| RoleSelection {
                        sop_class_uid: c,
                        scu_role: *scu,
                        scp_role: *scp,
                    })
                    .collect(),
                ..UserInformation::default()
            },
        };
        let assoc = Association::requestor(&rq, cfg.timeouts, Instant::now());
        let mut me = Self {
            stream,
            assoc,
            asm: Assembler::default(),
            neg: Negotiated::default(),
            next_id: 1,
            chunks: Vec::new(),
        };
        loop {
            match me.next_event().await? {
                Event::Established(n) => {
                    let mut n = *n;
                    for c in &mut n.contexts {
                        // The AC does not repeat the abstract syntax: take it from our proposal.
                        if let Some(p) = rq.presentation_contexts.iter().find(|p| p.id == c.id) {
                            c.abstract_syntax = p.abstract_syntax.to_string();
                        }
                    }
                    me.neg = n;
                    return Ok(me);
                }
                Event::Rejected(rj) => return Err(ClientError::Rejected(rj)),
                Event::Closed => {
                    return Err(ClientError::Ended("closed during negotiation".into()));
                }
                _ => {}
            }
        }
    }

    /// The negotiation result.
    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        self.assoc.poll_transmit(&mut self.chunks);
        if !self.chunks.is_empty() {
            write_chunks(&mut self.stream, &mut self.chunks).await?;
        }
        Ok(())
    }

    async fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            self.flush().await?;
            if let Some(e) = self.assoc.poll_event() {
                return Ok(e);
            }
            if self.assoc.is_closed() {
                return Ok(Event::Closed);
            }
            let deadline = self.assoc.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.stream.read_buf(self.assoc.buffer_mut()) => match r {
                    Ok(0) | Err(_) => self.assoc.handle_transport_closed(),
                    Ok(_) => {
                        super::quickack(self.stream.tcp());
                        self.assoc.process(Instant::now());
                    }
                },
                () = sleep => self.assoc.handle_timeout(Instant::now()),
            }
        }
    }

    fn context_for(&self, sop_class: &str, ts: Option<&str>) -> Result<u8, ClientError> {
        self.neg
            .contexts
            .iter()
            .find(|c| c.abstract_syntax == sop_class && ts.is_none_or(|t| t == c.transfer_syntax))
            .map(|c| c.id)
            .ok_or_else(|| ClientError::NoContext(format!("{sop_class} {}", ts.unwrap_or(""))))
    }

    /// Transfer syntax accepted for an abstract syntax (first matching context).
    pub fn accepted_transfer_syntax(&self, sop_class: &str) -> Option<&str> {
        self.neg
            .context_for(sop_class)
            .map(|c| c.transfer_syntax.as_str())
    }

    async fn request(
        &mut self,
        pc_id: u8,
        cmd: Command<'_>,
        dataset: Option<Bytes>,
    ) -> Result<Response, ClientError> {
        self.send_request(pc_id, cmd, dataset.as_ref());
        self.read_response().await
    }

    /// Queues a request with the next Message ID; returns that ID.
    fn send_request(&mut self, pc_id: u8, mut cmd: Command<'_>, dataset: Option<&Bytes>) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        cmd.message_id = Some(id);
        cmd.has_dataset = dataset.is_some();
        let enc = Bytes::from(cmd.encode());
        self.assoc.send_pdata(pc_id, true, &enc);
        if let Some(ds) = dataset {
            self.assoc.send_pdata(pc_id, false, ds);
        }
        id
    }

    /// The next assembled DIMSE message part (a command, or a data set fragment).
    async fn next_dimse(&mut self) -> Result<DimseEvent, ClientError> {
        loop {
            match self.next_event().await? {
                Event::Data(pdv) => {
                    if let Some(m) = self
                        .asm
                        .push(pdv)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?
                    {
                        return Ok(m);
                    }
                }
                Event::Closed => return Err(ClientError::Ended("closed".into())),
                Event::PeerAborted(a) => {
                    return Err(ClientError::Ended(format!(
                        "peer aborted (reason {})",
                        a.reason
                    )));
                }
                Event::Aborted { detail, .. } => return Err(ClientError::Ended(detail)),
                _ => {}
            }
        }
    }

    /// Reads the data set that follows a command, at most `max` bytes.
    async fn read_dataset(&mut self, max: usize) -> Result<Bytes, ClientError> {
        let mut data = BytesMut::new();
        loop {
            match self.next_dimse().await? {
                DimseEvent::Data { data: d, last, .. } => {
                    if data.len() + d.len() > max {
                        return Err(ClientError::Protocol(format!(
                            "data set larger than {max} bytes"
                        )));
                    }
                    data.extend_from_slice(&d);
                    if last {
                        return Ok(data.freeze());
                    }
                }
                DimseEvent::Command { .. } => {
                    return Err(ClientError::Protocol(
                        "command while a data set was expected".into(),
                    ));
                }
            }
        }
    }

    /// Reads the next response message (command and its data set, if any).
    async fn read_response(&mut self) -> Result<Response, ClientError> {
        match self.next_dimse().await? {
            DimseEvent::Command { bytes, .. } => {
                let c =
                    Command::decode(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))?;
                if c.is_request() {
                    return Err(ClientError::Protocol(format!(
                        "request 0x{:04X} while a response was expected",
                        c.field
                    )));
                }
                let mut r = response_of(&c);
                if c.has_dataset {
                    r.dataset = Some(self.read_dataset(MAX_RESPONSE_DATASET).await?);
                }
                Ok(r)
            }
            DimseEvent::Data { .. } => {
                Err(ClientError::Protocol("data set without a response".into()))
            }
        }
    }

    /// C-FIND (PS3.7 §9.1.2) of an identifier encoded in the accepted transfer syntax of
    /// `sop_class` (see [`ScuAssociation::accepted_transfer_syntax`]): `on_match` gets each
    /// pending response (status 0xFF00/0xFF01, identifier in `dataset`); when it returns
    /// false a C-CANCEL-RQ is sent (PS3.7 §9.3.2.3) and the responses still in flight are
    /// read until the final one, which is returned.
    pub async fn find(
        &mut self,
        sop_class: &str,
        identifier: Bytes,
        mut on_match: impl FnMut(Response) -> bool,
    ) -> Result<Response, ClientError> {
        let (pc, id) = self.send_query(field::C_FIND_RQ, sop_class, None, &identifier)?;
        let mut cancelled = false;
        loop {
            let r = self.read_response().await?;
            if let Some(fin) = self.pending_or_final(pc, id, r, &mut cancelled, &mut on_match)? {
                return Ok(fin);
            }
        }
    }

    /// Sends a C-FIND/C-MOVE/C-GET-RQ (priority medium) on the context accepted for
    /// `sop_class`; returns (context, Message ID).
    fn send_query(
        &mut self,
        rq: u16,
        sop_class: &str,
        move_destination: Option<&str>,
        identifier: &Bytes,
    ) -> Result<(u8, u16), ClientError> {
        let pc = self.context_for(sop_class, None)?;
        let cmd = Command {
            field: rq,
            affected_sop_class: Some(sop_class),
            move_destination,
            priority: Some(0),
            ..Command::default()
        };
        Ok((pc, self.send_request(pc, cmd, Some(identifier))))
    }

    /// One response to the outstanding query `id` (PS3.7 §9.1.2–§9.1.4): a pending one
    /// (0xFF00/0xFF01) goes to `on_pending`, and when that returns false a C-CANCEL-RQ is
    /// sent once (PS3.7 §9.3.2.3) and the responses still in flight are read on; the
    /// final one is returned.
    fn pending_or_final(
        &mut self,
        pc: u8,
        id: u16,
        r: Response,
        cancelled: &mut bool,
        on_pending: &mut dyn FnMut(Response) -> bool,
    ) -> Result<Option<Response>, ClientError> {
        if r.responded_to != Some(id) {
            return Err(ClientError::Protocol(format!(
                "response to message {:?} while {id} was outstanding",
                r.responded_to
            )));
        }
        if r.status != 0xFF00 && r.status != 0xFF01 {
            return Ok(Some(r));
        }
        if !*cancelled && !on_pending(r) {
            *cancelled = true;
            self.send_cancel(pc, id);
        }
        Ok(None)
    }

    /// C-ECHO (PS3.7 §9.1.5); returns the response.
    pub async fn echo(&mut self) -> Result<Response, ClientError> {
        let pc = self.context_for(crate::assoc::policy::sop::VERIFICATION, None)?;
        let cmd = Command {
            field: field::C_ECHO_RQ,
            affected_sop_class: Some(crate::assoc::policy::sop::VERIFICATION),
            ..Command::default()
        };
        self.request(pc, cmd, None).await
    }

    /// C-STORE (PS3.7 §9.1.1) of an encoded data set in `ts`.
    pub async fn store(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        ts: &str,
        dataset: Bytes,
    ) -> Result<Response, ClientError> {
        let pc = self.context_for(sop_class, Some(ts))?;
        let cmd = Command {
            field: field::C_STORE_RQ,
            affected_sop_class: Some(sop_class),
            affected_sop_instance: Some(sop_instance),
            priority: Some(0),
            ..Command::default()
        };
        self.request(pc, cmd, Some(dataset)).await
    }

    /// N-CREATE (PS3.7 §10.1.5) with an optional instance UID and a data set in the
    /// context's transfer syntax.
    pub async fn n_create(
        &mut self,
        sop_class: &str,
        sop_instance: Option<&str>,
        dataset: Bytes,
    ) -> Result<Response, ClientError> {
        let pc = self.context_for(sop_class, None)?;
        let cmd = Command {
            field: field::N_CREATE_RQ,
            affected_sop_class: Some(sop_class),
            affected_sop_instance: sop_instance,
            ..Command::default()
        };
        self.request(pc, cmd, Some(dataset)).await
    }

    /// N-SET (PS3.7 §10.1.3).
    pub async fn n_set(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        dataset: Bytes,
    ) -> Result<Response, ClientError> {
        let pc = self.context_for(sop_class, None)?;
        let cmd = Command {
            field: field::N_SET_RQ,
            requested_sop_class: Some(sop_class),
            requested_sop_instance: Some(sop_instance),
            ..Command::default()
        };
        self.request(pc, cmd, Some(dataset)).await
    }

    /// Releases the association (A-RELEASE-RQ, waits for the RP) and closes the connection.
    pub async fn release(mut self) -> Result<(), ClientError> {
        self.assoc.release();
        loop {
            match self.next_event().await? {
                Event::Released | Event::Closed => return Ok(()),
                Event::PeerAborted(_) => {
                    return Err(ClientError::Ended("aborted during release".into()));
                }
                _ => {}
            }
        }
    }
}

/// Bytes of a Part 10 file read per piece when sending it (sliced into PDUs of the peer's
/// maximum length): one piece per association is in memory at a time, plus the read-ahead
/// channel's [`SEND_READ_AHEAD`] pieces.
pub const SEND_PIECE: usize = 128 << 10;
/// Pieces read ahead of the socket when sending a file.
pub const SEND_READ_AHEAD: usize = 4;

/// The outcome of a C-MOVE or C-GET as the SCU sees it (PS3.4 C.4.2.1.5, C.4.3.1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveOutcome {
    /// The final response (status, counts, error comment, data set).
    pub response: Response,
    /// The Failed SOP Instance UID List (0008,0058) of the final response, if it had one.
    pub failed_uids: Vec<String>,
    /// C-GET: instances received and committed to the sink, as (SOP class, SOP instance,
    /// where the sink put it).
    pub received: Vec<(String, String, std::path::PathBuf)>,
}

impl ScuAssociation {
    /// C-STORE (PS3.7 §9.1.1) of a Part 10 file as it is stored: the File Meta is read with
    /// dicom-rs and the data set bytes after it go into P-DATA unchanged, piece by piece
    /// (never the whole instance in memory), on a context accepted for the file's SOP class
    /// and transfer syntax. `move_originator` is the (AE title, Message ID) of the C-MOVE
    /// this sub-operation serves (PS3.7 §9.1.1.1). For many files use
    /// [`ScuAssociation::store_files`], which reads the next file while the peer answers.
    pub async fn store_file(
        &mut self,
        path: &std::path::Path,
        move_originator: Option<(&str, u16)>,
    ) -> Result<Response, ClientError> {
        let mut out = None;
        let paths = [path.to_path_buf()];
        self.store_files(&paths, move_originator, |_, r| {
            out = Some(r);
            true
        })
        .await?;
        out.unwrap_or_else(|| Err(ClientError::Local(format!("{}: not sent", path.display()))))
    }

    /// C-STORE of Part 10 files one after another on this association, each as
    /// [`ScuAssociation::store_file`] sends it. One thread of the blocking pool reads the
    /// files in order, at most [`SEND_READ_AHEAD`] pieces of [`SEND_PIECE`] bytes ahead of
    /// the socket: while the peer writes an instance and answers it, the next file is
    /// opened and its first pieces read, so its C-STORE-RQ and data set go out as soon as
    /// the C-STORE-RSP is in (one outstanding operation, PS3.7 D.3.3.3).
    ///
    /// `each(i, result)` gets the outcome of `paths[i]` (a file that cannot be opened or
    /// has no accepted context is an `Err` and the next file goes on); returning false
    /// stops after it. The `Err` of the call itself is a transport or protocol failure: the
    /// association cannot carry more.
    pub async fn store_files(
        &mut self,
        paths: &[std::path::PathBuf],
        move_originator: Option<(&str, u16)>,
        mut each: impl FnMut(usize, Result<Response, ClientError>) -> bool,
    ) -> Result<(), ClientError> {
        use crate::scp::retrieve::Part10Source;
        /// What the reading thread hands over, in order.
        enum Piece {
            /// The next file's File Meta: (SOP class, SOP instance, transfer syntax).
            Begin(Box<(String, String, String)>),
            /// The file could not be opened (nothing else follows for it).
            Unusable(String),
            /// The next piece of its data set; true: the last.
            Data(Bytes, bool),
            /// The file ended early or could not be read after its first pieces.
            Broken(String),
        }
        let list = paths.to_vec();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Piece>(SEND_READ_AHEAD);
        let reader = tokio::task::spawn_blocking(move || {
            for p in &list {
                let mut src = match Part10Source::open(p) {
                    Ok(s) => s,
                    Err(e) => {
                        if tx.blocking_send(Piece::Unusable(e.to_string())).is_err() {
                            return;
                        }
                        continue;
                    }
                };
                let meta = (
                    std::mem::take(&mut src.sop_class_uid),
                    std::mem::take(&mut src.sop_instance_uid),
                    std::mem::take(&mut src.transfer_syntax_uid),
                );
                if tx.blocking_send(Piece::Begin(Box::new(meta))).is_err() {
                    return;
                }
                if src.remaining() == 0
                    && tx.blocking_send(Piece::Data(Bytes::new(), true)).is_err()
                {
                    return;
                }
                while src.remaining() > 0 {
                    let piece = match src.read_chunk(SEND_PIECE) {
                        Ok(Some(c)) => Piece::Data(c, src.remaining() == 0),
                        Ok(None) => Piece::Broken(format!("{}: ended early", p.display())),
                        Err(e) => Piece::Broken(format!("{}: {e}", p.display())),
                    };
                    let broken = matches!(piece, Piece::Broken(_));
                    if tx.blocking_send(piece).is_err() || broken {
                        return;
                    }
                }
            }
        });
        let r = async {
            for (i, path) in paths.iter().enumerate() {
                let meta = match rx.recv().await {
                    Some(Piece::Begin(m)) => m,
                    Some(Piece::Unusable(e)) => {
                        if !each(i, Err(ClientError::Local(e))) {
                            return Ok(());
                        }
                        continue;
                    }
                    _ => return Err(ClientError::Local(format!("{}: not read", path.display()))),
                };
                let (class, inst, ts) = &*meta;
                let pc = match self.context_for(class, Some(ts)) {
                    Ok(pc) => Some(pc),
                    Err(e) => {
                        // Its pieces are already on their way: skip them.
                        loop {
                            match rx.recv().await {
                                Some(Piece::Data(_, false)) => {}
                                Some(Piece::Data(_, true)) => break,
                                _ => {
                                    return Err(ClientError::Local(format!(
                                        "{}: not read",
                                        path.display()
                                    )));
                                }
                            }
                        }
                        if !each(i, Err(e)) {
                            return Ok(());
                        }
                        None
                    }
                };
                let Some(pc) = pc else { continue };
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1).max(1);
                let cmd = Command {
                    field: field::C_STORE_RQ,
                    message_id: Some(id),
                    affected_sop_class: Some(class),
                    affected_sop_instance: Some(inst),
                    priority: Some(0),
                    move_originator_ae: move_originator.map(|m| m.0),
                    move_originator_id: move_originator.map(|m| m.1),
                    has_dataset: true,
                    ..Command::default()
                };
                self.assoc.send_pdata(pc, true, &Bytes::from(cmd.encode()));
                // The command and the pieces read so far go out in one vectored write.
                loop {
                    let mut next = rx.recv().await;
                    let mut done = false;
                    loop {
                        match next {
                            Some(Piece::Data(c, last)) => {
                                self.assoc.send_pdata_part(pc, false, &c, last);
                                if last {
                                    done = true;
                                    break;
                                }
                            }
                            Some(Piece::Broken(e)) => {
                                // The data set cannot be completed: abort rather than send a
                                // truncated instance (PS3.8 §7.3.1: A-ABORT).
                                self.assoc.abort(Instant::now());
                                let _ = self.flush().await;
                                return Err(ClientError::Local(e));
                            }
                            _ => {
                                self.assoc.abort(Instant::now());
                                let _ = self.flush().await;
                                return Err(ClientError::Local(format!(
                                    "{}: not read",
                                    path.display()
                                )));
                            }
                        }
                        match rx.try_recv() {
                            Ok(p) => next = Some(p),
                            Err(_) => break,
                        }
                    }
                    self.flush().await?;
                    if done {
                        break;
                    }
                }
                let r = self.read_response().await?;
                if r.responded_to != Some(id) {
                    return Err(ClientError::Protocol(format!(
                        "response to message {:?} while {id} was outstanding",
                        r.responded_to
                    )));
                }
                if !each(i, Ok(r)) {
                    return Ok(());
                }
            }
            Ok(())
        }
        .await;
        drop(rx);
        let _ = reader.await;
        r
    }

    /// C-MOVE (PS3.7 §9.1.4) of what `identifier` selects to `destination`: `on_pending`
    /// gets each pending response with the sub-operation counts; when it returns false a
    /// C-CANCEL-RQ is sent (PS3.7 §9.3.2.3). Returns the final response and its Failed SOP
    /// Instance UID List.
    pub async fn move_(
        &mut self,
        sop_class: &str,
        destination: &str,
        identifier: Bytes,
        mut on_pending: impl FnMut(&Response) -> bool,
    ) -> Result<RetrieveOutcome, ClientError> {
        let (pc, id) =
            self.send_query(field::C_MOVE_RQ, sop_class, Some(destination), &identifier)?;
        let ts = self.transfer_syntax_of(pc);
        let mut cancelled = false;
        let mut pending = |r: Response| on_pending(&r);
        loop {
            let r = self.read_response().await?;
            if let Some(fin) = self.pending_or_final(pc, id, r, &mut cancelled, &mut pending)? {
                return Ok(outcome(fin, &ts, Vec::new()));
            }
        }
    }

    /// C-GET (PS3.7 §9.1.3) of what `identifier` selects: the peer sends the instances as
    /// C-STORE-RQs on this association (connect with [`ScuAssociation::connect_with_roles`]
    /// proposing the SCP role for their storage SOP classes, PS3.4 C.4.3.1); each streams
    /// into `sink` as it arrives ([`crate::store::FileSink`] writes Part 10 files), is
    /// committed and answered with its C-STORE-RSP (0xA700 when the sink fails, PS3.4
    /// B.2.3). `on_pending` gets each pending C-GET-RSP; false sends a C-CANCEL-RQ.
    pub async fn get(
        &mut self,
        sop_class: &str,
        identifier: Bytes,
        sink: &dyn crate::store::StorageSink,
        mut on_pending: impl FnMut(&Response) -> bool,
    ) -> Result<RetrieveOutcome, ClientError> {
        use crate::dimse::status;
        use crate::store::{FileMeta, InstanceStart};
        let (pc, id) = self.send_query(field::C_GET_RQ, sop_class, None, &identifier)?;
        let ts = self.transfer_syntax_of(pc);
        let mut cancelled = false;
        let mut pending = |r: Response| on_pending(&r);
        let mut received = Vec::new();
        loop {
            let DimseEvent::Command { pc_id, bytes } = self.next_dimse().await? else {
                return Err(ClientError::Protocol("data set without a command".into()));
            };
            let c = Command::decode(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if c.field == field::C_STORE_RQ {
                // A C-STORE sub-operation (PS3.4 C.4.3.3.1): stream it into the sink.
                let class = c.affected_sop_class.unwrap_or("").to_string();
                let inst = c.affected_sop_instance.unwrap_or("").to_string();
                let ctx = self.neg.context(pc_id).map(|x| x.transfer_syntax.clone());
                let source_ae = self.neg.called_ae.clone();
                let mut st = status::SUCCESS;
                let mut writer = match (&ctx, class.is_empty() || inst.is_empty()) {
                    (Some(t), false) => {
                        let start = InstanceStart {
                            meta: FileMeta {
                                sop_class_uid: &class,
                                sop_instance_uid: &inst,
                                transfer_syntax: t,
                                implementation_class_uid: IMPLEMENTATION_CLASS_UID,
                                implementation_version_name: IMPLEMENTATION_VERSION_NAME,
                                source_ae: Some(&source_ae),
                            },
                            message_id: c.message_id,
                        };
                        let w = sink.begin(&start).ok();
                        if w.is_none() {
                            st = status::OUT_OF_RESOURCES;
                        }
                        w
                    }
                    (None, _) => {
                        st = status::SOP_CLASS_NOT_SUPPORTED;
                        None
                    }
                    (_, true) => {
                        st = status::CANNOT_UNDERSTAND;
                        None
                    }
                };
                if c.has_dataset {
                    loop {
                        match self.next_dimse().await? {
                            DimseEvent::Data { data, last, .. } => {
                                if let Some(w) = writer.as_mut()
                                    && w.write(&data).is_err()
                                {
                                    if let Some(w) = writer.take() {
                                        w.abort();
                                    }
                                    st = status::OUT_OF_RESOURCES;
                                }
                                if last {
                                    break;
                                }
                            }
                            DimseEvent::Command { .. } => {
                                if let Some(w) = writer.take() {
                                    w.abort();
                                }
                                return Err(ClientError::Protocol(
                                    "command while a C-STORE data set was expected".into(),
                                ));
                            }
                        }
                    }
                } else {
                    st = status::CANNOT_UNDERSTAND;
                }
                if let Some(w) = writer.take() {
                    if st == status::SUCCESS {
                        // The commit may fsync: off the async worker.
                        match tokio::task::spawn_blocking(move || w.commit()).await {
                            Ok(Ok(path)) => received.push((class.clone(), inst.clone(), path)),
                            _ => st = status::OUT_OF_RESOURCES,
                        }
                    } else {
                        w.abort();
                    }
                }
                let rsp = Command {
                    field: field::C_STORE_RSP,
                    responded_to: c.message_id,
                    affected_sop_class: Some(&class),
                    affected_sop_instance: Some(&inst),
                    status: Some(st),
                    ..Command::default()
                };
                let enc = Bytes::from(rsp.encode());
                self.assoc.send_pdata(pc_id, true, &enc);
                self.flush().await?;
                continue;
            }
            if c.is_request() {
                return Err(ClientError::Protocol(format!(
                    "request 0x{:04X} during a C-GET",
                    c.field
                )));
            }
            let mut r = response_of(&c);
            if c.has_dataset {
                r.dataset = Some(self.read_dataset(MAX_RESPONSE_DATASET).await?);
            }
            if let Some(fin) = self.pending_or_final(pc, id, r, &mut cancelled, &mut pending)? {
                return Ok(outcome(fin, &ts, received));
            }
        }
    }

    /// Storage Commitment Push Model as SCU (PS3.4 J.3.2, J.3.3): sends the N-ACTION-RQ
    /// (Action Type 1, Transaction UID and Referenced SOP Sequence), then waits at most
    /// `wait` for the SCP's N-EVENT-REPORT-RQ on this association, answers it with an
    /// N-EVENT-REPORT-RSP and returns the committed and failed references. A report the SCP
    /// sends on a new association is not seen here.
    pub async fn commit(
        &mut self,
        req: &crate::scp::commitment::CommitmentRequest,
        wait: std::time::Duration,
    ) -> Result<crate::scp::commitment::CommitmentResult, ClientError> {
        use crate::assoc::policy::sop;
        use crate::scp::commitment::{ACTION_REQUEST_COMMITMENT, CommitmentResult};
        let pc = self.context_for(sop::STORAGE_COMMITMENT_PUSH, None)?;
        let ts = self.transfer_syntax_of(pc);
        let ds = req
            .encode(&ts)
            .map_err(|e| ClientError::Local(e.to_string()))?;
        let cmd = Command {
            field: field::N_ACTION_RQ,
            requested_sop_class: Some(sop::STORAGE_COMMITMENT_PUSH),
            requested_sop_instance: Some(sop::STORAGE_COMMITMENT_PUSH_INSTANCE),
            action_type_id: Some(ACTION_REQUEST_COMMITMENT),
            ..Command::default()
        };
        let id = self.send_request(pc, cmd, Some(&Bytes::from(ds)));
        let fut = async {
            let r = self.read_response().await?;
            if r.responded_to != Some(id) {
                return Err(ClientError::Protocol(format!(
                    "response to message {:?} while {id} was outstanding",
                    r.responded_to
                )));
            }
            if r.status != 0 {
                return Err(ClientError::Status {
                    operation: "N-ACTION",
                    status: r.status,
                    comment: r.error_comment,
                });
            }
            loop {
                let DimseEvent::Command { pc_id, bytes } = self.next_dimse().await? else {
                    return Err(ClientError::Protocol("data set without a command".into()));
                };
                let c =
                    Command::decode(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))?;
                if c.field != field::N_EVENT_REPORT_RQ {
                    return Err(ClientError::Protocol(format!(
                        "0x{:04X} while waiting for the N-EVENT-REPORT",
                        c.field
                    )));
                }
                let ds = if c.has_dataset {
                    self.read_dataset(MAX_RESPONSE_DATASET).await?
                } else {
                    Bytes::new()
                };
                let ets = self.transfer_syntax_of(pc_id);
                let decoded = CommitmentResult::decode(&ds, &ets);
                // PS3.7 §10.1.1.1.8: the response echoes the event type.
                let rsp_status = if decoded.is_ok() { 0 } else { 0x0110 };
                let rsp = Command {
                    field: field::N_EVENT_REPORT_RQ | 0x8000,
                    responded_to: c.message_id,
                    affected_sop_class: c.affected_sop_class,
                    affected_sop_instance: c.affected_sop_instance,
                    event_type_id: c.event_type_id,
                    status: Some(rsp_status),
                    ..Command::default()
                };
                let enc = Bytes::from(rsp.encode());
                self.assoc.send_pdata(pc_id, true, &enc);
                self.flush().await?;
                let result = decoded.map_err(|e| ClientError::Protocol(e.to_string()))?;
                if result.transaction_uid == req.transaction_uid {
                    return Ok(result);
                }
                // A report of another transaction: answered, keep waiting.
            }
        };
        tokio::time::timeout(wait, fut)
            .await
            .map_err(|_| ClientError::TimedOut("the N-EVENT-REPORT"))?
    }

    /// Sends a Storage Commitment result as N-EVENT-REPORT-RQ (PS3.4 J.3.3; the SCP on an
    /// association it requested) and returns the N-EVENT-REPORT-RSP.
    pub async fn commitment_report(
        &mut self,
        r: &crate::scp::commitment::CommitmentResult,
    ) -> Result<Response, ClientError> {
        use crate::assoc::policy::sop;
        let pc = self.context_for(sop::STORAGE_COMMITMENT_PUSH, None)?;
        let ts = self.transfer_syntax_of(pc);
        let ds = r
            .encode(&ts)
            .map_err(|e| ClientError::Local(e.to_string()))?;
        let cmd = Command {
            field: field::N_EVENT_REPORT_RQ,
            affected_sop_class: Some(sop::STORAGE_COMMITMENT_PUSH),
            affected_sop_instance: Some(sop::STORAGE_COMMITMENT_PUSH_INSTANCE),
            event_type_id: Some(r.event_type_id()),
            ..Command::default()
        };
        self.request(pc, cmd, Some(Bytes::from(ds))).await
    }

    fn transfer_syntax_of(&self, pc: u8) -> String {
        self.neg
            .context(pc)
            .map(|c| c.transfer_syntax.clone())
            .unwrap_or_default()
    }

    fn send_cancel(&mut self, pc: u8, id: u16) {
        let cancel = Command {
            field: field::C_CANCEL_RQ,
            responded_to: Some(id),
            ..Command::default()
        };
        let enc = Bytes::from(cancel.encode());
        self.assoc.send_pdata(pc, true, &enc);
    }
}

fn outcome(
    r: Response,
    ts: &str,
    received: Vec<(String, String, std::path::PathBuf)>,
) -> RetrieveOutcome {
    let failed_uids = r
        .dataset
        .as_ref()
        .and_then(|d| crate::scp::retrieve::failed_uid_list(d, ts).ok())
        .unwrap_or_default();
    RetrieveOutcome {
        response: r,
        failed_uids,
        received,
    }
}
