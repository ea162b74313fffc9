//! One admitted invocation as the dispatcher follows it: it observes the guest for the runtime
//! ([`InvocationSink`]: log lines, outbound trace context, the cold start, the final report),
//! and when both the guest and the response are done (the last `Arc` is dropped) it produces
//! the invocation's record, updates the version's metrics, charges quotas and reports the
//! trace's spans.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use updraft_api::{ErrorClass, Invocation, Trigger};

use crate::runtime::{InvocationSink, InvokeError, Report, Stream};
use crate::trace::{Clock, Span, TraceContext, span_id};
use crate::{Function, Telemetry, Version, lock};

/// The span ids and timing an invocation's trace needs, from when it arrived.
pub struct Traced {
    pub(crate) context: TraceContext,
    /// The gateway's span (child of the caller's).
    pub(crate) gateway_span: u64,
    /// The guest's span: the parent the guest and its outbound requests see.
    pub(crate) execute_span: u64,
    /// When the request came in.
    pub(crate) clock: Clock,
}

impl Traced {
    /// A trace continuing `context`, with new span ids, arriving now.
    pub fn new(context: TraceContext) -> Self {
        Self {
            context,
            gateway_span: span_id(),
            execute_span: span_id(),
            clock: Clock::now(),
        }
    }

    /// The `traceparent` the guest sees.
    pub(crate) fn guest_header(&self) -> String {
        self.context.header(self.execute_span)
    }
}

/// The status recorded for a request whose client went away before it was answered.
const CLIENT_CLOSED_REQUEST: u16 = 499;

pub(crate) struct Call {
    pub(crate) telemetry: Arc<dyn Telemetry>,
    pub(crate) metering: bool,
    pub(crate) function: Arc<Function>,
    pub(crate) version: Arc<Version>,
    pub(crate) request_id: String,
    pub(crate) trigger: Trigger,
    pub(crate) trace: Traced,
    /// When the request was admitted (it got its concurrency slot).
    pub(crate) admitted: Instant,
    pub(crate) outcome: Mutex<Outcome>,
}

/// What is learnt about the invocation as it runs.
#[derive(Default)]
pub(crate) struct Outcome {
    /// How long loading the version's code took, if this was a cold start.
    pub(crate) cold_load: Option<Duration>,
    /// The status the caller got.
    pub(crate) status: u16,
    /// A failure the gateway saw (413, 502, code that would not load, no response head).
    pub(crate) error: Option<ErrorClass>,
    /// The engine's report of the guest's run.
    pub(crate) report: Option<Report>,
}

impl Call {
    pub(crate) fn set_cold(&self, load: Duration) {
        lock(&self.outcome).cold_load = Some(load);
    }

    pub(crate) fn set_status(&self, status: u16, error: Option<ErrorClass>) {
        let mut o = lock(&self.outcome);
        o.status = status;
        if error.is_some() {
            o.error = error;
        }
    }
}

/// The class of an engine failure.
pub(crate) fn class_of(e: &InvokeError) -> ErrorClass {
    match e {
        InvokeError::Timeout(_) => ErrorClass::Timeout,
        InvokeError::OutOfMemory { .. } => ErrorClass::OutOfMemory,
        InvokeError::Trap(_) => ErrorClass::Trap,
        InvokeError::NoResponse => ErrorClass::NoResponse,
        InvokeError::Guest(_) | InvokeError::Handler { .. } => ErrorClass::GuestError,
        InvokeError::Load(_) => ErrorClass::LoadFailed,
        _ => ErrorClass::Instantiate,
    }
}

impl InvocationSink for Call {
    fn line(&self, stream: Stream, line: &str) {
        self.telemetry.line(
            &self.function.project,
            &self.function.name,
            Some(self.version.number),
            &self.request_id,
            stream,
            line,
        );
    }

    fn traceparent(&self) -> Option<String> {
        Some(self.trace.guest_header())
    }

    fn cold_start(&self, load: Duration) {
        self.set_cold(load);
        self.line(
            Stream::Platform,
            &format!(
                "cold start: version {} {} in {:.1} ms",
                self.version.number,
                self.version.runtime.cold_start_note(),
                load.as_secs_f64() * 1000.0
            ),
        );
    }

