//! The buckets a function is granted (`buckets = ["uploads:read", "thumbs:write"]`) or
//! watches (`[[functions.bucket]]`), made at deploy when missing by the service that owns them.
//!
//! A granted function gets, in its environment, S3 credentials scoped to its grants
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL_S3`: AWS SDKs
//! pick them up unchanged) and a bearer credential for plain HTTP reads and writes of objects
//! (`UPDRAFT_STORAGE_URL`, `UPDRAFT_STORAGE_TOKEN`), and may call both endpoints.

use updraft_dispatch::BoxFuture;

/// Why the buckets of a deploy could not be made ready.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BucketsError {
    /// A bucket cannot be the project's: another project has it, its name is invalid, the
    /// project has the most buckets allowed. The message names the bucket.
    #[error("{0}")]
    Refused(String),
    /// The store failed.
    #[error("{0}")]
    Failed(String),
}

/// Where buckets go (the object service, wired by the server).
pub trait BucketSink: Send + Sync + 'static {
    /// Makes those of `buckets` that do not exist yet, as `project`'s.
    ///
    /// # Errors
    /// [`BucketsError::Refused`] for a bucket another project has (or that cannot be made).
    fn ensure<'a>(
        &'a self,
        project: &'a str,
        buckets: &'a [String],
    ) -> BoxFuture<'a, Result<(), BucketsError>>;

    /// Makes or updates the buckets an app declares (`[[buckets]]`): public reads and CORS
    /// origins as declared.
    ///
    /// # Errors
    /// [`BucketsError::Refused`] for a bucket another project has.
    fn declare<'a>(
        &'a self,
        project: &'a str,
        buckets: &'a [updraft_manifest::BucketDecl],
    ) -> BoxFuture<'a, Result<(), BucketsError>>;

    /// The environment function `function` of `project` gets for its `grants` (as written in
    /// the manifest): credentials that reach those buckets, as granted, and nothing else.
    fn env(&self, project: &str, function: &str, grants: &[String]) -> Vec<(String, String)>;
}

/// The S3 endpoint as granted functions reach it (path style, or virtual-host style under it).
pub const S3_ENDPOINT: &str = "http://s3.updraft.internal";

/// The plain HTTP object API as granted functions reach it.
pub const STORAGE_URL: &str = "http://updraft.internal/_updraft/storage/v1";

/// The variables of a function's platform environment whose values are credentials: shown as
/// `***` in its logs.
pub(crate) const SECRET_VARS: [&str; 3] = [
    "UPDRAFT_DB_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "UPDRAFT_STORAGE_TOKEN",
];

/// The environment a function granted `grants` gets from `sink` (none without a grant).
pub(crate) fn grant_env(
    sink: Option<&dyn BucketSink>,
    project: &str,
    function: &str,
    grants: &[String],
) -> Vec<(String, String)> {
    match sink {
        Some(sink) if !grants.is_empty() => sink.env(project, function, grants),
        _ => Vec::new(),
    }
}
