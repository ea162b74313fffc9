//! The server configuration file (`updraft serve --config updraft-server.toml`): platform
//! defaults and maxima for function limits, the global concurrency cap, HTTP header caps and the
//! instance pool. Every key is optional; unknown keys are errors. A long file: its first half
//! is this annotated example of every section, the one place an operator reads them all.
//!
//! ```toml
//! [defaults]            # what a function gets when its manifest leaves a setting out
//! timeout = "30s"
//! memory = "128MiB"
//! max_concurrency = 100
//! idle_timeout = "10m"
//! max_request_body = "16MiB"
//! max_response_body = "64MiB"
//! max_reuse = 1000
//!
//! [maxima]              # the most a manifest may ask for (a deploy asking for more gets a 400)
//! timeout = "15m"
//! memory = "1GiB"
//! max_concurrency = 1000
//! min_instances = 10
//! max_request_body = "1GiB"
//! max_response_body = "4GiB"
//!
//! [concurrency]
//! global_max = 192      # invocations running at once across all functions (default: memory
//!                       # / default function memory, at most pool.max_instances)
//! queue_timeout = "1s"  # longest wait for a slot before 429
//!
//! [http]                # both listeners (data plane and control API)
//! max_headers = 100
//! max_header_bytes = "64KiB"
//! header_read_timeout = "10s"   # to send a request head; also the idle keep-alive timeout
//! max_connections = 10000       # data plane; more get 503 too_many_connections
//! control_max_connections = 1000
//! h2_keep_alive_interval = "20s"
//! h2_keep_alive_timeout = "20s"
//! h2_max_concurrent_streams = 100
//!
//! [sandbox]             # per instance, on the host's side
//! max_resources = 10000         # handles held at once (streams, fields, requests...)
//! max_field_bytes = "128KiB"    # largest wasi:http headers or trailers a guest builds
//! max_outbound_requests = 32    # outbound requests in flight per invocation
//! long_run_after = "20ms"       # wasm time after which a run is long-running: it moves to
//! long_run_threads = 2          # these threads, at the lowest OS priority (default: one per
//!                               # core)
//!
//! [events]
//! max_queue_depth = 1000000     # messages one queue holds; more sends: 429 queue_full
//! async_result_max_age = "7d"   # finished asynchronous invokes' records and results
//!
//! [projects]
//! base_domain = "localhost"     # the data plane serves project P at P.<base_domain>
//!
//! [auth]                        # end-user auth (see auth.md)
//! access_token_ttl = "1h"       # access tokens (JWTs) are valid this long
//! refresh_reuse_grace = "10s"   # a used refresh token works again this long (tabs)
//! signup = true                 # anyone may sign up with email and password
//! anonymous = true              # anonymous sign-ins
//! min_password_length = 8
//! per_ip_per_minute = 60        # sign-up, sign-in and refresh attempts per client address
//! per_account_per_hour = 30     # sign-in attempts per account
//! confirm_email = false         # new accounts confirm their email before signing in
//! trusted_proxies = ["10.0.0.0/8"]   # proxies whose X-Forwarded-For names the client
//! otp_ttl = "1h"                # emailed links and codes work this long
//! redirect_urls = ["https://app.example.com/"]   # where emailed links may send the browser
//!
//! [audit]
//! max_age = "365d"              # audit log entries are kept this long
//!
//! [key_value]                   # key-value stores (see database.md)
//! max_key_bytes = "1KiB"        # longest key
//! max_value_bytes = "1MiB"      # largest value
//! max_project_bytes = "1GiB"    # keys plus values one project may store
//! max_batch = 1000              # keys in one batch call
//! page_size = 1000              # keys in one page of a listing
//!
//! [documents]                   # document collections (see database.md)
//! max_document_bytes = "1MiB"   # largest document's JSON
//! page_size = 100               # documents per page when a query names no limit
//! max_page = 1000               # most documents per page
//! changes_max_age = "7d"        # how far back a change stream can resume
//! max_streams = 10000           # change streams one project may have open
//!
//! [objects]                     # buckets and the S3 API (every key: see storage.md)
//!
//! [sites]                       # static sites (max_file_bytes, max_files: see sites.md)
//!
//! [process]                     # Lambda functions: python, node, init_timeout, max_payload,
//!                               # max_bundle_bytes, max_bundle_files, clients_dir, sandbox,
//!                               # tmp_size (lambda.md)
//!
//! [secrets]
//! key_file = "/etc/updraft/secrets.key"   # 64 hex digits; default: <data dir>/secrets.key
//!
//! [versions]
//! keep = 10             # versions kept per function (older ones no alias points at are deleted)
//! unused_artifact_grace = "1d"  # uploads no version uses are deleted after this
//!
//! [canary]              # guarded canaries (`--auto-rollback`): when a canary counts as worse
//! window = "1m"         # sliding window both versions are compared over
//! min_requests = 20     # canary requests in the window before it is judged
//! max_error_rate_increase = 5.0   # percentage points above the stable version's error rate
//! max_latency_ratio = 2.0         # canary p99 over stable p99...
//! latency_margin = "50ms"         # ...and at least this much slower
//! check_interval = "1s"
//!
//! [metering]            # invocation records, metrics and quotas
//! enabled = true
//! retention = "90d"     # invocation records kept this long
//!
//! [logs]
//! enabled = true        # store the guests' stdout/stderr and platform events
//! max_age = "7d"
//! max_size = "1GiB"     # oldest lines deleted past this
//!
//! [pricing]             # cost estimates; defaults: AWS Lambda's x86 list prices (us-east-1)
//! per_million_requests = 0.20
//! per_gb_second = 0.0000166667
//! free_requests = 0     # free tier, applied once per report
//! free_gb_seconds = 0
//! currency = "USD"
//!
//! [quotas.default]      # per project: invocations or GB-seconds per UTC day or month
//! invocations_per_month = 1000000
//! gb_seconds_per_month = 400000
//!
//! [tracing]             # OTLP/HTTP (JSON) span export; needs the `otlp` cargo feature
//! otlp_endpoint = "http://127.0.0.1:4318/v1/traces"
//! service_name = "updraft"
//!
//! [pool]                # Wasmtime's pooling instance allocator
//! enabled = true        # default: on when the machine's address space allows it
//! max_instances = 1000  # instances alive at once (running, warm or pre-instantiated)
//! memory_keep_resident = "64KiB"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use updraft_api::Prices;
use updraft_gateway::ListenConfig;
use updraft_manifest::{Quotas, format_duration, format_size, parse_duration, parse_size};
use updraft_store::Retention;

