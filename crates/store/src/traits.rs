//! The storage traits: what the rest of Updraft may ask of durable state, with no backend type
//! in any signature or error. The embedded backends implement them today ([`crate::Store`]:
//! SQLite metadata and telemetry; [`crate::FsArtifacts`]: files); a cluster (PostgreSQL, S3)
//! implements the same traits and passes the same [`crate::conformance`] suites.

use std::sync::Arc;

use tokio::sync::broadcast;
use updraft_api::Invocation;

use crate::{
    AliasRecord, ApiKeyRecord, AuditQuery, AuditRecord, DeployOptions, DeployOutcome,
    DeployedFunction, FunctionRecord, InvocationQuery, LogQuery, LogRecord, MailRecord, OtpRecord,
    ProjectRecord, Pruned, Refreshed, SecretRecord, SessionRecord, SigningKeyRecord, StoreError,
    UsageQuery, UsageSummary, UserRecord,
};

/// Deployed state: admin tokens, apps, functions, their immutable versions and their aliases.
/// Every write is one transaction, durable when it returns.
#[async_trait::async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// The SHA-256 digests of every admin token.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn admin_tokens(&self) -> Result<Vec<String>, StoreError>;

    /// Records the SHA-256 of a new admin token (a known one is ignored).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn add_admin_token(&self, token_sha256: &str) -> Result<(), StoreError>;

    /// Stores a new API key (its id and hash must be new).
    ///
    /// # Errors
    /// [`StoreError::Backend`], also when the id or hash is taken.
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;

    /// The API keys of `project` (of every project with `None`), oldest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn api_keys(&self, project: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Deletes an API key; returns what it was, `None` if there was none.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn delete_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Stores a new project; `Ok(false)` if one of that name exists (nothing changes).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn create_project(&self, project: &ProjectRecord) -> Result<bool, StoreError>;

    /// Every project, by name.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError>;

    /// Replaces a project's custom domains; `Ok(false)` if there is no such project.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn set_project_domains(&self, id: &str, domains: &[String]) -> Result<bool, StoreError>;

    /// Replaces the origins browsers may call a project from; `Ok(false)` if there is no such
    /// project.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn set_project_cors(&self, id: &str, origins: &[String]) -> Result<bool, StoreError>;

    /// Deletes a project with its apps and API keys, in one transaction; `Ok(false)` if there
    /// is no such project.
    ///
    /// # Errors
    /// [`StoreError::ProjectNotEmpty`] while it has functions (nothing changes);
    /// [`StoreError::Backend`].
    async fn delete_project(&self, id: &str) -> Result<bool, StoreError>;

    /// Records that `project` uploaded the artifact `digest` (again: nothing changes). Artifacts
    /// are stored once for every project; a project may use and see only those it uploaded.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn grant_artifact(&self, project: &str, digest: &str) -> Result<(), StoreError>;

    /// Whether `project` uploaded the artifact `digest` (or deployed it before projects kept
    /// track).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn has_artifact(&self, project: &str, digest: &str) -> Result<bool, StoreError>;

    /// Forgets every project's grant of `digest` (its bytes are being deleted).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn forget_artifact(&self, digest: &str) -> Result<(), StoreError>;

    /// Sets secret `name` of `project` to `sealed` (an opaque, already encrypted value);
    /// `Ok(true)` if it is new.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn put_secret(
        &self,
        project: &str,
        name: &str,
        sealed: &[u8],
    ) -> Result<bool, StoreError>;

    /// The secrets of `project`, by name.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn secrets(&self, project: &str) -> Result<Vec<SecretRecord>, StoreError>;

    /// Deletes secret `name` of `project`; `Ok(false)` if there was none.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn delete_secret(&self, project: &str, name: &str) -> Result<bool, StoreError>;

    /// Appends an entry to the audit log (its `id` is ignored); returns its id.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn append_audit(&self, entry: &AuditRecord) -> Result<i64, StoreError>;

    /// Audit log entries matching `q`, newest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;

    /// Deletes audit log entries older than `before_ms`; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn expire_audit(&self, before_ms: i64) -> Result<usize, StoreError>;

    /// The digests of every artifact a stored version uses.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn referenced_artifacts(&self) -> Result<Vec<String>, StoreError>;

    /// Deploys app `app` of `project` with exactly `functions`, in one transaction: functions of
    /// the app that are not in the list are deleted; each function whose digest or spec differs
    /// from its newest version gets a new version, and `live` moves to it (or, with
    /// `options.canary`, takes it as a canary). Aliases named by routes that do not exist yet
    /// are created at the new version. Then retention runs on the app's functions. The
    /// outcome's `orphaned` artifacts are no longer referenced by any version; the caller
    /// deletes their bytes.
    ///
    /// # Errors
    /// [`StoreError::FunctionOwnedByOtherApp`] when a name is taken by another app.
    async fn deploy_app(
        &self,
        project: &str,
        app: &str,
        manifest: &str,
        functions: &[DeployedFunction],
        options: &DeployOptions,
    ) -> Result<DeployOutcome, StoreError>;

    /// Every function of `project`, by name.
    ///
    /// # Errors
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    async fn functions(&self, project: &str) -> Result<Vec<FunctionRecord>, StoreError>;

    /// Every function of every project (for loading at start-up).
    ///
    /// # Errors
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    async fn all_functions(&self) -> Result<Vec<FunctionRecord>, StoreError>;

    /// One function.
    ///
    /// # Errors
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    async fn function(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError>;

    /// The app manifest version `version` of `function` was deployed with.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn version_manifest(
        &self,
        project: &str,
        function: &str,
        version: u32,
    ) -> Result<Option<String>, StoreError>;

    /// Creates or moves alias `alias` of `function`, then runs retention (versions the alias
    /// no longer points at may be past the newest `keep`). Returns the function as now stored.
    ///
    /// # Errors
    /// [`StoreError::NoSuchFunction`], [`StoreError::NoSuchVersion`] or
    /// [`StoreError::VersionDeleted`] for a version the alias cannot point at.
    async fn set_alias(
        &self,
        project: &str,
        function: &str,
        alias: &AliasRecord,
        keep: usize,
    ) -> Result<(FunctionRecord, Pruned), StoreError>;

    /// Deletes alias `alias` of `function`. Returns whether it existed.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn delete_alias(
        &self,
        project: &str,
        function: &str,
        alias: &str,
    ) -> Result<bool, StoreError>;

    /// Records what happened to a version (shown by `updraft versions`).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn set_version_note(
        &self,
        project: &str,
        function: &str,
        version: u32,
        note: &str,
    ) -> Result<(), StoreError>;

    /// Deletes a function with its versions and aliases. Returns `None` if it did not exist,
    /// else the artifacts nothing references any more.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn delete_function(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<Pruned>, StoreError>;
}

