//! Objects over plain HTTP, on both planes: `/v1/buckets/{b}/objects[/{key}]` on the control
//! API (what `updraft cp|ls|rm` use; the caller's key acts on every bucket of its project) and
//! `/_updraft/storage/v1/buckets/{b}/objects[/{key}]` on the data plane, for functions granted
//! buckets (`buckets = ["uploads:read"]`) that have no SigV4 signer: `Authorization: Bearer
//! $UPDRAFT_STORAGE_TOKEN` (a function credential, see [`crate::credentials`]) reaches the
//! granted buckets, reading or writing as granted, while the function is served. S3 clients
//! use the S3 listener.
//!
//! | method | path (after the mount) | what |
//! |---|---|---|
//! | GET | `/buckets/{b}/objects?prefix=&from=&limit=` | a page of keys (`next` for the next) |
//! | GET | `/buckets/{b}/objects/{key}` | the object's bytes |
//! | PUT | `/buckets/{b}/objects/{key}` | stores the body (`content-type` kept) |
//! | DELETE | `/buckets/{b}/objects/{key}` | deletes it |

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use updraft_api::Code;
use updraft_services::objects::{Caller, PlainError, ReadStream};

use crate::State as AppState;
use crate::credentials;
use crate::error::ApiError;

type Shared = State<Arc<AppState>>;

/// The object routes, their handlers told the [`Caller`] by the mount.
fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/buckets/{name}/objects", get(list_objects))
        .route(
            "/buckets/{name}/objects/{*key}",
            get(get_object)
                .put(put_object)
                .delete(delete_object)
                .layer(DefaultBodyLimit::disable()),
        )
}

/// The control API's mount `/v1` (behind `require_role`): the key acts on its project.
pub(crate) fn control_routes() -> Router<Arc<AppState>> {
    super::as_service(routes(), |c: crate::auth::Caller| Caller::owner(&c.project))
}

/// The data plane's mount `/_updraft/storage/v1`: function credentials only.
pub(crate) fn data_routes(state: &Arc<AppState>) -> Router {
    routes()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            function_caller,
        ))
        .with_state(state.clone())
}

/// Resolves the bearer function credential to the caller it stands for.
async fn function_caller(State(state): Shared, mut req: Request, next: Next) -> Response {
    let Some(token) = crate::auth::bearer(req.headers()) else {
        return ApiError::new(
            Code::Unauthorized,
            "`Authorization: Bearer $UPDRAFT_STORAGE_TOKEN` is required (the credential of a \
             function granted buckets)",
        )
        .into_response();
    };
    let Some(grant) = credentials::verify(state.secret_key.credentials(), token) else {
        return ApiError::new(
            Code::Unauthorized,
            "the function credential is not valid (altered, or minted with another secret key)",
        )
        .into_response();
    };
    if !crate::function_buckets::served_with(
        &state.registry,
        &grant.project,
        &grant.function,
        &grant.buckets,
    ) {
        return ApiError::new(
            Code::Unauthorized,
            format!(
                "the function credential's function `{}` is no longer served with these buckets",
                grant.function
            ),
        )
        .into_response();
    }
    let grants = match updraft_api::parse_bucket_grants(&grant.buckets) {
        Ok(g) if !g.is_empty() => g,
        _ => {
            return ApiError::new(Code::Forbidden, "this credential grants no buckets")
                .into_response();
        }
    };
    req.extensions_mut().insert(Caller {
        project: Some(grant.project),
        grants,
        function: Some(grant.function),
    });
    next.run(req).await
}

impl From<PlainError> for ApiError {
    fn from(e: PlainError) -> Self {
        match e {
            PlainError::Objects(e) => e.into(),
            PlainError::NoSuchKey(_) => ApiError::new(Code::ItemNotFound, e.to_string()),
            PlainError::TooLarge(_) => ApiError::new(Code::PayloadTooLarge, e.to_string()),
            PlainError::Quota(_) => ApiError::new(Code::StorageQuotaExceeded, e.to_string()),
            PlainError::Body(_) => ApiError::new(Code::BadRequest, e.to_string()),
            PlainError::Denied(_) => ApiError::new(Code::Forbidden, e.to_string()),
            _ => ApiError::new(Code::Internal, e.to_string()),
        }
    }
}

/// `GET .../buckets/{name}/objects` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
    from: Option<String>,
    limit: Option<usize>,
}

async fn list_objects(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(bucket): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    let (objects, next) = state
        .objects
        .list(
            &caller,
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

async fn get_object(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path((bucket, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (meta, read) = state.objects.open(&caller, &bucket, &key).await?;
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

async fn put_object(
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
            &caller,
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

async fn delete_object(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path((bucket, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if state.objects.delete(&caller, &bucket, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(PlainError::NoSuchKey(key).into())
    }
}
