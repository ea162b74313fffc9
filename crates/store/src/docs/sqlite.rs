//! The SQLite implementation of [`DocStore`] on [`DataStore`]: one `docs` table; each declared
//! field has an expression index on `(project, collection, json_extract(body, '$.<field>'),
//! id)`, and queries use exactly that expression so SQLite serves them from it.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{
    DocOp, DocOutcome, DocQuery, DocRecord, DocStore, DocWrite, FilterOp, MAX_IN_VALUES,
    is_field_path,
};
use crate::data::{Ctx, DataStore, to_i64, to_u64};
use crate::kv::prefix_end;
use crate::{ChangeOp, Condition, DocChange, StoreError, now_ms};

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<DocRecord> {
    Ok(DocRecord {
        id: row.get(0)?,
        body: row.get(1)?,
        revision: to_u64(row.get(2)?),
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
    })
}

const COLUMNS: &str = "id, body, revision, created_at, updated_at";

/// The SQL expression of a field (checked: it is written into the statement).
fn expr(field: &str) -> Result<String, StoreError> {
    if is_field_path(field) {
        Ok(format!("json_extract(body, '$.{field}')"))
    } else {
        Err(StoreError::Corrupt(format!(
            "`{field}` is not a field path"
        )))
    }
}

/// The name of a field's index, or of a composite one (`a,b`).
fn index_name(field: &str) -> String {
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(field.as_bytes()));
    format!("docs_by_{}", &hash[..16])
}

/// A JSON value as `json_extract` would return it.
fn sql(v: &Value) -> Sql {
    match v {
        Value::Null => Sql::Null,
        Value::Bool(b) => Sql::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => Sql::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Sql::Text(s.clone()),
        other => Sql::Text(other.to_string()),
    }
}

fn get(
    conn: &Connection,
    project: &str,
    collection: &str,
    id: &str,
) -> Result<Option<DocRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM docs WHERE project = ?1 AND collection = ?2 AND id = ?3"
        ))?
        .query_row(params![project, collection, id], record)
        .optional()?)
}

fn size(r: &DocRecord) -> i64 {
    i64::try_from(r.id.len() + r.body.len()).unwrap_or(i64::MAX)
}

fn apply(
    ctx: &mut Ctx<'_>,
    project: &str,
    collection: &str,
    w: DocWrite,
    quota: Option<u64>,
    now: i64,
) -> Result<DocOutcome, StoreError> {
    let conn = ctx.conn;
    let exists = conn
        .prepare_cached("SELECT 1 FROM doc_collections WHERE project = ?1 AND name = ?2")?
        .query_row(params![project, collection], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Err(StoreError::NoSuchCollection {
            collection: collection.to_owned(),
        });
    }
    let before = get(conn, project, collection, &w.id)?;
    let holds = match w.condition {
        Condition::Any => true,
        Condition::Absent => before.is_none(),
        Condition::Revision(r) => before.as_ref().is_some_and(|d| d.revision == r),
    };
    if !holds {
        return Ok(DocOutcome::ConditionFailed {
            current: before.map(|d| d.revision),
        });
    }
    let old = before.as_ref().map_or(0, size);
    match w.op {
        DocOp::Delete => {
            if let Some(b) = &before {
                conn.prepare_cached(
                    "DELETE FROM docs WHERE project = ?1 AND collection = ?2 AND id = ?3",
                )?
                .execute(params![project, collection, w.id])?;
                add_bytes(conn, project, -old)?;
                let revision = ctx.next_revision();
                log(
                    ctx,
                    DocChange {
                        project: project.to_owned(),
                        collection: collection.to_owned(),
                        id: w.id.clone(),
                        revision,
                        op: ChangeOp::Deleted,
                        before: Some(b.body.clone()),
                        after: None,
                        at: now,
                    },
                )?;
            }
            Ok(DocOutcome::Deleted { before })
        }
        DocOp::Put(body) => {
            let after = DocRecord {
                id: w.id,
                body,
                revision: ctx.next_revision(),
                created_at: before.as_ref().map_or(now, |d| d.created_at),
                updated_at: now,
            };
            let delta = size(&after) - old;
            if let Some(limit) = quota
                && delta > 0
            {
                let used: i64 = conn
                    .prepare_cached(
                        "SELECT coalesce(sum(bytes), 0) FROM kv_usage WHERE project = ?1",
                    )?
                    .query_row([project], |r| r.get(0))?;
                let needed = to_u64(used).saturating_add(to_u64(delta));
                if needed > limit {
                    return Err(StoreError::QuotaExceeded { limit, needed });
                }
            }
            conn.prepare_cached(
                "INSERT INTO docs (project, collection, id, body, revision, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (project, collection, id) DO UPDATE
                 SET body = ?4, revision = ?5, updated_at = ?7",
            )?
            .execute(params![
                project,
                collection,
                after.id,
                after.body,
                to_i64(after.revision),
                after.created_at,
                after.updated_at
            ])?;
            add_bytes(conn, project, delta)?;
            log(
                ctx,
                DocChange {
                    project: project.to_owned(),
                    collection: collection.to_owned(),
                    id: after.id.clone(),
                    revision: after.revision,
                    op: if before.is_some() {
                        ChangeOp::Updated
                    } else {
                        ChangeOp::Created
                    },
                    before: before.as_ref().map(|b| b.body.clone()),
                    after: Some(after.body.clone()),
                    at: now,
                },
            )?;
            Ok(DocOutcome::Written { after, before })
        }
    }
}

