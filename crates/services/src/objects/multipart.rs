//! Multipart uploads: parts stored as blobs as they arrive; completing checks the client's
//! list (ascending numbers, matching ETags, every part but the last at least 5 MiB), streams
//! the parts into one blob and commits it with S3's ETag (`<md5 of the parts' md5s>-<n>`).

use std::sync::Arc;

use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use tokio::io::AsyncReadExt as _;
use updraft_store::objects::{ObjectPut, Upload};

use super::ObjectService;
use super::api::{internal, object_err, timestamp};
use super::put::{Declared, attrs, condition, receive};

/// Smallest part but the last, as on S3.
const MIN_PART: u64 = 5 << 20;
/// Most parts of one upload, as on S3.
const MAX_PARTS: i32 = 10_000;

async fn upload_of(svc: &ObjectService, id: &str, bucket: &str, key: &str) -> S3Result<Upload> {
    match svc.store.upload(id).await.map_err(object_err)? {
        Some(u) if u.bucket == bucket && u.key == key => Ok(u),
        _ => Err(s3_error!(NoSuchUpload)),
    }
}

pub(crate) async fn create(
    svc: &ObjectService,
    i: CreateMultipartUploadInput,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let a = attrs(
        i.content_type,
        i.cache_control,
        i.content_disposition,
        i.content_encoding,
        i.content_language,
        i.expires,
        i.metadata,
    );
    let u = svc
        .store
        .create_upload(&i.bucket, &i.key, a)
        .await
        .map_err(object_err)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(u.bucket),
        key: Some(u.key),
        upload_id: Some(u.id),
        ..Default::default()
    }))
}

pub(crate) async fn upload_part(
    svc: &Arc<ObjectService>,
    mut req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let trailers = req.trailing_headers.take();
    let i = req.input;
    if !(1..=MAX_PARTS).contains(&i.part_number) {
        return Err(s3_error!(
            InvalidArgument,
            "part numbers run from 1 to {MAX_PARTS}"
        ));
    }
    upload_of(svc, &i.upload_id, &i.bucket, &i.key).await?;
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
    let r = receive(
        svc,
        i.body,
        i.content_length,
        i.content_md5.as_deref(),
        declared,
        trailers,
        svc.config.max_part_bytes,
    )
    .await?;
    let sums = r.checksums.clone();
    let number = u32::try_from(i.part_number).unwrap_or(1);
    let part = svc
        .store
        .put_part(&i.upload_id, number, r.blob, &r.md5, svc.config.quota())
        .await
        .map_err(object_err)?;
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(ETag::Strong(part.etag)),
        checksum_crc32: sums.checksum_crc32,
        checksum_crc32c: sums.checksum_crc32c,
        checksum_crc64nvme: sums.checksum_crc64nvme,
        checksum_sha1: sums.checksum_sha1,
        checksum_sha256: sums.checksum_sha256,
        ..Default::default()
    }))
}

pub(crate) async fn complete(
    svc: &ObjectService,
    i: CompleteMultipartUploadInput,
    by: Option<String>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let upload = upload_of(svc, &i.upload_id, &i.bucket, &i.key).await?;
    let cond = condition(i.if_none_match.as_ref(), i.if_match.as_ref())?;
    let listed = i
        .multipart_upload
        .and_then(|m| m.parts)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| s3_error!(MalformedXML, "the request names no parts"))?;
    let stored = svc.store.parts(&upload.id).await.map_err(object_err)?;
    let mut chosen = Vec::with_capacity(listed.len());
    let mut last = 0;
    for p in &listed {
        let n = p.part_number.unwrap_or(0);
        if n <= last {
            return Err(s3_error!(InvalidPartOrder));
        }
        last = n;
        let found = stored
            .iter()
            .find(|s| i32::try_from(s.number).ok() == Some(n))
            .filter(|s| p.e_tag.as_ref().is_none_or(|e| e.value() == s.etag))
            .ok_or_else(|| s3_error!(InvalidPart, "part {n} was not uploaded with that ETag"))?;
        chosen.push(found.clone());
    }
    if let Some(small) = chosen[..chosen.len() - 1]
        .iter()
        .find(|p| p.size < MIN_PART)
    {
        return Err(s3_error!(
            EntityTooSmall,
            "part {} is smaller than 5 MiB",
            small.number
        ));
    }
    let total: u64 = chosen.iter().map(|p| p.size).sum();
    if total
        > svc.config.max_object_bytes.max(svc.config.max_part_bytes)
            * u64::from(MAX_PARTS.unsigned_abs())
    {
        return Err(s3_error!(EntityTooLarge));
    }
    let mut writer = svc.store.blob_writer().await.map_err(object_err)?;
    let mut md5s = Md5::new();
    let mut buf = vec![0u8; 256 << 10];
    for p in &chosen {
        let mut read = svc
            .store
            .read_blob(&p.blob, 0, p.size)
            .await
            .map_err(object_err)?
            .ok_or_else(|| s3_error!(InvalidPart, "part {} is gone", p.number))?;
        loop {
            let n = read.read(&mut buf).await.map_err(internal)?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n]).await.map_err(object_err)?;
        }
        let raw = hex::decode(&p.etag).map_err(internal)?;
        md5s.update(&raw);
    }
    if writer.written() != total {
        return Err(internal("assembled size differs from the parts'"));
    }
    let blob = writer.finish().await.map_err(object_err)?;
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
    let meta = svc
        .store
        .complete_upload(
            &upload.id,
            ObjectPut {
                how: "CompleteMultipartUpload",
                bucket: upload.bucket.clone(),
                key: upload.key.clone(),
                blob,
                etag,
                attrs: upload.attrs,
                condition: cond,
                writer: by,
            },
            svc.config.quota(),
        )
        .await
        .map_err(object_err)?;
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(upload.bucket),
        key: Some(upload.key),
        e_tag: Some(ETag::Strong(meta.etag)),
        ..Default::default()
    }))
}

