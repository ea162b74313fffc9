//! The S3 operations: bucket calls, reads and deletes here; writes in `put`, listings in
//! `list`, multipart uploads in `multipart`. Every operation not implemented answers S3's
//! `NotImplemented` (the `s3s` default).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use updraft_store::objects::{ObjectError, ObjectMeta};

use super::ObjectService;
use super::access::Caller;
use updraft_api::check_bucket_name;

/// The S3 trait over the service.
pub(crate) struct Api(pub(crate) Arc<ObjectService>);

/// An internal failure (logged, answered as `InternalError`).
pub(crate) fn internal(e: impl std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "object storage failed");
    s3_error!(InternalError)
}

/// A store error as S3's error.
pub(crate) fn object_err(e: ObjectError) -> S3Error {
    match e {
        ObjectError::NoSuchBucket(_) => s3_error!(NoSuchBucket),
        ObjectError::BucketExists { owned: true, .. } => s3_error!(BucketAlreadyOwnedByYou),
        ObjectError::BucketExists { owned: false, .. } => s3_error!(BucketAlreadyExists),
        ObjectError::BucketNotEmpty(_) => s3_error!(BucketNotEmpty),
        ObjectError::NoSuchKey { .. } => s3_error!(NoSuchKey),
        ObjectError::NoSuchUpload(_) => s3_error!(NoSuchUpload),
        ObjectError::PreconditionFailed(why) => s3_error!(PreconditionFailed, "{why}"),
        e @ ObjectError::QuotaExceeded { .. } => {
            // Ceph RGW's code for the same refusal: clients show it and do not retry.
            let mut err =
                S3Error::with_message(S3ErrorCode::Custom("QuotaExceeded".into()), e.to_string());
            err.set_status_code(http::StatusCode::FORBIDDEN);
            err
        }
        other => internal(other),
    }
}

/// The bucket `name`, or S3's `NoSuchBucket`.
pub(crate) async fn existing_bucket(
    svc: &ObjectService,
    name: &str,
) -> S3Result<updraft_store::objects::BucketInfo> {
    svc.store
        .bucket(name)
        .await
        .map_err(object_err)?
        .ok_or_else(|| s3_error!(NoSuchBucket))
}

/// The caller [`super::access::Access`] resolved.
pub(crate) fn caller<T>(req: &S3Request<T>) -> S3Result<&Caller> {
    req.extensions
        .get::<Caller>()
        .ok_or_else(|| s3_error!(AccessDenied))
}

/// The caller's project (anonymous callers have none).
pub(crate) fn project<T>(req: &S3Request<T>) -> S3Result<String> {
    caller(req)?
        .project
        .clone()
        .ok_or_else(|| s3_error!(AccessDenied))
}

/// A time in ms since the epoch as S3's timestamp.
pub(crate) fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// S3's timestamp in ms since the epoch.
pub(crate) fn millis(t: Timestamp) -> i64 {
    let t: time::OffsetDateTime = t.into();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Whether `etag` matches a condition (`*` matches any).
fn etag_matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    }
}

/// Checks GET/HEAD conditions in RFC 9110's order.
fn check_conditions(
    meta: &ObjectMeta,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    // Second resolution: HTTP dates have no milliseconds.
    let modified = meta.modified_at / 1000;
    if let Some(c) = if_match {
        if !etag_matches(c, &meta.etag) {
            return Err(s3_error!(PreconditionFailed));
        }
    } else if let Some(t) = if_unmodified_since
        && modified > millis(t.clone()) / 1000
    {
        return Err(s3_error!(PreconditionFailed));
    }
    if let Some(c) = if_none_match {
        if etag_matches(c, &meta.etag) {
            return Err(s3_error!(NotModified));
        }
    } else if let Some(t) = if_modified_since
        && modified <= millis(t.clone()) / 1000
    {
        return Err(s3_error!(NotModified));
    }
    Ok(())
}

impl Api {
    async fn meta(&self, bucket: &str, key: &str) -> S3Result<ObjectMeta> {
        match self
            .0
            .store
            .head_object(bucket, key)
            .await
            .map_err(object_err)?
        {
            Some(m) => Ok(m),
            None => {
                if self
                    .0
                    .store
                    .bucket(bucket)
                    .await
                    .map_err(object_err)?
                    .is_none()
                {
                    return Err(s3_error!(NoSuchBucket));
                }
                Err(s3_error!(NoSuchKey))
            }
        }
    }