/// Log lines and invocation records: written on the invocation path without blocking (queued,
/// written in batches, so a crash may lose the last moments of them: they are not
/// acknowledged writes), read by the logs, invocations and usage APIs.
#[async_trait::async_trait]
pub trait TelemetryStore: Send + Sync + 'static {
    /// Queues a line, giving it its id (any id it had is replaced). Never blocks; drops the
    /// line (and counts it) if the backend cannot keep up.
    fn write(&self, record: LogRecord);

    /// Queues an invocation record. Never blocks; drops it (and counts it) if the backend
    /// cannot keep up.
    fn record(&self, invocation: Invocation);

    /// Every line queued from now on, as it is queued (before it is stored). A follower that
    /// falls too far behind misses the oldest ones (`RecvError::Lagged`).
    fn subscribe(&self) -> broadcast::Receiver<Arc<LogRecord>>;

    /// Lines and records dropped because the backend could not keep up.
    fn dropped(&self) -> u64;

    /// Waits until every line and record queued before the call is stored.
    async fn flush(&self);

    /// Stored log lines of `project` matching `q`, oldest first (the newest `limit` of them,
    /// or the oldest `limit` after `after_id`).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn query_logs(&self, project: &str, q: &LogQuery) -> Result<Vec<LogRecord>, StoreError>;

    /// Invocation records of `project` matching `q`, newest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`], [`StoreError::Corrupt`].
    async fn invocations(
        &self,
        project: &str,
        q: &InvocationQuery,
    ) -> Result<Vec<Invocation>, StoreError>;

    /// Usage of `project` over `q`'s span.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn usage(&self, project: &str, q: &UsageQuery) -> Result<UsageSummary, StoreError>;

    /// Adds counted data operations to the per-minute sums that usage reports read (rows for
    /// the same project, function and minute add up).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn record_data_usage(&self, rows: Vec<crate::DataUsage>) -> Result<(), StoreError>;

    /// Deletes every stored line, record and usage sum of `project` (after storing what is
    /// queued), so that a project created later under the same name starts empty.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn forget_project(&self, project: &str) -> Result<(), StoreError>;
}

