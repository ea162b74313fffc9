//! Asynchronous invokes: accepted as events for the function (`202` with an id), deduplicated
//! by `Idempotency-Key`, and their status and result.

use crate::auth::{InProject, Producer};
use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::error::ApiError;
use serde::Deserialize;
use updraft_api::{AsyncInvocation, Code, headers};
use updraft_events::{Feed, NewMessage, internal_queue};

use super::{MAX_BODY, MAX_IDEMPOTENCY_KEY};

#[derive(Deserialize)]
pub(crate) struct InvokeQuery {
    #[serde(rename = "async")]
    asynchronous: Option<bool>,
}

/// `POST /v1/functions/{f}/invocations?async=true`: accepts the body as an event for the
/// function and answers 202 with the invoke's id; `Idempotency-Key` makes a retry of the
/// same submission return the first one.
pub(crate) async fn invoke_async(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Extension(Producer(producer)): Extension<Producer>,
    Path(function): Path<String>,
    query: Result<Query<InvokeQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    if query.asynchronous != Some(true) {
        return Err(ApiError::new(
            Code::BadRequest,
            "POST here needs `?async=true`; invoke synchronously with POST /v1/functions/{name}/invoke",
        ));
    }
    if state
        .gateway
        .snapshot()
        .function(&project, &function)
        .is_none()
    {
        return Err(ApiError::new(
            Code::FunctionNotFound,
            format!("function `{function}` does not exist"),
        ));
    }
    let key = match req.headers().get(headers::IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => Some(k.to_owned()),
            _ => {
                return Err(ApiError::new(
                    Code::BadRequest,
                    format!(
                        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                    ),
                ));
            }
        },
    };
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|e| ApiError::new(Code::PayloadTooLarge, format!("request body: {e}")))?;
    let message = NewMessage {
        source: format!("/functions/{function}"),
        kind: "dev.updraft.function.invoked".into(),
        content_type,
        data: body.to_vec(),
        attributes: [(super::PRODUCER_ATTRIBUTE.to_owned(), producer)].into(),
        ..NewMessage::default()
    };
    let queue = internal_queue(&function, Feed::Async);
    let q = queue.clone();
    let (inv, created): (AsyncInvocation, bool) = state
        .log
        .submit_async(&project, &function, &q, key.as_deref(), message)
        .await?;
    if created {
        state.wakeups.wake(&project, &queue);
    }
    let mut resp = (StatusCode::ACCEPTED, Json(&inv)).into_response();
    if let Ok(v) = http::HeaderValue::from_str(&format!("/v1/async/{}", inv.id)) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    if !created {
        resp.headers_mut().insert(
            "idempotent-replayed",
            http::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

pub(crate) async fn async_status(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path(id): Path<String>,
) -> Result<Json<AsyncInvocation>, ApiError> {
    let inv = state.log.async_invocation(&project, &id).await?;
    Ok(Json(inv))
}
