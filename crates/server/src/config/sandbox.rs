//! `[sandbox]`: what one instance may hold on the host's side, and how long runs share the CPU.
//! Every limit fails only the invocation that passes it, with a clear error and a platform log
//! line.

use std::time::Duration;

use updraft_manifest::{parse_duration, parse_size};

use super::raw::RawSandbox;

/// Host-side limits per instance (see docs/runtime.md, "Host resources").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sandbox {
    /// Host resources (streams, fields, requests, pollables...) held at once.
    pub max_resources: usize,
    /// Largest `wasi:http` fields (headers, trailers) a guest may build, in bytes.
    pub max_field_bytes: usize,
    /// Outbound HTTP requests in flight at once per invocation.
    pub max_outbound_requests: usize,
    /// Wasm time after which a run is long-running.
    pub long_run_after: Duration,
    /// Threads long runs share, at the lowest OS priority.
    pub long_run_threads: usize,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self {
            max_resources: 10_000,
            max_field_bytes: 128 << 10,
            max_outbound_requests: 32,
            long_run_after: Duration::from_millis(20),
            long_run_threads: updraft_engine::default_long_run_threads(),
        }
    }
}

impl Sandbox {
    /// Checks the `[sandbox]` table; errors name the key.
    pub(super) fn parse(raw: &RawSandbox) -> Result<Self, String> {
        let d = Self::default();
        let at_least_one = |key: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(format!("sandbox.{key}: must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let max_field_bytes = match &raw.max_field_bytes {
            None => d.max_field_bytes,
            Some(s) => {
                let n = parse_size(s).map_err(|e| format!("sandbox.max_field_bytes: {e}"))?;
                match usize::try_from(n) {
                    Ok(n) if n >= 1024 => n,
                    _ => return Err("sandbox.max_field_bytes: must be at least 1KiB".to_owned()),
                }
            }
        };
        let long_run_after = match &raw.long_run_after {
            None => d.long_run_after,
            Some(s) => match parse_duration(s) {
                Ok(t) if t >= updraft_engine::EPOCH_TICK => t,
                Ok(_) => return Err("sandbox.long_run_after: must be at least 1ms".to_owned()),
                Err(e) => return Err(format!("sandbox.long_run_after: {e}")),
            },
        };
        Ok(Self {
            long_run_after,
            long_run_threads: at_least_one(
                "long_run_threads",
                raw.long_run_threads,
                d.long_run_threads,
            )?,
            max_resources: at_least_one("max_resources", raw.max_resources, d.max_resources)?,
            max_field_bytes,
            max_outbound_requests: at_least_one(
                "max_outbound_requests",
                raw.max_outbound_requests,
                d.max_outbound_requests,
            )?,
        })
    }
}
