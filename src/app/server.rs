//! The HTTP/1.1 server loop. hyper is driven here rather than through `axum::serve`,
//! which has no header-read or idle timeout and whose graceful shutdown waits forever
//! for a client that never finishes its request.
//!
//! Each connection is in one of three phases, and closed when its phase's deadline
//! passes:
//! - waiting for a request: for `idle_timeout` after the last answer was ready (a
//!   fresh connection gets `header_read_timeout` for its first request instead); this
//!   also cuts off a client that takes that long to read an answer;
//! - reading a request's head: `header_read_timeout` from its first byte;
//! - busy with a request: no connection deadline (the request timeout bounds the
//!   handler and the reading of the body).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::Service;

/// The connection timeouts and the shutdown grace period.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
    pub shutdown_grace: Duration,
}

/// What the server asks of its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Serving,
    /// Shutting down: finish the requests in flight, take no new ones.
    Draining,
    /// The grace period is over: close now.
    Closing,
}

/// Accepts connections on `listener` until `shutdown` resolves; then stops accepting,
/// lets the requests in flight finish, closes idle connections at once, and after
/// `shutdown_grace` closes whatever remains.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stage_tx, stage_rx) = watch::channel(Stage::Serving);
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, remote)) => {
                tokio::spawn(connection(tcp, remote, router.clone(), timeouts, stage_rx.clone()));
            }
            // The peer gave up before we took its connection: nothing to do.
            Err(e) if is_connection_error(&e) => {}
            // Most likely out of file descriptors: wait for some to close, as hyper 0.14
            // and axum do, rather than spin.
            Err(e) => {
                tracing::error!(error = %e, "accept error");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    drop(listener);
    // Every connection task holds a receiver: the channel closes when the last ends.
    drop(stage_rx);
    stage_tx.send_replace(Stage::Draining);
    let open = stage_tx.receiver_count();
    if open > 0 {
        tracing::info!(connections = open, "stopped accepting; finishing the requests in flight");
    }
    if tokio::time::timeout(timeouts.shutdown_grace, stage_tx.closed()).await.is_err() {
        tracing::warn!(
            connections = stage_tx.receiver_count(),
            grace_ms = timeouts.shutdown_grace.as_millis() as u64,
            "shutdown grace period over: closing the connections left"
        );
        stage_tx.send_replace(Stage::Closing);
        stage_tx.closed().await;
    }
    Ok(())
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// Serves one connection until it ends, times out, or the server closes it.
async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    router: Router,
    timeouts: Timeouts,
    mut stage: watch::Receiver<Stage>,
) {
    // Small JSON answers go out at once instead of waiting on Nagle's algorithm.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    let watch = Arc::new(ConnWatch::new());
    let io = TokioIo::new(WatchedIo { inner: tcp, watch: watch.clone() });
    let service = ConnService { router, remote, watch: watch.clone() };
    // hyper's own header-read timer starts as soon as a connection goes idle, so it
    // would also cut idle keep-alive connections at the header timeout: off, the
    // phases above do both.
    let conn = hyper::server::conn::http1::Builder::new().header_read_timeout(None).serve_connection(io, service);
    let mut conn = pin!(conn);
    let mut draining = false;
    // Every phase lasts at least this long, so waking this often never misses the
    // deadline of a phase that began since the last look.
    // (Not zero, which would spin.)
    let recheck = timeouts.header_read.min(timeouts.idle).max(Duration::from_millis(1));
    loop {
        let now = Instant::now();
        let deadline = watch.deadline(&timeouts, draining);
        if deadline.is_some_and(|d| d <= now) {
            tracing::debug!(%remote, "closing a connection past its deadline");
            return;
        }
        let wake = deadline.map_or(now + recheck, |d| d.min(now + recheck));
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stage.changed() => match changed.map(|()| *stage.borrow_and_update()) {
                Ok(Stage::Serving) => {}
                Ok(Stage::Draining) => {
                    // hyper closes an idle connection at once, and any other after the
                    // answer it is working on.
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
                // The grace period is over, or the server itself is gone.
                Ok(Stage::Closing) | Err(_) => return,
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// Marks a time not yet set.
const UNSET: u64 = u64::MAX;

/// Where a connection is between requests, updated by its reads and its requests.
/// Everything here runs on the connection's task; atomics only for `Send`.
struct ConnWatch {
    base: Instant,
    in_flight: AtomicU32,
    served: AtomicU64,
    /// Nanoseconds after `base` when the connection last began waiting for a request.
    waiting_since: AtomicU64,
    /// Nanoseconds after `base` of the first byte read while waiting, or `UNSET`.
    head_since: AtomicU64,
}

impl ConnWatch {
    fn new() -> Self {
        ConnWatch {
            base: Instant::now(),
            in_flight: AtomicU32::new(0),
            served: AtomicU64::new(0),
            waiting_since: AtomicU64::new(0),
            head_since: AtomicU64::new(UNSET),
        }
    }

    fn offset(&self) -> u64 {
        self.base.elapsed().as_nanos().min(u128::from(UNSET - 1)) as u64
    }

    fn at(&self, offset: u64) -> Instant {
        self.base + Duration::from_nanos(offset)
    }

    fn on_bytes_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 && self.head_since.load(Ordering::Relaxed) == UNSET {
            self.head_since.store(self.offset(), Ordering::Relaxed);
        }
    }

    fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.served.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(UNSET, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// When the connection's current phase ends, or `None` while a request is in flight.
    fn deadline(&self, t: &Timeouts, draining: bool) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let head_since = self.head_since.load(Ordering::Relaxed);
        if head_since != UNSET {
            return Some(self.at(head_since) + t.header_read);
        }
        let waiting_since = self.at(self.waiting_since.load(Ordering::Relaxed));
        // A connection that has sent nothing yet is not an idle keep-alive one.
        if self.served.load(Ordering::Relaxed) == 0 {
            // Nothing to finish when shutting down. (hyper's graceful shutdown closes
            // only connections that have served a request; those it closes once it has
            // written their last answer, which may still be under way here.)
            return Some(if draining { waiting_since } else { waiting_since + t.header_read });
        }
        Some(waiting_since + t.idle)
    }
}

/// Held while a request's answer is being made; the connection waits again once it
/// is dropped (answer ready, or request abandoned).
struct RequestGuard(Arc<ConnWatch>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.waiting_since.store(self.0.offset(), Ordering::Relaxed);
        }
    }
}

/// The connection's socket, telling its watch when bytes arrive.
struct WatchedIo {
    inner: TcpStream,
    watch: Arc<ConnWatch>,
}

impl AsyncRead for WatchedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.on_bytes_read();
        }
        polled
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router, as hyper calls it for one connection: each request carries the
/// peer's address (`ConnectInfo<SocketAddr>`) and is counted while it runs.
#[derive(Clone)]
struct ConnService {
    router: Router,
    remote: SocketAddr,
    watch: Arc<ConnWatch>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Tracked;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Tracked {
        req.extensions_mut().insert(ConnectInfo(self.remote));
        let guard = self.watch.begin_request();
        Tracked { inner: self.router.clone().call(req), guard: Some(guard) }
    }
}

/// A request's answer, holding the connection busy until it is ready.
struct Tracked {
    inner: axum::routing::future::RouteFuture<Infallible>,
    guard: Option<RequestGuard>,
}

impl Future for Tracked {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = Pin::new(&mut self.inner).poll(cx);
        if polled.is_ready() {
            self.guard = None;
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Handlers can ask for the peer's address (the per-address limit on failed
    /// authentication does).
    #[tokio::test]
    async fn requests_carry_the_peers_address() {
        let router = Router::new().route(
            "/",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let timeouts = Timeouts {
            header_read: Duration::from_secs(5),
            idle: Duration::from_secs(5),
            shutdown_grace: Duration::ZERO,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(run(listener, router, timeouts, async {
            let _ = stopped.await;
        }));
        let mut conn = TcpStream::connect(address).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut answer)).await.unwrap().unwrap();
        let me = conn.local_addr().unwrap().to_string();
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with(&me), "{answer:?} should end with {me}");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
