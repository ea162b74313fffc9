//! The control-plane API's request and response bodies, and the error-code table.
//!
//! The server (`updraft-server`) produces these and the CLI (`updraft-cli`) consumes them, so
//! both sides agree on one definition. Every error any Updraft HTTP endpoint returns, on the
//! control plane or the data plane, has the same JSON shape:
//!
//! ```json
//! {"error": {"code": "invalid_component", "message": "not a WebAssembly binary: ..."}}
//! ```
//!
//! where `code` is a stable machine-readable [`Code`] and `message` is written for people.
//! This crate depends only on serde and http; it must not grow runtime dependencies.

mod events;

pub use events::*;

use std::collections::BTreeMap;

use http::StatusCode;
use serde::{Deserialize, Serialize};

/// Stable error codes, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Code {
    /// The request is malformed (bad JSON, bad query parameter, bad path).
    BadRequest,
    /// The manifest failed validation; the message names file, line and key.
    InvalidManifest,
    /// Uploaded bytes are not a usable `wasi:http` component.
    InvalidComponent,
    /// Uploaded bytes do not match the digest they were uploaded under.
    DigestMismatch,
    /// A deploy references an artifact that was never uploaded.
    UnknownArtifact,
    /// A route collides with a route of another app, or a function name is taken.
    Conflict,
    /// Missing or wrong admin token.
    Unauthorized,
    /// The caller may not do this (e.g. pin a version without the admin token).
    Forbidden,
    /// The named function does not exist.
    FunctionNotFound,
    /// No artifact with this digest is stored.
    ArtifactNotFound,
    /// The function has no such version (never deployed, or deleted by retention).
    VersionNotFound,
    /// The function has no such alias.
    AliasNotFound,
    /// No invocation record has this request id (never metered, or past retention).
    InvocationNotFound,
    /// No queue has this name.
    QueueNotFound,
    /// No topic has this name.
    TopicNotFound,
    /// No message in the queue has this receipt (it was deleted, or its lease ran out and it was
    /// received again).
    MessageNotFound,
    /// No route matches the request path.
    RouteNotFound,
    /// A route matches the path but not the method.
    MethodNotAllowed,
    /// The request body is larger than allowed.
    PayloadTooLarge,
    /// The function is at its concurrency limit and its wait queue is full or timed out.
    Throttled,
    /// A usage quota of the function or its project is used up for the current period.
    QuotaExceeded,
    /// The function trapped or returned no response.
    FunctionFailed,
    /// The function did not respond before its deadline.
    FunctionTimeout,
    /// The function's response body is larger than its `max_response_body`.
    ResponseTooLarge,
    /// Something went wrong inside Updraft.
    Internal,
}

impl Code {
    /// The HTTP status this code is sent with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BadRequest
            | Code::InvalidManifest
            | Code::InvalidComponent
            | Code::DigestMismatch
            | Code::UnknownArtifact => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::FunctionNotFound
            | Code::ArtifactNotFound
            | Code::RouteNotFound
            | Code::VersionNotFound
            | Code::AliasNotFound
            | Code::InvocationNotFound
            | Code::QueueNotFound
            | Code::TopicNotFound
            | Code::MessageNotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::Conflict => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Throttled | Code::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            Code::FunctionFailed => StatusCode::INTERNAL_SERVER_ERROR,
            Code::FunctionTimeout => StatusCode::GATEWAY_TIMEOUT,
            Code::ResponseTooLarge => StatusCode::BAD_GATEWAY,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: Code,
    /// Human-readable explanation.
    pub message: String,
    /// The request id, when the error concerns one invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorBody {
    /// An error body with no request id.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
                request_id: None,
            },
        }
    }

    /// Serialises to JSON (infallible for this type).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"error":{"code":"internal","message":"error serialising error"}}"#.to_owned()
        })
    }
}

/// Response to `PUT /v1/artifacts/{digest}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactUploaded {
    /// The sha256 digest (hex).
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether this upload compiled it (false: it was already compiled).
    pub compiled: bool,
    /// Milliseconds spent compiling or loading it.
    pub compile_ms: u64,
}

