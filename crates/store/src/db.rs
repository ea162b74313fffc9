//! The SQLite schema, its migrations, and the admin-token queries.

use std::path::Path;

use rusqlite::{Connection, params};

use crate::{DEFAULT_PROJECT, Store, StoreError, now_ms};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
);
CREATE TABLE admin_tokens (
    token_sha256 TEXT PRIMARY KEY,
    created_at   INTEGER NOT NULL
);
CREATE TABLE artifacts (
    digest      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE apps (
    project     TEXT NOT NULL REFERENCES projects(id),
    name        TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    deployed_at INTEGER NOT NULL,
    PRIMARY KEY (project, name)
);
CREATE TABLE functions (
    project     TEXT NOT NULL REFERENCES projects(id),
    name        TEXT NOT NULL,
    app         TEXT NOT NULL,
    digest      TEXT NOT NULL REFERENCES artifacts(digest),
    spec        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (project, name),
    FOREIGN KEY (project, app) REFERENCES apps(project, name) ON DELETE CASCADE
);
CREATE TABLE logs (
    id          INTEGER PRIMARY KEY,
    project     TEXT NOT NULL,
    function    TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    stream      TEXT NOT NULL,
    line        TEXT NOT NULL
);
CREATE INDEX logs_by_function ON logs (project, function, id);
CREATE INDEX logs_by_request ON logs (request_id);
"#,
    // Versions and aliases. A function's code and settings move from `functions` to immutable
    // `versions`; what is served is chosen by `aliases`. Existing functions become version 1 with
    // `live` pointing at it.
    r#"
CREATE TABLE versions (
    project     TEXT NOT NULL,
    function    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    digest      TEXT NOT NULL,
    spec        TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    deployer    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    note        TEXT,
    PRIMARY KEY (project, function, version)
);
CREATE INDEX versions_by_digest ON versions (digest) WHERE deleted_at IS NULL;
CREATE TABLE aliases (
    project     TEXT NOT NULL,
    function    TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    canary      TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (project, function, name)
);
INSERT INTO versions (project, function, version, digest, spec, manifest, deployer, created_at)
    SELECT f.project, f.name, 1, f.digest, f.spec, a.manifest, 'unknown (deployed before versions)',
           f.updated_at
    FROM functions f JOIN apps a ON a.project = f.project AND a.name = f.app;
INSERT INTO aliases (project, function, name, version, updated_at)
    SELECT project, name, 'live', 1, updated_at FROM functions;
CREATE TABLE functions_v2 (
    project     TEXT NOT NULL REFERENCES projects(id),
    name        TEXT NOT NULL,
    app         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project, name),
    FOREIGN KEY (project, app) REFERENCES apps(project, name) ON DELETE CASCADE
);
INSERT INTO functions_v2 (project, name, app, created_at)
    SELECT project, name, app, updated_at FROM functions;
DROP TABLE functions;
ALTER TABLE functions_v2 RENAME TO functions;
"#,
    // Metering: one row per finished invocation; log lines say which version wrote them.
    r#"
ALTER TABLE logs ADD COLUMN version INTEGER;
CREATE TABLE invocations (
    request_id  TEXT NOT NULL,
    project     TEXT NOT NULL,
    function    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    trigger     TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    billed_ms   INTEGER NOT NULL,
    memory_mb   INTEGER NOT NULL,
    peak_memory INTEGER NOT NULL,
    cold        INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    error       TEXT,
    trace_id    TEXT
);
-- One index: every write pays for each. Lookups by request id use the time in the id.
CREATE INDEX invocations_by_time ON invocations (project, started_ms);
-- Log lines by request id are found from the function's lines after the id's time.
DROP INDEX logs_by_request;
"#,
    // Telemetry in chunks: a row per batch, function and kind instead of one per line and
    // record, plus per-minute usage sums. Rows of the old tables are converted by the log
    // writer when it starts (`telemetry/migrate.rs`), then the old tables are dropped.
    r#"
CREATE TABLE log_chunks (
    first_id    INTEGER PRIMARY KEY,
    last_id     INTEGER NOT NULL,
    project     TEXT NOT NULL,
    function    TEXT NOT NULL,
    first_ms    INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    lines       BLOB NOT NULL
);
CREATE INDEX log_chunks_by_function ON log_chunks (project, function, last_id);
CREATE INDEX log_chunks_by_last ON log_chunks (project, last_id);
CREATE TABLE invocation_chunks (
    id          INTEGER PRIMARY KEY,
    project     TEXT NOT NULL,
    function    TEXT NOT NULL,
    first_ms    INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    records     BLOB NOT NULL
);
CREATE INDEX invocation_chunks_by_function ON invocation_chunks (project, function, last_ms);
CREATE INDEX invocation_chunks_by_time ON invocation_chunks (project, last_ms);
CREATE TABLE usage_minutes (
    project     TEXT NOT NULL,
    function    TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    invocations INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    cold_starts INTEGER NOT NULL,
    billed_ms   INTEGER NOT NULL,
    mb_ms       INTEGER NOT NULL,
    PRIMARY KEY (project, function, minute)
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    role        TEXT NOT NULL,
    key_sha256  TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX api_keys_by_project ON api_keys (project, created_at);
"#,
    r#"
ALTER TABLE projects ADD COLUMN domains TEXT NOT NULL DEFAULT '[]';
CREATE TABLE project_artifacts (
    project     TEXT NOT NULL,
    digest      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project, digest)
) WITHOUT ROWID;
CREATE INDEX project_artifacts_by_digest ON project_artifacts (digest);
INSERT OR IGNORE INTO project_artifacts (project, digest, created_at)
    SELECT project, digest, min(created_at) FROM versions GROUP BY project, digest;
