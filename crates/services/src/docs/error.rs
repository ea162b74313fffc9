//! Why a document call failed.

use updraft_store::StoreError;

/// Why a call failed; each maps to one HTTP status and code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// Bad input; the message says what.
    #[error("{0}")]
    Invalid(String),
    /// A rule (or the key's role) does not allow it.
    #[error("{0}")]
    Denied(String),
    /// No such collection.
    #[error("no collection named `{0}` (declare it in [[collections]] and deploy)")]
    NoCollection(String),
    /// No such document.
    #[error("no document `{0}`")]
    NoDocument(String),
    /// `If-Match` or `If-None-Match` does not hold.
    #[error("{0}")]
    Precondition(String),
    /// The document is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// The project's storage quota.
    #[error("{0}")]
    Quota(String),
    /// Too many of something at once (change streams).
    #[error("{0}")]
    TooMany(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<StoreError> for DocError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchCollection { collection } => Self::NoCollection(collection),
            StoreError::QuotaExceeded { .. } => Self::Quota(e.to_string()),
            StoreError::Corrupt(m) => Self::Invalid(m),
            e => Self::Storage(e.to_string()),
        }
    }
}
