//! The data plane: Updraft's HTTP front door for function traffic.
//!
//! It owns the route table and the hyper server that accepts requests, matches them to a
//! function, gives each one a request id (`x-updraft-request-id` on every response), streams the
//! request body into the function and its response body back out, and turns every failure into a
//! JSON error (`404` for an unknown route, `405`, `500` for a trap, `504` for a timeout).
//!
//! What is served is one immutable [`Snapshot`] (route table + functions) behind an
//! [`ArcSwap`]: a deploy or an alias move builds a new snapshot and swaps it in atomically.
//!
//! A [`Function`] has immutable [`Version`]s and named [`Alias`]es. A route serves an alias
//! (`live` unless it names another); the alias gives the request its version, drawing its
//! canary with the canary's weight. A caller may pin a version or alias with
//! `x-updraft-version` / `x-updraft-alias` when the function allows it or the request carries
//! the admin token ([`AdminCheck`]). A request clones the `Arc` of its version, so in-flight
//! requests finish on the code they started on, and every response says which version served
//! it. Versions under a guarded canary record their 5xx rate and latency ([`Health`]).
//!
//! Before a function runs, the gateway admits it: the function's `max_concurrency` and the
//! server's global cap, with a bounded wait queue (429 + `Retry-After` past it), the request
//! body cap (413) and the header caps (431, enforced by hyper). It then gets the function's code
//! from its [`ManagedFunction`] (loading it from the disk cache if it was evicted: a cold start,
//! logged) and streams the response back, cut off past the response body cap (502 when the
//! size is known up front). [`Gateway::evict_idle`] drops the code of idle functions.
//!
//! Every admitted invocation is metered: when it is over, the gateway hands its record
//! (duration, billed duration, memory, GB-seconds, cold start, status, error class) to the
//! [`Telemetry`], updates the version's Prometheus series ([`Metrics`]) and charges the
//! function's [`Quota`]s, which it checks at admission (429 `quota_exceeded`). Every request is
//! in a W3C trace ([`TraceContext`]): the guest and its outbound requests see a `traceparent`,
//! and the spans go to the telemetry when it wants them.
//!
//! Event deliveries (queue, topic, schedule, async) enter through [`Gateway::invoke_as`], so
//! they are admitted, limited and metered exactly like HTTP requests. Paths under
//! [`SERVICES_PREFIX`] (`/_updraft/`) go to the platform's own APIs ([`Mounted`], handed in by
//! the composition root), not to function routes.
//!
//! It depends on `updraft-engine` to run functions and must not touch storage: where log lines,
//! records and spans go is the [`Telemetry`] the composition root hands it.

mod body;
mod call;
mod health;
mod limit;
mod metrics;
mod quota;
mod routes;
mod trace;

pub use health::{Health, Summary};
pub use limit::{ConcurrencyLimit, DEFAULT_QUEUE_TIMEOUT, Permits, Throttled};
pub use metrics::{Metrics, VersionMetrics};
pub use quota::{Quota, QuotaScope, period_bounds, rfc3339};
pub use routes::{Lookup, Route, RouteConflict, RouteTable};
pub use trace::{Span, TRACEPARENT, TraceContext};

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use updraft_api::{Code, ErrorBody, ErrorClass, Invocation, Trigger, headers};
use updraft_engine::{GuestBody, ManagedFunction, Start, Stream};
use updraft_manifest::{LIVE, RouteMatch, format_size};

use crate::body::{Budget, LimitedRequest, Tracked};
use crate::call::{Call, Outcome, Traced, class_of};

/// A deployed function as the data plane sees it: its versions and the aliases that pick
/// among them.
pub struct Function {
    /// The project (tenant) it belongs to.
    pub project: String,
    /// Its name.
    pub name: String,
    /// Its versions that can serve (retention-deleted ones are not here).
    pub versions: BTreeMap<u32, Arc<Version>>,
    /// Its aliases, by name.
    pub aliases: HashMap<String, Alias>,
    /// Whether any caller may pick a version or alias with request headers (otherwise only a
    /// caller presenting the admin token may).
    pub allow_pinning: bool,
    /// Quotas every request to it must pass: its own and its project's.
    pub quotas: Vec<Arc<Quota>>,
}

