//! `/v1/users`: a project's end users, for its owner: list, show, disable or enable, delete,
//! end their sessions; and `/v1/auth/keys/rotate`: a new signing key for access tokens.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use updraft_api::Code;
use updraft_services::auth::{AuthError, UserView, user_view};

use crate::State as AppState;
use crate::auth::Caller;
use crate::error::ApiError;

type Shared = State<Arc<AppState>>;

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match e.status {
            404 => Code::UserNotFound,
            400 | 422 => Code::BadRequest,
            429 => Code::Throttled,
            _ => Code::Internal,
        };
        ApiError::new(code, e.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    limit: Option<usize>,
    offset: Option<usize>,
}

pub(crate) async fn list(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = page.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    let users = state
        .users
        .list_users(
            &caller.project,
            p.limit.unwrap_or(100),
            p.offset.unwrap_or(0),
        )
        .await?;
    Ok(Json(json!({ "users": users })))
}

pub(crate) async fn show(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = state.users.find_user(&caller.project, &id).await?;
    Ok(Json(user_view(&user)))
}

pub(crate) async fn disable(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(
        state.users.set_disabled(&caller.project, &id, true).await?,
    ))
}

pub(crate) async fn enable(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(
        state
            .users
            .set_disabled(&caller.project, &id, false)
            .await?,
    ))
}

pub(crate) async fn delete(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.users.delete_user(&caller.project, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn revoke_sessions(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let n = state.users.revoke_sessions(&caller.project, &id).await?;
    Ok(Json(json!({ "revoked": n })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MailQuery {
    to: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/auth/mail`: the development mailbox (messages to users while no mail server is
/// set), newest first.
pub(crate) async fn mail(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    q: Result<Query<MailQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    let to = q.to.map(|t| t.trim().to_ascii_lowercase());
    let messages = state
        .users
        .mailbox(&caller.project, to.as_deref(), q.limit.unwrap_or(50))
        .await?;
    Ok(Json(json!({ "messages": messages })))
}

pub(crate) async fn rotate_keys(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let kid = state.users.rotate_keys(&caller.project).await?;
    Ok(Json(json!({ "kid": kid })))
}
