//! Transport adapter on tokio (feature `tokio`): a TCP SCP with one task per association
//! (storage, query, C-GET/C-MOVE retrieve with its own associations to move destinations,
//! storage commitment), and an SCU client for C-ECHO, C-STORE, N-CREATE, N-SET, C-FIND,
//! C-GET, C-MOVE and Storage Commitment.
//!
//! Sockets get TCP_NODELAY; every batch of PDUs is sent with vectored writes (a P-DATA-TF
//! header and its data slice go out in one `writev`).

pub mod client;
pub mod retrieve;
pub mod server;

pub use client::{ClientConfig, ClientError, Response, RetrieveOutcome, ScuAssociation};
pub use retrieve::{Peers, RetrieveConfig};
pub use server::{Server, serve, serve_connection};

use bytes::{Buf, Bytes};
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// A connection the adapter runs on: plain TCP, or TLS over TCP (feature `tls`).
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, server side.
    #[cfg(feature = "tls")]
    ServerTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// TLS, client side.
    #[cfg(feature = "tls")]
    ClientTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// The underlying TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::ServerTls(s) => s.get_ref().0,
            #[cfg(feature = "tls")]
            Stream::ClientTls(s) => s.get_ref().0,
        }
    }
}

/// Parses `AE` or `AE@HOST` for [`crate::assoc::AcceptorPolicy::allowed_callers`],
/// resolving a host name with the system resolver now (at configuration time), so that
/// negotiation compares addresses without I/O.
pub fn allowed_caller(spec: &str) -> Result<crate::assoc::AllowedCaller, String> {
    crate::assoc::AllowedCaller::parse(spec, |host| {
        std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
            .map(|it| it.map(|a| a.ip()).collect::<Vec<_>>())
    })
}

/// Reads a users file for User Identity Negotiation (PS3.7 D.3.3.7; format in
/// [`crate::assoc::UserIdentityPolicy::parse_users`]); identity is then required. Errors
/// name the file and line, never a passcode.
pub fn users_file(path: &std::path::Path) -> Result<crate::assoc::UserIdentityPolicy, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let users = crate::assoc::UserIdentityPolicy::parse_users(&text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if users.is_empty() {
        return Err(format!("{}: no users", path.display()));
    }
    Ok(crate::assoc::UserIdentityPolicy {
        users,
        required: true,
    })
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => $e,
            #[cfg(feature = "tls")]
            Stream::ServerTls($s) => $e,
            #[cfg(feature = "tls")]
            Stream::ClientTls($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Stream::ServerTls(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Stream::ClientTls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// Writes all chunks in order with vectored writes, then clears `chunks`.
pub(crate) async fn write_chunks<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    chunks: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    let mut i = 0;
    while i < chunks.len() {
        let slices: Vec<IoSlice<'_>> = chunks[i..]
            .iter()
            .take(64)
            .map(|c| IoSlice::new(c))
            .collect();
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && i < chunks.len() {
            let len = chunks[i].len();
            if n >= len {
                n -= len;
                i += 1;
            } else {
                chunks[i].advance(n);
                n = 0;
            }
        }
        while i < chunks.len() && chunks[i].is_empty() {
            i += 1;
        }
    }
    chunks.clear();
    // TLS buffers records: push them out (a no-op for plain TCP).
    w.flush().await
}

/// Re-arms TCP_QUICKACK after a read (Linux): the next ACK goes out at once instead of after
/// the delayed-ACK timer. A sender with Nagle on (DCMTK's default) otherwise holds the last
/// small segment of every message until that timer fires, ~40 ms per message.
pub(crate) fn quickack(stream: &tokio::net::TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}
