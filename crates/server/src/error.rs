//! Errors: [`ServerError`] for start-up, and [`ApiError`], the control API's JSON errors.

use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use updraft_api::{Code, ErrorBody};

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The data directory's state could not be opened.
    #[error(transparent)]
    Store(#[from] updraft_store::StoreError),
    /// The WebAssembly engine could not be set up.
    #[error(transparent)]
    Engine(#[from] updraft_engine::EngineError),
    /// I/O on something other than the data directory.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The data directory can't be used: another server holds it, others can write to it, or
    /// it can't be created.
    #[error("data directory {}: {why}", path.display())]
    DataDir {
        /// The data directory.
        path: std::path::PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The event log could not be opened.
    #[error(transparent)]
    Events(#[from] updraft_events::EventError),
    /// A background task failed.
    #[error("internal error: {0}")]
    Internal(String),
    /// A setting or a file it names can't be used.
    #[error("{0}")]
    Config(String),
}

impl ServerError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { what, source }
    }
}

/// An error answered by the control API as `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An internal error: logged in full, answered without internals.
    pub(crate) fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        Self::new(Code::Internal, format!("{context}; see the server log"))
    }
}

impl From<updraft_store::StoreError> for ApiError {
    fn from(e: updraft_store::StoreError) -> Self {
        match e {
            updraft_store::StoreError::DigestMismatch { .. } => {
                Self::new(Code::DigestMismatch, e.to_string())
            }
            updraft_store::StoreError::FunctionOwnedByOtherApp { .. } => {
                Self::new(Code::Conflict, e.to_string())
            }
            updraft_store::StoreError::InvalidDigest(_) => {
                Self::new(Code::BadRequest, e.to_string())
            }
            updraft_store::StoreError::NoSuchArtifact { .. } => {
                Self::new(Code::ArtifactNotFound, e.to_string())
            }
            e => Self::internal("storage error", e),
        }
    }
}

impl From<updraft_events::EventError> for ApiError {
    fn from(e: updraft_events::EventError) -> Self {
        use updraft_events::EventError as E;
        let code = match &e {
            E::QueueNotFound(_) => Code::QueueNotFound,
            E::TopicNotFound(_) => Code::TopicNotFound,
            E::AsyncNotFound(_) => Code::InvocationNotFound,
            E::TooLarge { .. } => Code::PayloadTooLarge,
            E::QueueFull { .. } => Code::QueueFull,
            E::Conflict(_) => Code::Conflict,
            _ => return Self::internal("event log error", e),
        };
        Self::new(code, e.to_string())
    }
}

impl From<updraft_registry::Error> for ApiError {
    fn from(e: updraft_registry::Error) -> Self {
        Self::new(e.code, e.message)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal("background task failed", e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code, self.message).to_json();
        let mut resp = (self.code.status(), body).into_response();
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}
