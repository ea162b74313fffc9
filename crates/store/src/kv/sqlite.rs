//! The SQLite implementation of [`KvStore`] on [`DataStore`].

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Condition, KvEntry, KvOp, KvOutcome, KvStore, KvStoreInfo, KvUsage, KvWrite, prefix_end,
};
use crate::data::{Ctx, DataStore, to_i64, to_u64};
use crate::{StoreError, now_ms};

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<KvEntry> {
    Ok(KvEntry {
        value: row.get(0)?,
        revision: to_u64(row.get(1)?),
        expires_at: row.get(2)?,
    })
}

const GET: &str = "SELECT value, revision, expires_at FROM kv
     WHERE project = ?1 AND store = ?2 AND key = ?3 AND (expires_at IS NULL OR expires_at > ?4)";

/// Stores a key's value.
pub(super) const UPSERT: &str = "INSERT INTO kv (project, store, key, value, revision, expires_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (project, store, key) DO UPDATE SET value = ?4, revision = ?5, expires_at = ?6";

/// Whether `store` exists (`None` if not) and is watched.
fn store_watched(
    conn: &Connection,
    project: &str,
    store: &str,
) -> Result<Option<bool>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT watched FROM kv_stores WHERE project = ?1 AND name = ?2")?
        .query_row(params![project, store], |r| r.get::<_, bool>(0))
        .optional()?)
}

/// Logs a change of a watched store.
fn log_change(
    ctx: &mut Ctx<'_>,
    (project, store, key): (&str, &str, &str),
    revision: u64,
    value: Option<&[u8]>,
    now: i64,
) -> Result<(), StoreError> {
    let (op, kept, size) = match value {
        None => ("deleted", None, 0),
        Some(v) => (
            "set",
            (v.len() <= super::MAX_LOGGED_VALUE).then_some(v),
            v.len(),
        ),
    };
    ctx.conn
        .prepare_cached(
            "INSERT INTO kv_changes (revision, project, store, key, op, value, size, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            to_i64(revision),
            project,
            store,
            key,
            op,
            kept,
            i64::try_from(size).unwrap_or(i64::MAX),
            now
        ])?;
    ctx.logged = true;
    Ok(())
}

/// Adds `keys` and `bytes` (either may be negative) to the project's usage.
fn add_usage(conn: &Connection, project: &str, keys: i64, bytes: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO kv_usage (project, keys, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (project) DO UPDATE SET keys = keys + ?2, bytes = bytes + ?3",
    )?
    .execute(params![project, keys, bytes])?;
    Ok(())
}