use raw::RawConfig;

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// What is wrong, with the key.
    pub message: String,
}

pub use cidr::Cidr;
pub use sandbox::Sandbox;
pub use sections::{Pool, TracingConfig, default_prices};
/// Function defaults and maxima (`[defaults]`, `[maxima]`), guarded canaries (`[canary]`).
pub use updraft_registry::{CanaryConfig, DEFAULT_KEEP_VERSIONS, Limits};
/// How events are delivered (`[events]`): trigger delivery's settings.
pub use updraft_triggers::DeliveryConfig as EventsConfig;

/// What a configuration file sets: see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct FileConfig {
    /// Function defaults and maxima.
    pub limits: Limits,
    /// Global cap on running invocations.
    pub global_max_concurrency: Option<u32>,
    /// Longest wait for a concurrency slot.
    pub queue_timeout: Duration,
    /// The data plane's connection settings.
    pub http: ListenConfig,
    /// The control API's connection settings (the data plane's, with its own cap).
    pub control_http: ListenConfig,
    /// The instance pool.
    pub pool: Pool,
    /// Host-side limits per instance.
    pub sandbox: Sandbox,
    /// Versions kept per function.
    pub keep_versions: usize,
    /// How long an uploaded artifact no version uses is kept (a re-upload renews it).
    pub unused_artifact_grace: Duration,
    /// Guarded canary thresholds.
    pub canary: CanaryConfig,
    /// Whether invocations are metered (records, metrics, quotas).
    pub metering: bool,
    /// Whether log lines are stored.
    pub logs: bool,
    /// Log lines a function may write per second (platform lines included); more are dropped.
    pub max_lines_per_second: u32,
    /// How long log lines and invocation records are kept.
    pub retention: Retention,
    /// The price table of cost estimates.
    pub prices: Prices,
    /// Quotas per project.
    pub project_quotas: BTreeMap<String, Quotas>,
    /// Span export.
    pub tracing: TracingConfig,
    /// Event delivery.
    pub events: EventsConfig,
    /// Most messages one queue holds before client sends get `429 queue_full`.
    pub max_queue_depth: u64,
    /// How long the record of a finished asynchronous invoke (and its result) is kept.
    pub async_result_max_age: Duration,
    /// The data plane serves project `p` at `p.<base_domain>`.
    pub base_domain: String,
    /// The file holding the key secrets are sealed with; `None`: `<data dir>/secrets.key`.
    pub secrets_key_file: Option<std::path::PathBuf>,
    /// How long audit log entries are kept.
    pub audit_max_age: Duration,
    /// End-user auth (`[auth]`).
    pub auth: updraft_services::auth::AuthConfig,
    /// Key-value limits (`[key_value]`).
    pub key_value: updraft_services::kv::KvConfig,
    /// Document limits (`[documents]`).
    pub documents: updraft_services::docs::DocConfig,
    /// Object storage (`[objects]`).
    pub objects: updraft_services::objects::ObjectsConfig,
    /// Static sites (`[sites]`).
    pub sites: updraft_services::sites::SitesConfig,
    /// Process (Lambda) functions (`[process]`).
    pub process: updraft_process::ProcessConfig,
    /// Proxies whose `X-Forwarded-For` names the client (`[auth] trusted_proxies`), for the
    /// auth API's rate limits.
    pub trusted_proxies: Vec<Cidr>,
}

