//! The storage SCP server: accept loop, association limit, graceful shutdown.

use super::retrieve::{
    GET_QUEUE, GetItem, Peers, RetrieveConfig, run_get, run_move, send_report_elsewhere, transcode,
};
use super::{Stream, write_chunks};
use crate::dimse::status;
use crate::pdu::{AssociateRj, encode};
use crate::scp::commitment::{CommitmentRequest, CommitmentResult};
use crate::scp::retrieve::{RetrieveInstance, RetrieveTally, SubOutcome};
use crate::scp::{
    Completed, Handler, NResponse, QueryFinal, QueryKind, QueryOutcome, QueryRequest, RequestId,
    ScpConfig, ScpEvent, ScpSession, StoredInstance, SubOperations, SubStore, commitment_result,
    n_answer, send_commitment_report, store_with,
};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Callback for answered messages.
pub type LogFn = Arc<dyn Fn(&Completed) + Send + Sync>;

/// A configured SCP: configuration, handler and an optional per-message log callback.
#[derive(Clone)]
pub struct Server {
    cfg: Arc<ScpConfig>,
    handler: Arc<dyn Handler>,
    log: Option<LogFn>,
    retrieve: Arc<RetrieveConfig>,
    sub_associations: Arc<Semaphore>,
    active: Arc<std::sync::atomic::AtomicUsize>,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with this configuration and handler.
    pub fn new(cfg: ScpConfig, handler: Arc<dyn Handler>) -> Self {
        Self {
            cfg: Arc::new(cfg),
            handler,
            log: None,
            retrieve: Arc::new(RetrieveConfig::default()),
            sub_associations: Arc::new(Semaphore::new(
                RetrieveConfig::default().max_sub_associations,
            )),
            active: Arc::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// C-MOVE destinations, Storage Commitment requesters and the limit on the associations
    /// this server opens for them (see [`RetrieveConfig`]).
    #[must_use]
    pub fn with_retrieve(mut self, cfg: RetrieveConfig) -> Self {
        self.sub_associations = Arc::new(Semaphore::new(cfg.max_sub_associations));
        self.retrieve = Arc::new(cfg);
        self
    }

    /// Associations [`Server::run`] is serving now (accepted connections, until their task
    /// ends), for a gauge.
    pub fn active_associations(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// The known peers (C-MOVE destinations).
    pub fn peers(&self) -> &Peers {
        &self.retrieve.peers
    }

    /// Serves DICOM TLS (PS3.15 B.1): every accepted connection does the TLS handshake
    /// (bounded by ARTIM) before the association starts.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn with_tls(mut self, acceptor: tokio_rustls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Calls `f` for every answered message and association event (e.g. to log them).
    #[must_use]
    pub fn with_log(mut self, f: impl Fn(&Completed) + Send + Sync + 'static) -> Self {
        self.log = Some(Arc::new(f));
        self
    }

    /// Accepts associations on `listener` until `shutdown` resolves, then waits for the
    /// running ones to finish. One task per association; beyond `max_associations`, or
    /// beyond `max_associations_per_ip` from the same IP address, a request is rejected
    /// transiently (PS3.8 table 9-21: local limit exceeded).
    pub async fn run(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let permits = Arc::new(Semaphore::new(self.cfg.max_associations.max(1)));
        let per_ip = PerIp::new(self.cfg.max_associations_per_ip.max(1));
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                r = listener.accept() => {
                    let Ok((stream, peer)) = r else { continue };
                    let me = self.clone();
                    let slot = per_ip.take(peer.ip());
                    if let (Some(slot), Ok(permit)) = (slot, permits.clone().try_acquire_owned()) {
                        me.active.fetch_add(1, Ordering::Relaxed);
                        tasks.spawn(async move {
                            let _ = me.connection(stream).await;
                            me.active.fetch_sub(1, Ordering::Relaxed);
                            drop(permit);
                            drop(slot);
                        });
                    } else {
                        tasks.spawn(async move { let _ = reject_busy(stream).await; });
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    /// Serves one association on an accepted connection until it is released or aborted
    /// (after the TLS handshake when [`Server::with_tls`] was set).
    pub async fn connection(&self, tcp: TcpStream) -> std::io::Result<()> {
        tcp.set_nodelay(true)?;
        #[cfg(feature = "tls")]
        if let Some(acceptor) = &self.tls {
            let tls = tokio::time::timeout(self.cfg.timeouts.artim, acceptor.accept(tcp))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            return self.stream(Stream::ServerTls(Box::new(tls))).await;
        }
        self.stream(Stream::Plain(tcp)).await
    }

    /// Serves one association on an established [`Stream`].
    ///
    /// The session's events are answered by the handler on tokio's blocking pool (a commit's
    /// fsync, a database write, a query), never on the async worker, so a slow disk or a
    /// long query stalls only its own association. While a C-STORE or N-* answer is being
    /// made nothing more is read from this peer (TCP back-pressure bounds memory); while a
    /// query streams, input is read for its C-CANCEL.
    pub async fn stream(&self, mut stream: Stream) -> std::io::Result<()> {
        let mut s = ScpSession::new(self.cfg.clone(), Instant::now());
        // The peer address is handed to negotiation (AE titles bound to a host).
        if let Ok(peer) = stream.tcp().peer_addr() {
            s.set_peer_addr(peer.ip());
        }
        let mut chunks = Vec::new();
        // Answers made on the blocking pool come back here (bounded: a query producing
        // matches faster than they are sent waits).
        let (tx, mut rx) = mpsc::channel::<Answer>(ANSWER_QUEUE);
        let mut query: Option<(RequestId, Arc<AtomicBool>)> = None;
        // The running C-GET: its worker's items and the sub-operation state.
        let mut get: Option<GetRun> = None;
        loop {
            while let Some(ev) = s.poll_event() {
                match ev {
                    ScpEvent::Store(c) => {
                        let (h, tx) = (self.handler.clone(), tx.clone());
                        tokio::task::spawn_blocking(move || {
                            let (id, st, inst) = store_with(&*h, c);
                            let _ = tx.blocking_send(Answer::Store(id, st, inst.map(Box::new)));
                        });
                    }
                    ScpEvent::N(op) => {
                        let (h, tx) = (self.handler.clone(), tx.clone());
                        tokio::task::spawn_blocking(move || {
                            let (resp, req) = n_answer(&*h, &op);
                            let req = req.map(|r| (op.calling_ae.clone(), Box::new(r)));
                            let _ = tx.blocking_send(Answer::N(op.id, resp, req));
                        });
                    }
                    ScpEvent::Query(q) => {
                        let cancel = Arc::new(AtomicBool::new(false));
                        query = Some((q.id, cancel.clone()));
                        let (h, tx) = (self.handler.clone(), tx.clone());
                        match q.kind {
                            QueryKind::Find => {
                                tokio::task::spawn_blocking(move || {
                                    let fin = run_find(&*h, &q, &cancel, &tx);
                                    let _ = tx.blocking_send(Answer::QueryDone(q.id, fin));
                                });
                            }
                            QueryKind::Get => {
                                let (items_tx, items_rx) = mpsc::channel(GET_QUEUE);
                                get = Some(GetRun {
                                    id: q.id,
                                    rx: items_rx,
                                    tally: RetrieveTally::new(0),
                                    ts: q.transfer_syntax.clone(),
                                    state: GetState::Idle,
                                });
                                drop(tx);
                                tokio::task::spawn_blocking(move || {
                                    run_get(&*h, &q, &cancel, &items_tx);
                                });
                            }
                            QueryKind::Move => {
                                let (rc, permits) =
                                    (self.retrieve.clone(), self.sub_associations.clone());
                                let our_ae = self.cfg.policy.ae_title.clone();
                                tokio::spawn(async move {
                                    let fin =
                                        run_move(h, &q, &cancel, &tx, &rc, permits, &our_ae).await;
                                    let _ = tx.send(Answer::QueryDone(q.id, fin)).await;
                                });
                            }
                        }
                    }
                    ScpEvent::Response(r) => {
                        if r.query.is_some()
                            && let Some(g) = &mut get
                            && let GetState::AwaitRsp(uid) =
                                std::mem::replace(&mut g.state, GetState::Idle)
                        {
                            g.tally.record_status(&uid, r.status);
                            g.progress(&mut s, query.as_ref());
                        }
                    }
                    ScpEvent::Cancel(id) => {
                        if let Some((q, flag)) = &query
                            && *q == id
                        {
                            flag.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            s.poll_transmit(&mut chunks);
            if !chunks.is_empty()
                && let Err(e) = write_chunks(&mut stream, &mut chunks).await
            {
                s.handle_transport_closed(Instant::now());
                self.emit(&mut s);
                self.reports_left(&mut rx);
                return Err(e);
            }
            self.emit(&mut s);
            if s.is_closed() {
                let _ = stream.shutdown().await;
                self.reports_left(&mut rx);
                return Ok(());
            }
            let deadline = s.association().poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let read = s.wants_input();
            let take_items = get.as_ref().is_some_and(GetRun::takes_items);
            let next_item = async {
                match get.as_mut() {
                    Some(g) => g.rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(item) = next_item, if take_items => {
                    let g = get.as_mut().expect("polled only with a C-GET");
                    if let Some(fin) = g.item(item, &mut s, query.as_ref(), &tx, self.log.as_ref()) {
                        let id = g.id;
                        get = None;
                        query = None;
                        finish_query(&mut s, id, fin, Instant::now());
                    }
                },
                r = stream.read_buf(s.association().buffer_mut()), if read => match r {
                    Ok(0) | Err(_) => s.handle_transport_closed(Instant::now()),
                    Ok(_) => {
                        super::quickack(stream.tcp());
                        s.process(Instant::now());
                    }
                },
                Some(a) = rx.recv() => {
                    let now = Instant::now();
                    match a {
                        Answer::Store(id, st, inst) => {
                            s.answer_store(id, st, inst.map(|b| *b), now);
                        }
                        Answer::N(id, resp, req) => {
                            s.answer_n(id, resp, now);
                            if let Some((requester, req)) = req {
                                // PS3.4 J.3.2: the N-ACTION-RSP is out; the result is made on
                                // the blocking pool and reported when ready.
                                self.make_report(requester, *req, tx.clone());
                            }
                        }
                        Answer::Report(requester, r) => {
                            // PS3.4 J.3.3: on this association while it is open, else on a
                            // new one to the requester.
                            if send_commitment_report(&mut s, &r).is_err() {
                                self.report_elsewhere(requester, *r);
                            }
                        }
                        Answer::Progress(id, counts) => {
                            if !s.query_progress(id, counts)
                                && let Some((_, flag)) = &query
                            {
                                flag.store(true, Ordering::Relaxed);
                            }
                        }
                        Answer::Transcoded(id, r) => {
                            if let Some(g) = get.as_mut().filter(|g| g.id == id) {
                                g.transcoded(r, &mut s, query.as_ref(), now);
                            }
                        }
                        Answer::Match(id, m) => {
                            if !s.query_match(id, &m)
                                && let Some((_, flag)) = &query
                            {
                                flag.store(true, Ordering::Relaxed);
                            }
                        }
                        Answer::QueryDone(id, fin) => {
                            query = None;
                            finish_query(&mut s, id, fin, now);
                        }
                    }
                },
                () = sleep => s.handle_timeout(Instant::now()),
            }
        }
    }

    /// Makes a Storage Commitment result on the blocking pool ([`Handler::commitment`]) and
    /// hands it to the association task, or, when that has ended, reports it on a new
    /// association.
    fn make_report(&self, requester: String, req: CommitmentRequest, tx: mpsc::Sender<Answer>) {
        let me = self.clone();
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let r = commitment_result(&*me.handler, &requester, &req);
            if let Err(mpsc::error::SendError(Answer::Report(requester, r))) =
                tx.blocking_send(Answer::Report(requester, Box::new(r)))
            {
                let _guard = rt.enter();
                me.report_elsewhere(requester, *r);
            }
        });
    }

    /// Reports queued for an association that has ended go out on new associations.
    fn reports_left(&self, rx: &mut mpsc::Receiver<Answer>) {
        rx.close();
        while let Ok(a) = rx.try_recv() {
            if let Answer::Report(requester, r) = a {
                self.report_elsewhere(requester, *r);
            }
        }
    }

    /// Sends a Storage Commitment report on a new association to the requester (PS3.4
    /// J.3.3), in the background: the requester's AE must be in the peer table.
    fn report_elsewhere(&self, requester: String, r: CommitmentResult) {
        let (rc, permits, log) = (
            self.retrieve.clone(),
            self.sub_associations.clone(),
            self.log.clone(),
        );
        let our_ae = self.cfg.policy.ae_title.clone();
        tokio::spawn(async move {
            let outcome = send_report_elsewhere(&rc, permits, &our_ae, &requester, &r).await;
            if let Some(log) = log {
                log(&Completed::Association(match outcome {
                    Ok(()) => format!(
                        "storage commitment report sent to {requester} on a new association"
                    ),
                    Err(e) => format!("storage commitment report to {requester} not sent: {e}"),
                }));
            }
        });
    }

    fn emit(&self, s: &mut ScpSession) {
        let done = s.take_completed();
        if let Some(log) = &self.log {
            for c in &done {
                log(c);
            }
        }
    }
}

/// Accepts on `listener` with `cfg` and `handler` until `shutdown` resolves.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use std::sync::Arc;
/// use xenrad_dimse::scp::{ScpConfig, StoreOnly};
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:11112").await?;
/// xenrad_dimse::net::serve(listener, ScpConfig::new("/var/lib/xenrad"), Arc::new(StoreOnly),
///     async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    cfg: ScpConfig,
    handler: Arc<dyn Handler>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    Server::new(cfg, handler).run(listener, shutdown).await
}

/// Serves one association on an accepted connection.
pub async fn serve_connection(
    stream: TcpStream,
    cfg: ScpConfig,
    handler: Arc<dyn Handler>,
) -> std::io::Result<()> {
    Server::new(cfg, handler).connection(stream).await
}

async fn reject_busy(mut stream: TcpStream) -> std::io::Result<()> {
    // Read the A-ASSOCIATE-RQ first (bounded: 64 KiB, 5 s) so the peer sees the RJ rather
    // than a reset caused by unread data.
    let mut reader =
        crate::pdu::reader::PduReader::new(crate::pdu::reader::ReaderLimits::default());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match stream.read_buf(reader.buffer_mut()).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if !matches!(reader.next_frame(), Ok(None)) {
                        return;
                    }
                }
            }
        }
    })
    .await;
    let mut buf = Vec::with_capacity(10);
    // PS3.8 table 9-21: rejected-transient, service-provider (presentation), local limit exceeded.
    encode::associate_rj(
        &mut buf,
        AssociateRj {
            result: 2,
            source: 3,
            reason: 2,
        },
    );
    stream.write_all(&buf).await?;
    stream.shutdown().await
}

/// Answers queued from the workers to an association task (C-FIND matches, commits, N-*
/// answers, C-MOVE progress); a C-GET's data set pieces have their own queue of
/// [`super::retrieve::GET_QUEUE`] items.
pub const ANSWER_QUEUE: usize = 16;

/// An answer made off the association task (blocking pool, retrieve task) for it.
pub(crate) enum Answer {
    Store(RequestId, u16, Option<Box<StoredInstance>>),
    N(
        RequestId,
        NResponse,
        Option<(String, Box<CommitmentRequest>)>,
    ),
    Match(RequestId, Vec<u8>),
    QueryDone(RequestId, QueryFinal),
    /// A C-MOVE/C-GET pending response with these counts.
    Progress(RequestId, SubOperations),
    /// A C-GET sub-operation's data set re-encoded into the transfer syntax it goes out in.
    Transcoded(RequestId, Result<bytes::Bytes, String>),
    /// A Storage Commitment result for (requester AE).
    Report(String, Box<CommitmentResult>),
}

/// Uncompressed transfer syntaxes dicom-rs re-encodes into each other (PS3.5 A.1–A.3).
pub(crate) fn is_native(ts_uid: &str) -> bool {
    use crate::assoc::policy::ts;
    matches!(
        ts_uid,
        ts::IMPLICIT_VR_LE | ts::EXPLICIT_VR_LE | ts::EXPLICIT_VR_BE
    )
}

/// Runs a C-FIND with the handler on the blocking pool, sending each match to the
/// association task; stops producing when the peer cancelled or the association is gone.
fn run_find(
    h: &dyn Handler,
    q: &QueryRequest,
    cancel: &AtomicBool,
    tx: &mpsc::Sender<Answer>,
) -> QueryFinal {
    h.find(q, &mut |m| {
        !cancel.load(Ordering::Relaxed)
            && tx.blocking_send(Answer::Match(q.id, m)).is_ok()
            && !cancel.load(Ordering::Relaxed)
    })
}

/// Ends a query: a cancelled one 0xFE00, a retrieve with its counts.
fn finish_query(s: &mut ScpSession, id: RequestId, fin: QueryFinal, now: Instant) {
    let fin = if s.is_cancelled(id) && fin.status != status::CANCEL {
        match fin.counts {
            Some(_) => QueryFinal {
                status: status::CANCEL,
                ..fin
            },
            None => QueryOutcome::cancelled(),
        }
    } else {
        fin
    };
    s.query_done(id, fin, now);
}

/// A C-GET as the association task runs it (PS3.4 C.4.3.3): the worker's [`GetItem`]s
/// become C-STORE sub-operations on this association, one at a time; each C-STORE-RSP is
/// tallied here and answered with a pending C-GET-RSP at once, and the next instance's
/// items (already read by the worker) follow without a thread hand-off.
struct GetRun {
    id: RequestId,
    rx: mpsc::Receiver<GetItem>,
    tally: RetrieveTally,
    /// Transfer syntax of the C-GET's context (the final response's data set).
    ts: String,
    state: GetState,
}

/// Where the current sub-operation is.
enum GetState {
    /// No sub-operation: the next item may start one.
    Idle,
    /// Its stored data set is being sent.
    Sending(String),
    /// Its stored bytes are dropped up to their last piece; then, with a transfer syntax
    /// and path, the data set goes out re-encoded, else (a failed sub-operation, already
    /// tallied) the next instance.
    Dropping(String, Option<(String, std::path::PathBuf)>),
    /// Re-encoded on the blocking pool.
    Transcoding(String),
    /// Sent; its C-STORE-RSP is awaited.
    AwaitRsp(String),
}

impl GetRun {
    /// True when the next item can be taken (not while a response or a re-encoding is
    /// awaited: the worker's items wait in the bounded channel).
    fn takes_items(&self) -> bool {
        matches!(
            self.state,
            GetState::Idle | GetState::Sending(_) | GetState::Dropping(..)
        )
    }

    /// A pending C-GET-RSP with the counts so far (PS3.4 C.4.3.1.5); the worker stops at
    /// the next instance when the peer cancelled.
    fn progress(&self, s: &mut ScpSession, query: Option<&(RequestId, Arc<AtomicBool>)>) {
        if !s.query_progress(self.id, self.tally.counts())
            && let Some((_, flag)) = query
        {
            flag.store(true, Ordering::Relaxed);
        }
    }

    fn failed(
        &mut self,
        uid: &str,
        s: &mut ScpSession,
        query: Option<&(RequestId, Arc<AtomicBool>)>,
    ) {
        self.tally.record(uid, SubOutcome::Failed);
        self.progress(s, query);
    }

    /// Takes one item; returns the final response when the C-GET is over.
    fn item(
        &mut self,
        item: GetItem,
        s: &mut ScpSession,
        query: Option<&(RequestId, Arc<AtomicBool>)>,
        tx: &mpsc::Sender<Answer>,
        log: Option<&LogFn>,
    ) -> Option<QueryFinal> {
        match item {
            GetItem::Total(n) => self.tally = RetrieveTally::new(n),
            GetItem::Refused(fin) => return Some(fin),
            GetItem::Unreadable(uid) => self.failed(&uid, s, query),
            GetItem::Abort(why) => {
                if let Some(log) = log {
                    log(&Completed::Association(format!("aborting: {why}")));
                }
                s.association().abort(Instant::now());
            }
            GetItem::Begin(inst) => {
                // PS3.4 C.4.3.3.3: after a C-CANCEL no new sub-operation starts (the worker
                // may have read ahead); the final response has the counts so far.
                if query.is_some_and(|(_, f)| f.load(Ordering::Relaxed)) || s.is_cancelled(self.id)
                {
                    return Some(self.tally.finish(true, &self.ts));
                }
                self.begin(*inst, s, query);
            }
            GetItem::Data(chunk, last) => {
                match std::mem::replace(&mut self.state, GetState::Idle) {
                    GetState::Sending(uid) => {
                        if s.sub_store_data(&chunk, last).is_err() {
                            // The association cannot carry it any more.
                            self.failed(&uid, s, query);
                            if !last {
                                self.state = GetState::Dropping(uid, None);
                            }
                        } else if last {
                            self.state = GetState::AwaitRsp(uid);
                        } else {
                            self.state = GetState::Sending(uid);
                        }
                    }
                    GetState::Dropping(uid, then) => {
                        if !last {
                            self.state = GetState::Dropping(uid, then);
                        } else if let Some((ts, path)) = then {
                            self.state = GetState::Transcoding(uid);
                            let (id, tx) = (self.id, tx.clone());
                            tokio::task::spawn_blocking(move || {
                                let _ =
                                    tx.blocking_send(Answer::Transcoded(id, transcode(&path, &ts)));
                            });
                        }
                    }
                    other => self.state = other,
                }
            }
            GetItem::End => {
                let cancelled = query.is_some_and(|(_, f)| f.load(Ordering::Relaxed))
                    || s.is_cancelled(self.id);
                return Some(self.tally.finish(cancelled, &self.ts));
            }
        }
        None
    }

    /// Starts a sub-operation in the stored transfer syntax or, when the requestor has no
    /// context for it, in a native one it accepted (the data set then re-encoded).
    fn begin(
        &mut self,
        inst: RetrieveInstance,
        s: &mut ScpSession,
        query: Option<&(RequestId, Arc<AtomicBool>)>,
    ) {
        let op = |ts| SubStore {
            sop_class_uid: &inst.sop_class_uid,
            sop_instance_uid: &inst.sop_instance_uid,
            transfer_syntax: ts,
        };
        let stored = &inst.transfer_syntax_uid;
        let mut used = stored.clone();
        let mut r = s.sub_store_begin(self.id, &op(stored));
        if matches!(r, Err(crate::scp::SendError::NoContext { .. }))
            && is_native(stored)
            && let Some(t) = s
                .sub_store_syntaxes(&inst.sop_class_uid)
                .into_iter()
                .find(|t| is_native(t))
                .map(str::to_string)
        {
            r = s.sub_store_begin(self.id, &op(&t));
            used = t;
        }
        let uid = inst.sop_instance_uid.clone();
        self.state = match r {
            Ok(_) if used == *stored => GetState::Sending(uid),
            Ok(_) => GetState::Dropping(uid, Some((used, inst.path))),
            Err(_) => {
                // No context for this SOP class/transfer syntax with the peer as SCP (or
                // the association is gone): a failed sub-operation.
                self.failed(&uid, s, query);
                GetState::Dropping(uid, None)
            }
        };
    }

    /// The re-encoded data set of the current sub-operation, or why it could not be made
    /// (the peer waits for a data set: the association has to go, PS3.8 §7.3.1).
    fn transcoded(
        &mut self,
        r: Result<bytes::Bytes, String>,
        s: &mut ScpSession,
        query: Option<&(RequestId, Arc<AtomicBool>)>,
        now: Instant,
    ) {
        let GetState::Transcoding(uid) = std::mem::replace(&mut self.state, GetState::Idle) else {
            return;
        };
        match r {
            Ok(ds) if s.sub_store_data(&ds, true).is_ok() => self.state = GetState::AwaitRsp(uid),
            Ok(_) => self.failed(&uid, s, query),
            Err(_) => s.association().abort(now),
        }
    }
}

/// Associations per IP address: a slot is taken at accept and given back when its task ends.
#[derive(Clone)]
struct PerIp {
    max: usize,
    counts: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

/// One taken slot; dropping it gives it back.
struct PerIpSlot {
    ip: std::net::IpAddr,
    owner: PerIp,
}

impl PerIp {
    fn new(max: usize) -> Self {
        PerIp {
            max,
            counts: Arc::default(),
        }
    }

    fn take(&self, ip: std::net::IpAddr) -> Option<PerIpSlot> {
        let mut m = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PerIpSlot {
            ip,
            owner: self.clone(),
        })
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut m = self
            .owner
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod per_ip_tests {
    use super::PerIp;

    #[test]
    fn slots_per_address_are_bounded_and_given_back() {
        let p = PerIp::new(2);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let s1 = p.take(a).unwrap();
        let _s2 = p.take(a).unwrap();
        assert!(p.take(a).is_none(), "third from the same address");
        assert!(p.take(b).is_some(), "another address is not affected");
        drop(s1);
        assert!(
            p.take(a).is_some(),
            "a slot comes back when its association ends"
        );
    }
}