fn usage(conn: &Connection, project: &str) -> Result<KvUsage, StoreError> {
    let found = conn
        .prepare_cached("SELECT keys, bytes FROM kv_usage WHERE project = ?1")?
        .query_row([project], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    Ok(found
        .map(|(keys, bytes)| KvUsage {
            keys: to_u64(keys),
            bytes: to_u64(bytes),
        })
        .unwrap_or_default())
}

/// Applies one batch inside the writer's transaction.
fn apply(
    ctx: &mut Ctx<'_>,
    project: &str,
    store: &str,
    writes: Vec<KvWrite>,
    quota: Option<u64>,
    now: i64,
) -> Result<Vec<KvOutcome>, StoreError> {
    let conn = ctx.conn;
    let Some(watched) = store_watched(conn, project, store)? else {
        return Err(StoreError::NoSuchKvStore {
            store: store.to_owned(),
        });
    };
    let (mut dkeys, mut dbytes) = (0i64, 0i64);
    let mut outcomes = Vec::with_capacity(writes.len());
    for w in writes {
        // The live row, if any (an expired row is replaced as if absent).
        let row = conn
            .prepare_cached(
                "SELECT value, revision, expires_at, expires_at IS NOT NULL AND expires_at <= ?4
                 FROM kv WHERE project = ?1 AND store = ?2 AND key = ?3",
            )?
            .query_row(params![project, store, w.key, now], |r| {
                Ok((entry(r)?, r.get::<_, bool>(3)?))
            })
            .optional()?;
        let stored = row.as_ref().map(|(e, _)| e);
        let live = row.as_ref().filter(|(_, expired)| !expired).map(|(e, _)| e);
        let holds = match w.condition {
            Condition::Any => true,
            Condition::Absent => live.is_none(),
            Condition::Revision(r) => live.is_some_and(|e| e.revision == r),
        };
        if !holds {
            ctx.rollback = true;
            outcomes.push(KvOutcome::ConditionFailed {
                current: live.map(|e| e.revision),
            });
            return Ok(outcomes);
        }
        let old_size = stored.map(|e| size(&w.key, &e.value));
        let (new_value, expires_at, outcome) = match w.op {
            KvOp::Delete => {
                if stored.is_some() {
                    conn.prepare_cached(
                        "DELETE FROM kv WHERE project = ?1 AND store = ?2 AND key = ?3",
                    )?
                    .execute(params![project, store, w.key])?;
                    dkeys -= 1;
                    dbytes -= old_size.unwrap_or(0);
                }
                if watched && live.is_some() {
                    let revision = ctx.next_revision();
                    log_change(ctx, (project, store, &w.key), revision, None, now)?;
                }
                outcomes.push(KvOutcome::Deleted {
                    existed: live.is_some(),
                });
                continue;
            }
            KvOp::Put { value, expires_at } => {
                let revision = ctx.next_revision();
                (value, expires_at, KvOutcome::Written { revision })
            }
            KvOp::Increment(delta) => {
                let current = match live {
                    None => 0,
                    Some(e) => std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .ok_or_else(|| StoreError::NotAnInteger { key: w.key.clone() })?,
                };
                let value = current
                    .checked_add(delta)
                    .ok_or_else(|| StoreError::IntegerOverflow { key: w.key.clone() })?;
                let revision = ctx.next_revision();
                (
                    value.to_string().into_bytes(),
                    live.and_then(|e| e.expires_at),
                    KvOutcome::Incremented { value, revision },
                )
            }
        };
        let revision = match outcome {
            KvOutcome::Written { revision } | KvOutcome::Incremented { revision, .. } => revision,
            _ => 0,
        };
        let new_size = size(&w.key, &new_value);
        conn.prepare_cached(UPSERT)?.execute(params![
            project,
            store,
            w.key,
            new_value,
            to_i64(revision),
            expires_at
        ])?;
        if old_size.is_none() {
            dkeys += 1;
        }
        dbytes += new_size - old_size.unwrap_or(0);
        if watched {
            log_change(
                ctx,
                (project, store, &w.key),
                revision,
                Some(&new_value),
                now,
            )?;
        }
        outcomes.push(outcome);
    }
    if let Some(limit) = quota
        && dbytes > 0
    {
        let needed = usage(conn, project)?.bytes.saturating_add(to_u64(dbytes));
        if needed > limit {
            return Err(StoreError::QuotaExceeded { limit, needed });
        }
    }
    if dkeys != 0 || dbytes != 0 {
        add_usage(conn, project, dkeys, dbytes)?;
    }
    Ok(outcomes)
}

/// What a key and value count against the quota.
fn size(key: &str, value: &[u8]) -> i64 {
    i64::try_from(key.len() + value.len()).unwrap_or(i64::MAX)
}

/// Deletes the keys of one store (or of every store of the project), fixing usage.
fn delete_keys(conn: &Connection, project: &str, store: Option<&str>) -> Result<(), StoreError> {
    let (keys, bytes): (i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(length(CAST(key AS BLOB)) + length(value)), 0)
         FROM kv WHERE project = ?1 AND (?2 IS NULL OR store = ?2)",
        params![project, store],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for table in ["kv", "kv_changes"] {
        conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE project = ?1 AND (?2 IS NULL OR store = ?2)"
        ))?
        .execute(params![project, store])?;
    }
    add_usage(conn, project, -keys, -bytes)
}

#[async_trait::async_trait]
impl KvStore for DataStore {
    async fn kv_create_store(&self, project: &str, store: &str) -> Result<bool, StoreError> {
        let (p, s) = (project.to_owned(), store.to_owned());
        self.write(move |ctx| {
            Ok(ctx.conn.prepare_cached(
                "INSERT OR IGNORE INTO kv_stores (project, name, created_at) VALUES (?1, ?2, ?3)",
                )?.execute(
                params![p, s, now_ms()],
            )? == 1)
        })
        .await
    }

