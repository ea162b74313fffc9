//! Capturing a guest's stdout and stderr as lines for its invocation's log.
//!
//! Each invocation gets two [`Capture`] streams that cut the bytes the guest writes into lines and
//! hand each complete line to the invocation's [`InvocationSink`] as soon as it is written, so logs can
//! be followed live. Output past [`MAX_LOG_BYTES`] or [`MAX_LOG_LINES`] per invocation is dropped
//! (one notice says so; the line cap stops a flood of empty lines, which cost the log store far
//! more than their bytes); the guest is never failed or slowed for logging too much.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use updraft_dispatch::{InvocationSink, Stream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of stdout plus stderr kept per invocation.
pub const MAX_LOG_BYTES: usize = 1 << 20;
/// Lines of stdout plus stderr kept per invocation.
pub const MAX_LOG_LINES: usize = 10_000;
/// Longest line kept; longer lines are cut at this length.
const MAX_LINE: usize = 16 << 10;

/// State shared by an invocation's stdout and stderr.
pub(crate) struct LogState {
    sink: Arc<dyn InvocationSink>,
    inner: Mutex<Buffers>,
    /// Values shown as `***` (the function's secrets).
    redact: Arc<[String]>,
}

/// Values shorter than this are not masked: they would mask ordinary text.
pub(crate) const MIN_REDACTED_LEN: usize = 4;

#[derive(Default)]
struct Buffers {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    total: usize,
    lines: usize,
    truncated: bool,
}

impl LogState {
    pub(crate) fn new(sink: Arc<dyn InvocationSink>, redact: Arc<[String]>) -> Arc<Self> {
        Arc::new(Self {
            sink,
            inner: Mutex::new(Buffers::default()),
            redact,
        })
    }

    /// The log of an instance that is not serving an invocation: shared, lines dropped.
    pub(crate) fn discard() -> Arc<Self> {
        static DISCARD: std::sync::LazyLock<Arc<LogState>> =
            std::sync::LazyLock::new(|| LogState::new(Arc::new(Discard), Arc::new([])));
        DISCARD.clone()
    }

    pub(crate) fn sink(&self) -> &Arc<dyn InvocationSink> {
        &self.sink
    }

    fn write(&self, stream: Stream, mut bytes: &[u8]) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let b = &mut *guard;
        if b.total >= MAX_LOG_BYTES || b.lines >= MAX_LOG_LINES {
            self.truncate(&mut b.truncated);
            return;
        }
        let room = MAX_LOG_BYTES - b.total;
        if bytes.len() > room {
            bytes = &bytes[..room];
        }
        b.total += bytes.len();
        let Buffers {
            stdout,
            stderr,
            lines,
            truncated,
            ..
        } = b;
        let buf = match stream {
            Stream::Stderr => stderr,
            _ => stdout,
        };
        for chunk in bytes.split_inclusive(|c| *c == b'\n') {
            let complete = chunk.strip_suffix(b"\n");
            buf.extend_from_slice(complete.unwrap_or(chunk));
            if complete.is_some() || buf.len() >= MAX_LINE {
                if *lines >= MAX_LOG_LINES {
                    buf.clear();
                    self.truncate(truncated);
                    return;
                }
                *lines += 1;
                emit(&*self.sink, &self.redact, stream, buf);
                buf.clear();
            }
        }
    }

    /// Says once per invocation that output is being dropped.
    fn truncate(&self, truncated: &mut bool) {
        if !*truncated {
            *truncated = true;
            self.sink.line(
                Stream::Platform,
                &format!(
                    "log output past {MAX_LOG_BYTES} bytes or {MAX_LOG_LINES} lines for this \
                     invocation was dropped"
                ),
            );
        }
    }

    /// Emits any unterminated last lines. Called once the invocation is over.
    pub(crate) fn flush(&self) {
        let Ok(mut b) = self.inner.lock() else { return };
        for stream in [Stream::Stdout, Stream::Stderr] {
            let buf = match stream {
                Stream::Stderr => &mut b.stderr,
                _ => &mut b.stdout,
            };
            if !buf.is_empty() {
                emit(&*self.sink, &self.redact, stream, buf);
                buf.clear();
            }
        }
    }
}

fn emit(sink: &dyn InvocationSink, redact: &[String], stream: Stream, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut text = String::from_utf8_lossy(line);
    for secret in redact {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "***").into();
        }
    }
    sink.line(stream, &text);
}

/// Where an instance's output goes right now: the log of the invocation it is serving. A warm
/// instance serves one invocation after another, so the slot is re-pointed at each start.
pub(crate) struct LogSlot(Mutex<Arc<LogState>>);

impl LogSlot {
    pub(crate) fn new(state: Arc<LogState>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(state)))
    }

    /// The current invocation's log.
    pub(crate) fn get(&self) -> Arc<LogState> {
        crate::lock(&self.0).clone()
    }

    pub(crate) fn set(&self, state: Arc<LogState>) {
        *crate::lock(&self.0) = state;
    }
}

/// Discards lines: the log of an instance that is not serving an invocation (pre-instantiation).
struct Discard;

impl InvocationSink for Discard {
    fn line(&self, _: Stream, _: &str) {}
}

/// One of an instance's output streams, handed to `WasiCtxBuilder::stdout`/`stderr`.
#[derive(Clone)]
pub(crate) struct Capture {
    pub(crate) stream: Stream,
    pub(crate) slot: Arc<LogSlot>,
}

impl wasmtime_wasi::cli::IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.slot.get().write(self.stream, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.slot.get().write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests;
