//! MLLP client: sends one message at a time and waits for its acknowledgement, matching the
//! ACK's MSA-2 against the sent MSH-10 (HL7 v2.5.1 ch. 2.9 original acknowledgement rules), so
//! a late ACK for an earlier message is never taken as this message's ACK. Reconnects with
//! exponential backoff.
//!
//! ```no_run
//! # async fn run() -> Result<(), xenrad_mllp::client::ClientError> {
//! use xenrad_mllp::client::{Client, ClientConfig};
//!
//! let mut client = Client::new("127.0.0.1:3000", ClientConfig::default());
//! let ack = client
//!     .send(b"MSH|^~\\&|RIS|HOSP|PACS|RAD|20240101||ORM^O01|MSG1|P|2.5.1\rPID|1\r")
//!     .await?;
//! println!("{:?}", ack.code());
//! # Ok(()) }
//! ```

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

use crate::{DecodeError, Decoder, DecoderConfig, EncodeError, Encoder, Frame, peek};

/// Client timeouts and retry policy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Frame size limit for ACKs and outgoing messages.
    pub decoder: DecoderConfig,
    /// Time allowed to establish a connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed between sending a message and receiving its ACK. Default 30 s.
    pub ack_timeout: Duration,
    /// Time allowed to write a message. Default 30 s.
    pub write_timeout: Duration,
    /// Total attempts per message (first try included) across reconnects. Default 3.
    pub max_attempts: u32,
    /// First reconnect delay, doubled after each failure. Default 100 ms.
    pub backoff_initial: Duration,
    /// Upper bound of the reconnect delay. Default 5 s.
    pub backoff_max: Duration,
    /// Disable Nagle's algorithm. Default true.
    pub nodelay: bool,
    /// Connect with TLS (MLLPS). Default `None` (plain TCP).
    #[cfg(feature = "tls")]
    pub tls: Option<TlsClient>,
}

/// TLS settings of a [`Client`] (feature `tls`): a rustls connector (roots, and a client
/// certificate for mutual TLS) and the name the server certificate must carry.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub struct TlsClient {
    /// The connector, built from a rustls `ClientConfig`.
    pub connector: tokio_rustls::TlsConnector,
    /// Server name to verify (and send as SNI).
    pub server_name: tokio_rustls::rustls::pki_types::ServerName<'static>,
}

#[cfg(feature = "tls")]
impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            decoder: DecoderConfig::default(),
            connect_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_attempts: 3,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            nodelay: true,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// The receiver's answer to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// An HL7 acknowledgement whose MSA-2 matched the sent MSH-10.
    Ack(Bytes),
    /// MLLP release 2 positive commit acknowledgement.
    CommitAck,
    /// MLLP release 2 negative commit acknowledgement.
    CommitNak,
}

impl Response {
    /// MSA-1 of an HL7 ACK (`AA`, `AE`, `AR`, `CA`, `CE`, `CR`); `None` for commit blocks.
    pub fn code(&self) -> Option<&[u8]> {
        match self {
            Response::Ack(b) => peek::msa(b).map(|(code, _)| code),
            Response::CommitAck | Response::CommitNak => None,
        }
    }

    /// MSA-2 of an HL7 ACK.
    pub fn control_id(&self) -> Option<&[u8]> {
        match self {
            Response::Ack(b) => peek::msa(b).map(|(_, id)| id),
            Response::CommitAck | Response::CommitNak => None,
        }
    }

    /// True for `AA`/`CA` ACKs and the release 2 positive commit block.
    pub fn is_accept(&self) -> bool {
        match self {
            Response::CommitAck => true,
            Response::CommitNak => false,
            Response::Ack(_) => matches!(self.code(), Some(b"AA" | b"CA")),
        }
    }
}

/// Why a message was not acknowledged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The message has no MSH-10 to match an ACK against.
    #[error("message has no MSH-10 control id")]
    NoControlId,
    /// The message cannot be framed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The receiver sent a broken frame.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Transport error.
    #[error("transport: {0}")]
    Io(#[from] io::Error),
    /// No ACK within [`ClientConfig::ack_timeout`].
    #[error("no acknowledgement within {0:?}")]
    Timeout(Duration),
    /// The receiver closed the connection before acknowledging.
    #[error("connection closed before the acknowledgement")]
    Closed,
    /// Every attempt failed; holds the last failure.
    #[error("gave up after {attempts} attempts")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure (also the [`source`](std::error::Error::source)).
        #[source]
        last: Box<ClientError>,
    },
}

/// Counters of a [`Client`] over its lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Messages acknowledged.
    pub acked: u64,
    /// ACKs received whose MSA-2 did not match the message in flight (discarded).
    pub stale_acks: u64,
    /// Connections opened.
    pub connects: u64,
    /// Messages sent again after a failure.
    pub retries: u64,
    /// Bytes discarded as garbage between frames.
    pub garbage_bytes: u64,
}

/// Any byte stream the client can talk over (TCP, or TLS over TCP).
/// `Sync` keeps `Client` (and so its futures) usable from spawned tasks.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

struct Conn {
    stream: Box<dyn Io>,
    buf: BytesMut,
    dec: Decoder,
}

