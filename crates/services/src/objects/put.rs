//! Writes: PutObject (and the browser POST uploads `s3s` turns into it), CopyObject, and the
//! streaming into a blob that parts share. Bytes go to the blob as they arrive; the MD5 and
//! any checksum the client declared (in a header or an aws-chunked trailer) are checked
//! before the object is committed, so a corrupted upload stores nothing.

use std::sync::Arc;

use futures::StreamExt as _;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use tokio::io::AsyncReadExt as _;
use updraft_store::objects::{BlobRef, ObjectAttrs, ObjectPut, PutCondition};

use super::ObjectService;
use super::api::{Api, caller, internal, millis, object_err, timestamp};

/// What a body turned into: its blob, its MD5 (hex) and the checksums computed.
pub(crate) struct Received {
    pub(crate) blob: BlobRef,
    pub(crate) md5: String,
    pub(crate) checksums: s3s::dto::Checksum,
}

/// The checksums a request declares: (algorithm, value), from headers, the trailer names
/// `x-amz-trailer` announces or `x-amz-checksum-algorithm`.
#[derive(Default)]
pub(crate) struct Declared {
    pub(crate) values: Vec<(&'static str, Option<String>)>,
}

impl Declared {
    pub(crate) fn new(
        algorithm: Option<&ChecksumAlgorithm>,
        headers: [(&'static str, Option<String>); 5],
    ) -> S3Result<Self> {
        let mut values: Vec<(&'static str, Option<String>)> =
            headers.into_iter().filter(|(_, v)| v.is_some()).collect();
        if let Some(alg) = algorithm {
            let name = match alg.as_str() {
                ChecksumAlgorithm::CRC32 => "crc32",
                ChecksumAlgorithm::CRC32C => "crc32c",
                ChecksumAlgorithm::SHA1 => "sha1",
                ChecksumAlgorithm::SHA256 => "sha256",
                ChecksumAlgorithm::CRC64NVME => "crc64nvme",
                other => {
                    return Err(s3_error!(
                        InvalidArgument,
                        "checksum algorithm {other} is not supported"
                    ));
                }
            };
            if !values.iter().any(|(n, _)| *n == name) {
                values.push((name, None));
            }
        }
        Ok(Self { values })
    }

    fn hasher(&self) -> ChecksumHasher {
        let mut h = ChecksumHasher::default();
        for (name, _) in &self.values {
            match *name {
                "crc32" => h.crc32 = Some(Default::default()),
                "crc32c" => h.crc32c = Some(Default::default()),
                "sha1" => h.sha1 = Some(Default::default()),
                "sha256" => h.sha256 = Some(Default::default()),
                _ => h.crc64nvme = Some(Default::default()),
            }
        }
        h
    }
}

fn computed<'a>(c: &'a s3s::dto::Checksum, name: &str) -> Option<&'a String> {
    match name {
        "crc32" => c.checksum_crc32.as_ref(),
        "crc32c" => c.checksum_crc32c.as_ref(),
        "sha1" => c.checksum_sha1.as_ref(),
        "sha256" => c.checksum_sha256.as_ref(),
        _ => c.checksum_crc64nvme.as_ref(),
    }
}

/// Streams `body` into a new blob, at most `limit` bytes, hashing as it goes; checks the
/// length, `Content-MD5` and the declared checksums (headers, then trailers) before the blob
/// is finished. On any failure the blob is discarded.
pub(crate) async fn receive(
    svc: &ObjectService,
    body: Option<StreamingBlob>,
    content_length: Option<i64>,
    content_md5: Option<&str>,
    mut declared: Declared,
    trailers: Option<s3s::TrailingHeaders>,
    limit: u64,
) -> S3Result<Received> {
    let Some(mut body) = body else {
        return Err(s3_error!(IncompleteBody));
    };
    if content_length.is_some_and(|n| u64::try_from(n).unwrap_or(0) > limit) {
        return Err(s3_error!(
            EntityTooLarge,
            "the object is larger than {limit} bytes"
        ));
    }
    let mut writer = svc.store.blob_writer().await.map_err(object_err)?;
    let mut md5 = Md5::new();
    let mut sums = declared.hasher();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| s3_error!(IncompleteBody, "the body failed: {e}"))?;
        if writer.written() + chunk.len() as u64 > limit {
            return Err(s3_error!(
                EntityTooLarge,
                "the object is larger than {limit} bytes"
            ));
        }
        md5.update(&chunk);
        sums.update(&chunk);
        writer.write(&chunk).await.map_err(object_err)?;
    }
    if let Some(n) = content_length
        && u64::try_from(n).unwrap_or(0) != writer.written()
    {
        return Err(s3_error!(
            IncompleteBody,
            "the body is shorter than Content-Length"
        ));
    }
    let md5_raw = md5.finalize();
    if let Some(expected) = content_md5 {
        let expected = base64_decode(expected).ok_or_else(|| s3_error!(InvalidDigest))?;
        if expected != md5_raw {
            return Err(s3_error!(BadDigest, "Content-MD5 does not match the body"));
        }
    }
    if let Some(t) = trailers.and_then(|t| t.take()) {
        for (name, value) in &mut declared.values {
            if let Some(v) = t.get(format!("x-amz-checksum-{name}").as_str()) {
                *value = Some(
                    v.to_str()
                        .map_err(|_| s3_error!(InvalidArgument))?
                        .to_owned(),
                );
            }
        }
    }
    let checksums = sums.finalize();
    for (name, value) in &declared.values {
        if let (Some(expected), Some(actual)) = (value, computed(&checksums, name))
            && expected != actual
        {
            return Err(s3_error!(
                BadDigest,
                "the {name} checksum does not match the body"
            ));
        }
    }
    let blob = writer.finish().await.map_err(object_err)?;
    Ok(Received {
        blob,
        md5: hex::encode(md5_raw),
        checksums,
    })
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// The checksums to keep with an object: those computed that the client declared.
pub(crate) fn kept(r: &Received) -> std::collections::BTreeMap<String, String> {
    ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]
        .into_iter()
        .filter_map(|n| computed(&r.checksums, n).map(|v| (n.to_owned(), v.clone())))
        .collect()
}

