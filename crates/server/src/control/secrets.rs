//! `/v1/secrets`: a project's secrets. Values go in (sealed before they are stored) and never
//! come out: listings show names, times and the functions granted each.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use updraft_api::{Code, SecretInfo, SecretList, SecretSet, SetSecret};

use crate::State as AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::secrets::MAX_SECRET_BYTES;

type Shared = State<Arc<AppState>>;

fn check_name(name: &str) -> Result<(), ApiError> {
    if updraft_manifest::is_env_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::BadRequest,
            format!(
                "`{name}` is not a valid secret name: letters, digits and `_`, not starting \
                 with a digit (it becomes an environment variable)"
            ),
        ))
    }
}

pub(crate) async fn list(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Json<SecretList>, ApiError> {
    let stored = state.metadata.secrets(&caller.project).await?;
    let mut secrets = Vec::with_capacity(stored.len());
    for s in stored {
        secrets.push(SecretInfo {
            used_by: state.registry.secret_users(&caller.project, &s.name).await,
            name: s.name,
            created_at: s.created_at,
            updated_at: s.updated_at,
        });
    }
    Ok(Json(SecretList { secrets }))
}

pub(crate) async fn set(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Result<Json<SetSecret>, JsonRejection>,
) -> Result<(StatusCode, Json<SecretSet>), ApiError> {
    check_name(&name)?;
    let Json(req) = body.map_err(|e| {
        // The rejection's text may quote the body: say what is wrong without it.
        let _ = e;
        ApiError::new(
            Code::BadRequest,
            "the body must be JSON: {\"value\": \"...\"}",
        )
    })?;
    if req.value.len() > MAX_SECRET_BYTES {
        return Err(ApiError::new(
            Code::PayloadTooLarge,
            format!("a secret holds at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    if req.value.contains('\0') {
        return Err(ApiError::new(
            Code::BadRequest,
            "a secret can't contain a NUL character (it becomes an environment variable)",
        ));
    }
    let sealed = state
        .secret_key
        .seal(&caller.project, &name, req.value.as_bytes());
    if sealed.is_empty() {
        return Err(ApiError::internal("sealing a secret", "seal failed"));
    }
    let (created, restarted) = state
        .registry
        .set_secret(&caller.project, &name, &sealed)
        .await?;
    tracing::info!(project = %caller.project, secret = %name, by = %caller.id, created, "secret set");
    let stored = state.metadata.secrets(&caller.project).await?;
    let s = stored
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::internal("setting a secret", "not found after storing it"))?;
    let info = SecretInfo {
        used_by: state.registry.secret_users(&caller.project, &name).await,
        name: s.name,
        created_at: s.created_at,
        updated_at: s.updated_at,
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(SecretSet {
            secret: info,
            created,
            restarted,
        }),
    ))
}

pub(crate) async fn delete(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_name(&name)?;
    state.registry.delete_secret(&caller.project, &name).await?;
    tracing::info!(project = %caller.project, secret = %name, by = %caller.id, "secret deleted");
    Ok(StatusCode::NO_CONTENT)
}
