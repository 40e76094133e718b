//! The accept loop: Kelpie's own, instead of `axum::serve`, because that one awaits each
//! TLS handshake inside `accept` (one silent client stalled every new connection for the
//! handshake timeout) and gives hyper no timer (no header-read timeout, so slowloris
//! clients could hold connections for ever), and it has no connection cap.
//!
//! Here the loop only accepts: each connection gets a task of its own that does the TLS
//! handshake (bounded in time, and in number at once), then serves HTTP/1.1 with a
//! header-read timeout. In hyper that timeout also runs while a kept-alive connection
//! waits for its next request, so it doubles as the idle timeout. A cap on open
//! connections refuses the excess at accept (counted and logged, at most once a minute).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::tls::{tune, Peer};
use crate::metrics::Metric;

/// A TLS handshake that takes longer than this is abandoned.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's headers must arrive within this; also the longest a kept-alive connection
/// may sit idle between requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// TLS handshakes in progress at once; more are dropped at accept (a flood of silent
/// clients costs a task each otherwise, up to the connection cap).
pub const MAX_HANDSHAKES: usize = 128;

/// How the loop bounds connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most (HTTP and WebSocket together, `--max-connections`).
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    pub max_handshakes: usize,
}

impl Limits {
    pub fn new(max_connections: usize) -> Self {
        Self {
            max_connections,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            header_timeout: HEADER_TIMEOUT,
            max_handshakes: MAX_HANDSHAKES,
        }
    }
}

/// Connection counts for `/metrics`, shared between the loop and the router's state.
#[derive(Debug, Default)]
pub struct ConnStats {
    open: AtomicU64,
    refused_full: AtomicU64,
    refused_handshakes: AtomicU64,
    handshake_failed: AtomicU64,
    /// When a refusal was last logged (refusals are logged at most once a minute).
    last_warned: Mutex<Option<Instant>>,
}

impl ConnStats {
    pub fn metrics(&self) -> Vec<Metric> {
        let mut refused = Metric::counter(
            "kelpie_connections_refused_total",
            "TCP connections closed at accept or during the TLS handshake, by why.",
            0.0,
        );
        refused.samples = [
            ("full", &self.refused_full),
            ("handshakes", &self.refused_handshakes),
            ("handshake_failed", &self.handshake_failed),
        ]
        .into_iter()
        .map(|(why, n)| (vec![("why", why.to_string())], n.load(Ordering::Relaxed) as f64))
        .collect();
        vec![
            Metric::gauge(
                "kelpie_connections_open",
                "Open TCP connections (HTTP and WebSocket).",
                self.open.load(Ordering::Relaxed) as f64,
            ),
            refused,
        ]
    }

    fn warn_once_a_minute(&self, what: impl FnOnce()) {
        let mut last = self.last_warned.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            what();
        }
    }
}

/// Serves `router` on `listener` (TLS when `tls` is set) until `stop` turns true, then
/// lets requests in flight finish (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    limits: Limits,
    stats: Arc<ConnStats>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes));
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => break,
            // Finished connection tasks are reaped as they end, so the set stays small.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (mut tcp, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, mostly: wait a moment instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            stats.refused_full.fetch_add(1, Ordering::Relaxed);
            stats.warn_once_a_minute(|| {
                tracing::warn!(
                    %peer,
                    "{} connections are open (--max-connections): closing new ones until some end \
                     (kelpie_connections_refused_total counts them)",
                    limits.max_connections
                )
            });
            continue;
        };
        tune(&mut tcp);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let tcp = Counted { io: tcp, _permit: permit, stats: stats.clone() };
        let (router, stats, stop, handshakes, acceptor) =
            (router.clone(), stats.clone(), stop.clone(), handshakes.clone(), acceptor.clone());
        tasks.spawn(async move {
            let Some(acceptor) = acceptor else {
                return http1(tcp, peer, router, limits, stop).await;
            };
            let Ok(slot) = handshakes.try_acquire_owned() else {
                stats.refused_handshakes.fetch_add(1, Ordering::Relaxed);
                stats.warn_once_a_minute(|| {
                    tracing::warn!(
                        %peer,
                        "{} TLS handshakes are under way: closing new connections until they end",
                        limits.max_handshakes
                    )
                });
                return;
            };
            let shaken = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await;
            drop(slot);
            match shaken {
                Ok(Ok(tls)) => http1(tls, peer, router, limits, stop).await,
                Ok(Err(e)) => {
                    stats.handshake_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                }
                Err(_) => {
                    stats.handshake_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            }
        });
    }
    // Requests in flight finish (the caller bounds how long). Upgraded connections (the
    // signalling WebSockets) left these tasks when they upgraded: the room ends them.
    while tasks.join_next().await.is_some() {}
}

/// A connection's socket with its place under the cap: the permit goes with the socket,
/// through a TLS stream and a WebSocket upgrade, and is given back when it is closed.
struct Counted<I> {
    io: I,
    _permit: OwnedSemaphorePermit,
    stats: Arc<ConnStats>,
}

impl<I> Drop for Counted<I> {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Serves HTTP/1.1 (with upgrades, for `/ws`) on one connection; on `stop` it finishes
/// the request in flight and closes.
async fn http1<I>(io: I, peer: SocketAddr, router: Router, limits: Limits, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(Peer(peer)));
        tower_service::Service::call(&mut router.clone(), req)
    });
    let builder = {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
        b
    };
    let conn = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts and clients that hang up mid-request: normal on the Internet.
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// Resolves once `stop` turns true (or its sender is gone), holding no borrow of it.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
