//! Explicit limits of every HTTP surface against slow, idle, oversized and flooding
//! peers (issue 20, load and abuse), and the serving loop that applies them to plain
//! and TLS listeners alike.
//!
//! `axum::serve` sets no timer, so hyper's header-read timeout never ran: a client that
//! sent its headers a byte at a time (slowloris), or a keep-alive connection left idle,
//! held its task and descriptor forever, and connections were unbounded. Here every
//! connection has:
//! - a header timeout ([`HttpLimits::header_timeout`]): the request head must arrive
//!   within it, also the next one on an idle keep-alive connection (hyper starts the
//!   timer when it waits for a head);
//! - a request timeout ([`HttpLimits::request_timeout`]): body and answer within it, else
//!   `408` and the connection closes (a body trickled in below the rate it implies);
//! - a cap on the head's size ([`HttpLimits::max_header_bytes`], `431` beyond);
//! - a cap on simultaneous connections per surface ([`HttpLimits::max_connections`]):
//!   beyond it a connection is closed as soon as it is accepted.
//!
//! The body size limit stays where it was (`--max-body`, `413`).

use crate::surface::http::{ErrorStyle, error_response};
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt as _;

/// Limits of one HTTP surface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time allowed for a request head (and for the TLS handshake), also while a
    /// keep-alive connection waits idle for its next request.
    pub header_timeout: Duration,
    /// Time allowed for the rest of a request: body and answer.
    pub request_timeout: Duration,
    /// Largest request head, bytes (hyper's read buffer; at least 8192).
    pub max_header_bytes: usize,
    /// Simultaneous connections.
    pub max_connections: usize,
    /// Simultaneous connections from one IP address (so one flooding client cannot take
    /// every slot of `max_connections`).
    pub max_connections_per_ip: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            max_connections_per_ip: 256,
        }
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is set) with `limits` until
/// `shutdown` resolves, then lets the requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: HttpLimits,
    style: ErrorStyle,
    open: Arc<std::sync::atomic::AtomicU64>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let per_ip = PerIp::new(limits.max_connections_per_ip.max(1));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, peer)) => (s, peer),
                    Err(e) => {
                        // Out of descriptors (EMFILE/ENFILE) and the like: back off a little
                        // instead of spinning on a listener that cannot accept.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Over the limit, in all or from this address: closed at once (dropping the
                // stream).
                let Some(slot) = per_ip.take(stream.1.ip()) else { continue };
                let Ok(permit) = permits.clone().try_acquire_owned() else { continue };
                let (stream, peer) = stream;
                let _ = stream.set_nodelay(true);
                let (router, tls, stop) = (router.clone(), tls.clone(), stop_rx.clone());
                let open = OpenGuard::new(open.clone());
                conns.spawn(async move {
                    let _permit = (permit, slot, open);
                    match tls {
                        Some(a) => {
                            let Ok(Ok(s)) = tokio::time::timeout(limits.header_timeout, a.accept(stream)).await else {
                                return;
                            };
                            connection(TokioIo::new(s), router, limits, style, (true, peer), stop).await;
                        }
                        None => connection(TokioIo::new(stream), router, limits, style, (false, peer), stop).await,
                    }
                });
            }
        }
    }
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

async fn connection<I>(
    io: I,
    router: Router,
    limits: HttpLimits,
    style: ErrorStyle,
    (tls, peer): (bool, std::net::SocketAddr),
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let router = router.clone();
        req.extensions_mut()
            .insert(crate::surface::http::PeerAddr(peer));
        async move {
            let path = req.uri().path().to_owned();
            let answer = router.oneshot(req.map(axum::body::Body::new));
            let mut r = if let Ok(r) = tokio::time::timeout(limits.request_timeout, answer).await {
                r
            } else {
                let mut r = error_response(
                    style,
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    "the request was not received and answered within the request timeout",
                );
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                Ok(r)
            };
            if let Ok(r) = &mut r {
                crate::surface::http::security_headers(r.headers_mut(), &path, tls);
            }
            r
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let conn = builder.serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Connections per IP address: a slot is taken at accept and given back when the
/// connection ends.
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

/// Counts an open connection (the `xenrad_open_connections` gauge) until dropped.
struct OpenGuard(Arc<std::sync::atomic::AtomicU64>);

impl OpenGuard {
    fn new(n: Arc<std::sync::atomic::AtomicU64>) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenGuard(n)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod per_ip_tests {
    use super::PerIp;

    #[test]
    fn slots_per_address_are_bounded_and_given_back() {
        let p = PerIp::new(1);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let s = p.take(a).unwrap();
        assert!(p.take(a).is_none());
        assert!(p.take(b).is_some());
        drop(s);
        assert!(p.take(a).is_some());
    }
}
