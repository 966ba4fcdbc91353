//! MLLP listener: accepts connections and drives a caller-supplied [`Handler`] one message at
//! a time per connection, in arrival order (HL7 v2.5.1 ch. 2 appendix C: the original
//! acknowledgement protocol is stop-and-wait, so a sender that waits gets its reply before
//! anything else happens on the connection). A sender that pipelines (several complete frames
//! already buffered) gets its replies gathered, in order, into one write of up to
//! [`ServerConfig::max_batched_replies`]; set it to 1 to write each reply before the next
//! frame is handled.
//!
//! Per message on a stop-and-wait connection the server makes one `read` and one `write`
//! system call; the idle/frame timer and the shutdown waiter live as long as the connection
//! (the timer is re-armed only when a deadline moves earlier), not one per read.
//!
//! The server reads at most [`ServerConfig::read_chunk`] bytes at a time and does not read
//! while the handler is busy (backpressure), so a connection holds at most
//! `max_frame_size + read_chunk` bytes of input. A frame over the limit is rejected by
//! closing that connection; other connections are unaffected.
//!
//! ```no_run
//! use bytes::Bytes;
//! use xenrad_mllp::server::{ConnectionInfo, Handler, Reply, Server, ServerConfig};
//!
//! struct Commit;
//! impl Handler for Commit {
//!     async fn handle(&self, _msg: Bytes, _conn: &ConnectionInfo) -> Reply {
//!         // store the message durably here, then:
//!         Reply::commit_ack()
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! Server::new(Commit, ServerConfig::default())
//!     .serve(listener, async { tokio::signal::ctrl_c().await.ok(); })
//!     .await
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::{DecodeError, Decoder, DecoderConfig, Encoder, Frame};

/// Listener limits and timeouts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Frame size limit and tolerances.
    pub decoder: DecoderConfig,
    /// Close a connection after this long without any input while no frame is open.
    /// Default 5 minutes; `None` disables.
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose open frame is not complete this long after it started (slow
    /// or stalled senders). Default 60 s; `None` disables.
    pub frame_timeout: Option<Duration>,
    /// Give up writing a reply after this long and close the connection. Default 30 s.
    pub write_timeout: Duration,
    /// TCP keepalive idle time for accepted sockets; `None` leaves the OS default. Default 60 s.
    pub tcp_keepalive: Option<Duration>,
    /// Disable Nagle's algorithm on accepted sockets (replies are small). Default true.
    pub nodelay: bool,
    /// Maximum simultaneous connections; further connections are closed on accept. Default 1024.
    pub max_connections: usize,
    /// Maximum simultaneous connections from one IP address. Default 64.
    pub max_connections_per_ip: usize,
    /// Largest single read from a socket. Default 64 KiB.
    pub read_chunk: usize,
    /// Time allowed for a TLS handshake (`serve_tls`, feature `tls`). Default 10 s.
    pub handshake_timeout: Duration,
    /// When a sender pipelines (the next frame is already complete in the input buffer when
    /// a reply is ready), up to this many replies are gathered and written together, still
    /// in order. A stop-and-wait sender always gets its reply at once. `1` (or 0) writes
    /// every reply on its own. Default 32.
    pub max_batched_replies: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            decoder: DecoderConfig::default(),
            idle_timeout: Some(Duration::from_secs(300)),
            frame_timeout: Some(Duration::from_secs(60)),
            write_timeout: Duration::from_secs(30),
            tcp_keepalive: Some(Duration::from_secs(60)),
            nodelay: true,
            max_connections: 1024,
            max_connections_per_ip: 64,
            read_chunk: 64 * 1024,
            handshake_timeout: Duration::from_secs(10),
            max_batched_replies: 32,
        }
    }
}

/// Live counters of one connection, updated as it runs; read them with
/// [`snapshot`](Self::snapshot) at any time (for example from [`Server::connections`]).
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    frames: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    garbage_bytes: AtomicU64,
    discarded_bytes: AtomicU64,
    errors: AtomicU64,
    replies: AtomicU64,
}

/// A point-in-time copy of [`ConnectionCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Frames received (messages and commit blocks).
    pub frames: u64,
    /// Bytes read from the socket.
    pub bytes_in: u64,
    /// Bytes written to the socket.
    pub bytes_out: u64,
    /// Bytes discarded outside frames (keep-alives, NULs, stray bytes).
    pub garbage_bytes: u64,
    /// Bytes discarded from broken frames (interrupted, oversized, truncated).
    pub discarded_bytes: u64,
    /// Framing errors, timeouts and write failures.
    pub errors: u64,
    /// Replies written.
    pub replies: u64,
}

