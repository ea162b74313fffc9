//! Durable state behind traits, and its embedded backends: everything Updraft keeps in its data
//! directory.
//!
//! The traits ([`MetadataStore`], [`TelemetryStore`], [`ArtifactStore`]) are the boundary: no
//! backend type appears in their signatures or errors, and each has a `conformance` suite (feature `conformance`)
//! that every backend must pass (the embedded ones here run it; PostgreSQL and S3 backends will
//! run the same suites unchanged). [`Store`] is the SQLite backend of the first two,
//! [`FsArtifacts`] the file backend of the third.
//!
//! Layout of a data directory:
//! ```text
//! updraft.db            SQLite (WAL): projects, admin tokens, apps, functions, versions,
//!                       aliases; log lines, invocation records and usage sums in chunks
//! artifacts/<sha256>.wasm   uploaded components, content-addressed
//! data.db               SQLite (WAL): key-value stores, documents, buckets and object rows
//! objects/blobs/        object bytes, by blob id (see [`objects`])
//! compiled/             compiled-code cache (owned by updraft-engine, not by this crate)
//! admin-token           the first admin token, mode 0600, for the local CLI
//! ```
//!
//! Every row carries a project (tenant) id; the project `default` always exists.
//! Writes the caller is told about are durable before the call returns: metadata goes through
//! SQLite with `synchronous = FULL`, artifact files are written to a temporary file, fsynced and
//! renamed. Log lines and invocation records are the exception by design: they are queued and
//! written in batches by a background thread (the log writer), and a `kill -9` can lose the last
//! ~100 ms of them.
//!
//! This crate must not depend on Wasmtime or on HTTP: it stores bytes, manifests and rows.

mod artifacts;
mod audit;
mod auth;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod data;
mod db;
pub mod docs;
mod functions;
mod keys;
pub mod kv;
pub mod objects;
mod projects;
mod secrets;
pub mod sites;
mod sqlite;
mod telemetry;
mod traits;

pub use artifacts::FsArtifacts;
pub use audit::{AuditQuery, AuditRecord};
pub use auth::{MailRecord, OtpRecord, Refreshed, SessionRecord, SigningKeyRecord, UserRecord};
pub use docs::{
    ChangeOp, DocChange, DocOp, DocOutcome, DocQuery, DocRecord, DocStore, DocWrite, Filter,
    FilterOp, MAX_IN_VALUES, is_field_path,
};
pub use functions::{
    AliasRecord, Canary, DeployOptions, DeployOutcome, DeployedFunction, FunctionRecord, Pruned,
    VersionRecord,
};
pub use keys::ApiKeyRecord;
pub use kv::{
    Condition, DataStore, KvChange, KvEntry, KvOp, KvOutcome, KvStore, KvStoreInfo, KvUsage,
    KvWrite, Restored,
};
pub use projects::ProjectRecord;
pub use secrets::SecretRecord;
pub use telemetry::{
    DataUsage, FLUSH_INTERVAL, InvocationQuery, LogQuery, LogRecord, Retention, Usage, UsageQuery,
    UsageSummary,
};
pub use traits::{ArtifactStore, ArtifactWriter, AuthStore, MetadataStore, TelemetryStore};

