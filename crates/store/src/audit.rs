//! The audit log: one row per control-plane change (or attempted change), with who, when,
//! what, on what, and how it ended. Appended, listed newest first, trimmed by age.

use rusqlite::params;

use crate::{Store, StoreError};

/// One audited change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRecord {
    /// Its id, increasing (set by the store).
    pub id: i64,
    /// The project it happened in.
    pub project: String,
    /// When (ms since the epoch).
    pub ts_ms: i64,
    /// Who: a key id (`key_...`), `admin`, or `system` for the platform's own decisions.
    pub actor: String,
    /// What: `deploy`, `alias.set`, `secret.set`, ...
    pub action: String,
    /// On what: the resource's path (`functions/echo/aliases/live`).
    pub target: String,
    /// `ok`, `denied` (the key's role may not) or `failed`.
    pub outcome: String,
    /// The HTTP status answered (0 for changes not made over HTTP).
    pub status: u16,
    /// A short description: what a deploy published, why a change failed.
    pub detail: String,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this project's (every project's with `None`).
    pub project: Option<String>,
    /// Only entries at or after this time.
    pub since_ms: i64,
    /// At most this many, newest first.
    pub limit: usize,
}

/// Most entries one query returns.
const MAX_LIMIT: usize = 10_000;

impl Store {
    pub(crate) fn append_audit(&self, r: &AuditRecord) -> Result<i64, StoreError> {
        self.with_conn(|c| {
            c.execute(
                "INSERT INTO audit (project, ts_ms, actor, action, target, outcome, status, \
                 detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    r.project, r.ts_ms, r.actor, r.action, r.target, r.outcome, r.status, r.detail
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub(crate) fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::try_from(q.limit.clamp(1, MAX_LIMIT)).unwrap_or(100);
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT id, project, ts_ms, actor, action, target, outcome, status, detail \
                 FROM audit WHERE (?1 IS NULL OR project = ?1) AND ts_ms >= ?2 \
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![q.project, q.since_ms, limit], |r| {
                Ok(AuditRecord {
                    id: r.get(0)?,
                    project: r.get(1)?,
                    ts_ms: r.get(2)?,
                    actor: r.get(3)?,
                    action: r.get(4)?,
                    target: r.get(5)?,
                    outcome: r.get(6)?,
                    status: r.get(7)?,
                    detail: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    pub(crate) fn expire_audit(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.with_conn(|c| Ok(c.execute("DELETE FROM audit WHERE ts_ms < ?1", params![before_ms])?))
    }
}
