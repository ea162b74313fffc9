//! `/v1/buckets` and `/v1/s3-keys`: a project's buckets (a viewer lists, a deployer creates
//! and deletes), their objects over plain HTTP (what `updraft cp|ls|rm` use; S3 clients use
//! the S3 listener) and the project's S3 access keys (the owner's).

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use updraft_api::Code;
use updraft_services::objects::{ObjectsError, PlainError, ReadStream};
use updraft_store::objects::{BucketGrant, BucketInfo};

use crate::State as AppState;
use crate::auth::Caller;
use crate::error::ApiError;

type Shared = State<Arc<AppState>>;

impl From<ObjectsError> for ApiError {
    fn from(e: ObjectsError) -> Self {
        let code = match &e {
            ObjectsError::Invalid(_) => Code::BadRequest,
            ObjectsError::Conflict(_) => Code::Conflict,
            ObjectsError::NotFound(_) => Code::BucketNotFound,
            ObjectsError::KeyNotFound(_) => Code::KeyNotFound,
            _ => Code::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>, shape: &str) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|e| {
        ApiError::new(
            Code::BadRequest,
            format!("{}; expected {shape}", e.body_text()),
        )
    })
}

fn bucket_json(b: &BucketInfo, usage: Option<(u64, u64)>) -> Value {
    let mut v = json!({
        "name": b.name,
        "project": b.project,
        "public_read": b.public_read,
        "created_at": updraft_dispatch::rfc3339(b.created_at),
    });
    if let Some((objects, bytes)) = usage {
        v["objects"] = json!(objects);
        v["bytes"] = json!(bytes);
    }
    v
}

pub(crate) async fn list_buckets(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let store = state.objects.store();
    let buckets = store
        .buckets(&caller.project)
        .await
        .map_err(ObjectsError::from)?;
    let usage = store
        .usage(&caller.project)
        .await
        .map_err(ObjectsError::from)?;
    Ok(Json(json!({
        "buckets": buckets.iter().map(|b| bucket_json(b, None)).collect::<Vec<_>>(),
        "usage": {"objects": usage.objects, "bytes": usage.bytes},
        "s3_endpoint": state.s3_url.get(),
    })))
}

/// `POST /v1/buckets`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBucket {
    name: String,
    #[serde(default)]
    public_read: bool,
}

pub(crate) async fn create_bucket(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    body: Result<Json<CreateBucket>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = json_body(body, r#"{"name": "...", "public_read": false}"#)?;
    let b = state
        .objects
        .create_bucket(&caller.project, &req.name, req.public_read)
        .await?;
    Ok((StatusCode::CREATED, Json(bucket_json(&b, None))))
}

pub(crate) async fn delete_bucket(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.objects.owned_bucket(&caller.project, &name).await?;
    state
        .objects
        .store()
        .delete_bucket(&name)
        .await
        .map_err(ObjectsError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/s3-keys`: grants as `bucket`, `bucket:read` or `bucket:write`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateS3Key {
    #[serde(default)]
    name: String,
    #[serde(default)]
    buckets: Vec<String>,
}

/// Parses `bucket[:read|:write]` grants, merging grants of one bucket.
pub(crate) fn parse_grants(specs: &[String]) -> Result<Vec<BucketGrant>, String> {
    let mut out: Vec<BucketGrant> = Vec::new();
    for spec in specs {
        let (bucket, read, write) = match spec.split_once(':') {
            None => (spec.as_str(), true, true),
            Some((b, "read")) => (b, true, false),
            Some((b, "write")) => (b, false, true),
            Some((_, other)) => {
                return Err(format!(
                    "grant `{spec}`: `{other}` is not `read` or `write` (write `bucket`, \
                     `bucket:read` or `bucket:write`)"
                ));
            }
        };
        match out.iter_mut().find(|g| g.bucket == bucket) {
            Some(g) => {
                g.read |= read;
                g.write |= write;
            }
            None => out.push(BucketGrant {
                bucket: bucket.to_owned(),
                read,
                write,
            }),
        }
    }
    Ok(out)
}

pub(crate) async fn create_key(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    body: Result<Json<CreateS3Key>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = json_body(body, r#"{"name": "...", "buckets": ["uploads:read"]}"#)?;
    let grants = parse_grants(&req.buckets).map_err(|m| ApiError::new(Code::BadRequest, m))?;
    let key = state
        .objects
        .create_key(&caller.project, &req.name, grants)
        .await?;
    let mut v =
        serde_json::to_value(&key).map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    v["access_key_id"] = json!(key.record.id);
    v["s3_endpoint"] = json!(state.s3_url.get());
    v["region"] = json!(state.objects.region());
    Ok((StatusCode::CREATED, Json(v)))
}

pub(crate) async fn list_keys(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let keys = state
        .objects
        .store()
        .s3_keys(&caller.project)
        .await
        .map_err(ObjectsError::from)?;
    Ok(Json(json!({ "keys": keys })))
}

pub(crate) async fn delete_key(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .objects
        .store()
        .delete_s3_key(&caller.project, &id)
        .await
        .map_err(ObjectsError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

impl From<PlainError> for ApiError {
    fn from(e: PlainError) -> Self {
        match e {
            PlainError::Objects(e) => e.into(),
            PlainError::NoSuchKey(_) => ApiError::new(Code::ItemNotFound, e.to_string()),
            PlainError::TooLarge(_) => ApiError::new(Code::PayloadTooLarge, e.to_string()),
            PlainError::Quota(_) => ApiError::new(Code::StorageQuotaExceeded, e.to_string()),
            PlainError::Body(_) => ApiError::new(Code::BadRequest, e.to_string()),
            _ => ApiError::new(Code::Internal, e.to_string()),
        }
    }
}

/// `GET /v1/buckets/{name}/objects` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    prefix: String,
    from: Option<String>,
    limit: Option<usize>,
}

pub(crate) async fn list_objects(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(bucket): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    let (objects, next) = state
        .objects
        .list(
            &caller.project,
            &bucket,
            &q.prefix,
            q.from.as_deref(),
            q.limit.unwrap_or(1000),
        )
        .await?;
    let objects: Vec<Value> = objects
        .iter()
        .map(|o| {
            json!({
                "key": o.key,
                "size": o.size,
                "etag": o.etag,
                "content_type": o.attrs.content_type,
                "modified_at": updraft_dispatch::rfc3339(o.modified_at),
            })
        })
        .collect();
    Ok(Json(json!({ "objects": objects, "next": next })))
}

pub(crate) async fn get_object(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path((bucket, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (meta, read) = state.objects.open(&caller.project, &bucket, &key).await?;
    let body = axum::body::Body::from_stream(ReadStream::new(read));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    let ct = meta
        .attrs
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    if let Ok(v) = http::HeaderValue::from_str(ct) {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    h.insert(http::header::CONTENT_LENGTH, meta.size.into());
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", meta.etag)) {
        h.insert(http::header::ETAG, v);
    }
    Ok(resp)
}

pub(crate) async fn put_object(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path((bucket, key)): Path<(String, String)>,
    headers: http::HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let meta = state
        .objects
        .put_stream(
            &caller.project,
            &bucket,
            &key,
            content_type,
            body.into_data_stream(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"bucket": bucket, "key": meta.key, "size": meta.size, "etag": meta.etag})),
    ))
}

pub(crate) async fn delete_object(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path((bucket, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if state.objects.delete(&caller.project, &bucket, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(PlainError::NoSuchKey(key).into())
    }
}