use telemetry::LogWriter;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The project that always exists: where requests and calls go when they name no other.
pub use updraft_api::DEFAULT_PROJECT;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (its database, its connection).
    #[error("storage: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A file in the data directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Not a SHA-256 digest (64 lower-case hex characters).
    #[error("`{0}` is not a sha256 digest (64 lower-case hex characters)")]
    InvalidDigest(String),
    /// No artifact has this digest.
    #[error("artifact {digest} is not stored")]
    NoSuchArtifact {
        /// The digest.
        digest: String,
    },
    /// Uploaded bytes do not hash to the digest they were uploaded under.
    #[error("the uploaded bytes hash to sha256 {actual}, not {expected}")]
    DigestMismatch {
        /// The digest in the URL.
        expected: String,
        /// The digest of the bytes.
        actual: String,
    },
    /// A function of this name belongs to another app.
    #[error("function `{function}` already belongs to app `{app}`; delete it there first")]
    FunctionOwnedByOtherApp {
        /// The function.
        function: String,
        /// The app that owns it.
        app: String,
    },
    /// No project has this name.
    #[error("no project named `{project}`")]
    NoSuchProject {
        /// The project.
        project: String,
    },
    /// A project still has functions, so it cannot be deleted.
    #[error("project `{project}` still has {functions} function(s); delete them first")]
    ProjectNotEmpty {
        /// The project.
        project: String,
        /// How many functions it has.
        functions: u64,
    },
    /// No function has this name.
    #[error("no function named `{function}`")]
    NoSuchFunction {
        /// The function.
        function: String,
    },
    /// The function never had this version.
    #[error("function `{function}` has no version {version}")]
    NoSuchVersion {
        /// The function.
        function: String,
        /// The version asked for.
        version: u32,
    },
    /// The version existed but retention deleted it.
    #[error("version {version} of function `{function}` was deleted by retention")]
    VersionDeleted {
        /// The function.
        function: String,
        /// The version asked for.
        version: u32,
    },
    /// Input that is not what the operation takes (a restore's file that is no backup).
    #[error("{0}")]
    Invalid(String),
    /// No key-value store has this name in the project.
    #[error("no key-value store named `{store}`")]
    NoSuchKvStore {
        /// The store.
        store: String,
    },
    /// No document collection has this name in the project.
    #[error("no collection named `{collection}`")]
    NoSuchCollection {
        /// The collection.
        collection: String,
    },
    /// An increment of a key whose value is not a decimal integer.
    #[error("the value of `{key}` is not a decimal integer, so it cannot be incremented")]
    NotAnInteger {
        /// The key.
        key: String,
    },
    /// An increment past the range of a signed 64-bit integer.
    #[error("incrementing `{key}` overflows a signed 64-bit integer")]
    IntegerOverflow {
        /// The key.
        key: String,
    },
    /// A write would take the project past its storage quota.
    #[error("the project's key-value quota is {limit} bytes; this write would store {needed}")]
    QuotaExceeded {
        /// The quota in bytes.
        limit: u64,
        /// Bytes stored had the write been applied.
        needed: u64,
    },
    /// A stored row could not be decoded (written by an incompatible version?).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The SQLite backend of [`MetadataStore`] and [`TelemetryStore`]: `updraft.db` in the data
/// directory. Cheap to clone; all clones share one SQLite connection for metadata (metadata
/// traffic is low; a `Mutex` keeps writes serialised, as SQLite needs anyway) and one
/// background writer of log lines and invocation records.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    // std Mutex: every critical section is a short synchronous SQLite call, never held across
    // an await. Callers on async runtimes run these methods in `spawn_blocking`.
    conn: Mutex<rusqlite::Connection>,
    logs: LogWriter,
    /// How long lines and records are kept (queries hide what is past it even before the
    /// writer has deleted its chunk).
    retention: Retention,
}

impl Store {
    /// Opens (creating if needed) the data directory and its database, running migrations.
    ///
    /// # Errors
    /// [`StoreError`] if the directory or database cannot be created or opened.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::open_with(dir, Retention::default())
    }

    /// [`Store::open`] keeping log lines and invocation records as `retention` says.
    ///
    /// # Errors
    /// [`StoreError`] if the directory or database cannot be created or opened.
    pub fn open_with(dir: impl Into<PathBuf>, retention: Retention) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let db_path = dir.join("updraft.db");
        let conn = db::open(&db_path)?;
        let logs = LogWriter::start(db::open(&db_path)?, retention)?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                conn: Mutex::new(conn),
                logs,
                retention,
            }),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The background writer of log lines and invocation records.
    pub(crate) fn logs(&self) -> &LogWriter {
        &self.inner.logs
    }

    pub(crate) fn retention(&self) -> &Retention {
        &self.inner.retention
    }

    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A poisoned lock only means another thread panicked mid-call; SQLite's own transaction
        // rollback keeps the database consistent, so keep going.
        let mut conn = self
            .inner
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut conn)
    }
}

/// Locks `m`, ignoring poisoning: what is guarded here (lists waiting for a writer) stays
/// consistent even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