/// A named pointer to a version, optionally splitting traffic with a canary.
#[derive(Clone)]
pub struct Alias {
    /// The (stable) version.
    pub version: Arc<Version>,
    /// A canary version and the percentage (0 to 100) of requests it gets.
    pub canary: Option<(Arc<Version>, u8)>,
}

impl Alias {
    /// The version for one request: the canary with its weight's probability.
    pub fn pick(&self) -> &Arc<Version> {
        match &self.canary {
            Some((canary, weight)) if rand::random_range(0..100u8) < *weight => canary,
            _ => &self.version,
        }
    }
}

/// One immutable version of a function: its code (loaded on demand, evicted when idle) and the
/// settings it was deployed with.
pub struct Version {
    /// Its number.
    pub number: u32,
    /// Its code and instance settings.
    pub runtime: Arc<ManagedFunction>,
    /// Its concurrency limit (`max_concurrency`).
    pub limit: ConcurrencyLimit,
    /// Largest request body it accepts, in bytes.
    pub max_request_body: u64,
    /// Largest response body it may send, in bytes.
    pub max_response_body: u64,
    /// Its memory limit, in bytes (what GB-seconds are billed on).
    pub memory_bytes: u64,
    /// Its recent error rate and latency, recorded while a guarded canary watches it.
    pub health: Health,
    /// Its Prometheus series (from [`Metrics::version`]).
    pub metrics: Arc<VersionMetrics>,
}

/// Decides whether a request carries the admin token (which allows pinning a version).
pub trait AdminCheck: Send + Sync + 'static {
    /// Whether `authorization` (the header's value) is a valid admin bearer token.
    fn is_admin(&self, authorization: &str) -> bool;
}

/// Which version a request asked for with `x-updraft-version` or `x-updraft-alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// A version number.
    Version(u32),
    /// An alias name.
    Alias(String),
}

/// Server-wide data-plane settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Invocations running at once across all functions (`None`: no global cap).
    pub global_max_concurrency: Option<u32>,
    /// Most request headers accepted (more: 431).
    pub max_headers: usize,
    /// Most bytes of request head (request line and headers) accepted (more: 431).
    pub max_header_bytes: usize,
    /// Whether invocations are metered: records, metrics, quotas.
    pub metering: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            global_max_concurrency: None,
            max_headers: 100,
            max_header_bytes: 64 << 10,
            metering: true,
        }
    }
}

/// Everything the data plane serves at one moment.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// HTTP routes.
    pub routes: RouteTable,
    /// Functions by name (for direct invocation through the control API).
    pub functions: HashMap<String, Arc<Function>>,
}

/// Where the data plane's log lines, invocation records and spans go. Every method is called
/// on the request path and must not block (queue, don't write).
pub trait Telemetry: Send + Sync + 'static {
    /// A line of `function`'s log: the guest's output or a platform event. `request_id` is
    /// empty for events about the function rather than one invocation (an eviction).
    fn line(
        &self,
        function: &Function,
        version: Option<u32>,
        request_id: &str,
        stream: Stream,
        line: &str,
    );

    /// The record of a finished invocation.
    fn record(&self, invocation: Invocation);

    /// Whether to build spans for [`Telemetry::spans`] (when false, none are built).
    fn wants_spans(&self) -> bool {
        false
    }

    /// The spans of a finished invocation.
    fn spans(&self, spans: Vec<Span>) {
        let _ = spans;
    }
}

/// The response body type of the data plane.
pub type Body = GuestBody;

/// The data plane. Share it behind an `Arc`.
pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    telemetry: Arc<dyn Telemetry>,
    metrics: Metrics,
    admin: Option<Arc<dyn AdminCheck>>,
    services: Option<Arc<dyn Mounted>>,
    global: Option<Arc<Semaphore>>,
    config: GatewayConfig,
}

/// Paths under this prefix are served by the [`Mounted`] services (queues and topics for
/// clients), not by function routes.
pub const SERVICES_PREFIX: &str = "/_updraft/";

/// The platform's own data-plane APIs, served under [`SERVICES_PREFIX`] (the gateway does not
/// know what they are: the composition root mounts them).
pub trait Mounted: Send + Sync + 'static {
    /// Answers one request.
    fn call(
        &self,
        req: Request<Incoming>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Response<Body>> + Send + 'static>>;
}