pub(crate) async fn abort(
    svc: &ObjectService,
    i: AbortMultipartUploadInput,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    upload_of(svc, &i.upload_id, &i.bucket, &i.key).await?;
    svc.store
        .abort_upload(&i.upload_id)
        .await
        .map_err(object_err)?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub(crate) async fn list_parts(
    svc: &ObjectService,
    i: ListPartsInput,
) -> S3Result<S3Response<ListPartsOutput>> {
    let upload = upload_of(svc, &i.upload_id, &i.bucket, &i.key).await?;
    let max = usize::try_from(i.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
    let after = u32::try_from(i.part_number_marker.unwrap_or(0)).unwrap_or(0);
    let mut parts: Vec<_> = svc
        .store
        .parts(&upload.id)
        .await
        .map_err(object_err)?
        .into_iter()
        .filter(|p| p.number > after)
        .collect();
    let truncated = parts.len() > max;
    parts.truncate(max);
    let next = parts.last().and_then(|p| i32::try_from(p.number).ok());
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(upload.bucket),
        key: Some(upload.key),
        upload_id: Some(upload.id),
        max_parts: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: if truncated { next } else { None },
        parts: Some(
            parts
                .into_iter()
                .map(|p| Part {
                    part_number: i32::try_from(p.number).ok(),
                    size: Some(i64::try_from(p.size).unwrap_or(i64::MAX)),
                    e_tag: Some(ETag::Strong(p.etag)),
                    last_modified: Some(timestamp(p.uploaded_at)),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }))
}

pub(crate) async fn list_uploads(
    svc: &ObjectService,
    i: ListMultipartUploadsInput,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    if svc
        .store
        .bucket(&i.bucket)
        .await
        .map_err(object_err)?
        .is_none()
    {
        return Err(s3_error!(NoSuchBucket));
    }
    let max = usize::try_from(i.max_uploads.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
    let prefix = i.prefix.clone().unwrap_or_default();
    let mut uploads: Vec<_> = svc
        .store
        .uploads(&i.bucket, &prefix)
        .await
        .map_err(object_err)?
        .into_iter()
        .filter(|u| match (&i.key_marker, &i.upload_id_marker) {
            (Some(k), Some(id)) => u.key > *k || (u.key == *k && u.id > *id),
            (Some(k), None) => u.key > *k,
            _ => true,
        })
        .collect();
    let truncated = uploads.len() > max;
    uploads.truncate(max);
    let (next_key, next_id) = match uploads.last() {
        Some(u) if truncated => (Some(u.key.clone()), Some(u.id.clone())),
        _ => (None, None),
    };
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: i.prefix,
        key_marker: i.key_marker,
        upload_id_marker: i.upload_id_marker,
        max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        uploads: Some(
            uploads
                .into_iter()
                .map(|u| MultipartUpload {
                    key: Some(u.key),
                    upload_id: Some(u.id),
                    initiated: Some(timestamp(u.initiated_at)),
                    storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }))
}