impl std::ops::AddAssign for CounterSnapshot {
    fn add_assign(&mut self, o: Self) {
        self.frames += o.frames;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.garbage_bytes += o.garbage_bytes;
        self.discarded_bytes += o.discarded_bytes;
        self.errors += o.errors;
        self.replies += o.replies;
    }
}

impl ConnectionCounters {
    /// Reads every counter.
    pub fn snapshot(&self) -> CounterSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CounterSnapshot {
            frames: r(&self.frames),
            bytes_in: r(&self.bytes_in),
            bytes_out: r(&self.bytes_out),
            garbage_bytes: r(&self.garbage_bytes),
            discarded_bytes: r(&self.discarded_bytes),
            errors: r(&self.errors),
            replies: r(&self.replies),
        }
    }

    fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }

    fn sync_decoder(&self, dec: &Decoder) {
        let s = dec.stats();
        self.frames.store(s.frames, Ordering::Relaxed);
        self.garbage_bytes.store(s.garbage_bytes, Ordering::Relaxed);
        self.discarded_bytes
            .store(s.discarded_bytes, Ordering::Relaxed);
    }
}

/// Who is on the other end of a connection, and its counters.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Server-unique connection number, in accept order.
    pub id: u64,
    /// Remote address.
    pub peer: SocketAddr,
    /// Local address the connection was accepted on.
    pub local: SocketAddr,
    /// Live counters of this connection.
    pub counters: Arc<ConnectionCounters>,
    /// DER of the client's end-entity certificate, when a mutual TLS handshake presented one.
    pub client_certificate: Option<Bytes>,
}

impl ConnectionInfo {
    /// Info for a connection accepted by the caller (for [`Server::serve_connection`]).
    pub fn new(id: u64, peer: SocketAddr, local: SocketAddr) -> Self {
        Self {
            id,
            peer,
            local,
            counters: Arc::default(),
            client_certificate: None,
        }
    }
}

/// What to send back for one message, and whether to close the connection afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    frame: Option<Frame>,
    close: bool,
}

impl Reply {
    /// Reply with an acknowledgement message (an HL7 ACK payload; it is framed here).
    pub fn ack(payload: impl Into<Bytes>) -> Self {
        Self {
            frame: Some(Frame::Message(payload.into())),
            close: false,
        }
    }

    /// Reply with an MLLP release 2 positive commit acknowledgement block. Send it only once
    /// the message is durably stored (MLLP release 2, appendix C.5).
    pub fn commit_ack() -> Self {
        Self {
            frame: Some(Frame::CommitAck),
            close: false,
        }
    }

    /// Reply with an MLLP release 2 negative commit acknowledgement block.
    pub fn commit_nak() -> Self {
        Self {
            frame: Some(Frame::CommitNak),
            close: false,
        }
    }

    /// Send nothing back.
    pub fn none() -> Self {
        Self {
            frame: None,
            close: false,
        }
    }

    /// Close the connection after sending this reply.
    #[must_use]
    pub fn and_close(mut self) -> Self {
        self.close = true;
        self
    }

    /// The frame to send, if any.
    pub fn frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// Whether the connection closes after this reply.
    pub fn closes(&self) -> bool {
        self.close
    }
}

/// The application side of a listener: turns each received message into a [`Reply`].
///
/// Calls on one connection are sequential, in arrival order; calls on different connections
/// run concurrently. Implement with `async fn handle(...)`. A handler that sends a commit
/// acknowledgement (`CA` or [`Reply::commit_ack`]) must have stored the message durably
/// before returning.
pub trait Handler: Send + Sync + 'static {
    /// Handles one message payload (without MLLP framing).
    fn handle(&self, msg: Bytes, conn: &ConnectionInfo) -> impl Future<Output = Reply> + Send;

    /// Called when a connection ends, with the reason. The default does nothing.
    fn closed(&self, _conn: &ConnectionInfo, _end: &ConnectionEnd) {}
}

/// A shared handler: lets one handler (and its counters) serve MLLP and other transports at
/// once, e.g. `Server::new(Arc::clone(&h), config)` beside an HTTP route calling
/// `h.process(...)` on an `Arc<Hl7Handler<_>>`.
impl<H: Handler> Handler for Arc<H> {
    fn handle(&self, msg: Bytes, conn: &ConnectionInfo) -> impl Future<Output = Reply> + Send {
        (**self).handle(msg, conn)
    }

    fn closed(&self, conn: &ConnectionInfo, end: &ConnectionEnd) {
        (**self).closed(conn, end);
    }
}