impl Gateway {
    /// A gateway serving nothing yet.
    pub fn new(telemetry: Arc<dyn Telemetry>, config: GatewayConfig) -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            telemetry,
            metrics: Metrics::default(),
            admin: None,
            services: None,
            global: config
                .global_max_concurrency
                .map(|n| Arc::new(Semaphore::new(usize::try_from(n.max(1)).unwrap_or(1)))),
            config,
        }
    }

    /// Every version's Prometheus series.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Lets requests carrying the admin token (as `check` decides) pin a version of any
    /// function.
    #[must_use]
    pub fn with_admin_check(mut self, check: Arc<dyn AdminCheck>) -> Self {
        self.admin = Some(check);
        self
    }

    /// Serves [`SERVICES_PREFIX`] with `services`.
    #[must_use]
    pub fn with_services(mut self, services: Arc<dyn Mounted>) -> Self {
        self.services = Some(services);
        self
    }

    /// Drops the code of every function idle past its `idle_timeout` (and idle warm instances),
    /// logging each eviction. Call it periodically.
    pub fn evict_idle(&self) {
        for function in self.snapshot.load().functions.values() {
            for version in function.versions.values() {
                if version.runtime.evict_if_idle() {
                    tracing::debug!(function = %function.name, version = version.number, "evicted idle version");
                    self.telemetry.line(
                        function,
                        Some(version.number),
                        "",
                        Stream::Platform,
                        &format!(
                            "evicted: version {} was idle past its idle_timeout; its next request \
                             loads it from the compiled-code cache (a cold start)",
                            version.number
                        ),
                    );
                }
            }
        }
    }

    /// Atomically replaces what is served. Requests already running keep their function. The
    /// metric series of versions no longer served are dropped.
    pub fn publish(&self, snapshot: Snapshot) {
        self.metrics.retain(|project, function, version| {
            snapshot
                .functions
                .get(function)
                .is_some_and(|f| f.project == project && f.versions.contains_key(&version))
        });
        self.snapshot.store(Arc::new(snapshot));
    }

    /// What is served now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Serves one data-plane request: route, pick a version, invoke, respond.
    pub async fn handle<B>(&self, mut req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<updraft_engine::HttpError>,
    {
        let trace = traced(req.headers());
        let request_id = new_request_id();
        let snapshot = self.snapshot.load();
        let path = req.uri().path().to_owned();
        // Everything the route decides is settled while the snapshot is held, so nothing of
        // it is copied out but the function and the version.
        let (function, chosen) = match snapshot.routes.lookup(req.method().as_str(), &path) {
            Lookup::Found(route, m) => {
                let function = route.function.clone();
                let chosen = self
                    .requested_pin(&function, req.headers_mut())
                    .and_then(|pin| resolve(&function, pin.as_ref(), route.trigger.alias()));
                if chosen.is_ok() {
                    strip_updraft_headers(req.headers_mut());
                    set_route_headers(req.headers_mut(), &route.pattern, &m);
                }
                (function, chosen)
            }
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
        match chosen {
            Ok(version) => {
                let call = (Trigger::Http, trace);
                self.run(&function, &version, req, request_id, call).await
            }
            Err((code, msg)) => {
                let resp = error_response(code, msg, &request_id);
                with_function(resp, &request_id, &function, None)
            }
        }
    }

    /// The version or alias a request pins with `x-updraft-version` / `x-updraft-alias`, if
    /// it may: the function allows pinning, or the request carries the admin token (which is
    /// then removed: it is for Updraft, never for the guest).
    fn requested_pin(
        &self,
        function: &Function,
        headers: &mut http::HeaderMap,
    ) -> Result<Option<Pin>, (Code, String)> {
        let bad = |msg: String| (Code::BadRequest, msg);
        let pin = match (headers.get(headers::VERSION), headers.get(headers::ALIAS)) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "send {} or {}, not both",
                    headers::VERSION,
                    headers::ALIAS
                )));
            }
            (Some(v), None) => v
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .map(Pin::Version)
                .ok_or_else(|| bad(format!("{} must be a version number", headers::VERSION)))?,
            (None, Some(a)) => Pin::Alias(
                a.to_str()
                    .map_err(|_| bad(format!("{} must be an alias name", headers::ALIAS)))?
                    .trim()
                    .to_owned(),
            ),
        };
        if !function.allow_pinning {
            let admin = headers
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| self.admin.as_ref().is_some_and(|a| a.is_admin(h)));
            if !admin {
                return Err((
                    Code::Forbidden,
                    format!(
                        "function `{}` does not let callers pick a version: send the admin \
                         token, or set allow_version_pinning = true in its manifest",
                        function.name
                    ),
                ));
            }
            headers.remove(header::AUTHORIZATION);
        }
        Ok(Some(pin))
    }

    /// Invokes `function` directly with `req` (no routing), as the control API's invoke does:
    /// the version `pin` names, or one picked by `live`.
    pub async fn invoke<B>(
        &self,
        function: &Arc<Function>,
        pin: Option<&Pin>,
        req: Request<B>,
        request_id: String,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<updraft_engine::HttpError>,
    {
        self.invoke_as(function, pin, Trigger::Invoke, req, request_id)
            .await
    }

    /// Invokes `function` directly for `trigger` (an event delivery: schedule, queue, topic,
    /// async invoke), through the same admission, limits and metering as any request.
    pub async fn invoke_as<B>(
        &self,
        function: &Arc<Function>,
        pin: Option<&Pin>,
        trigger: Trigger,
        mut req: Request<B>,
        request_id: String,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<updraft_engine::HttpError>,
    {
        let trace = traced(req.headers());
        let version = match resolve(function, pin, LIVE) {
            Ok(v) => v,
            Err((code, msg)) => {
                let resp = error_response(code, msg, &request_id);
                return with_function(resp, &request_id, function, None);
            }
        };
        if matches!(trigger, Trigger::Invoke | Trigger::Http) {
            strip_updraft_headers(req.headers_mut());
        }
        let call = (trigger, trace);
        self.run(function, &version, req, request_id, call).await
    }

    async fn run<B>(
        &self,
        function: &Arc<Function>,
        version: &Arc<Version>,
        mut req: Request<B>,
        request_id: String,
        (trigger, trace): (Trigger, Traced),
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<updraft_engine::HttpError>,
    {
        let h = req.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert(headers::REQUEST_ID, v);
        }
        h.insert(headers::VERSION, HeaderValue::from(version.number));
        if let Ok(v) = HeaderValue::from_str(&trace.guest_header()) {
            h.insert(TRACEPARENT, v);
        }
        if !req.headers().contains_key(header::HOST) && req.uri().authority().is_none() {
            req.headers_mut()
                .insert(header::HOST, HeaderValue::from_static("localhost"));
        }
        let served = |resp| with_function(resp, &request_id, function, Some(version));
        let now_ms = trace.clock.unix_ms();
        let admitted_quotas = match self.admit_quotas(function, version, &request_id, now_ms) {
            Ok(n) => n,
            Err(msg) => return served(error_response(Code::QuotaExceeded, msg, &request_id)),
        };
        let permits = match version.limit.acquire(self.global.as_ref()).await {
            Ok(permits) => permits,
            Err(why) => {
                for q in &function.quotas[..admitted_quotas] {
                    q.release();
                }
                return served(self.throttled(function, version, &request_id, why));
            }
        };
        let admitted = Instant::now();
        let metrics = &version.metrics;
        if self.config.metering {
            metrics
                .queue_wait
                .observe(admitted.duration_since(trace.clock.instant()).as_secs_f64());
        }
        metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let call = Arc::new(Call {
            telemetry: self.telemetry.clone(),
            metering: self.config.metering,
            function: function.clone(),
            version: version.clone(),
            request_id: request_id.clone(),
            trigger,
            trace,
            admitted,
            outcome: std::sync::Mutex::new(Outcome::default()),
        });
        let resp = self.execute(&call, req, permits).await;
        version
            .health
            .record(resp.status().is_server_error(), admitted.elapsed());
        served(resp)
    }

    /// Counts the request against the function's quotas. Returns how many it was counted
    /// against (all of them), or the message naming the quota that is used up (logged).
    fn admit_quotas(
        &self,
        function: &Function,
        version: &Version,
        request_id: &str,
        now: i64,
    ) -> Result<usize, String> {
        if !self.config.metering || function.quotas.is_empty() {
            return Ok(0);
        }
        for (i, q) in function.quotas.iter().enumerate() {
            if let Err(msg) = q.admit(now) {
                for earlier in &function.quotas[..i] {
                    earlier.release();
                }
                version
                    .metrics
                    .quota_rejections
                    .fetch_add(1, Ordering::Relaxed);
                version
                    .metrics
                    .rejected(Code::QuotaExceeded.status().as_u16());
                self.telemetry.line(
                    function,
                    Some(version.number),
                    request_id,
                    Stream::Platform,
                    &msg,
                );
                return Err(msg);
            }
        }
        Ok(function.quotas.len())
    }

    /// The 429 for a request the concurrency limit turned away, counted and logged.
    fn throttled(
        &self,
        function: &Function,
        version: &Version,
        request_id: &str,
        why: Throttled,
    ) -> Response<Body> {
        let reason = match why {
            Throttled::QueueFull => format!(
                "function `{}` is at its concurrency limit: its wait queue is full",
                function.name
            ),
            Throttled::Timeout => format!(
                "function `{}` is at its concurrency limit: no slot freed up in time",
                function.name
            ),
            Throttled::Global => {
                "the server is at its global concurrency limit: no slot freed up in time".to_owned()
            }
        };
        version.metrics.throttles.fetch_add(1, Ordering::Relaxed);
        version.metrics.rejected(Code::Throttled.status().as_u16());
        self.telemetry.line(
            function,
            Some(version.number),
            request_id,
            Stream::Platform,
            &format!("throttled (429): {reason}"),
        );
        let mut resp = error_response(Code::Throttled, reason, request_id);
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(version.limit.retry_after_secs()),
        );
        resp
    }

    /// Runs one admitted request and turns the outcome into a response; tells `call` the
    /// status and any failure the gateway saw.
    async fn execute<B>(
        &self,
        call: &Arc<Call>,
        req: Request<B>,
        permits: Permits,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<updraft_engine::HttpError>,
    {
        let (resp, error) = self.execute_inner(call, req, permits).await;
        call.set_status(resp.status().as_u16(), error);
        resp
    }

    async fn execute_inner<B>(
        &self,
        call: &Arc<Call>,
        req: Request<B>,
        permits: Permits,
    ) -> (Response<Body>, Option<ErrorClass>)
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<updraft_engine::HttpError>,
    {
        let (function, version, request_id) = (&call.function, &call.version, &call.request_id);
        if content_length(req.headers()).is_some_and(|n| n > version.max_request_body) {
            let resp = too_large(function, version, request_id);
            return (resp, Some(ErrorClass::PayloadTooLarge));
        }
        let exceeded = Arc::new(AtomicBool::new(false));
        let req = req.map(|inner| LimitedRequest {
            inner,
            budget: Budget::new(version.max_request_body),
            exceeded: exceeded.clone(),
        });
        let sink: Arc<dyn updraft_engine::InvocationSink> = call.clone();
        let (prepared, start) = match version.runtime.acquire().await {
            Ok(loaded) => loaded,
            Err(e) => {
                let msg = format!("could not load the function's code: {e}");
                sink.line(Stream::Platform, &msg);
                tracing::error!(function = %function.name, error = %e, "could not load function");
                let resp = error_response(Code::Internal, msg, request_id);
                return (resp, Some(ErrorClass::LoadFailed));
            }
        };
        if let Start::Cold { load_us } = start {
            call.set_cold(Duration::from_micros(load_us));
            sink.line(
                Stream::Platform,
                &format!(
                    "cold start: version {} loaded from the compiled-code cache in {:.1} ms",
                    version.number,
                    load_us as f64 / 1000.0
                ),
            );
        }
        let result = prepared.handle(req, sink.clone()).await;
        let out = match result {
            _ if exceeded.load(Ordering::Relaxed) => (
                too_large(function, version, request_id),
                Some(ErrorClass::PayloadTooLarge),
            ),
            Ok((resp, _instance)) => {
                let length = content_length(resp.headers());
                if length.is_some_and(|n| n > version.max_response_body) {
                    let msg = format!(
                        "the function's response body ({} bytes) exceeds its max_response_body of {}",
                        length.unwrap_or_default(),
                        format_size(version.max_response_body)
                    );
                    sink.line(Stream::Platform, &msg);
                    (
                        error_response(Code::ResponseTooLarge, msg, request_id),
                        Some(ErrorClass::ResponseTooLarge),
                    )
                } else {
                    let resp = resp.map(|inner| {
                        Tracked {
                            inner,
                            budget: Budget::new(version.max_response_body),
                            log: sink,
                            function: version.runtime.clone(),
                            _permits: permits,
                        }
                        .boxed_unsync()
                    });
                    (resp, None)
                }
            }
            Err(e) => {
                let code = match e {
                    updraft_engine::InvokeError::Timeout(_) => Code::FunctionTimeout,
                    _ => Code::FunctionFailed,
                };
                tracing::debug!(function = %function.name, %request_id, error = %e, "invocation failed");
                (
                    error_response(code, e.to_string(), request_id),
                    Some(class_of(&e)),
                )
            }
        };
        version.runtime.finished();
        out
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
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .max_headers(self.config.max_headers)
            .max_buf_size(self.config.max_header_bytes.max(8192));
        builder
            .http2()
            .max_header_list_size(u32::try_from(self.config.max_header_bytes).unwrap_or(u32::MAX));
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
                async move {
                    if let Some(services) = &gateway.services
                        && req.uri().path().starts_with(SERVICES_PREFIX)
                    {
                        return Ok::<_, Infallible>(services.call(req).await);
                    }
                    Ok::<_, Infallible>(gateway.handle(req).await)
                }
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

/// The trace a request belongs to: its `traceparent`'s, or a new one.
fn traced(headers: &http::HeaderMap) -> Traced {
    let context = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .unwrap_or_else(TraceContext::root);
    Traced::new(context)
}

/// The `content-length` a message declares, if any.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Adds the request id, the function's name and the version that served it to a response.
fn with_function(
    mut resp: Response<Body>,
    request_id: &str,
    function: &Function,
    version: Option<&Version>,
) -> Response<Body> {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(headers::REQUEST_ID, v);
    }
    if let Ok(v) = HeaderValue::from_str(&function.name) {
        h.insert(headers::FUNCTION, v);
    }
    if let Some(version) = version {
        h.insert(headers::VERSION, HeaderValue::from(version.number));
    }
    resp
}

/// The version a request gets: the one `pin` names, or one picked by `alias`.
fn resolve(
    function: &Function,
    pin: Option<&Pin>,
    alias: &str,
) -> Result<Arc<Version>, (Code, String)> {
    let alias = match pin {
        Some(Pin::Version(n)) => {
            return function.versions.get(n).cloned().ok_or_else(|| {
                (
                    Code::VersionNotFound,
                    format!(
                        "function `{}` has no version {n} (never deployed, or deleted by retention)",
                        function.name
                    ),
                )
            });
        }
        Some(Pin::Alias(a)) => a.as_str(),
        None => alias,
    };
    function
        .aliases
        .get(alias)
        .map(|a| a.pick().clone())
        .ok_or_else(|| {
            (
                Code::AliasNotFound,
                format!("function `{}` has no alias `{alias}`", function.name),
            )
        })
}

/// The 413 for a request body over the version's cap.
fn too_large(function: &Function, version: &Version, request_id: &str) -> Response<Body> {
    error_response(
        Code::PayloadTooLarge,
        format!(
            "the request body exceeds function `{}`'s max_request_body of {}",
            function.name,
            format_size(version.max_request_body)
        ),
        request_id,
    )
}

/// Locks a mutex, ignoring poisoning: every critical section leaves its data consistent.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// A new request id: 32 hex characters, the first 12 the time in ms, the other 20 random.
/// Ids sort by time, which keeps the stores' request-id indexes append-mostly (random ids cost
/// a random B-tree insert per log line and invocation record).
pub fn new_request_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut id = String::with_capacity(32);
    trace::push_hex(&mut id, ms, 12);
    trace::push_hex(&mut id, rand::random::<u128>(), 20);
    id
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
