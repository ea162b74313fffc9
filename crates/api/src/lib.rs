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
mod keys;
mod metering;
mod projects;

pub use events::*;
pub use keys::*;
pub use metering::*;
pub use projects::*;

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
    /// Missing, wrong, expired or revoked key.
    Unauthorized,
    /// The caller's key may not do this (its role is too weak, or it may not pin a version).
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
    /// No API key has this id (in the caller's project).
    KeyNotFound,
    /// No project has this name.
    ProjectNotFound,
    /// No secret has this name (in the caller's project).
    SecretNotFound,
    /// No end user has this id or email (in the caller's project).
    UserNotFound,
    /// No key-value store has this name (in the caller's project).
    StoreNotFound,
    /// The key-value store has no such key (or it expired).
    ItemNotFound,
    /// A condition of the request (`If-Match`, `If-None-Match`) does not hold.
    PreconditionFailed,
    /// The project's stored data would pass its storage quota.
    StorageQuotaExceeded,
    /// No document collection has this name (in the project).
    CollectionNotFound,
    /// The collection has no document with this id.
    DocumentNotFound,
    /// No bucket has this name (in the project).
    BucketNotFound,
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
    /// The function's handler reported an error (a Lambda handler's `errorType` and
    /// `errorMessage`): the platform is fine, the function's answer is not.
    FunctionError,
    /// The function's response body is larger than its `max_response_body`.
    ResponseTooLarge,
    /// The queue holds as many messages as it may; consumers must catch up first.
    QueueFull,
    /// The listener is at its connection cap; retry shortly.
    TooManyConnections,
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
            | Code::MessageNotFound
            | Code::KeyNotFound
            | Code::ProjectNotFound
            | Code::SecretNotFound
            | Code::UserNotFound
            | Code::StoreNotFound
            | Code::ItemNotFound
            | Code::CollectionNotFound
            | Code::DocumentNotFound
            | Code::BucketNotFound => StatusCode::NOT_FOUND,
            Code::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Code::StorageQuotaExceeded => StatusCode::INSUFFICIENT_STORAGE,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::Conflict => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Throttled | Code::QuotaExceeded | Code::QueueFull => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Code::FunctionFailed => StatusCode::INTERNAL_SERVER_ERROR,
            Code::FunctionTimeout => StatusCode::GATEWAY_TIMEOUT,
            Code::FunctionError => StatusCode::BAD_GATEWAY,
            Code::ResponseTooLarge => StatusCode::BAD_GATEWAY,
            Code::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
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
    /// The files of the app's `[site]` by path (`/index.html`), each uploaded before
    /// (`PUT /v1/site/files/{digest}`). Required when the manifest has `[site]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<BTreeMap<String, SiteFile>>,
}

/// One file of a static site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFile {
    /// The SHA-256 of its bytes, lower-case hex.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
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
    /// The site version now live, if the app has a `[site]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_version: Option<u32>,
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
    /// Requests per warm instance (with `instance_reuse = "warm"`); absent when there is no
    /// such cap (a fresh instance per request, or a process function without `max_reuse`).
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
    /// Names of the project secrets it receives (values are never returned).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// When it last changed (ms since the epoch).
    pub updated_at: i64,
    /// What runs it: `wasm`, or a process runtime (`python`, `nodejs`, `provided`).
    #[serde(default = "wasm")]
    pub kind: String,
    /// A process function's handler (`app.handler`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// For a process function: what its sandbox enforces on this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxInfo>,
}

fn wasm() -> String {
    "wasm".to_owned()
}

/// What the sandbox of process functions enforces on this host (see docs/lambda.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxInfo {
    /// Whether processes run through the sandbox helper at all.
    pub helper: bool,
    /// The filesystem is confined (Landlock): code read-only, no data directory.
    pub filesystem: bool,
    /// No signals to processes outside the sandbox.
    pub signals: bool,
    /// A private `/tmp` with a size cap (a mount namespace).
    pub private_tmp: bool,
    /// No capabilities.
    pub no_capabilities: bool,
    /// A seccomp filter denies system calls a handler has no use for (new namespaces, `bpf`,
    /// `io_uring`, `ptrace`, the key ring...).
    #[serde(default)]
    pub syscalls: bool,
    /// Each process is in a memory cgroup capped at its `memory` plus its `/tmp` size.
    #[serde(default)]
    pub memory_cgroup: bool,
    /// One line: what is enforced and what is not.
    pub summary: String,
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
    /// On a successful answer to a batch of events: the ids of the events that failed
    /// (comma-separated); only those are retried (Lambda's `batchItemFailures`).
    pub const FAILED_EVENTS: &str = "x-updraft-failed-events";
    /// The idempotency key of an asynchronous invoke (request).
    pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
}

#[cfg(test)]
mod tests;
