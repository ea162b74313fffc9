//! Projects (tenants): every function, key, log line and usage row carries one. A project has
//! a name (its id, also the first label of its default host name) and the custom domains its
//! functions are served on.

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// A stored project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    /// Its name, unique on the server.
    pub id: String,
    /// Host names the data plane serves this project on besides `<id>.<base domain>`.
    pub domains: Vec<String>,
    /// Origins browsers may call the project's routes and auth API from (`*`: any).
    pub cors_origins: Vec<String>,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProjectRecord> {
    let domains: String = r.get(1)?;
    let cors: String = r.get(3)?;
    Ok(ProjectRecord {
        id: r.get(0)?,
        domains: serde_json::from_str(&domains).unwrap_or_default(),
        created_at: r.get(2)?,
        cors_origins: serde_json::from_str(&cors).unwrap_or_default(),
    })
}

fn encode(domains: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(domains).map_err(|e| StoreError::Backend(Box::new(e)))
}

impl Store {
    pub(crate) fn create_project(&self, p: &ProjectRecord) -> Result<bool, StoreError> {
        let domains = encode(&p.domains)?;
        let cors = encode(&p.cors_origins)?;
        self.with_conn(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO projects (id, created_at, domains, cors) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![p.id, p.created_at, domains, cors],
            )?;
            Ok(n == 1)
        })
    }

    pub(crate) fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        self.with_conn(|c| {
            let mut stmt =
                c.prepare("SELECT id, domains, created_at, cors FROM projects ORDER BY id")?;
            let rows = stmt.query_map([], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    pub(crate) fn set_project_domains(
        &self,
        id: &str,
        domains: &[String],
    ) -> Result<bool, StoreError> {
        let domains = encode(domains)?;
        self.with_conn(|c| {
            let n = c.execute(
                "UPDATE projects SET domains = ?2 WHERE id = ?1",
                params![id, domains],
            )?;
            Ok(n == 1)
        })
    }

    pub(crate) fn set_project_cors(
        &self,
        id: &str,
        origins: &[String],
    ) -> Result<bool, StoreError> {
        let origins = encode(origins)?;
        self.with_conn(|c| {
            let n = c.execute(
                "UPDATE projects SET cors = ?2 WHERE id = ?1",
                params![id, origins],
            )?;
            Ok(n == 1)
        })
    }

    /// Deletes a project that has no functions left, with its apps and keys, in one
    /// transaction. `Ok(false)`: there was no such project.
    pub(crate) fn delete_project(&self, id: &str) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let functions: i64 = tx.query_row(
                "SELECT count(*) FROM functions WHERE project = ?1",
                params![id],
                |r| r.get(0),
            )?;
            if functions > 0 {
                return Err(StoreError::ProjectNotEmpty {
                    project: id.to_owned(),
                    functions: u64::try_from(functions).unwrap_or(0),
                });
            }
            tx.execute("DELETE FROM api_keys WHERE project = ?1", params![id])?;
            tx.execute("DELETE FROM secrets WHERE project = ?1", params![id])?;
            for table in [
                "auth_users",
                "auth_sessions",
                "auth_refresh_tokens",
                "auth_keys",
                "auth_otps",
                "auth_mail",
                "auth_identities",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE project = ?1"),
                    params![id],
                )?;
            }
            tx.execute(
                "DELETE FROM project_artifacts WHERE project = ?1",
                params![id],
            )?;
            tx.execute("DELETE FROM versions WHERE project = ?1", params![id])?;
            tx.execute("DELETE FROM aliases WHERE project = ?1", params![id])?;
            tx.execute("DELETE FROM apps WHERE project = ?1", params![id])?;
            let gone = tx
                .query_row(
                    "DELETE FROM projects WHERE id = ?1 RETURNING id",
                    params![id],
                    |r| r.get::<_, String>(0),
                )
                .optional()?;
            tx.commit()?;
            Ok(gone.is_some())
        })
    }

    pub(crate) fn grant_artifact(&self, project: &str, digest: &str) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.execute(
                "INSERT OR IGNORE INTO project_artifacts (project, digest, created_at) \
                 VALUES (?1, ?2, ?3)",
                params![project, digest, crate::now_ms()],
            )?;
            Ok(())
        })
    }

    pub(crate) fn has_artifact(&self, project: &str, digest: &str) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let found: Option<i64> = c
                .query_row(
                    "SELECT 1 FROM project_artifacts WHERE project = ?1 AND digest = ?2",
                    params![project, digest],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(found.is_some())
        })
    }

    pub(crate) fn forget_artifact(&self, digest: &str) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.execute(
                "DELETE FROM project_artifacts WHERE digest = ?1",
                params![digest],
            )?;
            Ok(())
        })
    }

    /// Adds data-operation counts to `data_minutes`, in one transaction.
    pub(crate) fn record_data_usage(&self, rows: &[crate::DataUsage]) -> Result<(), StoreError> {
        let big = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.with_conn(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO data_minutes (project, function, minute, reads, writes)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (project, function, minute) DO UPDATE SET
                     reads = reads + excluded.reads, writes = writes + excluded.writes",
                )?;
                for r in rows {
                    stmt.execute(params![
                        r.project,
                        r.function,
                        r.minute,
                        big(r.reads),
                        big(r.writes)
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Deletes the stored telemetry of `project` (queued lines are the caller's to flush).
    pub(crate) fn forget_project_telemetry(&self, project: &str) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            for table in [
                "log_chunks",
                "invocation_chunks",
                "usage_minutes",
                "data_minutes",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE project = ?1"),
                    params![project],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}
