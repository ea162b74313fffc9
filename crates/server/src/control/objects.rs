//! `/v1/buckets` and `/v1/s3-keys`: a project's buckets (a viewer lists, a deployer creates
//! and deletes) and its S3 access keys (the owner's). Their objects over plain HTTP are in
//! [`super::storage`].

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use updraft_api::Code;
use updraft_services::objects::ObjectsError;
use updraft_store::objects::BucketInfo;

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

pub(crate) async fn create_key(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    body: Result<Json<CreateS3Key>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = json_body(body, r#"{"name": "...", "buckets": ["uploads:read"]}"#)?;
    let grants = updraft_api::parse_bucket_grants(&req.buckets)
        .map_err(|m| ApiError::new(Code::BadRequest, m))?;
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
