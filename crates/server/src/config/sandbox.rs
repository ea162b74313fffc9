//! `[sandbox]`: what one instance may hold on the host's side. Every limit fails only the
//! invocation that passes it, with a clear error and a platform log line.

use updraft_manifest::parse_size;

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
}

impl Default for Sandbox {
    fn default() -> Self {
        Self {
            max_resources: 10_000,
            max_field_bytes: 128 << 10,
            max_outbound_requests: 32,
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
        Ok(Self {
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