/// Why a connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectionEnd {
    /// The peer closed its side after its last complete frame.
    PeerClosed,
    /// The handler asked to close.
    HandlerClosed,
    /// The server is shutting down.
    Shutdown,
    /// No input for [`ServerConfig::idle_timeout`].
    IdleTimeout,
    /// A frame did not complete within [`ServerConfig::frame_timeout`].
    FrameTimeout,
    /// A reply could not be written within [`ServerConfig::write_timeout`].
    WriteTimeout,
    /// A framing error that ends the connection (oversized frame, truncated stream).
    Framing(DecodeError),
    /// A reply could not be framed.
    BadReply(crate::EncodeError),
    /// Transport error.
    Io(io::Error),
    /// Refused at accept: too many connections in total or from this address.
    Refused,
    /// The TLS handshake failed or timed out.
    Handshake(io::Error),
}

struct Shared {
    next_id: AtomicU64,
    active: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    live: Mutex<HashMap<u64, ConnectionInfo>>,
    closed_totals: Mutex<CounterSnapshot>,
}

/// An MLLP listener around a [`Handler`]. Cheap to clone (shared state).
pub struct Server<H> {
    handler: Arc<H>,
    config: Arc<ServerConfig>,
    shared: Arc<Shared>,
}

impl<H> Clone for Server<H> {
    fn clone(&self) -> Self {
        Self {
            handler: Arc::clone(&self.handler),
            config: Arc::clone(&self.config),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Releases a connection's slot in the global and per-IP counts when dropped.
struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
        let mut per_ip = self
            .shared
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
        drop(per_ip);
        let info = self
            .shared
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
        if let Some(info) = info {
            *self
                .shared
                .closed_totals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) += info.counters.snapshot();
        }
    }
}

impl<H: Handler> Server<H> {
    /// A server running `handler` with `config`.
    pub fn new(handler: H, config: ServerConfig) -> Self {
        Self {
            handler: Arc::new(handler),
            config: Arc::new(config),
            shared: Arc::new(Shared {
                next_id: AtomicU64::new(1),
                active: AtomicUsize::new(0),
                per_ip: Mutex::default(),
                live: Mutex::default(),
                closed_totals: Mutex::default(),
            }),
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The open connections with their live counters.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let live = self
            .shared
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut v: Vec<_> = live.values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Counters summed over every connection, open and closed.
    pub fn totals(&self) -> CounterSnapshot {
        let mut t = *self
            .shared
            .closed_totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for c in self.connections() {
            t += c.counters.snapshot();
        }
        t
    }

    fn try_reserve(&self, peer: SocketAddr) -> Option<Slot> {
        let cfg = &self.config;
        let mut per_ip = self
            .shared
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = per_ip.entry(peer.ip()).or_insert(0);
        if *n >= cfg.max_connections_per_ip
            || self.shared.active.load(Ordering::Acquire) >= cfg.max_connections
        {
            if *n == 0 {
                per_ip.remove(&peer.ip());
            }
            return None;
        }
        *n += 1;
        self.shared.active.fetch_add(1, Ordering::AcqRel);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            shared: Arc::clone(&self.shared),
            ip: peer.ip(),
            id,
        })
    }