/// Stored attributes from a request's headers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attrs(
    content_type: Option<String>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    expires: Option<Timestamp>,
    metadata: Option<Metadata>,
) -> ObjectAttrs {
    ObjectAttrs {
        content_type,
        cache_control,
        content_disposition,
        content_encoding,
        content_language,
        expires: expires.map(millis),
        metadata: metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        checksums: Default::default(),
    }
}

/// The condition of `If-None-Match` / `If-Match` on a write.
pub(crate) fn condition(
    if_none_match: Option<&ETagCondition>,
    if_match: Option<&ETagCondition>,
) -> S3Result<PutCondition> {
    Ok(match (if_none_match, if_match) {
        (Some(ETagCondition::Any), _) => PutCondition::Absent,
        (Some(_), _) => {
            return Err(s3_error!(
                NotImplemented,
                "If-None-Match takes only `*` on writes"
            ));
        }
        (None, Some(ETagCondition::Any)) => PutCondition::Matches("*".into()),
        (None, Some(ETagCondition::ETag(e))) => PutCondition::Matches(e.value().to_owned()),
        (None, None) => PutCondition::Any,
    })
}

pub(crate) async fn put_object(
    svc: &Arc<ObjectService>,
    mut req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let trailers = req.trailing_headers.take();
    let writer = caller(&req)?.function.clone();
    let i = req.input;
    let cond = condition(i.if_none_match.as_ref(), i.if_match.as_ref())?;
    let declared = Declared::new(
        i.checksum_algorithm.as_ref(),
        [
            ("crc32", i.checksum_crc32),
            ("crc32c", i.checksum_crc32c),
            ("crc64nvme", i.checksum_crc64nvme),
            ("sha1", i.checksum_sha1),
            ("sha256", i.checksum_sha256),
        ],
    )?;
    let received = receive(
        svc,
        i.body,
        i.content_length,
        i.content_md5.as_deref(),
        declared,
        trailers,
        svc.config.max_object_bytes,
    )
    .await?;
    let mut a = attrs(
        i.content_type,
        i.cache_control,
        i.content_disposition,
        i.content_encoding,
        i.content_language,
        i.expires,
        i.metadata,
    );
    a.checksums = kept(&received);
    let sums = received.checksums.clone();
    let meta = svc
        .store
        .put_object(
            ObjectPut {
                how: "Put",
                bucket: i.bucket,
                key: i.key,
                etag: received.md5.clone(),
                blob: received.blob,
                attrs: a,
                condition: cond,
                writer,
            },
            svc.config.quota(),
        )
        .await
        .map_err(object_err)?;
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(ETag::Strong(meta.etag)),
        size: Some(i64::try_from(meta.size).unwrap_or(i64::MAX)),
        checksum_crc32: sums.checksum_crc32,
        checksum_crc32c: sums.checksum_crc32c,
        checksum_crc64nvme: sums.checksum_crc64nvme,
        checksum_sha1: sums.checksum_sha1,
        checksum_sha256: sums.checksum_sha256,
        ..Default::default()
    }))
}

