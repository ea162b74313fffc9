//! The key-value HTTP API, mounted at `/_updraft/kv/v1` on the data plane and `/v1/kv` on the
//! control API. Values travel as raw bytes; revisions as `ETag`s.
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | GET | `/stores` | the project's stores with their keys and bytes |
//! | PUT, DELETE | `/stores/{store}` | create (201; 200 if it exists) / delete with its keys |
//! | GET | `/stores/{store}/keys?prefix=&cursor=&limit=` | `{"keys": [...], "cursor": ...}` |
//! | GET, HEAD | `/stores/{store}/keys/{key}` | the value (`ETag: "<revision>"`) or 404 |
//! | PUT | `/stores/{store}/keys/{key}?ttl=<seconds>` | store the body (`If-Match`, `If-None-Match: *`) |
//! | DELETE | `/stores/{store}/keys/{key}` | delete (`If-Match`) → 204 |
//! | POST | `/stores/{store}/keys/{key}` | `{"increment": n}` → `{"value": v, "revision": r}` |
//!
//! The mount hands each request a [`KvCaller`]: the project, and whether it may write.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use updraft_api::Code;
use updraft_store::kv::{KvOp, KvOutcome, KvWrite};

use super::{KeyValueService, KvServiceError, is_store_name};
use crate::answer::{Fail, condition};

/// Who is asking: set by the mount.
#[derive(Debug, Clone)]
pub struct KvCaller {
    /// The project.
    pub project: String,
    /// Whether the caller may change data (a deployer or better), or only read it.
    pub write: bool,
}

impl From<KvServiceError> for Fail {
    fn from(e: KvServiceError) -> Self {
        let code = match &e {
            KvServiceError::Invalid(_) => Code::BadRequest,
            KvServiceError::TooLarge(_) => Code::PayloadTooLarge,
            KvServiceError::NoSuchStore(_) => Code::StoreNotFound,
            KvServiceError::Quota(_) => Code::StorageQuotaExceeded,
            KvServiceError::Conflict(_) => Code::Conflict,
            KvServiceError::Storage(_) => Code::Internal,
        };
        Fail(code, e.to_string())
    }
}

type Shared = State<Arc<KeyValueService>>;
type Answer = Result<Response, Fail>;

/// The router; the mount adds the [`KvCaller`] extension and its body limit.
pub fn router<S: Clone + Send + Sync + 'static>(service: Arc<KeyValueService>) -> Router<S> {
    Router::new()
        .route("/stores", get(stores))
        .route(
            "/stores/{store}",
            axum::routing::put(create).delete(drop_store),
        )
        .route("/stores/{store}/keys", get(list))
        .route(
            "/stores/{store}/keys/{*key}",
            get(read).put(put).delete(delete).post(increment),
        )
        .fallback(|| async {
            Fail(
                Code::RouteNotFound,
                "no such key-value API; see docs/database.md".into(),
            )
        })
        .with_state(service)
}

fn store_name(store: &str) -> Result<(), Fail> {
    if is_store_name(store) {
        Ok(())
    } else {
        Err(Fail(
            Code::BadRequest,
            format!(
                "`{store}` is not a store name (1-63 of a-z, 0-9, `-`, `_`, starting with a \
                 letter or digit)"
            ),
        ))
    }
}

fn writer(caller: &KvCaller) -> Result<(), Fail> {
    if caller.write {
        Ok(())
    } else {
        Err(Fail(
            Code::Forbidden,
            "this key may only read; writes need a deployer key or better".into(),
        ))
    }
}

fn etag(revision: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The message for a body the mount's limit refused (or could not read).
fn too_large(kv: &KeyValueService, e: &axum::extract::rejection::BytesRejection) -> String {
    format!(
        "the request body could not be read ({}); values may have at most {} bytes \
         (`[key_value] max_value_bytes`)",
        e.body_text(),
        kv.config.max_value_bytes
    )
}

fn failed(current: Option<u64>) -> Fail {
    Fail(
        Code::PreconditionFailed,
        match current {
            Some(r) => format!("the key is at revision {r}"),
            None => "the key does not exist".into(),
        },
    )
}

async fn stores(State(kv): Shared, Extension(c): Extension<KvCaller>) -> Answer {
    let stores = kv
        .store
        .kv_stores(&c.project)
        .await
        .map_err(KvServiceError::from)?;
    let usage = kv
        .store
        .kv_usage(&c.project)
        .await
        .map_err(KvServiceError::from)?;
    let list: Vec<_> = stores
        .into_iter()
        .map(|s| json!({"name": s.name, "keys": s.keys, "bytes": s.bytes, "created_at": s.created_at}))
        .collect();
    Ok(Json(json!({
        "stores": list,
        "usage": {"keys": usage.keys, "bytes": usage.bytes, "quota_bytes": kv.config.max_project_bytes},
    }))
    .into_response())
}

async fn create(
    State(kv): Shared,
    Extension(c): Extension<KvCaller>,
    Path(store): Path<String>,
) -> Answer {
    writer(&c)?;
    store_name(&store)?;
    let created = kv
        .store
        .kv_create_store(&c.project, &store)
        .await
        .map_err(KvServiceError::from)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"name": store, "created": created}))).into_response())
}

