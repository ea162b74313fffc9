//! [`ObjectStore`] on [`FsObjects`]: rows in `data.db` (through its writer thread), blobs as
//! files.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{
    BUCKET_COLS, OBJECT_COLS, UPLOAD_COLS, add_usage, attrs_text, bucket_row, commit, get_bucket,
    get_object, key_row, log_change, object_row, prefix_successor, take_upload, upload_row,
    usage_of,
};
use super::{
    BlobRead, BlobRef, BlobWriter, BucketInfo, FsObjects, ObjectAttrs, ObjectChange, ObjectError,
    ObjectMeta, ObjectPut, ObjectQuota, ObjectStore, ObjectUsage, Part, S3KeyRecord, Upload,
};
use crate::data::{Ctx, to_i64, to_u64};
use crate::{StoreError, now_ms};

/// Most objects one statement deletes or lists in a sweep.
const SWEEP_BATCH: usize = 512;
impl FsObjects {
    /// Runs `f` in a write; a domain error undoes the write's changes.
    async fn write<T, F>(&self, f: F) -> Result<T, ObjectError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_>) -> Result<Result<T, ObjectError>, StoreError> + Send + 'static,
    {
        self.data
            .write(move |ctx| {
                let out = f(ctx)?;
                if out.is_err() {
                    ctx.rollback = true;
                }
                Ok(out)
            })
            .await?
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, ObjectError> {
        Ok(self.data.read(f)?)
    }
}

