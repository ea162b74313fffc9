//! Rows of the object tables: column lists, row mappers, and the writes several calls share
//! (an object's commit with its condition and quota checks, an upload's removal).

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    BucketInfo, ObjectAttrs, ObjectError, ObjectMeta, ObjectPut, ObjectQuota, ObjectUsage,
    PutCondition, S3KeyRecord, Upload,
};
use crate::data::{Ctx, to_i64, to_u64};
use crate::{StoreError, now_ms};

pub(super) fn bucket_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BucketInfo> {
    Ok(BucketInfo {
        name: r.get(0)?,
        project: r.get(1)?,
        public_read: r.get(2)?,
        cors: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub(super) const BUCKET_COLS: &str = "name, project, public_read, cors, created_at";

pub(super) fn attrs_of(text: &str) -> ObjectAttrs {
    serde_json::from_str(text).unwrap_or_default()
}

pub(super) fn attrs_text(attrs: &ObjectAttrs) -> String {
    serde_json::to_string(attrs).unwrap_or_else(|_| "{}".to_owned())
}

pub(super) fn key_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

pub(super) const OBJECT_COLS: &str = "bucket, key, size, etag, modified_at, blob, attrs";

pub(super) fn object_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectMeta> {
    Ok(ObjectMeta {
        bucket: r.get(0)?,
        key: key_text(r.get(1)?),
        size: to_u64(r.get(2)?),
        etag: r.get(3)?,
        modified_at: r.get(4)?,
        blob: r.get(5)?,
        attrs: attrs_of(&r.get::<_, String>(6)?),
    })
}

pub(super) fn get_object(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectMeta>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {OBJECT_COLS} FROM objects WHERE bucket = ?1 AND key = ?2"
        ))?
        .query_row(params![bucket, key.as_bytes()], object_row)
        .optional()?)
}

pub(super) fn get_bucket(conn: &Connection, name: &str) -> Result<Option<BucketInfo>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {BUCKET_COLS} FROM buckets WHERE name = ?1"
        ))?
        .query_row([name], bucket_row)
        .optional()?)
}

pub(super) fn upload_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Upload> {
    Ok(Upload {
        id: r.get(0)?,
        bucket: r.get(1)?,
        key: key_text(r.get(2)?),
        attrs: attrs_of(&r.get::<_, String>(3)?),
        initiated_at: r.get(4)?,
    })
}

pub(super) const UPLOAD_COLS: &str = "id, bucket, key, attrs, initiated_at";

pub(super) fn usage_of(conn: &Connection, project: &str) -> Result<ObjectUsage, StoreError> {
    Ok(conn
        .prepare_cached("SELECT objects, bytes FROM object_usage WHERE project = ?1")?
        .query_row([project], |r| {
            Ok(ObjectUsage {
                objects: to_u64(r.get(0)?),
                bytes: to_u64(r.get(1)?),
            })
        })
        .optional()?
        .unwrap_or_default())
}

pub(super) fn add_usage(
    conn: &Connection,
    project: &str,
    objects: i64,
    bytes: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO object_usage (project, objects, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (project) DO UPDATE SET objects = max(0, objects + ?2),
             bytes = max(0, bytes + ?3)",
    )?
    .execute(params![project, objects, bytes])?;
    Ok(())
}

