//! ListObjectsV2 and ListObjects: keys in byte order under a prefix, common prefixes rolled up
//! at a delimiter (each skipped over in one step, however many keys it holds), pages of at
//! most 1,000, continuation tokens (the next key's bytes, base64url) and `encoding-type=url`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use s3s::dto::*;
use s3s::{S3Response, S3Result, s3_error};
use updraft_store::objects::{ObjectMeta, prefix_successor};

use super::ObjectService;
use super::api::{object_err, timestamp};

/// Most keys in one page.
const MAX_KEYS: usize = 1000;

/// One page of a listing.
struct Page {
    objects: Vec<ObjectMeta>,
    prefixes: Vec<String>,
    /// Where the next page starts, if there is one.
    next: Option<Vec<u8>>,
}

async fn page(
    svc: &ObjectService,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    mut from: Option<Vec<u8>>,
    max: usize,
) -> S3Result<Page> {
    let mut out = Page {
        objects: Vec::new(),
        prefixes: Vec::new(),
        next: None,
    };
    if svc
        .store
        .bucket(bucket)
        .await
        .map_err(object_err)?
        .is_none()
    {
        return Err(s3_error!(NoSuchBucket));
    }
    let delimiter = delimiter.filter(|d| !d.is_empty());
    'fetch: loop {
        let batch = svc
            .store
            .list_objects(bucket, prefix, from.as_deref(), MAX_KEYS)
            .await
            .map_err(object_err)?;
        if batch.is_empty() {
            return Ok(out);
        }
        let full = batch.len() == MAX_KEYS;
        for o in batch {
            if out.objects.len() + out.prefixes.len() == max {
                out.next = Some(o.key.into_bytes());
                return Ok(out);
            }
            let rolled = delimiter.and_then(|d| {
                let rest = o.key.get(prefix.len()..)?;
                rest.find(d)
                    .map(|at| o.key[..prefix.len() + at + d.len()].to_owned())
            });
            match rolled {
                Some(cp) => {
                    // Everything under this prefix is one entry: continue past all of it.
                    from = prefix_successor(cp.as_bytes());
                    out.prefixes.push(cp);
                    if from.is_none() {
                        return Ok(out);
                    }
                    continue 'fetch;
                }
                None => {
                    let mut next = o.key.clone().into_bytes();
                    next.push(0);
                    from = Some(next);
                    out.objects.push(o);
                }
            }
        }
        if !full {
            return Ok(out);
        }
    }
}

/// Percent-encodes a key for `encoding-type=url` (all but unreserved characters and `/`).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encoder(encoding: Option<&EncodingType>) -> S3Result<fn(&str) -> String> {
    match encoding.map(EncodingType::as_str) {
        None => Ok(str::to_owned),
        Some("url") => Ok(url_encode),
        Some(other) => Err(s3_error!(
            InvalidArgument,
            "unknown encoding-type `{other}`"
        )),
    }
}

fn max_keys(max: Option<i32>) -> S3Result<usize> {
    match max {
        None => Ok(MAX_KEYS),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(MAX_KEYS).min(MAX_KEYS)),
    }
}

fn contents(objects: Vec<ObjectMeta>, enc: fn(&str) -> String) -> Vec<Object> {
    objects
        .into_iter()
        .map(|o| Object {
            key: Some(enc(&o.key)),
            size: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
            e_tag: Some(ETag::Strong(o.etag)),
            last_modified: Some(timestamp(o.modified_at)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            ..Default::default()
        })
        .collect()
}

fn common(prefixes: Vec<String>, enc: fn(&str) -> String) -> Vec<CommonPrefix> {
    prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(&p)),
        })
        .collect()
}

pub(crate) async fn list_objects_v2(
    svc: &ObjectService,
    i: ListObjectsV2Input,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let enc = encoder(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let prefix = i.prefix.clone().unwrap_or_default();
    let from = match (&i.continuation_token, &i.start_after) {
        (Some(t), _) => Some(
            B64.decode(t)
                .map_err(|_| s3_error!(InvalidArgument, "the continuation token is not valid"))?,
        ),
        (None, Some(after)) => {
            let mut k = after.clone().into_bytes();
            k.push(0);
            Some(k)
        }
        (None, None) => None,
    };
    let p = page(svc, &i.bucket, &prefix, i.delimiter.as_deref(), from, max).await?;
    let count = p.objects.len() + p.prefixes.len();
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: Some(enc(&prefix)),
        delimiter: i.delimiter.as_deref().map(enc),
        start_after: i.start_after.as_deref().map(enc),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        key_count: Some(i32::try_from(count).unwrap_or(0)),
        continuation_token: i.continuation_token,
        is_truncated: Some(p.next.is_some()),
        next_continuation_token: p.next.as_deref().map(|n| B64.encode(n)),
        contents: Some(contents(p.objects, enc)),
        common_prefixes: (!p.prefixes.is_empty()).then(|| common(p.prefixes, enc)),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

pub(crate) async fn list_objects(
    svc: &ObjectService,
    i: ListObjectsInput,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let enc = encoder(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let prefix = i.prefix.clone().unwrap_or_default();
    let from = i.marker.as_ref().map(|m| {
        let mut k = m.clone().into_bytes();
        k.push(0);
        k
    });
    let p = page(svc, &i.bucket, &prefix, i.delimiter.as_deref(), from, max).await?;
    // The marker of the next page: the last key or common prefix of this one.
    let last = match (p.objects.last(), p.prefixes.last()) {
        (Some(o), Some(cp)) => Some(if o.key.as_str() > cp.as_str() {
            o.key.clone()
        } else {
            cp.clone()
        }),
        (Some(o), None) => Some(o.key.clone()),
        (None, Some(cp)) => Some(cp.clone()),
        (None, None) => None,
    };
    let truncated = p.next.is_some();
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket),
        prefix: Some(enc(&prefix)),
        delimiter: i.delimiter.as_deref().map(enc),
        marker: Some(i.marker.as_deref().map(enc).unwrap_or_default()),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        next_marker: if truncated {
            last.as_deref().map(enc)
        } else {
            None
        },
        contents: Some(contents(p.objects, enc)),
        common_prefixes: (!p.prefixes.is_empty()).then(|| common(p.prefixes, enc)),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

#[cfg(test)]
pub(crate) fn encode_for_tests(s: &str) -> String {
    url_encode(s)
}