/// Records a change in the log (same transaction) and for the announcement after commit.
fn log(ctx: &mut Ctx<'_>, c: DocChange) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO doc_changes (revision, project, collection, id, op, before, after, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            to_i64(c.revision),
            c.project,
            c.collection,
            c.id,
            c.op.as_str(),
            c.before,
            c.after,
            c.at
        ])?;
    ctx.changes.push(c);
    Ok(())
}

/// Adds `bytes` (maybe negative) to the project's stored bytes (shared with key-value data).
fn add_bytes(conn: &Connection, project: &str, bytes: i64) -> Result<(), StoreError> {
    if bytes != 0 {
        conn.prepare_cached(
            "INSERT INTO kv_usage (project, keys, bytes) VALUES (?1, 0, ?2)
             ON CONFLICT (project) DO UPDATE SET bytes = bytes + ?2",
        )?
        .execute(params![project, bytes])?;
    }
    Ok(())
}

/// The statement and parameters of `query`.
pub(super) fn compile(
    project: &str,
    collection: &str,
    query: &DocQuery,
) -> Result<(String, Vec<Sql>), StoreError> {
    // An equality filter with a sort on another field: read the filter's index (its matches
    // are then sorted), rather than walking the sort field's index past every non-match,
    // which SQLite's planner, knowing nothing of how selective the filter is, prefers.
    let eq = query
        .filters
        .iter()
        .find(|f| f.op == FilterOp::Eq && !f.value.is_null());
    // A composite index on (that field, the sort field) serves both: no sort at all.
    let hint = match (eq, &query.order) {
        (Some(f), Some((o, _))) if *o != f.field => {
            expr(&f.field)?;
            let composite = query
                .composites
                .iter()
                .find(|c| c.len() >= 2 && c[0] == f.field && c[1] == *o);
            match composite {
                Some(c) => format!(" INDEXED BY {}", index_name(&c.join(","))),
                None => format!(" INDEXED BY {}", index_name(&f.field)),
            }
        }
        _ => String::new(),
    };
    let mut sql_text =
        format!("SELECT {COLUMNS} FROM docs{hint} WHERE project = ?1 AND collection = ?2");
    let mut args = vec![
        Sql::Text(project.to_owned()),
        Sql::Text(collection.to_owned()),
    ];
    let bind = |args: &mut Vec<Sql>, v: Sql| {
        args.push(v);
        format!("?{}", args.len())
    };
    for f in &query.filters {
        let e = expr(&f.field)?;
        let clause = match (f.op, &f.value) {
            (FilterOp::Eq, Value::Null) => format!("{e} IS NULL"),
            (FilterOp::Ne, Value::Null) => format!("{e} IS NOT NULL"),
            (FilterOp::In, Value::Array(values)) => {
                let list: Vec<String> = values
                    .iter()
                    .take(MAX_IN_VALUES)
                    .map(|v| bind(&mut args, sql(v)))
                    .collect();
                format!("{e} IN ({})", list.join(", "))
            }
            (FilterOp::Prefix, Value::String(p)) => {
                let from = bind(&mut args, Sql::Text(p.clone()));
                match prefix_end(p) {
                    Some(end) => {
                        let to = bind(&mut args, Sql::Text(end));
                        format!("({e} >= {from} AND {e} < {to} AND typeof({e}) = 'text')")
                    }
                    None => format!("({e} >= {from} AND typeof({e}) = 'text')"),
                }
            }
            (FilterOp::In | FilterOp::Prefix, _) => {
                return Err(StoreError::Corrupt(format!(
                    "filter on `{}`: `in` takes a list, `prefix` a string",
                    f.field
                )));
            }
            (op, v) => {
                let p = bind(&mut args, sql(v));
                let o = match op {
                    FilterOp::Eq => "=",
                    FilterOp::Ne => "!=",
                    FilterOp::Lt => "<",
                    FilterOp::Le => "<=",
                    FilterOp::Gt => ">",
                    _ => ">=",
                };
                format!("{e} {o} {p}")
            }
        };
        sql_text.push_str(" AND ");
        sql_text.push_str(&clause);
    }
    // Sorting on a field an equality filter pins is sorting by id (and SQLite only sees that
    // the index already orders the rows when the constant term is left out).
    let pinned = |field: &str| {
        query
            .filters
            .iter()
            .any(|f| f.field == field && f.op == FilterOp::Eq && !f.value.is_null())
    };
    let (order_expr, desc) = match &query.order {
        Some((field, desc)) if pinned(field) => (None, *desc),
        Some((field, desc)) => (Some(expr(field)?), *desc),
        None => (None, false),
    };
    if let Some((value, id)) = &query.after {
        let id = bind(&mut args, Sql::Text(id.clone()));
        let (gt, id_cmp) = if desc { ("<", "<") } else { (">", ">") };
        let clause = match (&order_expr, value) {
            (None, _) => format!("id {id_cmp} {id}"),
            // NULLs sort first ascending, last descending.
            (Some(e), Value::Null) if !desc => {
                format!("({e} IS NOT NULL OR id {id_cmp} {id})")
            }
            (Some(e), Value::Null) => format!("({e} IS NULL AND id {id_cmp} {id})"),
            (Some(e), v) => {
                let p = bind(&mut args, sql(v));
                let nulls = if desc {
                    format!(" OR {e} IS NULL")
                } else {
                    String::new()
                };
                format!("({e} {gt} {p} OR ({e} = {p} AND id {id_cmp} {id}){nulls})")
            }
        };
        sql_text.push_str(" AND ");
        sql_text.push_str(&clause);
    }
    let dir = if desc { "DESC" } else { "ASC" };
    match &order_expr {
        Some(e) => sql_text.push_str(&format!(" ORDER BY {e} {dir}, id {dir}")),
        None => sql_text.push_str(&format!(" ORDER BY id {dir}")),
    }
    let limit = bind(
        &mut args,
        Sql::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX)),
    );
    sql_text.push_str(&format!(" LIMIT {limit}"));
    Ok((sql_text, args))
}