pub(crate) async fn copy_object(
    api: &Api,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let svc = &api.0;
    let who = caller(&req)?.clone();
    let i = req.input;
    let (src_bucket, src_key) = match &i.copy_source {
        CopySource::Bucket { bucket, key, .. } => (bucket.to_string(), key.to_string()),
        _ => {
            return Err(s3_error!(
                NotImplemented,
                "only bucket copy sources are supported"
            ));
        }
    };
    let source = svc
        .store
        .bucket(&src_bucket)
        .await
        .map_err(object_err)?
        .ok_or_else(|| s3_error!(NoSuchBucket))?;
    if !who.may(&source, false) {
        return Err(s3_error!(
            AccessDenied,
            "no read access to the source bucket"
        ));
    }
    let replace = i
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    if src_bucket == i.bucket && src_key == i.key && !replace {
        return Err(s3_error!(
            InvalidRequest,
            "copying an object to itself needs a metadata change (x-amz-metadata-directive: REPLACE)"
        ));
    }
    let (meta, mut read) = api.read_whole(&src_bucket, &src_key).await?;
    let modified = meta.modified_at / 1000;
    if let Some(c) = &i.copy_source_if_match {
        if !matches!(c, ETagCondition::Any)
            && !matches!(c, ETagCondition::ETag(e) if e.value() == meta.etag)
        {
            return Err(s3_error!(PreconditionFailed));
        }
    } else if let Some(t) = &i.copy_source_if_unmodified_since
        && modified > millis(t.clone()) / 1000
    {
        return Err(s3_error!(PreconditionFailed));
    }
    if let Some(c) = &i.copy_source_if_none_match {
        if matches!(c, ETagCondition::Any)
            || matches!(c, ETagCondition::ETag(e) if e.value() == meta.etag)
        {
            return Err(s3_error!(PreconditionFailed));
        }
    } else if let Some(t) = &i.copy_source_if_modified_since
        && modified <= millis(t.clone()) / 1000
    {
        return Err(s3_error!(PreconditionFailed));
    }
    if meta.size > svc.config.max_object_bytes {
        return Err(s3_error!(EntityTooLarge));
    }
    let mut writer = svc.store.blob_writer().await.map_err(object_err)?;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = read.read(&mut buf).await.map_err(internal)?;
        if n == 0 {
            break;
        }
        writer.write(&buf[..n]).await.map_err(object_err)?;
    }
    if writer.written() != meta.size {
        return Err(s3_error!(
            PreconditionFailed,
            "the source changed while copied"
        ));
    }
    let blob = writer.finish().await.map_err(object_err)?;
    let a = if replace {
        let mut a = attrs(
            i.content_type,
            i.cache_control,
            i.content_disposition,
            i.content_encoding,
            i.content_language,
            i.expires,
            i.metadata,
        );
        a.checksums = meta.attrs.checksums.clone();
        a
    } else {
        meta.attrs.clone()
    };
    let copied = svc
        .store
        .put_object(
            ObjectPut {
                how: "Copy",
                bucket: i.bucket,
                key: i.key,
                etag: meta.etag.clone(),
                blob,
                attrs: a,
                condition: PutCondition::Any,
                writer: who.function.clone(),
            },
            svc.config.quota(),
        )
        .await
        .map_err(object_err)?;
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(ETag::Strong(copied.etag)),
            last_modified: Some(timestamp(copied.modified_at)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}
