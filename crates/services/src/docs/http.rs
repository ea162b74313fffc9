//! The document API, mounted at `/_updraft/db/v1` on the data plane.
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | GET | `/collections` | the project's collections (keys only) |
//! | GET | `/collections/{c}/docs?where=&order=&limit=&cursor=` | `{"docs": [...], "cursor": ...}` |
//! | POST | `/collections/{c}/docs` | create with a new id → 201 |
//! | GET | `/collections/{c}/docs/{id}` | the document, `ETag: "<revision>"` |
//! | PUT | `/collections/{c}/docs/{id}` | create or replace (`If-Match`, `If-None-Match: *`) |
//! | PATCH | `/collections/{c}/docs/{id}` | JSON merge patch (RFC 7396) |
//! | DELETE | `/collections/{c}/docs/{id}` | delete → 204 |
//! | POST | `/collections/{c}/import` | JSON lines, each created or replaced (writing keys) |
//!
//! A document is `{"id", "revision", "created_at", "updated_at", "data": {...}}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::Value;
use updraft_api::Code;

use super::query::Params;
use super::{DocCaller, DocError, DocService};
use crate::answer::{Fail, condition};

impl From<DocError> for Fail {
    fn from(e: DocError) -> Self {
        let code = match &e {
            DocError::Invalid(_) => Code::BadRequest,
            DocError::Denied(_) => Code::Forbidden,
            DocError::NoCollection(_) => Code::CollectionNotFound,
            DocError::NoDocument(_) => Code::DocumentNotFound,
            DocError::Precondition(_) => Code::PreconditionFailed,
            DocError::TooLarge(_) => Code::PayloadTooLarge,
            DocError::Quota(_) => Code::StorageQuotaExceeded,
            DocError::TooMany(_) => Code::Throttled,
            DocError::Storage(_) => Code::Internal,
        };
        Fail(code, e.to_string())
    }
}

type Shared = State<Arc<DocService>>;
type Answer = Result<Response, Fail>;

/// The router; the mount adds the [`DocCaller`] extension and its body limit.
pub fn router<S: Clone + Send + Sync + 'static>(service: Arc<DocService>) -> Router<S> {
    Router::new()
        .route("/collections", get(collections))
        .route("/collections/{c}/docs", get(query).post(create))
        .route("/collections/{c}/changes", get(changes))
        .route(
            "/collections/{c}/import",
            axum::routing::post(import)
                .layer(axum::extract::DefaultBodyLimit::max(IMPORT_MAX_BODY)),
        )
        .route(
            "/collections/{c}/docs/{id}",
            get(read).put(put).patch(patch).delete(delete),
        )
        .fallback(|| async {
            Fail(
                Code::RouteNotFound,
                "no such document API; see docs/database.md".into(),
            )
        })
        .with_state(service)
}

/// The document with its revision as the `ETag`.
fn doc(status: StatusCode, v: Value) -> Response {
    let etag = v["revision"]
        .as_u64()
        .and_then(|r| HeaderValue::from_str(&format!("\"{r}\"")).ok());
    let mut resp = (status, Json(v)).into_response();
    if let Some(e) = etag {
        resp.headers_mut().insert(header::ETAG, e);
    }
    resp
}

/// A JSON body, or a 400/413 naming the problem.
fn json(svc: &DocService, body: Result<Bytes, BytesRejection>) -> Result<Value, Fail> {
    let body = body.map_err(|e| {
        Fail(
            Code::PayloadTooLarge,
            format!(
                "the request body could not be read ({}); documents may have at most {} bytes",
                e.body_text(),
                svc.config().max_document_bytes
            ),
        )
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| Fail(Code::BadRequest, format!("the body is not JSON: {e}")))
}

/// `%XX` and `+` decoded (a query string's encoding).
fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// The query parameters (`where` may repeat, which serde's query decoding does not allow).
fn params(uri: &Uri) -> Result<Params, Fail> {
    let mut p = Params::default();
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v).ok_or_else(|| {
            Fail(
                Code::BadRequest,
                format!("`{k}` is not percent-encoded UTF-8"),
            )
        })?;
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| Fail(Code::BadRequest, format!("`{k}` must be a whole number")))
        };
        match k {
            "where" => p.filters.push(v),
            "order" => p.order = Some(v),
            "limit" => p.limit = Some(number(&v)?),
            "cursor" => p.cursor = Some(v),
            _ => {
                return Err(Fail(
                    Code::BadRequest,
                    format!("unknown query parameter `{k}` (where, order, limit, cursor)"),
                ));
            }
        }
    }
    Ok(p)
}

