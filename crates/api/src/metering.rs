//! Metering and observability on the wire: log lines, invocation records, triggers and error
//! classes, usage reports with prices and quotas.

use serde::{Deserialize, Serialize};

/// One log line (`GET /v1/functions/{name}/logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Position in the log; pass as `after` to get only newer lines.
    pub id: i64,
    /// The function.
    pub function: String,
    /// The version that wrote it (none for function-level platform events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The invocation.
    pub request_id: String,
    /// When (ms since the epoch).
    pub ts_ms: i64,
    /// `stdout`, `stderr` or `platform`.
    pub stream: String,
    /// The text.
    pub line: String,
}

impl LogLine {
    /// The line as one Server-Sent Event (`id:` and a JSON `data:`), for `logs?follow=true`.
    pub fn to_sse(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("id: {}\ndata: {json}\n\n", self.id)
    }
}

/// Response to the logs endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogList {
    /// Lines, oldest first.
    pub lines: Vec<LogLine>,
}

/// What started an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Trigger {
    /// A request to one of the function's routes on the data plane.
    Http,
    /// A direct invoke through the control API (`updraft invoke`).
    Invoke,
    /// An asynchronous invoke (`updraft invoke --async`), delivered from the event log.
    Async,
    /// A slot of one of the function's schedules.
    Schedule,
    /// A batch of messages from a queue the function consumes.
    Queue,
    /// A publication to a topic the function subscribes to.
    Topic,
    /// Changes to a collection the function watches (`[[functions.db]]`).
    Db,
    /// Changes to a key-value store the function watches (`[[functions.kv]]`).
    Kv,
    /// Objects created or removed in a bucket the function watches (`[[functions.bucket]]`).
    Bucket,
}

impl Trigger {
    /// `http`, `invoke`, `async`, `schedule`, `queue`, `topic`, `db`, `kv` or `bucket`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Invoke => "invoke",
            Trigger::Async => "async",
            Trigger::Schedule => "schedule",
            Trigger::Queue => "queue",
            Trigger::Topic => "topic",
            Trigger::Db => "db",
            Trigger::Kv => "kv",
            Trigger::Bucket => "bucket",
        }
    }

    /// The trigger named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(Trigger::Http),
            "invoke" => Some(Trigger::Invoke),
            "async" => Some(Trigger::Async),
            "schedule" => Some(Trigger::Schedule),
            "queue" => Some(Trigger::Queue),
            "topic" => Some(Trigger::Topic),
            "db" => Some(Trigger::Db),
            "kv" => Some(Trigger::Kv),
            "bucket" => Some(Trigger::Bucket),
            _ => None,
        }
    }
}

/// Why an invocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// It ran past its timeout.
    Timeout,
    /// It trapped (panic, `unreachable`, stack overflow).
    Trap,
    /// It tried to grow its memory past its limit.
    OutOfMemory,
    /// It returned without sending a response.
    NoResponse,
    /// It answered with a wasi:http error code instead of a response.
    GuestError,
    /// Its instance could not be created.
    Instantiate,
    /// Its code could not be loaded.
    LoadFailed,
    /// The request body was over its `max_request_body`.
    PayloadTooLarge,
    /// Its response body was over its `max_response_body`.
    ResponseTooLarge,
}

impl ErrorClass {
    /// Every class, in a fixed order.
    pub const ALL: [ErrorClass; 9] = [
        ErrorClass::Timeout,
        ErrorClass::Trap,
        ErrorClass::OutOfMemory,
        ErrorClass::NoResponse,
        ErrorClass::GuestError,
        ErrorClass::Instantiate,
        ErrorClass::LoadFailed,
        ErrorClass::PayloadTooLarge,
        ErrorClass::ResponseTooLarge,
    ];

