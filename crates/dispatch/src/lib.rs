//! The dispatcher: the one path every invocation takes, whatever triggered it and whatever
//! runs it.
//!
//! HTTP routes (through the gateway), direct invokes, and every event trigger (schedules,
//! queues, topics, asynchronous invokes) hand the [`Dispatcher`] a function, the version to run
//! and an [`Input`]. The dispatcher then:
//! 1. admits the invocation: the function's quotas ([`Quota`], 429 `quota_exceeded`), its
//!    `max_concurrency` (one [`ConcurrencyLimit`] per function, shared by all its versions, so a
//!    90/10 canary has one limit, not two) and the server's global cap, with a bounded wait
//!    queue (429 + `Retry-After` past it); the request body cap (413);
//! 2. runs it on the version's [`Runtime`] (the wasm engine today), which loads the code if it
//!    was scaled to zero and reports log lines, the cold start and the guest's [`Report`];
//! 3. streams the response back, cut off past the response body cap (502 when the size is known
//!    up front), and when both the guest and the response are done, meters it: an invocation
//!    record and log lines to the [`Telemetry`], the version's Prometheus series ([`Metrics`]),
//!    GB-second quotas charged, the version's canary [`Health`], and W3C trace spans.
//!
//! Errors are JSON (`{"error": {"code", "message", "request_id"}}`), and every response says
//! which function and version served it.
//!
//! A [`Function`] has immutable [`Version`]s and named [`Alias`]es; the registry builds them and
//! publishes them in snapshots, and a request holds an `Arc` of its version, so in-flight
//! invocations finish on the code they started on.
//!
//! It depends on no runtime: runtimes implement [`Runtime`] and [`RuntimeProvider`]. It must
//! not touch storage (records go to the [`Telemetry`] the composition root hands it) nor know
//! about routes or HTTP listeners (the gateway's).

mod body;
mod call;
pub mod event;
mod function;
mod health;
pub mod held;
pub mod kv;
mod limit;
mod metrics;
mod quota;
mod rejected;
mod runtime;
mod trace;
mod tracked;

pub use body::{Body, BodyError, content_length};
pub use call::Traced;
pub use event::{Event, Events};
pub use function::{Alias, Function, Pin, Version};
pub use health::{Health, Summary};
pub use limit::{ConcurrencyLimit, DEFAULT_QUEUE_TIMEOUT, Permits, Throttled};
pub use metrics::{Metrics, VersionMetrics};
pub use quota::{Quota, QuotaScope, period_bounds, rfc3339};
pub use rejected::Rejected;
pub use runtime::{
    BoxFuture, CodeSource, Input, Invocation, InvocationSink, InvokeError, LifecycleStats,
    LoadError, PLATFORM_HOST, ProcessSettings, Report, Reuse, Runtime, RuntimeProvider, S3_HOST,
    Settings, Start, Stream,
};
pub use trace::{Span, TRACEPARENT, TraceContext};

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, Full};
use tokio::sync::Semaphore;

use crate::rejected::rejection;
use updraft_api::{Code, ErrorBody, ErrorClass, Invocation as Record, Trigger, headers};
use updraft_manifest::format_size;

use crate::body::{Budget, LimitedRequest};
use crate::call::{Call, Outcome, class_of};
use crate::tracked::Tracked;

/// Where log lines, invocation records and spans go. Every method is called on the invocation
/// path and must not block (queue, don't write).
pub trait Telemetry: Send + Sync + 'static {
    /// A line of a function's log: the guest's output or a platform event. `version` is `None`
    /// and `request_id` empty for events about the function rather than one invocation (a
    /// deploy, an eviction).
    fn line(
        &self,
        project: &str,
        function: &str,
        version: Option<u32>,
        request_id: &str,
        stream: Stream,
        line: &str,
    );

    /// The record of a finished invocation.
    fn record(&self, invocation: Record);

    /// Whether to build spans for [`Telemetry::spans`] (when false, none are built).
    fn wants_spans(&self) -> bool {
        false
    }

    /// The spans of a finished invocation.
    fn spans(&self, spans: Vec<Span>) {
        let _ = spans;
    }
}