/// Body of `POST /v1/apps`: deploy (or redeploy) one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// The `updraft.toml` text, validated again by the server.
    pub manifest: String,
    /// The manifest's file name, for error messages (default `updraft.toml`).
    #[serde(default)]
    pub manifest_file: Option<String>,
    /// For each function name, the digest of its uploaded component.
    pub artifacts: BTreeMap<String, String>,
    /// Publish changed functions as a canary of `live` instead of switching it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryPolicy>,
    /// Who is deploying (e.g. `alice@laptop`), recorded on each new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployer: Option<String>,
}

/// How a canary takes traffic and whether it is guarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryPolicy {
    /// Percent of requests the canary gets (0 to 100).
    pub weight: u8,
    /// Set the canary's weight to 0 when it does worse than the stable version.
    #[serde(default)]
    pub auto_rollback: bool,
    /// Promote a healthy canary to 100% after this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_after_ms: Option<u64>,
}

/// Response to a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployResponse {
    /// The app's name.
    pub app: String,
    /// The app's functions as now deployed.
    pub functions: Vec<FunctionInfo>,
    /// Functions of the app that the deploy removed.
    pub removed: Vec<String>,
    /// Functions that got a new version, with its number.
    #[serde(default)]
    pub published: BTreeMap<String, u32>,
    /// Versions deleted by retention, as `function` → numbers.
    #[serde(default)]
    pub pruned: BTreeMap<String, Vec<u32>>,
}

/// One version of a function (`GET /v1/functions/{name}/versions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Its number.
    pub version: u32,
    /// Digest of its component.
    pub digest: String,
    /// When it was published (ms since the epoch).
    pub created_at: i64,
    /// Who deployed it.
    pub deployer: String,
    /// Aliases pointing at it, as `live` or `live (canary 10%)`.
    pub aliases: Vec<String>,
    /// When retention deleted it (its code is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    /// What happened to it last (e.g. a canary rolled back, and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One version in full (`GET /v1/functions/{name}/versions/{n}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionDetail {
    /// What the list shows.
    #[serde(flatten)]
    pub info: VersionInfo,
    /// The app manifest it was deployed from.
    pub manifest: String,
    /// Its validated `[[functions]]` entry, as stored.
    pub spec: serde_json::Value,
}

/// A function's versions and aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionList {
    /// The function.
    pub function: String,
    /// Every version, newest first (deleted ones included, marked).
    pub versions: Vec<VersionInfo>,
    /// Its aliases, by name.
    pub aliases: Vec<AliasInfo>,
}

/// An alias: a named pointer to a version, with an optional canary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasInfo {
    /// Its name.
    pub name: String,
    /// The (stable) version.
    pub version: u32,
    /// A canary taking part of the traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryInfo>,
    /// Last change (ms since the epoch).
    pub updated_at: i64,
}

/// A canary as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryInfo {
    /// The canary version.
    pub version: u32,
    /// Percent of requests it gets.
    pub weight: u8,
    /// Whether it is rolled back automatically when it does worse than the stable version.
    pub auto_rollback: bool,
    /// Promote it to 100% after this long healthy (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_after_ms: Option<u64>,
    /// When it started taking traffic (ms since the epoch).
    pub started_at: i64,
}

/// Body of `PUT /v1/functions/{name}/aliases/{alias}`: either `version` (with an optional
/// `canary`) or `weights`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAlias {
    /// The (stable) version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// A second version and the percentage of traffic it gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryTarget>,
    /// Version → percentage, one or two versions summing to 100 (the newer one is the canary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<BTreeMap<u32, u8>>,
    /// Roll the canary back on its own when it does worse than the stable version.
    #[serde(default)]
    pub auto_rollback: bool,
    /// Promote a healthy canary to 100% after this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_after_ms: Option<u64>,
}

/// A canary version and its share of traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryTarget {
    /// The canary version.
    pub version: u32,
    /// Percent of requests it gets (0 to 100).
    pub weight: u8,
}

/// Body of `POST /v1/functions/{name}/rollback` (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The alias to move (default `live`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The version to go back to (default: drop the canary if there is one, else the newest
    /// version older than the alias's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
}

