//! Online backup and restore of `data.db`: every key-value store and document collection.
//!
//! A backup is SQLite's `VACUUM INTO` on a connection of its own (the pooled read connections
//! are `query_only`, which refuses it): a consistent snapshot of one
//! moment, taken while writes go on (WAL: the writer never waits for it), compacted, in a new
//! file. A restore checks a snapshot (it opens as SQLite, passes `quick_check`, and is migrated
//! to the current schema on a private copy), then replaces the live data, of every project or
//! of one, in a single write of the writer thread: readers see the old data or the new, never a
//! mix, and a crash midway leaves the old. Revisions never go back: the counter stays at the
//! larger of the live one and the snapshot's, so conditional writes and change feeds keep
//! working. The change logs are the live ones (a restore is not a stream of changes), and
//! stores that change feeds follow stay followed.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

use super::{DataStore, MIGRATIONS, open_live, open_writer, to_u64};
use crate::StoreError;

/// The tables a backup holds and a restore replaces, each with a `project` column.
const TABLES: [&str; 5] = ["kv_stores", "kv", "kv_usage", "doc_collections", "docs"];

/// What a restore replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Key-value stores now present.
    pub stores: u64,
    /// Keys now present.
    pub keys: u64,
    /// Collections now present.
    pub collections: u64,
    /// Documents now present.
    pub documents: u64,
}

impl DataStore {
    /// Writes a consistent snapshot of the data to `dest` (which must not exist).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when SQLite cannot write it.
    pub async fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        let live = self.inner.path.clone();
        let dest = dest.to_string_lossy().into_owned();
        tokio::task::spawn_blocking(move || {
            open_live(&live)?.execute("VACUUM INTO ?1", [&dest])?;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?
    }

    /// Replaces the live data with the snapshot at `snapshot` (a file [`DataStore::backup_to`]
    /// wrote; it is migrated in place, so pass a copy): every project's, or only `project`'s.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a file that is not a snapshot of this store (not SQLite,
    /// damaged, or from a newer version); [`StoreError::Backend`].
    pub async fn restore_from(
        &self,
        snapshot: &Path,
        project: Option<&str>,
    ) -> Result<Restored, StoreError> {
        let path = snapshot.to_path_buf();
        let snapshot_seq = tokio::task::spawn_blocking(move || check(&path))
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))??;
        let path = snapshot.to_path_buf();
        let project = project.map(str::to_owned);
        self.write(move |ctx| {
            let snap = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            // The snapshot's field indexes (one per declared field path), so its collections'
            // queries are served from indexes too.
            let indexes: Vec<(String, String)> = snap
                .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'docs_by_%'")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (name, sql) in indexes {
                let exists: bool = ctx.conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1)",
                    [&name],
                    |r| r.get(0),
                )?;
                if !exists {
                    ctx.conn.execute_batch(&sql)?;
                }
            }
            // Stores change feeds follow stay followed (their log is the live one).
            let watched: Vec<(String, String)> = ctx
                .conn
                .prepare("SELECT project, name FROM kv_stores WHERE watched = 1")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for table in TABLES {
                copy(ctx.conn, &snap, table, project.as_deref())?;
            }
            for (p, name) in watched {
                ctx.conn.execute(
                    "UPDATE kv_stores SET watched = 1 WHERE project = ?1 AND name = ?2",
                    params![p, name],
                )?;
            }
            *ctx.seq = (*ctx.seq).max(snapshot_seq);
            ctx.conn
                .execute("UPDATE data_meta SET seq = ?1", [super::to_i64(*ctx.seq)])?;
            let count = |sql: &str| -> Result<u64, StoreError> {
                let n: i64 = match &project {
                    Some(p) => ctx.conn.query_row(&format!("{sql} WHERE project = ?1"), [p], |r| r.get(0))?,
                    None => ctx.conn.query_row(sql, [], |r| r.get(0))?,
                };
                Ok(to_u64(n))
            };
            Ok(Restored {
                stores: count("SELECT COUNT(*) FROM kv_stores")?,
                keys: count("SELECT COUNT(*) FROM kv")?,
                collections: count("SELECT COUNT(*) FROM doc_collections")?,
                documents: count("SELECT COUNT(*) FROM docs")?,
            })
        })
        .await
    }
}

/// Checks a snapshot and brings it to the current schema; returns its revision counter.
fn check(path: &Path) -> Result<u64, StoreError> {
    let invalid = |why: String| StoreError::Invalid(format!("not a backup of this data: {why}"));
    {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| invalid(e.to_string()))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| invalid(e.to_string()))?;
        if version < 1 || usize::try_from(version).unwrap_or(usize::MAX) > MIGRATIONS.len() {
            return Err(invalid(format!(
                "schema version {version} (this server reads 1 to {})",
                MIGRATIONS.len()
            )));
        }
        let ok: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| invalid(e.to_string()))?;
        if ok != "ok" {
            return Err(invalid(format!("the file is damaged ({ok})")));
        }
    }
    let conn = open_writer(path, None).map_err(|e| invalid(e.to_string()))?;
    // Back to a single file, so the read-only connection of the restore sees everything.
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    let seq: i64 = conn
        .query_row("SELECT seq FROM data_meta", [], |r| r.get(0))
        .map_err(|e| invalid(e.to_string()))?;
    Ok(to_u64(seq))
}

/// Replaces `table`'s rows (of `project`, or all) with the snapshot's, row by row.
fn copy(
    live: &Connection,
    snap: &Connection,
    table: &str,
    project: Option<&str>,
) -> Result<(), StoreError> {
    let columns: Vec<String> = live
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let list = columns.join(", ");
    let marks = (1..=columns.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let filter = if project.is_some() {
        " WHERE project = ?1"
    } else {
        ""
    };
    match project {
        Some(p) => live.execute(&format!("DELETE FROM {table}{filter}"), [p])?,
        None => live.execute(&format!("DELETE FROM {table}"), [])?,
    };
    let mut insert = live.prepare(&format!("INSERT INTO {table} ({list}) VALUES ({marks})"))?;
    let mut select = snap.prepare(&format!("SELECT {list} FROM {table}{filter}"))?;
    let mut rows = match project {
        Some(p) => select.query(params![p])?,
        None => select.query([])?,
    };
    while let Some(row) = rows.next()? {
        let values: Vec<rusqlite::types::Value> = (0..columns.len())
            .map(|i| row.get(i))
            .collect::<Result<_, _>>()?;
        insert.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
