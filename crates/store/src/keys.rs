//! Scoped API keys for the control API: which project a key acts in, with which role, until
//! when. Only the key's SHA-256 is stored; the key itself is shown once, when it is created.

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// A stored API key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public id (`key_` + 16 hex), safe to show and log.
    pub id: String,
    /// The project it acts in.
    pub project: String,
    /// Its role (`owner`, `deployer`, `viewer`, `metrics`), checked by the server.
    pub role: String,
    /// SHA-256 of the key, lower-case hex.
    pub key_sha256: String,
    /// What it is for, as given when created.
    pub description: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When it stops working (ms since the epoch), if ever.
    pub expires_at: Option<i64>,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: r.get(0)?,
        project: r.get(1)?,
        role: r.get(2)?,
        key_sha256: r.get(3)?,
        description: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

const COLUMNS: &str = "id, project, role, key_sha256, description, created_at, expires_at";

impl Store {
    pub(crate) fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.execute(
                "INSERT INTO api_keys (id, project, role, key_sha256, description, created_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    key.id,
                    key.project,
                    key.role,
                    key.key_sha256,
                    key.description,
                    key.created_at,
                    key.expires_at
                ],
            )?;
            Ok(())
        })
    }

    pub(crate) fn api_keys(&self, project: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM api_keys WHERE ?1 IS NULL OR project = ?1 \
                 ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map(params![project], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    pub(crate) fn delete_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.with_conn(|c| {
            let deleted = c
                .query_row(
                    &format!("DELETE FROM api_keys WHERE id = ?1 RETURNING {COLUMNS}"),
                    params![id],
                    from_row,
                )
                .optional()?;
            Ok(deleted)
        })
    }
}
