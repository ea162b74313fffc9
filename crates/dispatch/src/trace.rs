//! W3C Trace Context: the `traceparent` a request arrives with (or a new trace), the span ids
//! the gateway gives the request, and the spans it reports when the invocation is over.
//!
//! Every request is in a trace: the incoming `traceparent` is continued when it is valid, a new
//! trace is started otherwise. The gateway's `gateway` span is a child of the caller's span; the
//! guest sees a `traceparent` naming the `execute` span as its parent, and its outbound HTTP
//! requests carry the same header. When the composition root asks for spans
//! ([`crate::Telemetry::wants_spans`]), each invocation reports `gateway` (request in, response
//! done), `dispatch` (routing, quota and concurrency admission), `instantiate` (loading code on
//! a cold start and creating the instance, when either happened) and `execute` (the guest's
//! run).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The W3C trace-context request header.
pub const TRACEPARENT: &str = "traceparent";

/// The trace a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id (never zero).
    pub trace_id: u128,
    /// The caller's span, if the request arrived with a `traceparent`.
    pub parent: Option<u64>,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceContext {
    /// Parses a `traceparent` header value (version `00`, or a later version's first four
    /// fields). `None` if it is malformed or has an all-zero id.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(version, 2)
            || version == "ff"
            || !hex(trace, 32)
            || !hex(span, 16)
            || !hex(flags, 2)
        {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        if trace_id == 0 || span_id == 0 {
            return None;
        }
        Some(Self {
            trace_id,
            parent: Some(span_id),
            flags: u8::from_str_radix(flags, 16).ok()?,
        })
    }

    /// A new trace (sampled), for a request that arrived without one.
    pub fn root() -> Self {
        Self {
            trace_id: rand::random::<u128>().max(1),
            parent: None,
            flags: 1,
        }
    }

    /// The `traceparent` value naming `span` as the parent.
    pub fn header(&self, span: u64) -> String {
        // Built by hand: this runs for every request, and `format!` costs several times more.
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        push_hex(&mut out, self.trace_id, 32);
        out.push('-');
        push_hex(&mut out, u128::from(span), 16);
        out.push('-');
        push_hex(&mut out, u128::from(self.flags), 2);
        out
    }

    /// The trace id as 32 hex characters.
    pub fn trace_hex(&self) -> String {
        let mut out = String::with_capacity(32);
        push_hex(&mut out, self.trace_id, 32);
        out
    }
}

/// Appends the low `digits` hex digits of `v` (lower case, zero-padded).
pub(crate) fn push_hex(out: &mut String, v: u128, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out.push(char::from(HEX[((v >> (i * 4)) & 0xf) as usize]));
    }
}

/// A new span id (never zero).
pub(crate) fn span_id() -> u64 {
    rand::random::<u64>().max(1)
}

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Its trace.
    pub trace_id: u128,
    /// Its id.
    pub span_id: u64,
    /// Its parent's id.
    pub parent: Option<u64>,
    /// `gateway`, `dispatch`, `instantiate` or `execute`.
    pub name: &'static str,
    /// Start, in ns since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End, in ns since the Unix epoch.
    pub end_unix_nanos: u64,
    /// Attributes (`updraft.function`, `http.response.status_code`...).
    pub attributes: Vec<(&'static str, String)>,
    /// Whether it ended in an error.
    pub error: bool,
}

/// Maps monotonic instants to wall-clock nanoseconds, from one reading of both clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    instant: Instant,
    unix_nanos: u64,
}

impl Clock {
    pub(crate) fn now() -> Self {
        Self {
            instant: Instant::now(),
            unix_nanos: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        }
    }

    /// The instant this clock was read at.
    pub(crate) fn instant(&self) -> Instant {
        self.instant
    }

    /// Wall-clock ms since the epoch at the reading.
    pub(crate) fn unix_ms(&self) -> i64 {
        i64::try_from(self.unix_nanos / 1_000_000).unwrap_or(i64::MAX)
    }

    /// Wall-clock ns since the epoch at `t`.
    pub(crate) fn nanos(&self, t: Instant) -> u64 {
        let offset = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        match t.checked_duration_since(self.instant) {
            Some(after) => self.unix_nanos.saturating_add(offset(after)),
            None => self
                .unix_nanos
                .saturating_sub(offset(self.instant.duration_since(t))),
        }
    }
}

#[cfg(test)]
mod tests;