    /// Opens `len` bytes of the object from `offset`, reading its metadata again if it was
    /// replaced in between (its old blob is gone).
    async fn open(
        &self,
        mut meta: ObjectMeta,
        offset: u64,
        len: u64,
    ) -> S3Result<(ObjectMeta, updraft_store::objects::BlobRead)> {
        for _ in 0..3 {
            if let Some(r) = self
                .0
                .store
                .read_blob(&meta.blob, offset, len)
                .await
                .map_err(object_err)?
            {
                return Ok((meta, r));
            }
            meta = self.meta(&meta.bucket, &meta.key).await?;
            if offset.saturating_add(len) > meta.size {
                return Err(s3_error!(
                    PreconditionFailed,
                    "the object changed while read"
                ));
            }
        }
        Err(s3_error!(
            SlowDown,
            "the object is being replaced; try again"
        ))
    }
}

/// A blob's bytes as a body stream, 64 KiB at a time.
pub(crate) fn body_of(read: updraft_store::objects::BlobRead) -> StreamingBlob {
    StreamingBlob::wrap(crate::chunks::ReadStream::new(read))
}

fn checksums_out(meta: &ObjectMeta) -> Checksum {
    let c = &meta.attrs.checksums;
    Checksum {
        checksum_crc32: c.get("crc32").cloned(),
        checksum_crc32c: c.get("crc32c").cloned(),
        checksum_crc64nvme: c.get("crc64nvme").cloned(),
        checksum_sha1: c.get("sha1").cloned(),
        checksum_sha256: c.get("sha256").cloned(),
        ..Default::default()
    }
}

