//! Where the data plane's log lines, invocation records and spans go: lines and records to the
//! store's background writer (which also feeds `logs --follow`), spans to the OTLP exporter when
//! one is configured.

use std::sync::Arc;
use updraft_api::Invocation;
#[cfg(feature = "otlp")]
use updraft_dispatch::Span;
use updraft_dispatch::{Stream, Telemetry};

use updraft_store::{LogRecord, TelemetryStore, now_ms};

mod budget;

pub(crate) use budget::DEFAULT_MAX_LINES_PER_SECOND;
use budget::{LineBudget, Verdict};

pub(crate) struct StoreTelemetry {
    writer: Arc<dyn TelemetryStore>,
    /// Whether log lines are stored (`[logs] enabled`).
    logs: bool,
    /// Lines per second per function.
    budget: LineBudget,
    #[cfg(feature = "otlp")]
    otlp: Option<crate::otlp::Exporter>,
}

impl StoreTelemetry {
    pub(crate) fn new(writer: Arc<dyn TelemetryStore>, logs: bool, lines_per_second: u32) -> Self {
        Self {
            writer,
            logs,
            budget: LineBudget::new(lines_per_second),
            #[cfg(feature = "otlp")]
            otlp: None,
        }
    }

    /// Exports spans through `exporter`.
    #[cfg(feature = "otlp")]
    pub(crate) fn with_otlp(mut self, exporter: crate::otlp::Exporter) -> Self {
        self.otlp = Some(exporter);
        self
    }
}

impl Telemetry for StoreTelemetry {
    fn line(
        &self,
        project: &str,
        function: &str,
        version: Option<u32>,
        request_id: &str,
        stream: Stream,
        line: &str,
    ) {
        if !self.logs {
            return;
        }
        match self.budget.admit(project, function, now_ms()) {
            Verdict::Drop => return,
            Verdict::WriteAfterDropped(n) => write(
                &*self.writer,
                project,
                function,
                None,
                "",
                Stream::Platform,
                &format!(
                    "{n} log line(s) of this function were dropped in the last second: over \
                     [logs] max_lines_per_second ({})",
                    self.budget.per_second()
                ),
            ),
            Verdict::Write => {}
        }
        write(
            &*self.writer,
            project,
            function,
            version,
            request_id,
            stream,
            line,
        );
    }

    fn record(&self, invocation: Invocation) {
        self.writer.record(invocation);
    }

    #[cfg(feature = "otlp")]
    fn wants_spans(&self) -> bool {
        self.otlp.is_some()
    }

    #[cfg(feature = "otlp")]
    fn spans(&self, spans: Vec<Span>) {
        if let Some(e) = &self.otlp {
            e.export(spans);
        }
    }
}

/// Queues one line of `function`'s log, stamped now.
pub(crate) fn write(
    writer: &dyn TelemetryStore,
    project: &str,
    function: &str,
    version: Option<u32>,
    request_id: &str,
    stream: Stream,
    line: &str,
) {
    writer.write(LogRecord {
        id: 0,
        project: project.to_owned(),
        function: function.to_owned(),
        version,
        request_id: request_id.to_owned(),
        ts_ms: now_ms(),
        stream: stream.as_str().to_owned(),
        line: line.to_owned(),
    });
}
