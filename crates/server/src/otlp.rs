//! OTLP/HTTP span export (JSON encoding), behind the `otlp` cargo feature and
//! `[tracing] otlp_endpoint`.
//!
//! Spans are queued without blocking (dropped and counted when the queue is full) and posted in
//! batches of up to [`BATCH`] spans, at least every [`INTERVAL`], by one background task. A
//! collector that is down or slow costs lost spans, never request latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use updraft_dispatch::Span;

/// Spans per request to the collector.
const BATCH: usize = 512;
/// Longest a span waits before it is sent.
const INTERVAL: Duration = Duration::from_secs(1);
/// Spans queued before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// Handle to the exporter task.
pub(crate) struct Exporter {
    tx: mpsc::Sender<Span>,
    dropped: Arc<AtomicU64>,
}

impl Exporter {
    /// Starts the exporter task posting to `endpoint` as `service`.
    pub(crate) fn start(endpoint: String, service: String) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(endpoint, service, rx, dropped.clone()));
        Self { tx, dropped }
    }

    /// Queues `spans` for export.
    pub(crate) fn export(&self, spans: Vec<Span>) {
        for s in spans {
            if self.tx.try_send(s).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn run(
    endpoint: String,
    service: String,
    mut rx: mpsc::Receiver<Span>,
    dropped: Arc<AtomicU64>,
) {
    let client = reqwest::Client::new();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let Some(first) = rx.recv().await else { return };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + INTERVAL;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(s)) => batch.push(s),
                Ok(None) | Err(_) => break,
            }
        }
        let body = encode(&service, &batch);
        let sent = client
            .post(&endpoint)
            .header("content-type", "application/json")
            .body(body.to_string())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                tracing::warn!(status = %r.status(), spans = batch.len(), "OTLP collector refused spans");
            }
            Err(e) => {
                dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                tracing::warn!(error = %e, spans = batch.len(), "could not export spans");
            }
        }
        batch.clear();
    }
}

/// An OTLP `ExportTraceServiceRequest` in its JSON encoding (ids as hex, times as strings).
pub(crate) fn encode(service: &str, spans: &[Span]) -> Value {
    let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": format!("{:032x}", s.trace_id),
                "spanId": format!("{:016x}", s.span_id),
                "name": s.name,
                // SERVER for the request as a whole, INTERNAL for its phases.
                "kind": if s.name == "gateway" { 2 } else { 1 },
                "startTimeUnixNano": s.start_unix_nanos.to_string(),
                "endTimeUnixNano": s.end_unix_nanos.to_string(),
                "attributes": s.attributes.iter().map(|(k, v)| attr(k, v)).collect::<Vec<_>>(),
                // STATUS_CODE_ERROR = 2, UNSET = 0.
                "status": {"code": if s.error { 2 } else { 0 }},
            });
            if let Some(p) = s.parent {
                span["parentSpanId"] = json!(format!("{p:016x}"));
            }
            span
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [attr("service.name", service)]},
            "scopeSpans": [{
                "scope": {"name": "updraft", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }],
    })
}