/// A stop-and-wait MLLP client for one remote address.
pub struct Client {
    addr: String,
    config: ClientConfig,
    conn: Option<Conn>,
    stats: ClientStats,
    out: BytesMut,
}

impl Client {
    /// A client for `addr` (`host:port`); it connects on first use.
    pub fn new(addr: impl Into<String>, config: ClientConfig) -> Self {
        Self {
            addr: addr.into(),
            config,
            conn: None,
            stats: ClientStats::default(),
            out: BytesMut::new(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Drops the current connection, if any.
    pub fn disconnect(&mut self) {
        if let Some(c) = self.conn.take() {
            self.stats.garbage_bytes += c.dec.stats().garbage_bytes;
        }
    }

    async fn connect(&mut self) -> Result<&mut Conn, ClientError> {
        if self.conn.is_none() {
            let stream = timeout(self.config.connect_timeout, TcpStream::connect(&self.addr))
                .await
                .map_err(|_| ClientError::Timeout(self.config.connect_timeout))??;
            if self.config.nodelay {
                stream.set_nodelay(true)?;
            }
            let stream: Box<dyn Io> = match self.tls_connect(stream).await? {
                Ok(tls) => tls,
                Err(plain) => Box::new(plain),
            };
            self.stats.connects += 1;
            self.conn = Some(Conn {
                stream,
                buf: BytesMut::with_capacity(8 * 1024),
                dec: Decoder::new(self.config.decoder),
            });
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Wraps `stream` in TLS when configured; hands it back unchanged otherwise.
    #[allow(clippy::unused_async)] // awaits only with the `tls` feature
    async fn tls_connect(
        &self,
        stream: TcpStream,
    ) -> Result<Result<Box<dyn Io>, TcpStream>, ClientError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.config.tls {
            let limit = self.config.connect_timeout;
            let s = timeout(
                limit,
                tls.connector.connect(tls.server_name.clone(), stream),
            )
            .await
            .map_err(|_| ClientError::Timeout(limit))??;
            return Ok(Ok(Box::new(s)));
        }
        Ok(Err(stream))
    }

    /// Sends `msg` (an HL7 message without framing) and waits for the ACK whose MSA-2 equals
    /// its MSH-10, or a release 2 commit block. ACKs for other control ids are discarded and
    /// counted in [`ClientStats::stale_acks`]. On a transport failure or timeout the
    /// connection is dropped (so nothing late can arrive on it) and the message is sent again
    /// on a new connection, after a backoff, up to [`ClientConfig::max_attempts`] times; the
    /// receiver is expected to recognise the duplicate by MSH-10.
    pub async fn send(&mut self, msg: &[u8]) -> Result<Response, ClientError> {
        let id = peek::control_id(msg)
            .filter(|id| !id.is_empty())
            .ok_or(ClientError::NoControlId)?;
        // The framing buffer is reused from message to message.
        let mut framed = std::mem::take(&mut self.out);
        framed.clear();
        Encoder::new(self.config.decoder.max_frame_size).encode(msg, &mut framed)?;
        let result = self.send_framed(id, &framed).await;
        self.out = framed;
        result
    }

    async fn send_framed(&mut self, id: &[u8], framed: &[u8]) -> Result<Response, ClientError> {
        let mut delay = self.config.backoff_initial;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(id, framed).await {
                Ok(r) => {
                    self.stats.acked += 1;
                    return Ok(r);
                }
                Err(e) => {
                    self.disconnect();
                    let retryable = matches!(
                        e,
                        ClientError::Io(_) | ClientError::Timeout(_) | ClientError::Closed
                    );
                    if !retryable || attempt >= self.config.max_attempts {
                        return Err(if attempt > 1 {
                            ClientError::GaveUp {
                                attempts: attempt,
                                last: Box::new(e),
                            }
                        } else {
                            e
                        });
                    }
                    self.stats.retries += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.config.backoff_max);
                }
            }
        }
    }

    async fn attempt(&mut self, id: &[u8], out: &[u8]) -> Result<Response, ClientError> {
        let write_timeout = self.config.write_timeout;
        let ack_timeout = self.config.ack_timeout;
        let result = async {
            let conn = self.connect().await?;
            let write = async {
                conn.stream.write_all(out).await?;
                conn.stream.flush().await
            };
            timeout(write_timeout, write)
                .await
                .map_err(|_| ClientError::Timeout(write_timeout))??;
            let deadline = Instant::now() + ack_timeout;
            let mut stale = 0;
            loop {
                while let Some(frame) = conn.dec.decode(&mut conn.buf)? {
                    match frame {
                        Frame::Message(ack) => match peek::msa(&ack) {
                            Some((_, got)) if got == id => {
                                return Ok((Response::Ack(ack), stale));
                            }
                            _ => stale += 1,
                        },
                        Frame::CommitAck => return Ok((Response::CommitAck, stale)),
                        Frame::CommitNak => return Ok((Response::CommitNak, stale)),
                    }
                }
                conn.buf.reserve(8 * 1024);
                let n = timeout_at(deadline, conn.stream.read_buf(&mut conn.buf))
                    .await
                    .map_err(|_| ClientError::Timeout(ack_timeout))??;
                if n == 0 {
                    return Err(ClientError::Closed);
                }
            }
        }
        .await;
        let (response, stale) = result?;
        self.stats.stale_acks += stale;
        Ok(response)
    }
}
