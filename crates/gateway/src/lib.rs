//! The data plane: Updraft's HTTP front door for function traffic.
//!
//! It owns the route table and the hyper server that accepts requests, matches them to a
//! function, gives each one a request id (`x-updraft-request-id` on every response), streams the
//! request body into the function and its response body back out, and turns every failure into a
//! JSON error (`404` for an unknown route, `405`, `500` for a trap, `504` for a timeout).
//!
//! What is served is one immutable [`Snapshot`] (route table + functions) behind an
//! [`ArcSwap`]: a deploy builds a new snapshot and swaps it in atomically. A request clones the
//! `Arc` of the function it matched, so in-flight requests finish on the code they started on.
//!
//! It depends on `updraft-engine` to run functions and must not touch storage: where log lines
//! go is the [`LogSinks`] the composition root hands it.

mod limit;
mod routes;

pub use limit::{ConcurrencyLimit, DEFAULT_QUEUE_TIMEOUT, Throttled};
pub use routes::{Lookup, Route, RouteConflict, RouteTable};

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use updraft_api::{Code, ErrorBody, headers};
use updraft_engine::{GuestBody, InvokeError, LogSink, PreparedFunction};
use updraft_manifest::RouteMatch;

/// A deployed function as the data plane sees it.
pub struct Function {
    /// The project (tenant) it belongs to.
    pub project: String,
    /// Its name.
    pub name: String,
    /// Its runnable code and settings.
    pub prepared: PreparedFunction,
    /// Its concurrency limit (`max_concurrency`).
    pub limit: ConcurrencyLimit,
}

/// Everything the data plane serves at one moment.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// HTTP routes.
    pub routes: RouteTable,
    /// Functions by name (for direct invocation through the control API).
    pub functions: HashMap<String, Arc<Function>>,
}

/// Makes the log sink for one invocation.
pub trait LogSinks: Send + Sync + 'static {
    /// A sink tagging every line with `function` and `request_id`.
    fn sink(&self, function: &Function, request_id: &str) -> Arc<dyn LogSink>;
}

/// The response body type of the data plane.
pub type Body = GuestBody;

/// The data plane. Share it behind an `Arc`.
pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    logs: Arc<dyn LogSinks>,
}