/// End-user auth state of each project: users, sessions and their refresh tokens (hashes only),
/// and the sealed keys access tokens are signed with. Every write is one transaction, durable
/// when it returns.
#[async_trait::async_trait]
pub trait AuthStore: Send + Sync + 'static {
    /// Stores a new user; `Ok(false)` if its email is taken in its project.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn create_user(&self, user: &UserRecord) -> Result<bool, StoreError>;

    /// Replaces a user's fields; `Ok(false)` if there is no such user or its email is taken.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn update_user(&self, user: &UserRecord) -> Result<bool, StoreError>;

    /// User `id` of `project`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn user(&self, project: &str, id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// The user of `project` with `email` (lower case).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn user_by_email(
        &self,
        project: &str,
        email: &str,
    ) -> Result<Option<UserRecord>, StoreError>;

    /// Users of `project`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn users(
        &self,
        project: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<UserRecord>, StoreError>;

    /// Deletes a user with its sessions; `Ok(false)` if there was none.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn delete_user(&self, project: &str, id: &str) -> Result<bool, StoreError>;

    /// Starts a session with its first refresh token (by its SHA-256).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn create_session(
        &self,
        project: &str,
        session: &SessionRecord,
        refresh_sha256: &str,
    ) -> Result<(), StoreError>;

    /// Uses the refresh token `presented` (SHA-256) and stores `next` as its successor; a
    /// token used before, more than `grace_ms` ago, revokes its whole session.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn refresh(
        &self,
        project: &str,
        presented: &str,
        next: &str,
        grace_ms: i64,
        now: i64,
    ) -> Result<Refreshed, StoreError>;

    /// Session `id` of `project`, while it lasts.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn session(&self, project: &str, id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Ends sessions of a user (`only` one, or all but `keep`, or all); returns how many.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn end_sessions(
        &self,
        project: &str,
        user_id: &str,
        only: Option<&str>,
        keep: Option<&str>,
    ) -> Result<usize, StoreError>;

    /// The signing keys of `project`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn signing_keys(&self, project: &str) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Adds `key` as `project`'s signing key, retiring the others (they still verify).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn rotate_signing_key(
        &self,
        project: &str,
        key: &SigningKeyRecord,
    ) -> Result<(), StoreError>;

    /// Deletes keys of `project` retired before `before_ms`; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn drop_retired_keys(&self, project: &str, before_ms: i64) -> Result<usize, StoreError>;

    /// Stores a one-time token, replacing the user's unused ones of the same kind.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn create_otp(&self, otp: &OtpRecord) -> Result<(), StoreError>;

    /// Uses (deletes) the one-time token of one of `kinds` whose link or code hash is
    /// `sha256`; returns it if it had not expired at `now`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn take_otp(
        &self,
        project: &str,
        sha256: &str,
        kinds: &[&str],
        now: i64,
    ) -> Result<Option<OtpRecord>, StoreError>;

    /// The user an external identity (`provider`, `subject`) of `project` is linked to.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn identity_user(
        &self,
        project: &str,
        provider: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Links an external identity to a user (deleted with the user).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn link_identity(
        &self,
        project: &str,
        provider: &str,
        subject: &str,
        user_id: &str,
    ) -> Result<(), StoreError>;

    /// Puts a message in the development mailbox (the newest 1 000 per project are kept).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn push_mail(&self, mail: &MailRecord) -> Result<i64, StoreError>;

    /// The development mailbox of `project` (to `to` only, if given), newest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn mails(
        &self,
        project: &str,
        to: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MailRecord>, StoreError>;
}

/// Artifacts (uploaded code) by content address: the lower-case hex SHA-256 of their bytes.
#[async_trait::async_trait]
pub trait ArtifactStore: Send + Sync + 'static {
    /// Whether the artifact is stored (whole: a write in progress is not).
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`].
    async fn exists(&self, digest: &str) -> Result<bool, StoreError>;

    /// Starts storing the artifact `digest`: bytes go to the writer, nothing is visible until
    /// [`ArtifactWriter::commit`] checks their digest and makes them durable; a writer dropped
    /// before that leaves nothing behind.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`].
    async fn writer(&self, digest: &str) -> Result<Box<dyn ArtifactWriter>, StoreError>;

    /// The artifact's bytes.
    ///
    /// # Errors
    /// [`StoreError::NoSuchArtifact`], [`StoreError::Io`] or [`StoreError::Backend`].
    async fn read(&self, digest: &str) -> Result<Vec<u8>, StoreError>;

    /// Deletes the artifact; a missing one is not an error.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`].
    async fn delete(&self, digest: &str) -> Result<(), StoreError>;

    /// Every stored artifact and when it was stored (ms since the epoch); writes in progress
    /// are not listed.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`].
    async fn list(&self) -> Result<Vec<(String, i64)>, StoreError>;
}

/// An artifact being written (see [`ArtifactStore::writer`]).
#[async_trait::async_trait]
pub trait ArtifactWriter: Send {
    /// Appends bytes.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Backend`].
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError>;

    /// Bytes written so far.
    fn written(&self) -> u64;

    /// Checks that the bytes hash to the digest, makes them durable and visible. Returns their
    /// size.
    ///
    /// # Errors
    /// [`StoreError::DigestMismatch`] (nothing is stored), [`StoreError::Io`] or
    /// [`StoreError::Backend`].
    async fn commit(self: Box<Self>) -> Result<u64, StoreError>;
}