/// Commits `put` inside a write: checks the bucket, the condition and the quota, replaces the
/// row. Returns the object and the blob it replaced.
pub(super) fn commit(
    ctx: &mut Ctx<'_>,
    put: &ObjectPut,
    quota: ObjectQuota,
) -> Result<Result<(ObjectMeta, Option<String>), ObjectError>, StoreError> {
    let conn = ctx.conn;
    let Some(bucket) = get_bucket(conn, &put.bucket)? else {
        return Ok(Err(ObjectError::NoSuchBucket(put.bucket.clone())));
    };
    let old = get_object(conn, &put.bucket, &put.key)?;
    match (&put.condition, &old) {
        (PutCondition::Absent, Some(_)) => {
            return Ok(Err(ObjectError::PreconditionFailed(
                "the object exists (If-None-Match: *)".into(),
            )));
        }
        (PutCondition::Matches(_), None) => {
            return Ok(Err(ObjectError::PreconditionFailed(
                "the object does not exist (If-Match)".into(),
            )));
        }
        (PutCondition::Matches(tag), Some(o)) if tag != "*" && *tag != o.etag => {
            return Ok(Err(ObjectError::PreconditionFailed(
                "the object's ETag differs (If-Match)".into(),
            )));
        }
        _ => {}
    }
    let usage = usage_of(conn, &bucket.project)?;
    let (old_size, old_count) = old.as_ref().map_or((0, 0), |o| (o.size, 1));
    let objects = usage.objects + 1 - old_count;
    let bytes = (usage.bytes + put.blob.size).saturating_sub(old_size);
    if objects > quota.max_objects && old.is_none() {
        return Ok(Err(ObjectError::QuotaExceeded {
            what: "objects",
            limit: quota.max_objects,
            needed: objects,
        }));
    }
    if bytes > quota.max_bytes && put.blob.size > old_size {
        return Ok(Err(ObjectError::QuotaExceeded {
            what: "bytes",
            limit: quota.max_bytes,
            needed: bytes,
        }));
    }
    let now = now_ms();
    conn.prepare_cached(
        "INSERT OR REPLACE INTO objects (bucket, key, size, etag, modified_at, blob, attrs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        put.bucket,
        put.key.as_bytes(),
        to_i64(put.blob.size),
        put.etag,
        now,
        put.blob.id,
        attrs_text(&put.attrs)
    ])?;
    add_usage(
        conn,
        &bucket.project,
        1 - to_i64(old_count),
        to_i64(put.blob.size) - to_i64(old_size),
    )?;
    log_change(
        ctx,
        &put.bucket,
        &put.key,
        &format!("ObjectCreated:{}", put.how),
        (put.blob.size, &put.etag),
        now,
        put.writer.as_deref(),
    )?;
    let meta = ObjectMeta {
        bucket: put.bucket.clone(),
        key: put.key.clone(),
        size: put.blob.size,
        etag: put.etag.clone(),
        modified_at: now,
        blob: put.blob.id.clone(),
        attrs: put.attrs.clone(),
    };
    Ok(Ok((meta, old.map(|o| o.blob))))
}

pub(super) fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<S3KeyRecord> {
    Ok(S3KeyRecord {
        id: r.get(0)?,
        project: r.get(1)?,
        name: r.get(2)?,
        grants: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
        created_at: r.get(4)?,
    })
}

/// Logs a change of `bucket` in this write if the bucket is watched.
pub(super) fn log_change(
    ctx: &mut Ctx<'_>,
    bucket: &str,
    key: &str,
    event: &str,
    (size, etag): (u64, &str),
    at: i64,
    writer: Option<&str>,
) -> Result<(), StoreError> {
    let watched: bool = ctx
        .conn
        .prepare_cached("SELECT watched FROM buckets WHERE name = ?1")?
        .query_row([bucket], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    if !watched {
        return Ok(());
    }
    let revision = ctx.next_revision();
    ctx.conn
        .prepare_cached(
            "INSERT INTO object_changes (revision, bucket, key, event, size, etag, at, writer)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            to_i64(revision),
            bucket,
            key.as_bytes(),
            event,
            to_i64(size),
            etag,
            at,
            writer
        ])?;
    ctx.logged = true;
    Ok(())
}

/// Deletes an upload and its parts; their blobs, or `None` if there is no such upload.
pub(super) fn take_upload(c: &Connection, upload: &str) -> Result<Option<Vec<String>>, StoreError> {
    // Its parts' bytes counted toward the project while it was open; they count no more.
    let counted: Option<(String, i64)> = c
        .prepare_cached(
            "SELECT b.project, (SELECT COALESCE(SUM(size), 0) FROM parts WHERE upload = ?1)
             FROM uploads u JOIN buckets b ON b.name = u.bucket WHERE u.id = ?1",
        )?
        .query_row([upload], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if c.execute("DELETE FROM uploads WHERE id = ?1", [upload])? == 0 {
        return Ok(None);
    }
    if let Some((project, bytes)) = counted {
        add_usage(c, &project, 0, -bytes)?;
    }
    let blobs = {
        let mut stmt = c.prepare_cached("SELECT blob FROM parts WHERE upload = ?1")?;
        let rows = stmt.query_map([upload], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    c.execute("DELETE FROM parts WHERE upload = ?1", [upload])?;
    Ok(Some(blobs))
}

/// The smallest byte string greater than every string starting with `prefix` (`None`: there
/// is none, or the prefix is empty).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