    fn configure_socket(&self, stream: &TcpStream) {
        // Best effort: a socket option the OS refuses does not end the connection.
        if self.config.nodelay {
            let _ = stream.set_nodelay(true);
        }
        if let Some(idle) = self.config.tcp_keepalive {
            let ka = socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(idle / 4);
            let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&ka);
        }
    }

    /// Accepts connections on `listener` until `shutdown` completes, serving each on its own
    /// task. On shutdown, stops accepting, lets every connection finish the message in hand,
    /// closes them and returns.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        self.accept_loop(listener, shutdown, |stream, info| async move {
            Ok((stream, info))
        })
        .await
    }

    /// Like [`serve`](Self::serve) for MLLP over TLS (MLLPS): every accepted connection first
    /// completes a TLS handshake within [`ServerConfig::handshake_timeout`]. Mutual TLS is
    /// configured in the acceptor's rustls `ServerConfig` (a client certificate verifier); the
    /// client's end-entity certificate is then in [`ConnectionInfo::client_certificate`].
    /// A failed handshake ends only that connection ([`ConnectionEnd::Handshake`]).
    #[cfg(feature = "tls")]
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        acceptor: tokio_rustls::TlsAcceptor,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let limit = self.config.handshake_timeout;
        self.accept_loop(listener, shutdown, move |stream, mut info| {
            let accept = acceptor.accept(stream);
            async move {
                let tls = tokio::time::timeout(limit, accept).await.map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
                info.client_certificate = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(<[_]>::first)
                    .map(|c| Bytes::copy_from_slice(c.as_ref()));
                Ok((tls, info))
            }
        })
        .await
    }

    /// The accept loop shared by [`serve`](Self::serve) and `serve_tls`: `wrap` turns an
    /// accepted socket into the stream to serve (identity, or a TLS handshake), on the
    /// connection's own task.
    async fn accept_loop<W, F, S>(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        wrap: W,
    ) -> io::Result<()>
    where
        W: Fn(TcpStream, ConnectionInfo) -> F,
        F: Future<Output = io::Result<(S, ConnectionInfo)>> + Send + 'static,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let local = listener.local_addr()?;
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => {
                    // Per-connection accept errors (e.g. reset before accept, EMFILE):
                    // back off briefly and go on serving.
                    let Ok((stream, peer)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let Some(slot) = self.try_reserve(peer) else {
                        let info = ConnectionInfo::new(0, peer, local);
                        self.handler.closed(&info, &ConnectionEnd::Refused);
                        drop(stream);
                        continue;
                    };
                    self.configure_socket(&stream);
                    let info = ConnectionInfo::new(slot.id, peer, local);
                    self.register(&info);
                    let server = self.clone();
                    let stop = stop_rx.clone();
                    let wrapped = wrap(stream, info.clone());
                    tasks.spawn(async move {
                        match wrapped.await {
                            Ok((io, info)) => {
                                server.register(&info);
                                let end = server.run_connection(io, &info, stop).await;
                                server.handler.closed(&info, &end);
                            }
                            Err(e) => {
                                info.counters.errors.fetch_add(1, Ordering::Relaxed);
                                server.handler.closed(&info, &ConnectionEnd::Handshake(e));
                            }
                        }
                        drop(slot);
                    });
                }
            }
        }
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    fn register(&self, info: &ConnectionInfo) {
        self.shared
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(info.id, info.clone());
    }

    /// Serves one connection the caller accepted (plain TCP, TLS or any byte stream) until it
    /// ends, and returns why. Limits on connection counts are the caller's business here.
    pub async fn serve_connection<S>(&self, io: S, info: &ConnectionInfo) -> ConnectionEnd
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (_tx, rx) = watch::channel(false);
        let end = self.run_connection(io, info, rx).await;
        self.handler.closed(info, &end);
        end
    }

    async fn run_connection<S>(
        &self,
        mut io: S,
        info: &ConnectionInfo,
        mut stop: watch::Receiver<bool>,
    ) -> ConnectionEnd
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let end = self.connection_loop(&mut io, info, &mut stop).await;
        if matches!(
            end,
            ConnectionEnd::Framing(_) | ConnectionEnd::FrameTimeout | ConnectionEnd::IdleTimeout
        ) {
            info.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        // Close our side cleanly; the peer may already be gone.
        let _ = tokio::time::timeout(self.config.write_timeout, io.shutdown()).await;
        end
    }

    async fn connection_loop<S>(
        &self,
        io: &mut S,
        info: &ConnectionInfo,
        stop: &mut watch::Receiver<bool>,
    ) -> ConnectionEnd
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let cfg = &*self.config;
        let counters = &info.counters;
        let mut dec = Decoder::new(cfg.decoder);
        let enc = Encoder::new(usize::MAX);
        let mut buf = BytesMut::with_capacity(cfg.read_chunk.min(16 * 1024));
        // Replies not yet written, and how many.
        let mut out = BytesMut::new();
        let mut pending = 0usize;
        let mut frame_deadline: Option<Instant> = None;
        // When the current wait for input began (reset by every read).
        let mut waiting_since: Option<Instant> = None;
        let mut eof = false;
        // One timer and one shutdown future for the whole connection, instead of a timer-wheel
        // insert/remove and a watch-waiter registration on every read.
        // The timer may fire early (it is only moved earlier, never later, while waiting);
        // on firing it is checked against the real deadline and re-armed if that is later.
        let timer = tokio::time::sleep_until(far_future());
        tokio::pin!(timer);
        let mut stopping = *stop.borrow_and_update();
        let stop_signal = async {
            loop {
                if stop.changed().await.is_err() {
                    // The server dropped its sender: no shutdown will come.
                    std::future::pending::<()>().await;
                }
                if *stop.borrow() {
                    return;
                }
            }
        };
        tokio::pin!(stop_signal);
        loop {
            // Hand every complete frame to the handler, in order.
            let decoded = if eof {
                dec.decode_eof(&mut buf)
            } else {
                dec.decode(&mut buf)
            };
            counters.sync_decoder(&dec);
            if matches!(decoded, Ok(Some(_)) | Err(_)) {
                // A frame ended (or was dropped): the next one gets its own deadline.
                frame_deadline = None;
            }
            match decoded {
                Ok(Some(Frame::Message(msg))) => {
                    let reply = self.handler.handle(msg, info).await;
                    if let Some(frame) = &reply.frame {
                        if let Err(e) = enc.encode_frame(frame, &mut out) {
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                            return ConnectionEnd::BadReply(e);
                        }
                        pending += 1;
                    }
                    // A reply waits in `out` only while the next frame is already complete
                    // in the buffer (a pipelining sender): then the replies go out in one
                    // write. Otherwise, or at the batch limit, it is written now.
                    let write_now = reply.close
                        || pending >= cfg.max_batched_replies
                        || out.len() >= cfg.read_chunk
                        || !dec.frame_ready(&buf);
                    if write_now
                        && let Err(end) = self.write_replies(io, &mut out, &mut pending, info).await
                    {
                        return end;
                    }
                    if reply.close {
                        return ConnectionEnd::HandlerClosed;
                    }
                    continue;
                }
                // Commit blocks sent to a receiver are not part of the exchange it drives;
                // they are counted as frames and otherwise ignored.
                Ok(Some(Frame::CommitAck | Frame::CommitNak)) => continue,
                Ok(None) => {}
                Err(DecodeError::Interrupted { .. }) => {
                    // The partial frame is lost; the sender will time out and resend it.
                    ConnectionCounters::add(&counters.errors, 1);
                    continue;
                }
                Err(e) => {
                    // Replies to the frames before the bad one still go out.
                    let _ = self.write_replies(io, &mut out, &mut pending, info).await;
                    return ConnectionEnd::Framing(e);
                }
            }
            // Need more input: every reply is out before waiting.
            if let Err(end) = self.write_replies(io, &mut out, &mut pending, info).await {
                return end;
            }
            if eof {
                return ConnectionEnd::PeerClosed;
            }
            if stopping && !dec.in_frame() {
                return ConnectionEnd::Shutdown;
            }
            let now = *waiting_since.get_or_insert_with(Instant::now);
            let due = if dec.in_frame() {
                *frame_deadline
                    .get_or_insert_with(|| cfg.frame_timeout.map_or(far_future(), |t| now + t))
            } else {
                frame_deadline = None;
                cfg.idle_timeout.map_or(far_future(), |t| now + t)
            };
            if timer.deadline() > due {
                timer.as_mut().reset(due);
            }
            buf.reserve(cfg.read_chunk);
            let read = {
                let mut limited = (&mut buf).limit(cfg.read_chunk);
                tokio::select! {
                    r = io.read_buf(&mut limited) => r,
                    () = &mut timer => {
                        if Instant::now() < due {
                            // Armed for an earlier deadline that has since moved on.
                            timer.as_mut().reset(due);
                            continue;
                        }
                        timer.as_mut().reset(far_future());
                        return if dec.in_frame() {
                            ConnectionEnd::FrameTimeout
                        } else {
                            ConnectionEnd::IdleTimeout
                        };
                    }
                    () = &mut stop_signal, if !stopping => {
                        // Finish the frame in hand first (checked at the top of the wait).
                        stopping = true;
                        continue;
                    }
                }
            };
            waiting_since = None;
            match read {
                Err(e) => return ConnectionEnd::Io(e),
                Ok(0) => eof = true,
                Ok(n) => ConnectionCounters::add(&counters.bytes_in, n as u64),
            }
        }
    }

    /// Writes the replies gathered in `out` (one write, then a flush for TLS streams).
    async fn write_replies<S>(
        &self,
        io: &mut S,
        out: &mut BytesMut,
        pending: &mut usize,
        info: &ConnectionInfo,
    ) -> Result<(), ConnectionEnd>
    where
        S: AsyncWrite + Unpin + Send,
    {
        if out.is_empty() {
            return Ok(());
        }
        let counters = &info.counters;
        let written = tokio::time::timeout(self.config.write_timeout, async {
            io.write_all(out).await?;
            // TLS streams buffer records: push them out now.
            io.flush().await
        })
        .await;
        match written {
            Err(_) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                Err(ConnectionEnd::WriteTimeout)
            }
            Ok(Err(e)) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                Err(ConnectionEnd::Io(e))
            }
            Ok(Ok(())) => {
                ConnectionCounters::add(&counters.bytes_out, out.len() as u64);
                ConnectionCounters::add(&counters.replies, *pending as u64);
                out.clear();
                *pending = 0;
                Ok(())
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}
