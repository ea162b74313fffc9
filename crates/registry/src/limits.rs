//! Function defaults and maxima: what a function gets when its manifest leaves a setting out,
//! and the most a manifest may ask for (the server config's `[defaults]` and `[maxima]`).

use std::time::Duration;

use updraft_manifest::{Function, InstanceReuse, format_duration, format_size};

/// Defaults and maxima for function settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Default `timeout`.
    pub timeout: Duration,
    /// Default `memory`.
    pub memory: u64,
    /// Default `max_concurrency`.
    pub max_concurrency: u32,
    /// Default `idle_timeout`.
    pub idle_timeout: Duration,
    /// Default `max_request_body`.
    pub max_request_body: u64,
    /// Default `max_response_body`.
    pub max_response_body: u64,
    /// Default `max_reuse`.
    pub max_reuse: u32,
    /// Largest `timeout` a manifest may ask for.
    pub max_timeout: Duration,
    /// Largest `memory`.
    pub max_memory: u64,
    /// Largest `max_concurrency`.
    pub max_max_concurrency: u32,
    /// Largest `min_instances`.
    pub max_min_instances: u32,
    /// Largest `max_request_body`.
    pub max_max_request_body: u64,
    /// Largest `max_response_body`.
    pub max_max_response_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        use updraft_manifest as m;
        Self {
            timeout: m::DEFAULT_TIMEOUT,
            memory: m::DEFAULT_MEMORY,
            max_concurrency: m::DEFAULT_MAX_CONCURRENCY,
            idle_timeout: m::DEFAULT_IDLE_TIMEOUT,
            max_request_body: m::DEFAULT_MAX_REQUEST_BODY,
            max_response_body: m::DEFAULT_MAX_RESPONSE_BODY,
            max_reuse: m::DEFAULT_MAX_REUSE,
            max_timeout: m::MAX_TIMEOUT,
            max_memory: 1 << 30,
            max_max_concurrency: 1_000,
            max_min_instances: 10,
            max_max_request_body: 1 << 30,
            max_max_response_body: m::MAX_BODY,
        }
    }
}

/// A function's settings with the server's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// Time limit per invocation.
    pub timeout: Duration,
    /// Memory limit per instance, in bytes.
    pub memory: u64,
    /// Invocations running at once.
    pub max_concurrency: u32,
    /// How long it may go unused before its code is dropped.
    pub idle_timeout: Duration,
    /// Largest request body, in bytes.
    pub max_request_body: u64,
    /// Largest response body, in bytes.
    pub max_response_body: u64,
    /// Invocations per warm instance (`None`: a fresh instance per invocation;
    /// [`UNCAPPED_REUSE`]: kept until it idles out).
    pub max_reuse: Option<u32>,
}

/// `max_reuse` of an instance replaced only when it fails or idles out: a process function's
/// default (the manifest caps `max_reuse` far below it, so it is never asked for).
pub const UNCAPPED_REUSE: u32 = u32::MAX;

impl Limits {
    /// `spec`'s settings, defaults filled in.
    pub fn resolve(&self, spec: &Function) -> Effective {
        Effective {
            timeout: spec.timeout_ms.map_or(self.timeout, Duration::from_millis),
            memory: spec.memory_bytes.unwrap_or(self.memory),
            max_concurrency: spec.max_concurrency.unwrap_or(self.max_concurrency),
            idle_timeout: spec
                .idle_timeout_ms
                .map_or(self.idle_timeout, Duration::from_millis),
            max_request_body: spec.max_request_body.unwrap_or(self.max_request_body),
            max_response_body: spec.max_response_body.unwrap_or(self.max_response_body),
            max_reuse: match spec.instance_reuse {
                InstanceReuse::Fresh => None,
                // A process is kept until it is idle too long, as on Lambda: replacing it is a
                // cold start (tens of milliseconds for Python), not the microseconds a fresh
                // wasm instance costs, so the server's default does not apply to it.
                InstanceReuse::Warm if spec.runtime.is_process() => {
                    Some(spec.max_reuse.unwrap_or(UNCAPPED_REUSE))
                }
                InstanceReuse::Warm => Some(spec.max_reuse.unwrap_or(self.max_reuse)),
            },
        }
    }

    /// Every setting of `spec` (the function at `index` in the manifest) above this server's
    /// maxima, as `functions[i].key: ...` messages.
    pub fn check(&self, index: usize, spec: &Function) -> Vec<String> {
        let mut problems = Vec::new();
        let mut over = |key: &str, asked: String, max: String| {
            problems.push(format!(
                "functions[{index}].{key}: {asked} is more than this server allows (at most {max})"
            ));
        };
        let e = self.resolve(spec);
        if e.timeout > self.max_timeout {
            over(
                "timeout",
                format_duration(e.timeout),
                format_duration(self.max_timeout),
            );
        }
        if e.memory > self.max_memory {
            over(
                "memory",
                format_size(e.memory),
                format_size(self.max_memory),
            );
        }
        if e.max_concurrency > self.max_max_concurrency {
            over(
                "max_concurrency",
                e.max_concurrency.to_string(),
                self.max_max_concurrency.to_string(),
            );
        }
        if spec.min_instances > self.max_min_instances {
            over(
                "min_instances",
                spec.min_instances.to_string(),
                self.max_min_instances.to_string(),
            );
        }
        if e.max_request_body > self.max_max_request_body {
            over(
                "max_request_body",
                format_size(e.max_request_body),
                format_size(self.max_max_request_body),
            );
        }
        if e.max_response_body > self.max_max_response_body {
            over(
                "max_response_body",
                format_size(e.max_response_body),
                format_size(self.max_max_response_body),
            );
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn function(lines: &str) -> Function {
        let text = format!("[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\n{lines}\n");
        let mut m = updraft_manifest::Manifest::parse("updraft.toml", &text).unwrap();
        m.functions.remove(0)
    }

    #[test]
    fn a_process_is_recycled_only_when_its_manifest_says_so() {
        let limits = Limits::default();
        let wasm = function("component = \"f.wasm\"\ninstance_reuse = \"warm\"");
        assert_eq!(limits.resolve(&wasm).max_reuse, Some(limits.max_reuse));
        let python = function("runtime = \"python\"\nhandler = \"app.handler\"");
        assert_eq!(limits.resolve(&python).max_reuse, Some(UNCAPPED_REUSE));
        let capped = function("runtime = \"python\"\nhandler = \"app.handler\"\nmax_reuse = 50");
        assert_eq!(limits.resolve(&capped).max_reuse, Some(50));
    }
}
