//! Accepting connections, for both planes: the hygiene every listener facing untrusted clients
//! needs, in one place.
//!
//! - A **connection cap**: past `max_connections` open connections a new one gets a `503`
//!   (`too_many_connections`, JSON, `retry-after: 1`, `connection: close`) and is closed, so a
//!   flood of idle sockets can't exhaust file descriptors or memory.
//! - A **header read timeout** (HTTP/1): a client has `header_read_timeout` to send a complete
//!   request head, counted from when the server starts waiting for it, so it bounds both a
//!   slow-header client (slowloris) and an idle keep-alive connection.
//! - **HTTP/2**: keep-alive pings (a peer that stops answering them is dropped) and a cap on
//!   concurrent streams per connection.
//! - Header count and size caps (`431`).
//! - Graceful shutdown: stop accepting, let in-flight requests finish for up to `drain`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use updraft_api::{Code, ErrorBody};

/// Connection settings of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenConfig {
    /// Most request headers accepted (more: 431).
    pub max_headers: usize,
    /// Most bytes of request head (request line and headers) accepted (more: 431).
    pub max_header_bytes: usize,
    /// Time a client has to send a complete request head (HTTP/1), counted from the moment
    /// the server waits for one: after connecting, or after the previous response on a
    /// keep-alive connection. So it is also the idle keep-alive timeout.
    pub header_read_timeout: Duration,
    /// Most connections open at once on this listener; more are answered 503 and closed.
    pub max_connections: usize,
    /// HTTP/2: how often an idle connection is pinged.
    pub h2_keep_alive_interval: Duration,
    /// HTTP/2: how long a ping may go unanswered before the connection is closed.
    pub h2_keep_alive_timeout: Duration,
    /// HTTP/2: most concurrent streams (requests) on one connection.
    pub h2_max_concurrent_streams: u32,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            max_headers: 100,
            max_header_bytes: 64 << 10,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            h2_keep_alive_interval: Duration::from_secs(20),
            h2_keep_alive_timeout: Duration::from_secs(20),
            h2_max_concurrent_streams: 100,
        }
    }
}

/// How long a refused connection gets to take its 503 before it is dropped anyway.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Refused connections being answered at once; past this they are closed without a word.
const REFUSALS_AT_ONCE: usize = 64;
/// At most one warning about refused connections per this interval.
const REFUSAL_WARN_EVERY: Duration = Duration::from_secs(10);

/// The address of the client a request came from (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Serves `service` on every connection `listener` accepts, under `config`, until `shutdown`
/// resolves; then stops accepting and waits up to `drain` for in-flight requests. `plane`
/// names the listener in log lines.
pub async fn serve<S, B>(
    listener: TcpListener,
    config: &ListenConfig,
    plane: &'static str,
    service: S,
    shutdown: impl Future<Output = ()> + Send,
    drain: Duration,
) where
    S: hyper::service::Service<Request, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Arc::new(builder(config));
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let refusals = Refusals::new(plane, config.max_connections);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(plane, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refusals.refuse(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (builder, service, watcher) = (builder.clone(), service.clone(), graceful.watcher());
        let first_byte = config.header_read_timeout;
        tokio::spawn(async move {
            // The first bytes tell HTTP/1 from HTTP/2, and that wait has no timer of its own:
            // a socket that never sends anything is closed after the header read timeout.
            let mut probe = [0u8; 1];
            match tokio::time::timeout(first_byte, stream.peek(&mut probe)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            // Every request learns the address of the client it came from.
            let service = hyper::service::service_fn(move |mut req: Request| {
                req.extensions_mut().insert(PeerAddr(peer));
                hyper::service::Service::call(&service, req)
            });
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(plane, %peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            plane,
            "in-flight requests still running after {drain:?}; stopping"
        );
    }
}

/// A request as a listener's service receives it.
pub type Request = http::Request<Incoming>;

fn builder(config: &ListenConfig) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_headers(config.max_headers)
        .max_buf_size(config.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(config.h2_keep_alive_interval)
        .keep_alive_timeout(config.h2_keep_alive_timeout)
        .max_concurrent_streams(config.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Answers connections past the cap, and says so in the log now and then.
struct Refusals {
    plane: &'static str,
    cap: usize,
    response: Arc<[u8]>,
    answering: Arc<Semaphore>,
    started: Instant,
    /// Milliseconds after `started` of the last warning (0: none yet).
    last_warned: AtomicU64,
    since_warned: AtomicU64,
}

impl Refusals {
    fn new(plane: &'static str, cap: usize) -> Self {
        let body = ErrorBody::new(
            Code::TooManyConnections,
            format!("the server has {cap} connections open, its limit; retry shortly"),
        )
        .to_json();
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        Self {
            plane,
            cap,
            response: response.into_bytes().into(),
            answering: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
            started: Instant::now(),
            last_warned: AtomicU64::new(0),
            since_warned: AtomicU64::new(0),
        }
    }

    fn refuse(&self, mut stream: tokio::net::TcpStream) {
        let refused = self.since_warned.fetch_add(1, Ordering::Relaxed) + 1;
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_warned.load(Ordering::Relaxed);
        let every = u64::try_from(REFUSAL_WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        if (last == 0 || now.saturating_sub(last) >= every)
            && self
                .last_warned
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.since_warned.store(0, Ordering::Relaxed);
            tracing::warn!(
                plane = self.plane,
                cap = self.cap,
                refused,
                "connection cap reached: refusing new connections with 503"
            );
        }
        let Ok(answering) = self.answering.clone().try_acquire_owned() else {
            return;
        };
        let response = self.response.clone();
        tokio::spawn(async move {
            let answer = async {
                stream.write_all(&response).await?;
                stream.shutdown().await?;
                // Read what the client sent until it closes: closing with its request unread
                // would reset the connection, and the client would never see the 503.
                let mut sink = [0u8; 1024];
                while stream.read(&mut sink).await? > 0 {}
                Ok::<_, std::io::Error>(())
            };
            let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, answer).await;
            drop(answering);
        });
    }
}