#[async_trait::async_trait]
impl DocStore for DataStore {
    async fn doc_collection_set(
        &self,
        project: &str,
        name: &str,
        spec: &str,
        indexes: &[String],
    ) -> Result<(), StoreError> {
        // Each entry's expressions: one for a field, several for a composite `a,b`.
        let exprs = indexes
            .iter()
            .map(|f| {
                f.split(',')
                    .map(expr)
                    .collect::<Result<Vec<_>, _>>()
                    .map(|e| (f.clone(), e.join(", ")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (p, n, s) = (project.to_owned(), name.to_owned(), spec.to_owned());
        self.write(move |ctx| {
            for (field, e) in &exprs {
                // One index per field path, shared by every collection that declares it.
                ctx.conn.execute_batch(&format!(
                    "CREATE INDEX IF NOT EXISTS {} ON docs (project, collection, {e}, id)",
                    index_name(field)
                ))?;
            }
            let now = now_ms();
            ctx.conn
                .prepare_cached(
                    "INSERT INTO doc_collections (project, name, spec, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)
                     ON CONFLICT (project, name) DO UPDATE SET spec = ?3, updated_at = ?4",
                )?
                .execute(params![p, n, s, now])?;
            Ok(())
        })
        .await
    }

    async fn doc_collections(&self, project: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name, spec FROM doc_collections WHERE project = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map([project], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    async fn doc_get(
        &self,
        project: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<DocRecord>, StoreError> {
        self.read(|conn| get(conn, project, collection, id))
    }

    async fn doc_write(
        &self,
        project: &str,
        collection: &str,
        write: DocWrite,
        quota: Option<u64>,
        now: i64,
    ) -> Result<DocOutcome, StoreError> {
        let (p, c) = (project.to_owned(), collection.to_owned());
        self.write(move |ctx| apply(ctx, &p, &c, write, quota, now))
            .await
    }

    async fn doc_query(
        &self,
        project: &str,
        collection: &str,
        query: &DocQuery,
    ) -> Result<Vec<DocRecord>, StoreError> {
        let (text, args) = compile(project, collection, query)?;
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&text)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), record)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    async fn doc_changes(
        &self,
        project: &str,
        collection: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DocChange>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT revision, id, op, before, after, at FROM doc_changes
                 WHERE project = ?1 AND collection = ?2 AND revision > ?3
                 ORDER BY revision LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![
                    project,
                    collection,
                    to_i64(after),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok(DocChange {
                        project: project.to_owned(),
                        collection: collection.to_owned(),
                        revision: to_u64(r.get(0)?),
                        id: r.get(1)?,
                        op: ChangeOp::parse(&r.get::<_, String>(2)?),
                        before: r.get(3)?,
                        after: r.get(4)?,
                        at: r.get(5)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn doc_subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<DocChange>> {
        self.announcements()
    }

    async fn doc_position(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let seq: i64 = conn
                .prepare_cached("SELECT seq FROM data_meta")?
                .query_row([], |r| r.get(0))?;
            Ok(to_u64(seq))
        })
    }

    async fn doc_trim_changes(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |ctx| {
            Ok(ctx
                .conn
                .prepare_cached("DELETE FROM doc_changes WHERE at < ?1")?
                .execute([before])? as u64)
        })
        .await
    }

    async fn doc_delete_project(&self, project: &str) -> Result<(), StoreError> {
        let p = project.to_owned();
        self.write(move |ctx| {
            let bytes: i64 = ctx
                .conn
                .prepare_cached(
                    "SELECT coalesce(sum(length(CAST(id AS BLOB)) + length(CAST(body AS BLOB))), 0)
                     FROM docs WHERE project = ?1",
                )?
                .query_row([&p], |r| r.get(0))?;
            ctx.conn
                .prepare_cached("DELETE FROM docs WHERE project = ?1")?
                .execute([&p])?;
            ctx.conn
                .prepare_cached("DELETE FROM doc_collections WHERE project = ?1")?
                .execute([&p])?;
            ctx.conn
                .prepare_cached("DELETE FROM doc_changes WHERE project = ?1")?
                .execute([&p])?;
            add_bytes(ctx.conn, &p, -bytes)
        })
        .await
    }
}
