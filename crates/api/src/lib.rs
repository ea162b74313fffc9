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
    /// The named function does not exist.
    FunctionNotFound,
    /// No artifact with this digest is stored.
    ArtifactNotFound,
    /// No route matches the request path.
    RouteNotFound,
    /// A route matches the path but not the method.
    MethodNotAllowed,
    /// The request body is larger than allowed.
    PayloadTooLarge,
    /// The function is at its concurrency limit and its wait queue is full or timed out.
    Throttled,
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
            Code::FunctionNotFound | Code::ArtifactNotFound | Code::RouteNotFound => {
                StatusCode::NOT_FOUND
            }
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::Conflict => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Throttled => StatusCode::TOO_MANY_REQUESTS,
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
    /// The invocation.
    pub request_id: String,
    /// When (ms since the epoch).
    pub ts_ms: i64,
    /// `stdout`, `stderr` or `platform`.
    pub stream: String,
    /// The text.
    pub line: String,
}

/// Response to the logs endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogList {
    /// Lines, oldest first.
    pub lines: Vec<LogLine>,
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
}

#[cfg(test)]
mod tests;
