//! Secrets per project, sealed: the store keeps only what the server's secret key encrypted
//! (nonce and ciphertext), never a value, and does not know how to open it.

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// A stored secret: its name and sealed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// Its name (an environment variable name).
    pub name: String,
    /// The sealed value, as the server wrote it.
    pub sealed: Vec<u8>,
    /// When it was first set (ms since the epoch).
    pub created_at: i64,
    /// When it was last set.
    pub updated_at: i64,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRecord> {
    Ok(SecretRecord {
        name: r.get(0)?,
        sealed: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
    })
}

impl Store {
    pub(crate) fn put_secret(
        &self,
        project: &str,
        name: &str,
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let now = crate::now_ms();
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let existed: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM secrets WHERE project = ?1 AND name = ?2",
                    params![project, name],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "INSERT INTO secrets (project, name, sealed, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT (project, name) DO UPDATE SET sealed = ?3, updated_at = ?4",
                params![project, name, sealed, now],
            )?;
            tx.commit()?;
            Ok(existed.is_none())
        })
    }

    pub(crate) fn secrets(&self, project: &str) -> Result<Vec<SecretRecord>, StoreError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT name, sealed, created_at, updated_at FROM secrets WHERE project = ?1 \
                 ORDER BY name",
            )?;
            let rows = stmt.query_map(params![project], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    pub(crate) fn delete_secret(&self, project: &str, name: &str) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let n = c.execute(
                "DELETE FROM secrets WHERE project = ?1 AND name = ?2",
                params![project, name],
            )?;
            Ok(n == 1)
        })
    }
}