/// Largest import request body.
const IMPORT_MAX_BODY: usize = 64 << 20;

async fn import(
    State(svc): Shared,
    Extension(c): Extension<DocCaller>,
    Path(coll): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = body.map_err(|e| {
        Fail(
            Code::PayloadTooLarge,
            format!(
                "the import could not be read ({}); send at most {} MiB per request",
                e.body_text(),
                IMPORT_MAX_BODY >> 20
            ),
        )
    })?;
    Ok(Json(svc.import(&c, &coll, &body).await?).into_response())
}

async fn collections(State(svc): Shared, Extension(c): Extension<DocCaller>) -> Answer {
    Ok(Json(svc.collections(&c).await?).into_response())
}

async fn query(
    State(svc): Shared,
    Extension(c): Extension<DocCaller>,
    Path(coll): Path<String>,
    uri: Uri,
) -> Answer {
    let p = params(&uri)?;
    Ok(Json(svc.query(&c, &coll, &p).await?).into_response())
}

/// Server-Sent Events of the collection's changes, after `Last-Event-ID` (or `?after=`).
async fn changes(
    State(svc): Shared,
    Extension(c): Extension<DocCaller>,
    Path(coll): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    // `after` is this endpoint's own parameter; the rest is a query's `where`.
    let mut after = None;
    let mut rest = Vec::new();
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
    {
        match pair.split_once('=') {
            Some(("after", v)) => after = Some(v.to_owned()),
            _ => rest.push(pair),
        }
    }
    let q: Uri = format!("/?{}", rest.join("&"))
        .parse()
        .map_err(|_| Fail(Code::BadRequest, "bad query string".into()))?;
    let p = params(&q)?;
    if p.order.is_some() || p.limit.is_some() || p.cursor.is_some() {
        return Err(Fail(
            Code::BadRequest,
            "a change stream takes `where` filters and `after` only".into(),
        ));
    }
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(after);
    let last = match last {
        None => None,
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            Fail(
                Code::BadRequest,
                "`Last-Event-ID` (or `after`) is an event id this stream sent".into(),
            )
        })?),
    };
    let rx = svc.changes(c, &coll, &p, last).await?;
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let e = rx.recv().await?;
        let event = axum::response::sse::Event::default()
            .id(e.id.to_string())
            .event(e.event)
            .data(e.data);
        Some((Ok::<_, std::convert::Infallible>(event), rx))
    });
    Ok(axum::response::sse::Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}

async fn create(
    State(svc): Shared,
    Extension(c): Extension<DocCaller>,
    Path(coll): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = json(&svc, body)?;
    Ok(doc(StatusCode::CREATED, svc.create(&c, &coll, body).await?))
}

async fn read(
    State(svc): Shared,
    Extension(c): Extension<DocCaller>,
    Path((coll, id)): Path<(String, String)>,
) -> Answer {
    Ok(doc(StatusCode::OK, svc.get(&c, &coll, &id).await?))
}

async fn put(
    State(svc): Shared,
    Extension(c): Extension<DocCaller>,
    Path((coll, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let cond = condition(&headers)?;
    let body = json(&svc, body)?;
    let (v, created) = svc.put(&c, &coll, &id, body, cond).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(doc(status, v))
}

async fn patch(
    State(svc): Shared,
    Extension(c): Extension<DocCaller>,
    Path((coll, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let cond = condition(&headers)?;
    let body = json(&svc, body)?;
    if !body.is_object() {
        return Err(Fail(
            Code::BadRequest,
            "a merge patch is a JSON object (RFC 7396)".into(),
        ));
    }
    Ok(doc(
        StatusCode::OK,
        svc.patch(&c, &coll, &id, body, cond).await?,
    ))
}

async fn delete(
    State(svc): Shared,
    Extension(c): Extension<DocCaller>,
    Path((coll, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let cond = condition(&headers)?;
    svc.delete(&c, &coll, &id, cond).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
