//! SCU side: one association, C-ECHO, C-STORE, N-CREATE and N-SET requests.

use super::{Stream, write_chunks};
use crate::assoc::policy::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
use crate::assoc::{Association, Event, Negotiated, Timeouts};
use crate::dimse::{Assembler, Command, DimseEvent, field};
use crate::pdu::{
    AssociateRj, AssociateRq, DICOM_APPLICATION_CONTEXT, PresentationContextRq, UserInformation,
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

    /// Negotiates an association on an established [`Stream`].
    pub async fn negotiate(stream: Stream, cfg: &ClientConfig) -> Result<Self, ClientError> {
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

    /// Reads the next response message (command and its data set, if any).
    async fn read_response(&mut self) -> Result<Response, ClientError> {
        let mut rsp: Option<Response> = None;
        let mut data = BytesMut::new();
        loop {
            match self.next_event().await? {
                Event::Data(pdv) => match self
                    .asm
                    .push(pdv)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?
                {
                    Some(DimseEvent::Command { bytes, .. }) => {
                        let c = Command::decode(&bytes)
                            .map_err(|e| ClientError::Protocol(e.to_string()))?;
                        let counts =
                            (c.completed.is_some() || c.failed.is_some() || c.remaining.is_some())
                                .then(|| crate::scp::SubOperations {
                                    remaining: c.remaining.unwrap_or(0),
                                    completed: c.completed.unwrap_or(0),
                                    failed: c.failed.unwrap_or(0),
                                    warning: c.warning.unwrap_or(0),
                                });
                        let r = Response {
                            status: c.status.unwrap_or(0xFFFF),
                            responded_to: c.responded_to,
                            sop_instance_uid: c.affected_sop_instance.map(str::to_string),
                            dataset: None,
                            error_comment: c.error_comment.map(str::to_string),
                            counts,
                        };
                        if !c.has_dataset {
                            return Ok(r);
                        }
                        rsp = Some(r);
                    }
                    Some(DimseEvent::Data { data: d, last, .. }) => {
                        data.extend_from_slice(&d);
                        if last {
                            if let Some(mut r) = rsp.take() {
                                r.dataset = Some(data.freeze());
                                return Ok(r);
                            }
                            return Err(ClientError::Protocol(
                                "data set without a response".into(),
                            ));
                        }
                    }
                    None => {}
                },
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
        let pc = self.context_for(sop_class, None)?;
        let cmd = Command {
            field: field::C_FIND_RQ,
            affected_sop_class: Some(sop_class),
            priority: Some(0),
            ..Command::default()
        };
        let id = self.send_request(pc, cmd, Some(&identifier));
        let mut cancelled = false;
        loop {
            let r = self.read_response().await?;
            if r.responded_to != Some(id) {
                return Err(ClientError::Protocol(format!(
                    "response to message {:?} while {id} was outstanding",
                    r.responded_to
                )));
            }
            if r.status != 0xFF00 && r.status != 0xFF01 {
                return Ok(r);
            }
            if !cancelled && !on_match(r) {
                cancelled = true;
                let cancel = Command {
                    field: field::C_CANCEL_RQ,
                    responded_to: Some(id),
                    ..Command::default()
                };
                let enc = Bytes::from(cancel.encode());
                self.assoc.send_pdata(pc, true, &enc);
            }
        }
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