/// Connections the control API accepts at once by default: enough for operators and CI, and
/// apart from the data plane's, so a flood there leaves the control API reachable.
const DEFAULT_CONTROL_CONNECTIONS: usize = 1_000;

/// The control API's listener settings: the data plane's, with its own connection cap.
fn control_listen(mut http: ListenConfig, max_connections: usize) -> ListenConfig {
    http.max_connections = max_connections;
    http
}

impl Default for FileConfig {
    fn default() -> Self {
        // The data plane's own defaults, so that they are written down once.
        let dispatch = updraft_dispatch::DispatchConfig::default();
        let (limits, pool) = (Limits::default(), Pool::default());
        let memory = machine::memory_bytes();
        let global_max = machine::default_global_max(memory, limits.memory, pool.max_instances);
        Self {
            global_max_concurrency: dispatch.global_max_concurrency.or(Some(global_max)),
            limits,
            queue_timeout: updraft_dispatch::DEFAULT_QUEUE_TIMEOUT,
            http: ListenConfig::default(),
            control_http: control_listen(ListenConfig::default(), DEFAULT_CONTROL_CONNECTIONS),
            pool,
            sandbox: Sandbox::default(),
            keep_versions: DEFAULT_KEEP_VERSIONS,
            unused_artifact_grace: Duration::from_secs(86_400),
            canary: CanaryConfig::default(),
            metering: dispatch.metering,
            logs: true,
            max_lines_per_second: crate::telemetry::DEFAULT_MAX_LINES_PER_SECOND,
            retention: Retention::default(),
            prices: default_prices(),
            project_quotas: BTreeMap::new(),
            tracing: TracingConfig::default(),
            events: EventsConfig::default(),
            max_queue_depth: updraft_events::DEFAULT_MAX_QUEUE_DEPTH,
            async_result_max_age: Duration::from_secs(7 * 86_400),
            base_domain: updraft_gateway::DEFAULT_BASE_DOMAIN.to_owned(),
            secrets_key_file: None,
            audit_max_age: Duration::from_secs(365 * 86_400),
            auth: updraft_services::auth::AuthConfig::default(),
            key_value: updraft_services::kv::KvConfig::default(),
            documents: updraft_services::docs::DocConfig::default(),
            objects: updraft_services::objects::ObjectsConfig::default(),
            sites: updraft_services::sites::SitesConfig::default(),
            process: updraft_process::ProcessConfig::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl FileConfig {
    /// Parses a configuration file's text; `file` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key and what is wrong.
    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            file: file.to_owned(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let duration = |key: &str, v: &Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(s) => match parse_duration(s) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err(err(format!("{key}: must be more than 0"))),
                Err(e) => Err(err(format!("{key}: {e}"))),
            },
        };
        let size = |key: &str, v: &Option<String>, default: u64| match v {
            None => Ok(default),
            Some(s) => parse_size(s).map_err(|e| err(format!("{key}: {e}"))),
        };
        let d = Limits::default();
        let limits = Limits {
            timeout: duration("defaults.timeout", &raw.defaults.timeout, d.timeout)?,
            memory: size("defaults.memory", &raw.defaults.memory, d.memory)?,
            max_concurrency: raw.defaults.max_concurrency.unwrap_or(d.max_concurrency),
            idle_timeout: duration(
                "defaults.idle_timeout",
                &raw.defaults.idle_timeout,
                d.idle_timeout,
            )?,
            max_request_body: size(
                "defaults.max_request_body",
                &raw.defaults.max_request_body,
                d.max_request_body,
            )?,
            max_response_body: size(
                "defaults.max_response_body",
                &raw.defaults.max_response_body,
                d.max_response_body,
            )?,
            max_reuse: raw.defaults.max_reuse.unwrap_or(d.max_reuse),
            max_timeout: duration("maxima.timeout", &raw.maxima.timeout, d.max_timeout)?,
            max_memory: size("maxima.memory", &raw.maxima.memory, d.max_memory)?,
            max_max_concurrency: raw.maxima.max_concurrency.unwrap_or(d.max_max_concurrency),
            max_min_instances: raw.maxima.min_instances.unwrap_or(d.max_min_instances),
            max_max_request_body: size(
                "maxima.max_request_body",
                &raw.maxima.max_request_body,
                d.max_max_request_body,
            )?,
            max_max_response_body: size(
                "maxima.max_response_body",
                &raw.maxima.max_response_body,
                d.max_max_response_body,
            )?,
        };
        // A default above its maximum would make every manifest that leaves it out invalid.
        if limits.timeout > limits.max_timeout {
            return Err(err(format!(
                "defaults.timeout: {} is above maxima.timeout ({})",
                format_duration(limits.timeout),
                format_duration(limits.max_timeout)
            )));
        }
        if limits.memory > limits.max_memory {
            return Err(err(format!(
                "defaults.memory: {} is above maxima.memory ({})",
                format_size(limits.memory),
                format_size(limits.max_memory)
            )));
        }
        if limits.max_concurrency == 0 || limits.max_concurrency > limits.max_max_concurrency {
            return Err(err(format!(
                "defaults.max_concurrency: must be between 1 and maxima.max_concurrency ({})",
                limits.max_max_concurrency
            )));
        }
        if limits.max_reuse == 0 {
            return Err(err("defaults.max_reuse: must be at least 1".to_owned()));
        }
        let defaults = Self::default();
        let pool = Pool {
            enabled: raw.pool.enabled,
            max_instances: raw
                .pool
                .max_instances
                .unwrap_or(defaults.pool.max_instances),
            memory_keep_resident: size(
                "pool.memory_keep_resident",
                &raw.pool.memory_keep_resident,
                defaults.pool.memory_keep_resident,
            )?,
        };
        if pool.max_instances == 0 {
            return Err(err("pool.max_instances: must be at least 1".to_owned()));
        }
        if raw.versions.keep == Some(0) {
            return Err(err("versions.keep: must be at least 1".to_owned()));
        }
        let c = CanaryConfig::default();
        let canary = CanaryConfig {
            window: duration("canary.window", &raw.canary.window, c.window)?,
            min_requests: raw.canary.min_requests.unwrap_or(c.min_requests).max(1),
            max_error_rate_increase: match raw.canary.max_error_rate_increase {
                Some(p) if !(0.0..=100.0).contains(&p) => {
                    return Err(err(
                        "canary.max_error_rate_increase: must be between 0 and 100 (percentage points)"
                            .to_owned(),
                    ));
                }
                p => p.unwrap_or(c.max_error_rate_increase),
            },
            max_latency_ratio: match raw.canary.max_latency_ratio {
                Some(r) if r.is_nan() || r < 1.0 => {
                    return Err(err(
                        "canary.max_latency_ratio: must be at least 1.0".to_owned()
                    ));
                }
                r => r.unwrap_or(c.max_latency_ratio),
            },
            latency_margin: match &raw.canary.latency_margin {
                None => c.latency_margin,
                Some(s) => {
                    parse_duration(s).map_err(|e| err(format!("canary.latency_margin: {e}")))?
                }
            },
            check_interval: duration(
                "canary.check_interval",
                &raw.canary.check_interval,
                c.check_interval,
            )?,
        };
        let r = defaults.retention;
        let retention = Retention {
            log_max_age: duration("logs.max_age", &raw.logs.max_age, r.log_max_age)?,
            log_max_bytes: size("logs.max_size", &raw.logs.max_size, r.log_max_bytes)?,
            invocation_max_age: duration(
                "metering.retention",
                &raw.metering.retention,
                r.invocation_max_age,
            )?,
            invocation_max_bytes: size(
                "metering.max_size",
                &raw.metering.max_size,
                r.invocation_max_bytes,
            )?,
        };
        if retention.invocation_max_age < Duration::from_secs(32 * 86_400) {
            return Err(err(
                "metering.retention: must be at least 32d (monthly usage and quotas need a month \
                 of records)"
                    .to_owned(),
            ));
        }
        let p = defaults.prices;
        let price = |key: &str, v: Option<f64>, default: f64| match v {
            Some(x) if !x.is_finite() || x < 0.0 => Err(err(format!(
                "pricing.{key}: must be a number of at least 0"
            ))),
            x => Ok(x.unwrap_or(default)),
        };
        let custom = raw.pricing.per_million_requests.is_some()
            || raw.pricing.per_gb_second.is_some()
            || raw.pricing.free_requests.is_some()
            || raw.pricing.free_gb_seconds.is_some()
            || raw.pricing.currency.is_some();
        let prices = Prices {
            per_million_requests: price(
                "per_million_requests",
                raw.pricing.per_million_requests,
                p.per_million_requests,
            )?,
            per_gb_second: price("per_gb_second", raw.pricing.per_gb_second, p.per_gb_second)?,
            free_requests: raw.pricing.free_requests.unwrap_or(p.free_requests),
            free_gb_seconds: price(
                "free_gb_seconds",
                raw.pricing.free_gb_seconds,
                p.free_gb_seconds,
            )?,
            currency: raw.pricing.currency.unwrap_or(p.currency),
            source: if custom {
                format!("{file} [pricing]")
            } else {
                p.source
            },
        };
        for (project, q) in &raw.quotas {
            if q.limits().iter().any(|(_, _, v)| *v == 0) {
                return Err(err(format!(
                    "quotas.{project}: limits must be at least 1 (leave a limit out to have none)"
                )));
            }
        }
        if let Some(e) = &raw.tracing.otlp_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(err(format!(
                "tracing.otlp_endpoint: `{e}` is not an http:// or https:// URL"
            )));
        }
        let tracing = TracingConfig {
            otlp_endpoint: raw.tracing.otlp_endpoint,
            service_name: raw
                .tracing
                .service_name
                .unwrap_or(defaults.tracing.service_name),
        };
        let events = EventsConfig {
            retry_base: duration(
                "events.retry_base",
                &raw.events.retry_base,
                defaults.events.retry_base,
            )?,
            retry_max: duration(
                "events.retry_max",
                &raw.events.retry_max,
                defaults.events.retry_max,
            )?,
            max_inflight: match raw.events.max_inflight {
                Some(0) => return Err(err("events.max_inflight: must be at least 1".to_owned())),
                Some(n) => n,
                None => defaults.events.max_inflight,
            },
        };
        let max_queue_depth = match raw.events.max_queue_depth {
            Some(0) => return Err(err("events.max_queue_depth: must be at least 1".to_owned())),
            Some(n) => n,
            None => defaults.max_queue_depth,
        };
        let global_max = match raw.concurrency.global_max {
            Some(0) => return Err(err("concurrency.global_max: must be at least 1".to_owned())),
            Some(n) => n,
            None => machine::default_global_max(
                machine::memory_bytes(),
                limits.memory,
                pool.max_instances,
            ),
        };
        let positive = |key: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(err(format!("{key}: must be at least 1"))),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let http = http::parse(&raw.http, &defaults.http).map_err(err)?;
        Ok(Self {
            limits,
            global_max_concurrency: Some(global_max),
            queue_timeout: duration(
                "concurrency.queue_timeout",
                &raw.concurrency.queue_timeout,
                defaults.queue_timeout,
            )?,
            control_http: control_listen(
                http.clone(),
                positive(
                    "http.control_max_connections",
                    raw.http.control_max_connections,
                    defaults.control_http.max_connections,
                )?,
            ),
            http,
            pool,
            sandbox: Sandbox::parse(&raw.sandbox).map_err(err)?,
            keep_versions: raw.versions.keep.unwrap_or(DEFAULT_KEEP_VERSIONS),
            unused_artifact_grace: duration(
                "versions.unused_artifact_grace",
                &raw.versions.unused_artifact_grace,
                defaults.unused_artifact_grace,
            )?,
            canary,
            metering: raw.metering.enabled.unwrap_or(defaults.metering),
            logs: raw.logs.enabled.unwrap_or(defaults.logs),
            max_lines_per_second: match raw.logs.max_lines_per_second {
                Some(0) => {
                    return Err(err(
                        "logs.max_lines_per_second: must be at least 1".to_owned()
                    ));
                }
                Some(n) => n,
                None => defaults.max_lines_per_second,
            },
            retention,
            prices,
            project_quotas: raw.quotas,
            tracing,
            events,
            max_queue_depth,
            async_result_max_age: duration(
                "events.async_result_max_age",
                &raw.events.async_result_max_age,
                defaults.async_result_max_age,
            )?,
            secrets_key_file: raw.secrets.key_file.map(std::path::PathBuf::from),
            audit_max_age: duration("audit.max_age", &raw.audit.max_age, defaults.audit_max_age)?,
            auth: sections::auth(&raw.auth, &defaults.auth).map_err(err)?,
            key_value: keyvalue::parse(&raw.key_value).map_err(err)?,
            documents: keyvalue::documents(&raw.documents).map_err(err)?,
            objects: objects::parse(&raw.objects).map_err(err)?,
            sites: objects::parse_sites(&raw.sites).map_err(err)?,
            process: process::parse(&raw.process).map_err(err)?,
            trusted_proxies: sections::trusted_proxies(&raw.auth).map_err(err)?,
            base_domain: match raw.projects.base_domain {
                None => defaults.base_domain,
                Some(d) => sections::base_domain(&d).ok_or_else(|| {
                    err(format!(
                        "projects.base_domain: `{d}` is not a domain name (dot-separated \
                         labels of letters, digits and '-', no port)"
                    ))
                })?,
            },
        })
    }
}

mod cidr;
mod http;
mod keyvalue;
mod machine;
mod objects;
mod process;
mod raw;
mod sandbox;
mod sections;
#[cfg(test)]
mod tests;