/// Server-wide dispatch settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DispatchConfig {
    /// Invocations running at once across all functions (`None`: no global cap).
    pub global_max_concurrency: Option<u32>,
    /// Whether invocations are metered: records, metrics, quotas.
    pub metering: bool,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            global_max_concurrency: None,
            metering: true,
        }
    }
}

/// Where an invocation comes from and how it is identified: made by the trigger.
pub struct Origin {
    /// What triggered it.
    pub trigger: Trigger,
    /// Its request id ([`new_request_id`]).
    pub request_id: String,
    /// Its trace, and when it arrived.
    pub trace: Traced,
}

impl Origin {
    /// A new invocation of `trigger`, arriving now, continuing the trace of `traceparent` if
    /// it is a valid one.
    pub fn new(trigger: Trigger, traceparent: Option<&str>) -> Self {
        let context = traceparent
            .and_then(TraceContext::parse)
            .unwrap_or_else(TraceContext::root);
        Self {
            trigger,
            request_id: new_request_id(),
            trace: Traced::new(context),
        }
    }
}

/// The dispatcher. Share it behind an `Arc`.
pub struct Dispatcher {
    telemetry: Arc<dyn Telemetry>,
    metrics: Metrics,
    global: Option<Arc<Semaphore>>,
    config: DispatchConfig,
}