#[async_trait::async_trait]
impl ObjectStore for FsObjects {
    async fn create_bucket(&self, bucket: &BucketInfo) -> Result<(), ObjectError> {
        let b = bucket.clone();
        self.write(move |ctx| {
            if let Some(existing) = get_bucket(ctx.conn, &b.name)? {
                return Ok(Err(ObjectError::BucketExists {
                    owned: existing.project == b.project,
                    name: b.name,
                }));
            }
            ctx.conn.execute(
                &format!("INSERT INTO buckets ({BUCKET_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![b.name, b.project, b.public_read, b.cors, b.created_at],
            )?;
            Ok(Ok(()))
        })
        .await
    }

    async fn bucket(&self, name: &str) -> Result<Option<BucketInfo>, ObjectError> {
        self.read(|c| get_bucket(c, name))
    }

    async fn buckets(&self, project: &str) -> Result<Vec<BucketInfo>, ObjectError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {BUCKET_COLS} FROM buckets WHERE project = ?1 ORDER BY name"
            ))?;
            let rows = stmt.query_map([project], bucket_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    async fn update_bucket(&self, bucket: &BucketInfo) -> Result<(), ObjectError> {
        let b = bucket.clone();
        self.write(move |ctx| {
            let n = ctx.conn.execute(
                "UPDATE buckets SET public_read = ?2, cors = ?3 WHERE name = ?1",
                params![b.name, b.public_read, b.cors],
            )?;
            Ok(if n == 0 {
                Err(ObjectError::NoSuchBucket(b.name))
            } else {
                Ok(())
            })
        })
        .await
    }

    async fn delete_bucket(&self, name: &str) -> Result<(), ObjectError> {
        let name = name.to_owned();
        self.write(move |ctx| {
            let c = ctx.conn;
            if get_bucket(c, &name)?.is_none() {
                return Ok(Err(ObjectError::NoSuchBucket(name)));
            }
            let busy: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1)
                     OR EXISTS (SELECT 1 FROM uploads WHERE bucket = ?1)",
                [&name],
                |r| r.get(0),
            )?;
            if busy {
                return Ok(Err(ObjectError::BucketNotEmpty(name)));
            }
            c.execute("DELETE FROM buckets WHERE name = ?1", [&name])?;
            Ok(Ok(()))
        })
        .await
    }

    async fn watch_bucket(&self, name: &str) -> Result<(), ObjectError> {
        // Every reconcile follows every watched bucket again: already watched is a read.
        let watched = self.read(|c| {
            Ok(
                c.prepare_cached("SELECT watched FROM buckets WHERE name = ?1")?
                    .query_row([name], |r| r.get::<_, bool>(0))
                    .optional()?,
            )
        })?;
        match watched {
            Some(true) => return Ok(()),
            None => return Err(ObjectError::NoSuchBucket(name.to_owned())),
            Some(false) => {}
        }
        let name = name.to_owned();
        self.write(move |ctx| {
            let n = ctx
                .conn
                .execute("UPDATE buckets SET watched = 1 WHERE name = ?1", [&name])?;
            Ok(if n == 0 {
                Err(ObjectError::NoSuchBucket(name))
            } else {
                Ok(())
            })
        })
        .await
    }

    async fn object_changes(
        &self,
        bucket: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, ObjectError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT revision, key, event, size, etag, at, writer FROM object_changes
                 WHERE bucket = ?1 AND revision > ?2 ORDER BY revision LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![
                    bucket,
                    to_i64(after),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok(ObjectChange {
                        revision: to_u64(r.get(0)?),
                        key: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(1)?).into_owned(),
                        event: r.get(2)?,
                        size: to_u64(r.get(3)?),
                        etag: r.get(4)?,
                        at: r.get(5)?,
                        writer: r.get(6)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    async fn trim_object_changes(&self, before: i64) -> Result<u64, ObjectError> {
        self.write(move |ctx| {
            Ok(Ok(ctx
                .conn
                .execute("DELETE FROM object_changes WHERE at < ?1", [before])?
                as u64))
        })
        .await
    }

    async fn blob_writer(&self) -> Result<Box<dyn BlobWriter>, ObjectError> {
        self.new_writer().await
    }

    async fn read_blob(
        &self,
        id: &str,
        offset: u64,
        len: u64,
    ) -> Result<Option<BlobRead>, ObjectError> {
        self.open_blob(id, offset, len).await
    }

    async fn discard_blob(&self, id: &str) -> Result<(), ObjectError> {
        self.remove_blobs(vec![id.to_owned()]).await;
        Ok(())
    }

    async fn sweep_blobs(&self, older_than_ms: i64) -> Result<u64, ObjectError> {
        let this = self.clone();
        let files = tokio::task::spawn_blocking(move || this.old_files(older_than_ms))
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        let mut removed = 0;
        for chunk in files.chunks(SWEEP_BATCH) {
            for (id, path) in chunk {
                let named = match id {
                    Some(id) => self.read(|c| {
                        Ok(c.prepare_cached(
                            "SELECT EXISTS (SELECT 1 FROM objects WHERE blob = ?1)
                                 OR EXISTS (SELECT 1 FROM parts WHERE blob = ?1)",
                        )?
                        .query_row([id], |r| r.get::<_, bool>(0))?)
                    })?,
                    None => false,
                };
                if !named && tokio::fs::remove_file(path).await.is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    async fn put_object(
        &self,
        put: ObjectPut,
        quota: ObjectQuota,
    ) -> Result<ObjectMeta, ObjectError> {
        let blob = put.blob.id.clone();
        let out = self.write(move |ctx| commit(ctx, &put, quota)).await;
        match out {
            Ok((meta, replaced)) => {
                self.remove_blobs(replaced.into_iter().collect()).await;
                Ok(meta)
            }
            Err(e) => {
                self.remove_blobs(vec![blob]).await;
                Err(e)
            }
        }
    }

    async fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectMeta>, ObjectError> {
        self.read(|c| get_object(c, bucket, key))
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        writer: Option<&str>,
    ) -> Result<Option<ObjectMeta>, ObjectError> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let writer = writer.map(str::to_owned);
        let old = self
            .write(move |ctx| {
                let c = ctx.conn;
                let Some(b) = get_bucket(c, &bucket)? else {
                    return Ok(Err(ObjectError::NoSuchBucket(bucket)));
                };
                let old = get_object(c, &bucket, &key)?;
                if let Some(o) = &old {
                    c.execute(
                        "DELETE FROM objects WHERE bucket = ?1 AND key = ?2",
                        params![bucket, key.as_bytes()],
                    )?;
                    add_usage(c, &b.project, -1, -to_i64(o.size))?;
                    log_change(
                        ctx,
                        &bucket,
                        &key,
                        "ObjectRemoved:Delete",
                        (0, ""),
                        now_ms(),
                        writer.as_deref(),
                    )?;
                }
                Ok(Ok(old))
            })
            .await?;
        if let Some(o) = &old {
            self.remove_blobs(vec![o.blob.clone()]).await;
        }
        Ok(old)
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        from: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>, ObjectError> {
        let start: Vec<u8> = match from {
            Some(a) if a > prefix.as_bytes() => a.to_vec(),
            _ => prefix.as_bytes().to_vec(),
        };
        let end = prefix_successor(prefix.as_bytes());
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {OBJECT_COLS} FROM objects WHERE bucket = ?1 AND key >= ?2
                 AND (?3 IS NULL OR key < ?3) ORDER BY key LIMIT ?4"
            ))?;
            let rows = stmt.query_map(
                params![bucket, start, end, i64::try_from(limit).unwrap_or(i64::MAX)],
                object_row,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    async fn usage(&self, project: &str) -> Result<ObjectUsage, ObjectError> {
        self.read(|c| usage_of(c, project))
    }

    async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
    ) -> Result<Upload, ObjectError> {
        let upload = Upload {
            id: hex::encode(rand::random::<[u8; 16]>()),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            attrs,
            initiated_at: now_ms(),
        };
        let u = upload.clone();
        self.write(move |ctx| {
            if get_bucket(ctx.conn, &u.bucket)?.is_none() {
                return Ok(Err(ObjectError::NoSuchBucket(u.bucket)));
            }
            ctx.conn.execute(
                &format!("INSERT INTO uploads ({UPLOAD_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![
                    u.id,
                    u.bucket,
                    u.key.as_bytes(),
                    attrs_text(&u.attrs),
                    u.initiated_at
                ],
            )?;
            Ok(Ok(()))
        })
        .await?;
        Ok(upload)
    }

    async fn upload(&self, id: &str) -> Result<Option<Upload>, ObjectError> {
        self.read(|c| {
            Ok(
                c.prepare_cached(&format!("SELECT {UPLOAD_COLS} FROM uploads WHERE id = ?1"))?
                    .query_row([id], upload_row)
                    .optional()?,
            )
        })
    }

    async fn uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<Upload>, ObjectError> {
        let end = prefix_successor(prefix.as_bytes());
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {UPLOAD_COLS} FROM uploads WHERE bucket = ?1 AND key >= ?2
                 AND (?3 IS NULL OR key < ?3) ORDER BY key, initiated_at LIMIT 10000"
            ))?;
            let rows = stmt.query_map(params![bucket, prefix.as_bytes(), end], upload_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    async fn put_part(
        &self,
        upload: &str,
        number: u32,
        blob: BlobRef,
        etag: &str,
        quota: ObjectQuota,
    ) -> Result<Part, ObjectError> {
        let part = Part {
            number,
            size: blob.size,
            etag: etag.to_owned(),
            blob: blob.id.clone(),
            uploaded_at: now_ms(),
        };
        let (p, upload) = (part.clone(), upload.to_owned());
        let out = self
            .write(move |ctx| {
                let c = ctx.conn;
                let project: Option<String> = c
                    .query_row(
                        "SELECT b.project FROM uploads u JOIN buckets b ON b.name = u.bucket
                         WHERE u.id = ?1",
                        [&upload],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(project) = project else {
                    return Ok(Err(ObjectError::NoSuchUpload(upload)));
                };
                let old: Option<(String, i64)> = c
                    .query_row(
                        "SELECT blob, size FROM parts WHERE upload = ?1 AND number = ?2",
                        params![upload, p.number],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                // Parts count toward the project's bytes while the upload is open.
                let old_size = old.as_ref().map_or(0, |(_, s)| to_u64(*s));
                let usage = usage_of(c, &project)?;
                let bytes = (usage.bytes + p.size).saturating_sub(old_size);
                if p.size > old_size && bytes > quota.max_bytes {
                    return Ok(Err(ObjectError::QuotaExceeded {
                        what: "bytes",
                        limit: quota.max_bytes,
                        needed: bytes,
                    }));
                }
                add_usage(c, &project, 0, to_i64(p.size) - to_i64(old_size))?;
                let old = old.map(|(blob, _)| blob);
                c.execute(
                    "INSERT OR REPLACE INTO parts (upload, number, size, etag, blob, uploaded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        upload,
                        p.number,
                        to_i64(p.size),
                        p.etag,
                        p.blob,
                        p.uploaded_at
                    ],
                )?;
                Ok(Ok(old))
            })
            .await;
        match out {
            Ok(old) => {
                self.remove_blobs(old.into_iter().collect()).await;
                Ok(part)
            }
            Err(e) => {
                self.remove_blobs(vec![blob.id]).await;
                Err(e)
            }
        }
    }

    async fn parts(&self, upload: &str) -> Result<Vec<Part>, ObjectError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT number, size, etag, blob, uploaded_at FROM parts WHERE upload = ?1
                 ORDER BY number",
            )?;
            let rows = stmt.query_map([upload], |r| {
                Ok(Part {
                    number: r.get(0)?,
                    size: to_u64(r.get(1)?),
                    etag: r.get(2)?,
                    blob: r.get(3)?,
                    uploaded_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    async fn complete_upload(
        &self,
        upload: &str,
        put: ObjectPut,
        quota: ObjectQuota,
    ) -> Result<ObjectMeta, ObjectError> {
        let blob = put.blob.id.clone();
        let upload = upload.to_owned();
        let out = self
            .write(move |ctx| {
                let parts = take_upload(ctx.conn, &upload)?;
                let Some(parts) = parts else {
                    return Ok(Err(ObjectError::NoSuchUpload(upload)));
                };
                Ok(commit(ctx, &put, quota)?.map(|(meta, old)| (meta, old, parts)))
            })
            .await;
        match out {
            Ok((meta, old, mut parts)) => {
                parts.extend(old);
                self.remove_blobs(parts).await;
                Ok(meta)
            }
            Err(e) => {
                self.remove_blobs(vec![blob]).await;
                Err(e)
            }
        }
    }

    async fn abort_upload(&self, upload: &str) -> Result<(), ObjectError> {
        let upload = upload.to_owned();
        let parts = self
            .write(move |ctx| {
                Ok(take_upload(ctx.conn, &upload)?.ok_or(ObjectError::NoSuchUpload(upload)))
            })
            .await?;
        self.remove_blobs(parts).await;
        Ok(())
    }

    async fn create_s3_key(&self, key: &S3KeyRecord) -> Result<(), ObjectError> {
        let k = key.clone();
        self.write(move |ctx| {
            ctx.conn.execute(
                "INSERT INTO s3_keys (id, project, name, grants, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    k.id,
                    k.project,
                    k.name,
                    serde_json::to_string(&k.grants).unwrap_or_else(|_| "[]".into()),
                    k.created_at
                ],
            )?;
            Ok(Ok(()))
        })
        .await
    }

    async fn s3_key(&self, id: &str) -> Result<Option<S3KeyRecord>, ObjectError> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, project, name, grants, created_at FROM s3_keys WHERE id = ?1",
            )?
            .query_row([id], key_row)
            .optional()?)
        })
    }

    async fn s3_keys(&self, project: &str) -> Result<Vec<S3KeyRecord>, ObjectError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, project, name, grants, created_at FROM s3_keys WHERE project = ?1
                 ORDER BY created_at, id",
            )?;
            let rows = stmt.query_map([project], key_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    async fn delete_s3_key(&self, project: &str, id: &str) -> Result<(), ObjectError> {
        let (project, id) = (project.to_owned(), id.to_owned());
        self.write(move |ctx| {
            let n = ctx.conn.execute(
                "DELETE FROM s3_keys WHERE project = ?1 AND id = ?2",
                params![project, id],
            )?;
            Ok(if n == 0 {
                Err(ObjectError::NoSuchKeyId(id))
            } else {
                Ok(())
            })
        })
        .await
    }
}