impl Gateway {
    /// A gateway serving nothing yet.
    pub fn new(logs: Arc<dyn LogSinks>) -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            logs,
        }
    }

    /// Atomically replaces what is served. Requests already running keep their function.
    pub fn publish(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    /// What is served now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Serves one data-plane request: route, invoke, respond.
    pub async fn handle<B>(&self, mut req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<updraft_engine::HttpError>,
    {
        let request_id = new_request_id();
        let snapshot = self.snapshot.load();
        let path = req.uri().path().to_owned();
        let (function, matched, pattern) =
            match snapshot.routes.lookup(req.method().as_str(), &path) {
                Lookup::Found(route, m) => (route.function.clone(), m, route.pattern.clone()),
                Lookup::MethodNotAllowed(allowed) => {
                    let mut resp = error_response(
                        Code::MethodNotAllowed,
                        format!(
                            "{} is not allowed on {path}; allowed: {}",
                            req.method(),
                            allowed.join(", ")
                        ),
                        &request_id,
                    );
                    if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                        resp.headers_mut().insert(header::ALLOW, v);
                    }
                    return resp;
                }
                Lookup::NotFound => {
                    return error_response(
                        Code::RouteNotFound,
                        format!("no function is routed at {path}"),
                        &request_id,
                    );
                }
            };
        drop(snapshot);
        strip_updraft_headers(req.headers_mut());
        set_route_headers(req.headers_mut(), &pattern, &matched);
        self.run(&function, req, request_id).await
    }

    /// Invokes `function` directly with `req` (no routing), as the control API's invoke does.
    pub async fn invoke<B>(
        &self,
        function: &Arc<Function>,
        mut req: Request<B>,
        request_id: String,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<updraft_engine::HttpError>,
    {
        strip_updraft_headers(req.headers_mut());
        self.run(function, req, request_id).await
    }

    async fn run<B>(
        &self,
        function: &Arc<Function>,
        mut req: Request<B>,
        request_id: String,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<updraft_engine::HttpError>,
    {
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            req.headers_mut().insert(headers::REQUEST_ID, v);
        }
        if !req.headers().contains_key(header::HOST) && req.uri().authority().is_none() {
            req.headers_mut()
                .insert(header::HOST, HeaderValue::from_static("localhost"));
        }
        let permit = match function.limit.acquire().await {
            Ok(permit) => permit,
            Err(why) => {
                let reason = match why {
                    Throttled::QueueFull => "its wait queue is full",
                    Throttled::Timeout => "no slot freed up in time",
                };
                let mut resp = error_response(
                    Code::Throttled,
                    format!(
                        "function `{}` is at its concurrency limit: {reason}",
                        function.name
                    ),
                    &request_id,
                );
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(function.limit.retry_after_secs()),
                );
                return resp;
            }
        };
        let sink = self.logs.sink(function, &request_id);
        let result = function.prepared.handle(req, sink).await;
        let mut resp = match result {
            // The slot stays taken until the body is finished: the guest runs until then.
            Ok(resp) => resp.map(|body| {
                Permitted {
                    inner: body,
                    _permit: permit,
                }
                .boxed_unsync()
            }),
            Err(e) => {
                let code = match e {
                    InvokeError::Timeout(_) => Code::FunctionTimeout,
                    _ => Code::FunctionFailed,
                };
                tracing::debug!(function = %function.name, %request_id, error = %e, "invocation failed");
                error_response(code, e.to_string(), &request_id)
            }
        };
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert(headers::REQUEST_ID, v);
        }
        if let Ok(v) = HeaderValue::from_str(&function.name) {
            h.insert(headers::FUNCTION, v);
        }
        resp
    }

    /// Serves the data plane on `listener` until `shutdown` resolves, then stops accepting and
    /// waits up to `drain` for in-flight requests to finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
        drain: Duration,
    ) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let gateway = self.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(gateway.handle(req).await) }
            });
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(drain, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "data plane: in-flight requests still running after {drain:?}; stopping"
            );
        }
    }
}

/// A response body that holds its invocation's concurrency slot until it ends.
struct Permitted {
    inner: Body,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for Permitted {
    type Data = Bytes;
    type Error = updraft_engine::HttpError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Tells the guest which route matched: `x-updraft-route`, one `x-updraft-param-<name>` per
/// parameter, and `x-updraft-path-info` for what a trailing `...` matched.
fn set_route_headers(headers: &mut http::HeaderMap, pattern: &str, m: &RouteMatch) {
    if let Ok(v) = HeaderValue::from_str(pattern) {
        headers.insert("x-updraft-route", v);
    }
    for (name, value) in &m.params {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(
                format!("x-updraft-param-{}", name.to_ascii_lowercase()).as_bytes(),
            ),
            HeaderValue::from_str(value),
        ) {
            headers.insert(k, v);
        }
    }
    if let Some(rest) = &m.rest
        && let Ok(v) = HeaderValue::from_str(rest)
    {
        headers.insert("x-updraft-path-info", v);
    }
}

/// Removes every `x-updraft-*` request header: those come from Updraft, never from clients.
fn strip_updraft_headers(headers: &mut http::HeaderMap) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-updraft-"))
        .cloned()
        .collect();
    for k in spoofed {
        headers.remove(k);
    }
}

/// A new request id: 32 hex characters, random.
pub fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A JSON error response with the standard body.
pub fn error_response(code: Code, message: impl Into<String>, request_id: &str) -> Response<Body> {
    let mut body = ErrorBody::new(code, message);
    body.error.request_id = Some(request_id.to_owned());
    let mut resp = Response::new(full(body.to_json()));
    *resp.status_mut() = code.status();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(headers::REQUEST_ID, v);
    }
    resp
}

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// The address a listener is bound to, for printing.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
