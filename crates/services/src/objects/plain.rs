//! Objects over plain HTTP, for callers that are not S3 clients (the control API behind
//! `updraft cp|ls|rm`, and functions with a bearer credential): put a byte stream, read an
//! object, list a prefix. Same store, same limits and quota, same commit rules and the same
//! grants ([`Caller::may`]) as the S3 listener.

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use s3s::crypto::{Checksum as _, Md5};
use updraft_store::objects::{BlobRead, ObjectAttrs, ObjectError, ObjectMeta, ObjectPut};

use super::{Caller, ObjectService, ObjectsError};

/// Why a plain call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlainError {
    /// A management-level error (no bucket, bad input, storage).
    #[error(transparent)]
    Objects(#[from] ObjectsError),
    /// No object under the key.
    #[error("no object `{0}`")]
    NoSuchKey(String),
    /// The body is larger than `[objects] max_object_bytes`.
    #[error("the object is larger than {0} bytes ([objects] max_object_bytes)")]
    TooLarge(u64),
    /// The project's quota would be passed.
    #[error("{0}")]
    Quota(String),
    /// The body broke off.
    #[error("the body broke off: {0}")]
    Body(String),
    /// The caller's grants do not cover it.
    #[error("{0}")]
    Denied(String),
}

impl From<ObjectError> for PlainError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::QuotaExceeded { .. } => Self::Quota(e.to_string()),
            ObjectError::NoSuchKey { key, .. } => Self::NoSuchKey(key),
            other => Self::Objects(other.into()),
        }
    }
}

impl ObjectService {
    /// The bucket `name` if `who` may read it (`write == false`) or write it.
    async fn reach(&self, who: &Caller, name: &str, write: bool) -> Result<(), PlainError> {
        let project = who.project.as_deref().unwrap_or_default();
        let bucket = self.owned_bucket(project, name).await?;
        if who.may(&bucket, write) {
            return Ok(());
        }
        let (what, how) = if write {
            ("write", "`bucket` or `bucket:write`")
        } else {
            ("read", "`bucket` or `bucket:read`")
        };
        Err(PlainError::Denied(match &who.function {
            Some(f) => format!(
                "function `{f}` may not {what} bucket `{name}`: grant it {how} in its `buckets`"
            ),
            None => format!("this credential may not {what} bucket `{name}`"),
        }))
    }

    /// Stores `body` as `key` in a bucket `who` may write, streaming it to a blob.
    ///
    /// # Errors
    /// [`PlainError`] for a missing bucket, a body past the size limit or the quota, or a
    /// storage failure; nothing is stored then.
    pub async fn put_stream<S, E>(
        &self,
        who: &Caller,
        bucket: &str,
        key: &str,
        content_type: Option<String>,
        mut body: S,
    ) -> Result<ObjectMeta, PlainError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        self.reach(who, bucket, true).await?;
        check_key(key)?;
        let limit = self.config.max_object_bytes;
        let mut writer = self.store.blob_writer().await?;
        let mut md5 = Md5::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| PlainError::Body(e.to_string()))?;
            if writer.written() + chunk.len() as u64 > limit {
                return Err(PlainError::TooLarge(limit));
            }
            md5.update(&chunk);
            writer.write(&chunk).await?;
        }
        let blob = writer.finish().await?;
        let put = ObjectPut {
            how: "Put",
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            blob,
            etag: hex::encode(md5.finalize()),
            attrs: ObjectAttrs {
                content_type,
                ..ObjectAttrs::default()
            },
            condition: Default::default(),
            writer: who.function.clone(),
        };
        Ok(self.store.put_object(put, self.config.quota()).await?)
    }

    /// The object under `key` in a bucket `who` may read, and a reader of all its bytes.
    ///
    /// # Errors
    /// [`PlainError::NoSuchKey`], or a missing bucket or storage failure.
    pub async fn open(
        &self,
        who: &Caller,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectMeta, BlobRead), PlainError> {
        self.reach(who, bucket, false).await?;
        // A concurrent replace removes the blob read here: read the metadata again.
        for _ in 0..3 {
            let meta = self
                .store
                .head_object(bucket, key)
                .await?
                .ok_or_else(|| PlainError::NoSuchKey(key.to_owned()))?;
            if let Some(read) = self.store.read_blob(&meta.blob, 0, meta.size).await? {
                return Ok((meta, read));
            }
        }
        Err(PlainError::Body(
            "the object kept changing while opened".into(),
        ))
    }

    /// Deletes the object under `key` in a bucket `who` may write; whether there was one.
    ///
    /// # Errors
    /// A missing bucket or storage failure.
    pub async fn delete(&self, who: &Caller, bucket: &str, key: &str) -> Result<bool, PlainError> {
        self.reach(who, bucket, true).await?;
        let by = who.function.as_deref();
        Ok(self.store.delete_object(bucket, key, by).await?.is_some())
    }

    /// Up to `limit` objects under `prefix` from `from` (the `next` of the previous page), of a
    /// bucket `who` may read.
    ///
    /// # Errors
    /// A missing bucket or storage failure.
    pub async fn list(
        &self,
        who: &Caller,
        bucket: &str,
        prefix: &str,
        from: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ObjectMeta>, Option<String>), PlainError> {
        self.reach(who, bucket, false).await?;
        let limit = limit.clamp(1, 1000);
        let mut page = self
            .store
            .list_objects(bucket, prefix, from.map(str::as_bytes), limit + 1)
            .await?;
        let next = (page.len() > limit).then(|| page.remove(limit).key);
        Ok((page, next))
    }
}

/// Keys are 1 to 1024 bytes of UTF-8, as on S3.
fn check_key(key: &str) -> Result<(), PlainError> {
    if key.is_empty() || key.len() > 1024 {
        return Err(ObjectsError::Invalid("an object key is 1 to 1024 bytes".into()).into());
    }
    Ok(())
}
