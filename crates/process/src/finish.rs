//! Closing an invocation once its answer is complete: Lambda's `END` and `REPORT` lines (with
//! the timeout, memory and exit errors' own lines), the environment back to its pool, and the
//! report the dispatcher meters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use updraft_dispatch::{InvocationSink, InvokeError, Report, Stream};

use crate::env::Environment;
use crate::version::{Inner, ms};

/// What closes an invocation once its answer is complete.
pub(crate) struct Finish {
    pub(crate) inner: Arc<Inner>,
    pub(crate) sink: Arc<dyn InvocationSink>,
    pub(crate) request_id: String,
    /// The environment's init, when this invocation started it.
    pub(crate) init: Option<Duration>,
    pub(crate) started: Instant,
    pub(crate) run_started: Instant,
}

impl Finish {
    /// The deadline passed: Lambda's log line, and the error.
    pub(crate) fn timed_out(&self) -> InvokeError {
        let timeout = self.inner.settings.timeout;
        self.sink.line(
            Stream::Platform,
            &format!(
                "{} Task timed out after {:.2} seconds",
                self.request_id,
                timeout.as_secs_f64()
            ),
        );
        InvokeError::Timeout(timeout)
    }

    /// Its memory went past the limit (and it was killed).
    pub(crate) fn out_of_memory(&self, rss: u64) -> InvokeError {
        InvokeError::OutOfMemory {
            limit: self.inner.settings.memory_bytes,
            requested: rss,
        }
    }

    /// The process exited mid-invocation.
    pub(crate) fn exited(&self, status: &str) -> InvokeError {
        InvokeError::Handler {
            error_type: "Runtime.ExitError".into(),
            message: format!(
                "RequestId: {} Error: Runtime exited with error: {status}",
                self.request_id
            ),
        }
    }

    /// `END` and `REPORT`, the environment back to the pool (if it is fit), the report.
    pub(crate) fn done(self, mut env: Environment, error: Option<&InvokeError>) {
        let Finish {
            inner,
            sink,
            request_id,
            init,
            started,
            run_started,
        } = self;
        let duration = run_started.elapsed();
        let peak = env.peak();
        // The watchdog samples every 10 ms, so a process whose invocations are shorter can grow
        // past its limit unseen (a runtime client that leaks a little each time: glibc keeps
        // every `_X_AMZN_TRACE_ID` `setenv` ever gave it). Its answer stands; the process is
        // not used again.
        let limit = inner.settings.memory_bytes;
        if peak > limit && env.alive() {
            sink.line(
                Stream::Platform,
                &format!(
                    "the process has used {} MiB, past its memory limit of {} MiB: it is replaced",
                    peak.div_ceil(1 << 20),
                    limit >> 20
                ),
            );
            env.kill();
        }
        sink.line(Stream::Platform, &format!("END RequestId: {request_id}"));
        let billed = duration.as_millis().max(1);
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            ms(duration),
            inner.settings.memory_bytes >> 20,
            peak.div_ceil(1 << 20),
        );
        if let Some(init) = init {
            report.push_str(&format!("\tInit Duration: {:.2} ms", ms(init)));
        }
        match error {
            Some(InvokeError::Timeout(_)) => report.push_str("\tStatus: timeout"),
            Some(InvokeError::OutOfMemory { .. }) => {
                report.push_str("\tStatus: error\tError Type: Runtime.OutOfMemory");
            }
            _ => {}
        }
        sink.line(Stream::Platform, &report);
        env.detach();
        inner.give_back(env);
        sink.finished(Report {
            peak_memory: peak,
            started,
            instantiate: init,
            ended: Instant::now(),
            error: error.cloned(),
        });
    }
}