"#,
    r#"
CREATE TABLE secrets (
    project     TEXT NOT NULL,
    name        TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (project, name)
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    project     TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    status      INTEGER NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_by_project ON audit (project, id);
CREATE INDEX audit_by_time ON audit (ts_ms);
"#,
    r#"
CREATE TABLE auth_users (
    project            TEXT NOT NULL,
    id                 TEXT NOT NULL,
    email              TEXT,
    email_confirmed_at INTEGER,
    password_hash      TEXT,
    is_anonymous       INTEGER NOT NULL,
    role               TEXT NOT NULL,
    app_metadata       TEXT NOT NULL,
    user_metadata      TEXT NOT NULL,
    disabled           INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    last_sign_in_at    INTEGER,
    PRIMARY KEY (project, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX auth_users_by_email ON auth_users (project, email) WHERE email IS NOT NULL;
CREATE TABLE auth_sessions (
    project      TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    refreshed_at INTEGER NOT NULL,
    PRIMARY KEY (project, id)
) WITHOUT ROWID;
CREATE INDEX auth_sessions_by_user ON auth_sessions (project, user_id);
CREATE TABLE auth_refresh_tokens (
    token_sha256 TEXT PRIMARY KEY,
    project      TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    parent       TEXT,
    revoked      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    used_at      INTEGER
) WITHOUT ROWID;
CREATE INDEX auth_refresh_by_session ON auth_refresh_tokens (project, session_id);
CREATE INDEX auth_refresh_by_user ON auth_refresh_tokens (project, user_id);
CREATE TABLE auth_keys (
    project    TEXT NOT NULL,
    kid        TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    PRIMARY KEY (project, kid)
) WITHOUT ROWID;
"#,
    r#"
ALTER TABLE projects ADD COLUMN cors TEXT NOT NULL DEFAULT '[]';
"#,
    r#"
CREATE TABLE auth_otps (
    token_sha256 TEXT PRIMARY KEY,
    code_sha256  TEXT NOT NULL,
    project      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX auth_otps_by_code ON auth_otps (project, code_sha256);
CREATE INDEX auth_otps_by_user ON auth_otps (project, user_id, kind);
CREATE TABLE auth_mail (
    id         INTEGER PRIMARY KEY,
    project    TEXT NOT NULL,
    to_addr    TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX auth_mail_by_project ON auth_mail (project, id);
"#,
    r#"
CREATE TABLE auth_identities (
    project    TEXT NOT NULL,
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project, provider, subject)
) WITHOUT ROWID;
CREATE INDEX auth_identities_by_user ON auth_identities (project, user_id);
"#,
    // Data operations (key-value and document reads and writes) per function and minute.
    r#"
CREATE TABLE data_minutes (
    project     TEXT NOT NULL,
    function    TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    reads       INTEGER NOT NULL,
    writes      INTEGER NOT NULL,
    PRIMARY KEY (project, function, minute)
) WITHOUT ROWID;
"#,
];

pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a transaction is on disk when commit returns, so acknowledged deploys survive a
    // crash of the process or of the machine.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Every transaction takes the write lock when it begins. A deferred transaction that reads
    // and then writes fails at once with SQLITE_BUSY (no busy wait) when the log writer's
    // connection committed in between; an immediate one waits its turn (busy_timeout).
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(0);
    if version < MIGRATIONS.len() {
        let tx = conn.transaction()?;
        for m in &MIGRATIONS[version..] {
            tx.execute_batch(m)?;
        }
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(MIGRATIONS.len()).unwrap_or(0),
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO projects (id, created_at) VALUES (?1, ?2)",
            params![DEFAULT_PROJECT, now_ms()],
        )?;
        tx.commit()?;
    }
    Ok(conn)
}

impl Store {
    /// Records the SHA-256 of a new admin token.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub(crate) fn add_admin_token(&self, token_sha256: &str) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.execute(
                "INSERT OR IGNORE INTO admin_tokens (token_sha256, created_at) VALUES (?1, ?2)",
                params![token_sha256, now_ms()],
            )?;
            Ok(())
        })
    }

    /// The SHA-256 digests of every admin token.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub(crate) fn admin_tokens(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare("SELECT token_sha256 FROM admin_tokens")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The digests of every artifact a version not deleted by retention uses.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub(crate) fn referenced_artifacts(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|c| {
            let mut stmt =
                c.prepare("SELECT DISTINCT digest FROM versions WHERE deleted_at IS NULL")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