    /// The snake-case name (`timeout`, `out_of_memory`...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Trap => "trap",
            ErrorClass::OutOfMemory => "out_of_memory",
            ErrorClass::NoResponse => "no_response",
            ErrorClass::GuestError => "guest_error",
            ErrorClass::Instantiate => "instantiate",
            ErrorClass::LoadFailed => "load_failed",
            ErrorClass::PayloadTooLarge => "payload_too_large",
            ErrorClass::ResponseTooLarge => "response_too_large",
        }
    }

    /// The class named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The metering record of one invocation (`GET /v1/functions/{name}/invocations`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// The request id (`x-updraft-request-id`).
    pub request_id: String,
    /// The project (tenant).
    pub project: String,
    /// The function.
    pub function: String,
    /// The version that ran.
    pub version: u32,
    /// What started it.
    pub trigger: Trigger,
    /// When it was admitted (ms since the epoch).
    pub started_ms: i64,
    /// From admission until the guest finished (response body included), in microseconds.
    pub duration_us: u64,
    /// `duration_us` rounded up to a whole millisecond.
    pub billed_ms: u64,
    /// The function's configured memory limit, in MiB.
    pub memory_mb: u64,
    /// The most linear memory the instance had, in bytes.
    pub peak_memory_bytes: u64,
    /// Configured memory (GiB) x billed duration (s).
    pub gb_seconds: f64,
    /// Whether the version's code had to be loaded for it (a cold start).
    pub cold: bool,
    /// The HTTP status the caller got.
    pub status: u16,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorClass>,
    /// The W3C trace id it ran under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl Invocation {
    /// Billed milliseconds for a run of `duration_us`: rounded up, at least 1.
    pub fn billed_ms(duration_us: u64) -> u64 {
        duration_us.div_ceil(1000).max(1)
    }

    /// GB-seconds for `memory_mb` held for `billed_ms`.
    pub fn gb_seconds(memory_mb: u64, billed_ms: u64) -> f64 {
        (memory_mb as f64 / 1024.0) * (billed_ms as f64 / 1000.0)
    }
}

/// Response to `GET /v1/functions/{name}/invocations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationList {
    /// Records, newest first.
    pub invocations: Vec<Invocation>,
}

/// Usage figures over some span of time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageFigures {
    /// Invocations.
    pub invocations: u64,
    /// Invocations that failed (see [`ErrorClass`]).
    pub errors: u64,
    /// Invocations that were cold starts.
    pub cold_starts: u64,
    /// Billed duration, in ms.
    pub billed_ms: u64,
    /// GB-seconds.
    pub gb_seconds: f64,
    /// Estimated cost at the server's price table, in `prices.currency`.
    pub estimated_cost: f64,
    /// Key-value keys and documents read (by the functions; in totals, through the HTTP
    /// APIs too).
    #[serde(default)]
    pub data_reads: u64,
    /// Key-value keys and documents written or deleted.
    #[serde(default)]
    pub data_writes: u64,
}

/// What a project stores (key-value data and documents), now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageUsage {
    /// Bytes of keys, values and documents stored.
    pub bytes: u64,
    /// The project's quota (`[key_value] max_project_bytes`).
    pub quota_bytes: u64,
}

/// One bucket of a usage report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageBucket {
    /// Start of the bucket (ms since the epoch, UTC hour or day).
    pub start_ms: i64,
    /// The figures.
    #[serde(flatten)]
    pub usage: UsageFigures,
}

/// One function's part of a usage report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionUsage {
    /// The function.
    pub function: String,
    /// The figures.
    #[serde(flatten)]
    pub usage: UsageFigures,
}

/// The price table cost estimates use (`[pricing]` in the server config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    /// Price per million invocations.
    pub per_million_requests: f64,
    /// Price per GB-second.
    pub per_gb_second: f64,
    /// Invocations free per report (applied once, to the totals).
    pub free_requests: u64,
    /// GB-seconds free per report (applied once, to the totals).
    pub free_gb_seconds: f64,
    /// Currency of the prices.
    pub currency: String,
    /// Where the prices come from.
    pub source: String,
}

/// A quota and how much of it is used (`GET /v1/usage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaStatus {
    /// `function` or `project`.
    pub scope: String,
    /// The function or project name.
    pub name: String,
    /// `invocations` or `gb_seconds`.
    pub metric: String,
    /// `day` or `month` (UTC calendar periods).
    pub period: String,
    /// The limit per period.
    pub limit: f64,
    /// Used so far this period.
    pub used: f64,
    /// When the period ends (ms since the epoch).
    pub resets_at_ms: i64,
    /// Whether requests are being refused (429 `quota_exceeded`).
    pub exceeded: bool,
}

/// Response to `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Start of the report (ms since the epoch).
    pub since_ms: i64,
    /// End of the report (ms since the epoch, now).
    pub until_ms: i64,
    /// Only this function, if asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Bucket size asked for (`hour` or `day`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Figures for the whole span; the cost applies the free tier once.
    pub totals: UsageFigures,
    /// Per function, busiest first.
    pub functions: Vec<FunctionUsage>,
    /// Per hour or day, oldest first (empty without `by`); costs without the free tier.
    pub buckets: Vec<UsageBucket>,
    /// The prices used.
    pub prices: Prices,
    /// Quotas that apply, with their use.
    pub quotas: Vec<QuotaStatus>,
    /// What the project stores now (absent without a database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageUsage>,
}