impl Dispatcher {
    /// A dispatcher sending what it meters to `telemetry`.
    pub fn new(telemetry: Arc<dyn Telemetry>, config: DispatchConfig) -> Self {
        Self {
            telemetry,
            metrics: Metrics::default(),
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

    /// Where lines and records go.
    pub fn telemetry(&self) -> &Arc<dyn Telemetry> {
        &self.telemetry
    }

    /// Drops the code of every version of `functions` idle past its idle timeout (and idle
    /// warm instances), logging each eviction. Call it periodically.
    pub fn evict_idle<'a>(&self, functions: impl IntoIterator<Item = &'a Arc<Function>>) {
        for function in functions {
            for version in function.versions.values() {
                if version.runtime.evict_if_idle() {
                    tracing::debug!(function = %function.name, version = version.number, "evicted idle version");
                    self.telemetry.line(
                        &function.project,
                        &function.name,
                        Some(version.number),
                        "",
                        Stream::Platform,
                        &format!(
                            "evicted: version {} was idle past its idle_timeout; its next request \
                             is a cold start ({})",
                            version.number,
                            version.runtime.cold_start_note()
                        ),
                    );
                }
            }
        }
    }

    /// Runs one invocation of `version` of `function`: admission, the runtime, metering. The
    /// response always carries the request id, the function and the version.
    pub async fn dispatch(
        &self,
        function: &Arc<Function>,
        version: &Arc<Version>,
        origin: Origin,
        input: Input,
    ) -> Response<Body> {
        let Origin {
            trigger,
            request_id,
            trace,
        } = origin;
        let served = |resp| with_function(resp, &request_id, function, Some(version));
        let now_ms = trace.clock.unix_ms();
        let admitted_quotas = match self.admit_quotas(function, version, &request_id, now_ms) {
            Ok(n) => n,
            Err((msg, resets_ms)) => {
                let wait = u64::try_from(resets_ms.saturating_sub(now_ms)).unwrap_or(0);
                return served(rejection(
                    Code::QuotaExceeded,
                    msg,
                    &request_id,
                    Duration::from_millis(wait),
                ));
            }
        };
        let permits = match function.limit.acquire(self.global.as_ref()).await {
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
        let (resp, error) = self.execute(&call, input, permits).await;
        call.set_status(resp.status().as_u16(), error);
        version
            .health
            .record(resp.status().is_server_error(), admitted.elapsed());
        served(resp)
    }

    /// Counts the invocation against the function's quotas. Returns how many it was counted
    /// against (all of them), or the message naming the quota that is used up (logged) and
    /// when its window ends (Unix ms).
    fn admit_quotas(
        &self,
        function: &Function,
        version: &Version,
        request_id: &str,
        now: i64,
    ) -> Result<usize, (String, i64)> {
        if !self.config.metering || function.quotas.is_empty() {
            return Ok(0);
        }
        for (i, q) in function.quotas.iter().enumerate() {
            if let Err((msg, resets_ms)) = q.admit(now) {
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
                    &function.project,
                    &function.name,
                    Some(version.number),
                    request_id,
                    Stream::Platform,
                    &msg,
                );
                return Err((msg, resets_ms));
            }
        }
        Ok(function.quotas.len())
    }

    /// The 429 for an invocation the concurrency limit turned away, counted and logged.
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
            &function.project,
            &function.name,
            Some(version.number),
            request_id,
            Stream::Platform,
            &format!("throttled (429): {reason}"),
        );
        rejection(
            Code::Throttled,
            reason,
            request_id,
            Duration::from_secs(function.limit.retry_after_secs()),
        )
    }

    /// Runs one admitted invocation and turns the outcome into a response, with the failure
    /// the dispatcher saw, if any.
    async fn execute(
        &self,
        call: &Arc<Call>,
        input: Input,
        permits: Permits,
    ) -> (Response<Body>, Option<ErrorClass>) {
        let (function, version, request_id) = (&call.function, &call.version, &call.request_id);
        let exceeded = Arc::new(AtomicBool::new(false));
        let input = match input {
            Input::Http(req) => {
                if content_length(req.headers()).is_some_and(|n| n > version.max_request_body) {
                    let resp = too_large(function, version, request_id);
                    return (resp, Some(ErrorClass::PayloadTooLarge));
                }
                Input::Http(req.map(|inner| {
                    LimitedRequest {
                        inner,
                        budget: Budget::new(version.max_request_body),
                        exceeded: exceeded.clone(),
                    }
                    .boxed_unsync()
                }))
            }
            events => events,
        };
        let sink: Arc<dyn InvocationSink> = call.clone();
        let invocation = Invocation {
            request_id: request_id.clone(),
            version: version.number,
            traceparent: call.trace.guest_header(),
            trigger: call.trigger,
            input,
        };
        let result = version.runtime.invoke(invocation, sink.clone()).await;
        let out = match result {
            _ if exceeded.load(Ordering::Relaxed) => (
                too_large(function, version, request_id),
                Some(ErrorClass::PayloadTooLarge),
            ),
            Ok(resp) => {
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
                            runtime: version.runtime.clone(),
                            _permits: permits,
                        }
                        .boxed_unsync()
                    });
                    (resp, None)
                }
            }
            Err(e) => {
                let code = match e {
                    InvokeError::Timeout(_) => Code::FunctionTimeout,
                    InvokeError::Load(_) => {
                        tracing::error!(function = %function.name, error = %e, "could not load function");
                        Code::Internal
                    }
                    InvokeError::BadInput(_) => Code::BadRequest,
                    InvokeError::Handler { .. } => Code::FunctionError,
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
}

/// Adds the request id, the function's name and the version that served it to a response.
pub fn with_function(
    mut resp: Response<Body>,
    request_id: &str,
    function: &Function,
    version: Option<&Version>,
) -> Response<Body> {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(headers::REQUEST_ID, v);
    }
    h.insert(headers::FUNCTION, function.name_header.clone());
    if let Some(version) = version {
        h.insert(headers::VERSION, version.number_header.clone());
    }
    resp
}

/// `value` as a header value, or `-` if it cannot be one (names are validated, so it can).
pub fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("-"))
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

#[cfg(test)]
mod tests;