async fn drop_store(
    State(kv): Shared,
    Extension(c): Extension<KvCaller>,
    Path(store): Path<String>,
) -> Answer {
    writer(&c)?;
    store_name(&store)?;
    if kv
        .store
        .kv_delete_store(&c.project, &store)
        .await
        .map_err(KvServiceError::from)?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(KvServiceError::NoSuchStore(store).into())
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(kv): Shared,
    Extension(c): Extension<KvCaller>,
    Path(store): Path<String>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    store_name(&store)?;
    let Query(q) = q.map_err(|e| Fail(Code::BadRequest, e.body_text()))?;
    let page = kv
        .list(&c.project, &store, &q.prefix, q.cursor.as_deref(), q.limit)
        .await?;
    if page.keys.is_empty() {
        exists(&kv, &c.project, &store).await?;
    }
    Ok(Json(json!({"keys": page.keys, "cursor": page.next})).into_response())
}

/// A 404 naming the store if it does not exist (reads of a missing store would otherwise
/// look like reads of missing keys).
async fn exists(kv: &KeyValueService, project: &str, store: &str) -> Result<(), Fail> {
    if kv
        .store
        .kv_has_store(project, store)
        .await
        .map_err(KvServiceError::from)?
    {
        Ok(())
    } else {
        Err(KvServiceError::NoSuchStore(store.to_owned()).into())
    }
}

async fn read(
    State(kv): Shared,
    Extension(c): Extension<KvCaller>,
    method: Method,
    Path((store, key)): Path<(String, String)>,
) -> Answer {
    store_name(&store)?;
    let Some(entry) = kv
        .get((&c.project, &kv.counts(&c.project, "")), &store, &key)
        .await?
    else {
        exists(&kv, &c.project, &store).await?;
        return Err(Fail(
            Code::ItemNotFound,
            format!("no key `{key}` in store `{store}`"),
        ));
    };
    let mut resp = if method == Method::HEAD {
        Response::new(axum::body::Body::empty())
    } else {
        Response::new(axum::body::Body::from(entry.value.clone()))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.value.len()));
    h.insert(header::ETAG, etag(entry.revision));
    if let Some(at) = entry.expires_at {
        h.insert("x-updraft-expires-at", HeaderValue::from(at));
    }
    Ok(resp)
}

#[derive(Deserialize)]
struct PutQuery {
    ttl: Option<u64>,
}

async fn put(
    State(kv): Shared,
    Extension(c): Extension<KvCaller>,
    Path((store, key)): Path<(String, String)>,
    q: Result<Query<PutQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Answer {
    writer(&c)?;
    let body = body.map_err(|e| Fail(Code::PayloadTooLarge, too_large(&kv, &e)))?;
    store_name(&store)?;
    let Query(q) = q.map_err(|e| Fail(Code::BadRequest, e.body_text()))?;
    let expires_at = match q.ttl {
        None => None,
        Some(0) => {
            return Err(Fail(
                Code::BadRequest,
                "`ttl` is in seconds and must be at least 1".into(),
            ));
        }
        Some(s) => Some(
            updraft_store::now_ms()
                .saturating_add(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)),
        ),
    };
    let write = KvWrite {
        key,
        op: KvOp::Put {
            value: body.to_vec(),
            expires_at,
        },
        condition: condition(&headers)?,
    };
    match kv
        .write(
            (&c.project, &kv.counts(&c.project, "")),
            &store,
            vec![write],
        )
        .await?
        .first()
    {
        Some(KvOutcome::Written { revision }) => {
            let mut resp = Json(json!({"revision": revision})).into_response();
            resp.headers_mut().insert(header::ETAG, etag(*revision));
            Ok(resp)
        }
        Some(KvOutcome::ConditionFailed { current }) => Err(failed(*current)),
        other => Err(Fail(
            Code::Internal,
            format!("unexpected outcome {other:?}"),
        )),
    }
}

async fn delete(
    State(kv): Shared,
    Extension(c): Extension<KvCaller>,
    Path((store, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    writer(&c)?;
    store_name(&store)?;
    let write = KvWrite::delete(key).when(condition(&headers)?);
    match kv
        .write(
            (&c.project, &kv.counts(&c.project, "")),
            &store,
            vec![write],
        )
        .await?
        .first()
    {
        Some(KvOutcome::Deleted { .. }) => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(KvOutcome::ConditionFailed { current }) => Err(failed(*current)),
        other => Err(Fail(
            Code::Internal,
            format!("unexpected outcome {other:?}"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Increment {
    increment: i64,
}

async fn increment(
    State(kv): Shared,
    Extension(c): Extension<KvCaller>,
    Path((store, key)): Path<(String, String)>,
    body: Result<Json<Increment>, JsonRejection>,
) -> Answer {
    writer(&c)?;
    store_name(&store)?;
    let Json(body) = body.map_err(|e| {
        Fail(
            Code::BadRequest,
            format!("expected `{{\"increment\": <integer>}}`: {}", e.body_text()),
        )
    })?;
    match kv
        .write(
            (&c.project, &kv.counts(&c.project, "")),
            &store,
            vec![KvWrite::increment(key, body.increment)],
        )
        .await?
        .first()
    {
        Some(KvOutcome::Incremented { value, revision }) => {
            let mut resp = Json(json!({"value": value, "revision": revision})).into_response();
            resp.headers_mut().insert(header::ETAG, etag(*revision));
            Ok(resp)
        }
        other => Err(Fail(
            Code::Internal,
            format!("unexpected outcome {other:?}"),
        )),
    }
}