    async fn kv_stores(&self, project: &str) -> Result<Vec<KvStoreInfo>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT s.name, s.created_at, count(k.key),
                        coalesce(sum(length(CAST(k.key AS BLOB)) + length(k.value)), 0)
                 FROM kv_stores s LEFT JOIN kv k ON k.project = s.project AND k.store = s.name
                 WHERE s.project = ?1 GROUP BY s.name ORDER BY s.name",
            )?;
            let rows = stmt.query_map([project], |r| {
                Ok(KvStoreInfo {
                    name: r.get(0)?,
                    created_at: r.get(1)?,
                    keys: to_u64(r.get(2)?),
                    bytes: to_u64(r.get(3)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    async fn kv_has_store(&self, project: &str, store: &str) -> Result<bool, StoreError> {
        self.read(|conn| Ok(store_watched(conn, project, store)?.is_some()))
    }

    async fn kv_delete_store(&self, project: &str, store: &str) -> Result<bool, StoreError> {
        let (p, s) = (project.to_owned(), store.to_owned());
        self.write(move |ctx| {
            delete_keys(ctx.conn, &p, Some(&s))?;
            Ok(ctx
                .conn
                .prepare_cached("DELETE FROM kv_stores WHERE project = ?1 AND name = ?2")?
                .execute(params![p, s])?
                == 1)
        })
        .await
    }

    async fn kv_delete_project(&self, project: &str) -> Result<(), StoreError> {
        let p = project.to_owned();
        self.write(move |ctx| {
            delete_keys(ctx.conn, &p, None)?;
            ctx.conn
                .execute("DELETE FROM kv_stores WHERE project = ?1", [&p])?;
            ctx.conn
                .execute("DELETE FROM kv_usage WHERE project = ?1", [&p])?;
            Ok(())
        })
        .await
    }

    async fn kv_get(
        &self,
        project: &str,
        store: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<KvEntry>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(GET)?
                .query_row(params![project, store, key, now], entry)
                .optional()?)
        })
    }

    async fn kv_get_many(
        &self,
        project: &str,
        store: &str,
        keys: &[String],
        now: i64,
    ) -> Result<Vec<Option<KvEntry>>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(GET)?;
            keys.iter()
                .map(|k| {
                    Ok(stmt
                        .query_row(params![project, store, k, now], entry)
                        .optional()?)
                })
                .collect()
        })
    }

    async fn kv_write(
        &self,
        project: &str,
        store: &str,
        writes: Vec<KvWrite>,
        quota: Option<u64>,
        now: i64,
    ) -> Result<Vec<KvOutcome>, StoreError> {
        let (p, s) = (project.to_owned(), store.to_owned());
        self.write(move |ctx| apply(ctx, &p, &s, writes, quota, now))
            .await
    }

    async fn kv_list(
        &self,
        project: &str,
        store: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let end = prefix_end(prefix);
        // A cursor before the prefix is no cursor.
        let from = after.filter(|a| *a >= prefix).map(str::to_owned);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT key FROM kv
                 WHERE project = ?1 AND store = ?2 AND key >= ?3 AND (?4 IS NULL OR key > ?4)
                   AND (?5 IS NULL OR key < ?5) AND (expires_at IS NULL OR expires_at > ?6)
                 ORDER BY key LIMIT ?7",
            )?;
            let rows = stmt.query_map(
                params![
                    project,
                    store,
                    prefix,
                    from,
                    end,
                    now,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| r.get(0),
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    async fn kv_usage(&self, project: &str) -> Result<KvUsage, StoreError> {
        self.read(|conn| usage(conn, project))
    }

    async fn kv_watch(&self, project: &str, store: &str) -> Result<(), StoreError> {
        // Every reconcile follows every watched store again: already watched is a read.
        if self.read(|conn| store_watched(conn, project, store))? == Some(true) {
            return Ok(());
        }
        let (p, s) = (project.to_owned(), store.to_owned());
        self.write(move |ctx| {
            let n = ctx
                .conn
                .prepare_cached(
                    "UPDATE kv_stores SET watched = 1 WHERE project = ?1 AND name = ?2",
                )?
                .execute(params![p, s])?;
            if n == 0 {
                return Err(StoreError::NoSuchKvStore { store: s });
            }
            Ok(())
        })
        .await
    }

    async fn kv_changes(
        &self,
        project: &str,
        store: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<super::KvChange>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT revision, key, op, value, size, at FROM kv_changes
                 WHERE project = ?1 AND store = ?2 AND revision > ?3
                 ORDER BY revision LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![
                    project,
                    store,
                    to_i64(after),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok(super::KvChange {
                        revision: to_u64(r.get(0)?),
                        key: r.get(1)?,
                        deleted: r.get::<_, String>(2)? == "deleted",
                        value: r.get(3)?,
                        size: to_u64(r.get(4)?),
                        at: r.get(5)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    async fn kv_trim_changes(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |ctx| {
            Ok(ctx
                .conn
                .prepare_cached("DELETE FROM kv_changes WHERE at < ?1")?
                .execute([before])? as u64)
        })
        .await
    }

    async fn kv_purge_expired(&self, now: i64, limit: usize) -> Result<u64, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |ctx| {
            let conn = ctx.conn;
            let expired: Vec<(String, String, String, i64)> = conn
                .prepare(
                    "SELECT project, store, key, length(CAST(key AS BLOB)) + length(value)
                     FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2",
                )?
                .query_map(params![now, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            for (project, store, key, bytes) in &expired {
                conn.prepare_cached(
                    "DELETE FROM kv WHERE project = ?1 AND store = ?2 AND key = ?3",
                )?
                .execute(params![project, store, key])?;
                add_usage(conn, project, -1, -bytes)?;
            }
            Ok(expired.len() as u64)
        })
        .await
    }
}