    fn finished(&self, report: Report) {
        lock(&self.outcome).report = Some(report);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut outcome = std::mem::take(
            self.outcome
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        // No status: the client went away before the gateway had a response for it (the
        // request's future was dropped). Recorded as 499, as nginx does.
        if outcome.status == 0 {
            outcome.status = CLIENT_CLOSED_REQUEST;
        }
        let metrics = &self.version.metrics;
        metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        let ended = outcome.report.as_ref().map_or(now, |r| r.ended);
        // The engine's own view of a failure wins: it saw a timeout or trap even after the
        // head was sent with a 200.
        let error = outcome
            .report
            .as_ref()
            .and_then(|r| r.error.as_ref().map(class_of))
            .or(outcome.error);
        let duration = ended.saturating_duration_since(self.admitted);
        let peak_memory = outcome.report.as_ref().map_or(0, |r| r.peak_memory);
        if self.metering {
            let duration_us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
            let billed_ms = Invocation::billed_ms(duration_us);
            let memory_mb = self.version.memory_bytes.div_ceil(1 << 20);
            let gb_seconds = Invocation::gb_seconds(memory_mb, billed_ms);
            let started_ms = self.trace.clock.unix_ms()
                + i64::try_from(
                    self.admitted
                        .saturating_duration_since(self.trace.clock.instant())
                        .as_millis(),
                )
                .unwrap_or(0);
            metrics.finished(
                outcome.status,
                error.map(ErrorClass::as_str),
                duration,
                peak_memory,
            );
            if outcome.cold_load.is_some() {
                metrics.cold_starts.fetch_add(1, Ordering::Relaxed);
            }
            for q in &self.function.quotas {
                q.charge(gb_seconds, started_ms);
            }
            self.telemetry.record(Invocation {
                request_id: self.request_id.clone(),
                project: self.function.project.clone(),
                function: self.function.name.clone(),
                version: self.version.number,
                trigger: self.trigger,
                started_ms,
                duration_us,
                billed_ms,
                memory_mb,
                peak_memory_bytes: peak_memory,
                gb_seconds,
                cold: outcome.cold_load.is_some(),
                status: outcome.status,
                error,
                trace_id: Some(self.trace.context.trace_hex()),
            });
        }
        if self.telemetry.wants_spans() {
            self.telemetry
                .spans(self.spans(&outcome, error.is_some(), now));
        }
    }
}

impl Call {
    /// The invocation's spans, ending with the gateway's at `now`.
    fn spans(&self, outcome: &Outcome, failed: bool, now: Instant) -> Vec<Span> {
        let t = &self.trace;
        let nanos = |i: Instant| t.clock.nanos(i);
        let span = |id, parent, name, start, end, error| Span {
            trace_id: t.context.trace_id,
            span_id: id,
            parent,
            name,
            start_unix_nanos: nanos(start),
            end_unix_nanos: nanos(end),
            attributes: Vec::new(),
            error,
        };
        let mut gateway = span(
            t.gateway_span,
            t.context.parent,
            "gateway",
            t.clock.instant(),
            now,
            failed,
        );
        gateway.attributes = vec![
            ("updraft.function", self.function.name.clone()),
            ("updraft.version", self.version.number.to_string()),
            ("updraft.request_id", self.request_id.clone()),
            ("updraft.trigger", self.trigger.as_str().to_owned()),
            ("http.response.status_code", outcome.status.to_string()),
        ];
        let mut spans = vec![
            gateway,
            span(
                span_id(),
                Some(t.gateway_span),
                "dispatch",
                t.clock.instant(),
                self.admitted,
                false,
            ),
        ];
        if let Some(r) = &outcome.report {
            let run_starts = r.started + r.instantiate.unwrap_or_default();
            if outcome.cold_load.is_some() || r.instantiate.is_some() {
                let mut inst = span(
                    span_id(),
                    Some(t.gateway_span),
                    "instantiate",
                    self.admitted,
                    run_starts,
                    false,
                );
                inst.attributes = vec![(
                    "updraft.cold_start",
                    outcome.cold_load.is_some().to_string(),
                )];
                spans.push(inst);
            }
            let mut exec = span(
                t.execute_span,
                Some(t.gateway_span),
                "execute",
                run_starts,
                r.ended,
                r.error.is_some(),
            );
            exec.attributes = vec![("updraft.peak_memory_bytes", r.peak_memory.to_string())];
            spans.push(exec);
        }
        spans
    }
}
