//! The SQLite schema and the metadata queries: admin tokens, apps and functions.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use updraft_manifest::Function;

use crate::{DEFAULT_PROJECT, Store, StoreError, now_ms};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a transaction is on disk when commit returns, so acknowledged deploys survive a
    // crash of the process or of the machine.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
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

/// A function as stored: who owns it, what it runs, and its validated manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRecord {
    /// The project (tenant).
    pub project: String,
    /// The app that deployed it.
    pub app: String,
    /// Digest of its component artifact.
    pub digest: String,
    /// Its `[[functions]]` entry, validated.
    pub spec: Function,
    /// Last deploy that changed it (ms since the epoch).
    pub updated_at: i64,
}

/// One function of a deploy: its manifest entry and the digest of its uploaded component.
#[derive(Debug, Clone)]
pub struct DeployedFunction {
    /// Its `[[functions]]` entry.
    pub spec: Function,
    /// Digest of its component artifact (must already be stored).
    pub digest: String,
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode(row: (String, String, String, String, i64)) -> Result<FunctionRecord, StoreError> {
    let (project, app, digest, spec, updated_at) = row;
    let spec: Function = serde_json::from_str(&spec)
        .map_err(|e| StoreError::Corrupt(format!("function spec: {e}")))?;
    Ok(FunctionRecord {
        project,
        app,
        digest,
        spec,
        updated_at,
    })
}

const SELECT_FUNCTIONS: &str = "SELECT project, app, digest, spec, updated_at FROM functions";

impl Store {
    /// Records the SHA-256 of a new admin token.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`].
    pub fn add_admin_token(&self, token_sha256: &str) -> Result<(), StoreError> {
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
    pub fn admin_tokens(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare("SELECT token_sha256 FROM admin_tokens")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Replaces app `app` of `project` with exactly `functions`, in one transaction: functions
    /// of the app that are not in the list are deleted. Returns the names deleted.
    ///
    /// # Errors
    /// [`StoreError::FunctionOwnedByOtherApp`] when a name is taken by another app; SQLite errors.
    pub fn deploy_app(
        &self,
        project: &str,
        app: &str,
        manifest: &str,
        functions: &[DeployedFunction],
    ) -> Result<Vec<String>, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let now = now_ms();
            for f in functions {
                let owner: Option<String> = tx
                    .query_row(
                        "SELECT app FROM functions WHERE project = ?1 AND name = ?2",
                        params![project, f.spec.name.as_str()],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(owner) = owner
                    && owner != app
                {
                    return Err(StoreError::FunctionOwnedByOtherApp {
                        function: f.spec.name.to_string(),
                        app: owner,
                    });
                }
            }
            tx.execute(
                "INSERT INTO apps (project, name, manifest, deployed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project, name) DO UPDATE SET manifest = ?3, deployed_at = ?4",
                params![project, app, manifest, now],
            )?;
            let existing: Vec<String> = {
                let mut stmt =
                    tx.prepare("SELECT name FROM functions WHERE project = ?1 AND app = ?2")?;
                let rows = stmt.query_map(params![project, app], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            let removed: Vec<String> = existing
                .into_iter()
                .filter(|n| !functions.iter().any(|f| f.spec.name.as_str() == n))
                .collect();
            for name in &removed {
                tx.execute(
                    "DELETE FROM functions WHERE project = ?1 AND name = ?2",
                    params![project, name],
                )?;
            }
            for f in functions {
                let spec = serde_json::to_string(&f.spec)
                    .map_err(|e| StoreError::Corrupt(format!("encoding function spec: {e}")))?;
                // Only a real change moves `updated_at`.
                tx.execute(
                    "INSERT INTO functions (project, name, app, digest, spec, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (project, name) DO UPDATE SET digest = ?4, spec = ?5, updated_at = ?6
                     WHERE functions.digest != ?4 OR functions.spec != ?5",
                    params![project, f.spec.name.as_str(), app, f.digest, spec, now],
                )?;
            }
            tx.commit()?;
            Ok(removed)
        })
    }

    /// Every function of `project`, by name.
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`] for undecodable rows.
    pub fn functions(&self, project: &str) -> Result<Vec<FunctionRecord>, StoreError> {
        self.query_functions(
            &format!("{SELECT_FUNCTIONS} WHERE project = ?1 ORDER BY name"),
            params![project],
        )
    }

    /// Every function of every project (for loading at start-up).
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`] for undecodable rows.
    pub fn all_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        self.query_functions(
            &format!("{SELECT_FUNCTIONS} ORDER BY project, name"),
            params![],
        )
    }

    /// One function.
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`] for an undecodable row.
    pub fn function(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        Ok(self
            .query_functions(
                &format!("{SELECT_FUNCTIONS} WHERE project = ?1 AND name = ?2"),
                params![project, name],
            )?
            .into_iter()
            .next())
    }

    fn query_functions(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<FunctionRecord>, StoreError> {
        let rows = self.with_conn(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map(params, row_to_record)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        rows.into_iter().map(decode).collect()
    }

    /// Deletes a function. Returns whether it existed.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn delete_function(&self, project: &str, name: &str) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let n = c.execute(
                "DELETE FROM functions WHERE project = ?1 AND name = ?2",
                params![project, name],
            )?;
            Ok(n > 0)
        })
    }
}

#[cfg(test)]
mod tests;
