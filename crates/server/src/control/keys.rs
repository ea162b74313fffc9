//! `/v1/keys`: scoped API keys. An owner manages the keys of its project; the admin key those
//! of every project. A key of another project answers exactly like a missing one.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use updraft_api::{Code, CreateKey, CreatedKey, KeyInfo, KeyList};
use updraft_store::{ApiKeyRecord, now_ms};

use crate::State as AppState;
use crate::auth::{self, Caller, Role};
use crate::error::ApiError;

/// Longest description kept.
const MAX_DESCRIPTION: usize = 200;

fn info(k: &ApiKeyRecord) -> KeyInfo {
    KeyInfo {
        id: k.id.clone(),
        project: k.project.clone(),
        role: k.role.clone(),
        description: k.description.clone(),
        created_at: k.created_at,
        expires_at: k.expires_at,
    }
}

pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<CreateKey>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let Json(req) = body.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::new(
            Code::BadRequest,
            format!(
                "role `{}` is not one of {}",
                req.role,
                updraft_api::KEY_ROLES.join(", ")
            ),
        )
    })?;
    let project = req.project.unwrap_or_else(|| caller.project.clone());
    // A key can't be made for a project that does not exist, nor by an owner for another
    // project than its own (the same answer).
    if !caller.may_act_in(&project) || state.registry.snapshot().project(&project).is_none() {
        return Err(ApiError::new(
            Code::ProjectNotFound,
            format!("no project named `{project}`"),
        ));
    }
    let expires_at = match req.expires_in.as_deref() {
        None => None,
        Some(s) => {
            let d = updraft_manifest::parse_duration(s)
                .map_err(|e| ApiError::new(Code::BadRequest, format!("expires_in: {e}")))?;
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            if ms == 0 {
                return Err(ApiError::new(
                    Code::BadRequest,
                    "expires_in: must be longer than 0s",
                ));
            }
            Some(now_ms().saturating_add(ms))
        }
    };
    let description: String = req
        .description
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DESCRIPTION)
        .collect();
    let key = auth::new_key();
    let record = ApiKeyRecord {
        id: format!("key_{}", hex::encode(rand::random::<[u8; 8]>())),
        project,
        role: role.as_str().to_owned(),
        key_sha256: auth::hash(&key),
        description,
        created_at: now_ms(),
        expires_at,
    };
    state.metadata.create_api_key(&record).await?;
    state.auth.add(record.clone());
    tracing::info!(key = %record.id, role = %record.role, project = %record.project, by = %caller.id, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key,
            info: info(&record),
        }),
    ))
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<KeyList>, ApiError> {
    let keys = state.metadata.api_keys(Some(&caller.project)).await?;
    Ok(Json(KeyList {
        keys: keys.iter().map(info).collect(),
    }))
}

pub(crate) async fn revoke(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::new(Code::KeyNotFound, format!("no API key `{id}`"));
    match state.auth.key(&id) {
        Some(k) if k.project == caller.project => {}
        _ => return Err(not_found()),
    }
    // Stop honouring it first: a key being revoked must not work a moment longer.
    state.auth.remove(&id);
    if state.metadata.delete_api_key(&id).await?.is_none() {
        return Err(not_found());
    }
    tracing::info!(key = %id, by = %caller.id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