/// Response to a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackResponse {
    /// The alias as it is now.
    pub alias: AliasInfo,
    /// The version it served before (its stable version).
    pub from: u32,
    /// What was done, in words.
    pub message: String,
}

/// A deployed function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    /// Its name.
    pub name: String,
    /// The app it belongs to.
    pub app: String,
    /// Digest of its component.
    pub digest: String,
    /// The version `live` points at (the settings below are that version's).
    #[serde(default)]
    pub version: u32,
    /// The newest version.
    #[serde(default)]
    pub latest_version: u32,
    /// Its aliases.
    #[serde(default)]
    pub aliases: Vec<AliasInfo>,
    /// Its HTTP routes.
    pub routes: Vec<RouteInfo>,
    /// Time limit per invocation (ms).
    pub timeout_ms: u64,
    /// Memory limit (bytes).
    pub memory_bytes: u64,
    /// Maximum concurrent invocations.
    pub max_concurrency: u32,
    /// Instances kept loaded and pre-instantiated.
    #[serde(default)]
    pub min_instances: u32,
    /// Idle time after which its code is dropped from memory (ms).
    #[serde(default)]
    pub idle_timeout_ms: u64,
    /// `fresh` or `warm`.
    #[serde(default)]
    pub instance_reuse: String,
    /// Requests per warm instance (with `instance_reuse = "warm"`).
    #[serde(default)]
    pub max_reuse: Option<u32>,
    /// Largest request body accepted (bytes).
    #[serde(default)]
    pub max_request_body: u64,
    /// Largest response body sent (bytes).
    #[serde(default)]
    pub max_response_body: u64,
    /// Its state in this server (present on the server's answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeInfo>,
    /// Hosts it may call.
    pub allowed_outbound_hosts: Vec<String>,
    /// Names of its environment variables (values are not returned).
    pub env: Vec<String>,
    /// When it last changed (ms since the epoch).
    pub updated_at: i64,
}

/// A function's state in the running server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Whether its code is in memory (`false`: scaled to zero; the next request is a cold start).
    pub loaded: bool,
    /// Instances instantiated and waiting for a request.
    pub ready_instances: usize,
    /// Requests that had to load its code first, since the server started.
    pub cold_starts: u64,
    /// Times its code was dropped for being idle, since the server started.
    pub evictions: u64,
    /// Whether instance reuse was turned off because the guest failed on reused instances.
    pub reuse_disabled: bool,
}

/// One HTTP route of a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// The pattern, e.g. `/hello/:name`.
    pub route: String,
    /// Accepted methods; empty means all.
    pub methods: Vec<String>,
}

/// Response to `GET /v1/functions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionList {
    /// Every function, by name.
    pub functions: Vec<FunctionInfo>,
}

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
}

impl Trigger {
    /// `http`, `invoke`, `async`, `schedule`, `queue` or `topic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Invoke => "invoke",
            Trigger::Async => "async",
            Trigger::Schedule => "schedule",
            Trigger::Queue => "queue",
            Trigger::Topic => "topic",
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
    const ALL: [ErrorClass; 9] = [
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
}

/// Response to `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Server version.
    pub version: String,
    /// Deployed functions.
    pub functions: usize,
    /// Components compiled since start.
    pub compilations: u64,
    /// Components loaded from the compiled-code cache since start.
    pub cache_loads: u64,
    /// Base URL of the data plane.
    pub data_plane_url: String,
}

/// Response headers Updraft sets.
pub mod headers {
    /// The invocation's request id, on every data-plane response.
    pub const REQUEST_ID: &str = "x-updraft-request-id";
    /// The function that served the request.
    pub const FUNCTION: &str = "x-updraft-function";
    /// The version that served the request (response); the version to run (request, with the
    /// admin token or `allow_version_pinning`).
    pub const VERSION: &str = "x-updraft-version";
    /// The alias to run (request, with the admin token or `allow_version_pinning`).
    pub const ALIAS: &str = "x-updraft-alias";
    /// Which delivery attempt of an event this is (1 for the first), on event requests.
    pub const ATTEMPT: &str = "x-updraft-attempt";
    /// The idempotency key of an asynchronous invoke (request).
    pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
}

#[cfg(test)]
mod tests;