fn metadata_out(meta: &ObjectMeta) -> Option<Metadata> {
    (!meta.attrs.metadata.is_empty()).then(|| {
        meta.attrs
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

fn content_range(start: u64, end: u64, size: u64) -> String {
    format!("bytes {start}-{}/{size}", end.saturating_sub(1))
}

#[async_trait::async_trait]
impl S3 for Api {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let caller = caller(&req)?.clone();
        let project = project(&req)?;
        let buckets = self.0.store.buckets(&project).await.map_err(object_err)?;
        let buckets = buckets
            .into_iter()
            .filter(|b| caller.may(b, false) || caller.may(b, true))
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_at)),
                bucket_region: Some(self.0.config.region.clone()),
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner {
                display_name: Some(project.clone()),
                id: Some(project),
            }),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let project = project(&req)?;
        let name = req.input.bucket;
        check_bucket_name(&name).map_err(|m| s3_error!(InvalidBucketName, "{m}"))?;
        match self.0.create_bucket(&project, &name, false).await {
            Ok(_) => Ok(S3Response::new(CreateBucketOutput {
                location: Some(format!("/{name}")),
            })),
            Err(super::ObjectsError::Conflict(_)) => {
                let owned = self
                    .0
                    .store
                    .bucket(&name)
                    .await
                    .map_err(object_err)?
                    .is_some_and(|b| b.project == project);
                Err(if owned {
                    s3_error!(BucketAlreadyOwnedByYou)
                } else {
                    s3_error!(BucketAlreadyExists)
                })
            }
            Err(super::ObjectsError::Invalid(m)) => Err(s3_error!(TooManyBuckets, "{m}")),
            Err(e) => Err(internal(e)),
        }
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        existing_bucket(&self.0, &req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.0.config.region.clone()),
            ..Default::default()
        }))
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        super::cors::put(&self.0, req.input).await
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        super::cors::get(&self.0, &req.input.bucket).await
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        super::cors::delete(&self.0, &req.input.bucket).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        existing_bucket(&self.0, &req.input.bucket).await?;
        // us-east-1 is reported as no constraint, as S3 does.
        let region = &self.0.config.region;
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: (region != "us-east-1")
                .then(|| BucketLocationConstraint::from(region.clone())),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.0
            .store
            .delete_bucket(&req.input.bucket)
            .await
            .map_err(object_err)?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let i = req.input;
        let meta = self.meta(&i.bucket, &i.key).await?;
        check_conditions(
            &meta,
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
        )?;
        let (len, range) = match &i.range {
            Some(r) => {
                let r = r.check(meta.size).map_err(|_| s3_error!(InvalidRange))?;
                (
                    r.end - r.start,
                    Some(content_range(r.start, r.end, meta.size)),
                )
            }
            None => (meta.size, None),
        };
        let sums = checksums_out(&meta);
        let a = &meta.attrs;
        Ok(S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
            content_range: range,
            e_tag: Some(ETag::Strong(meta.etag.clone())),
            last_modified: Some(timestamp(meta.modified_at)),
            content_type: a.content_type.clone(),
            cache_control: a.cache_control.clone(),
            content_disposition: a.content_disposition.clone(),
            content_encoding: a.content_encoding.clone(),
            content_language: a.content_language.clone(),
            expires: a.expires.map(timestamp),
            metadata: metadata_out(&meta),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let i = req.input;
        let meta = self.meta(&i.bucket, &i.key).await?;
        check_conditions(
            &meta,
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
        )?;
        let (start, end, ranged) = match &i.range {
            Some(r) => {
                let r = r.check(meta.size).map_err(|_| s3_error!(InvalidRange))?;
                (r.start, r.end, true)
            }
            None => (0, meta.size, false),
        };
        let (meta, read) = self.open(meta, start, end - start).await?;
        // S3 sends an object's checksums only with the whole object.
        let sums = if ranged {
            Checksum::default()
        } else {
            checksums_out(&meta)
        };
        let a = &meta.attrs;
        Ok(S3Response::new(GetObjectOutput {
            body: Some(body_of(read)),
            accept_ranges: Some("bytes".into()),
            content_length: Some(i64::try_from(end - start).unwrap_or(i64::MAX)),
            content_range: ranged.then(|| content_range(start, end, meta.size)),
            e_tag: Some(ETag::Strong(meta.etag.clone())),
            last_modified: Some(timestamp(meta.modified_at)),
            content_type: i.response_content_type.or_else(|| a.content_type.clone()),
            cache_control: i.response_cache_control.or_else(|| a.cache_control.clone()),
            content_disposition: i
                .response_content_disposition
                .or_else(|| a.content_disposition.clone()),
            content_encoding: i
                .response_content_encoding
                .or_else(|| a.content_encoding.clone()),
            content_language: i
                .response_content_language
                .or_else(|| a.content_language.clone()),
            expires: i.response_expires.or_else(|| a.expires.map(timestamp)),
            metadata: metadata_out(&meta),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let writer = caller(&req)?.function.clone();
        let i = req.input;
        self.0
            .store
            .delete_object(&i.bucket, &i.key, writer.as_deref())
            .await
            .map_err(object_err)?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let writer = caller(&req)?.function.clone();
        let i = req.input;
        if i.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "at most 1000 keys per DeleteObjects"
            ));
        }
        let quiet = i.delete.quiet.unwrap_or(false);
        let (mut deleted, mut errors) = (Vec::new(), Vec::new());
        for o in i.delete.objects {
            match self
                .0
                .store
                .delete_object(&i.bucket, &o.key, writer.as_deref())
                .await
            {
                Ok(_) => deleted.push(DeletedObject {
                    key: Some(o.key),
                    ..Default::default()
                }),
                Err(ObjectError::NoSuchBucket(_)) => return Err(s3_error!(NoSuchBucket)),
                Err(e) => {
                    tracing::error!(error = %e, "DeleteObjects failed for one key");
                    errors.push(Error {
                        code: Some("InternalError".into()),
                        key: Some(o.key),
                        message: Some("the key could not be deleted".into()),
                        version_id: None,
                    });
                }
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: (!quiet).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        super::put::put_object(&self.0, req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        super::put::copy_object(self, req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        super::list::list_objects_v2(&self.0, req.input).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        super::list::list_objects(&self.0, req.input).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        super::multipart::create(&self.0, req.input).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        super::multipart::upload_part(&self.0, req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let writer = caller(&req)?.function.clone();
        super::multipart::complete(&self.0, req.input, writer).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        super::multipart::abort(&self.0, req.input).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        super::multipart::list_parts(&self.0, req.input).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        super::multipart::list_uploads(&self.0, req.input).await
    }
}

impl Api {
    /// Reads an object for a copy: its metadata and all its bytes.
    pub(crate) async fn read_whole(
        &self,
        bucket: &str,
        key: &str,
    ) -> S3Result<(ObjectMeta, updraft_store::objects::BlobRead)> {
        let meta = self.meta(bucket, key).await?;
        let size = meta.size;
        self.open(meta, 0, size).await
    }
}
