//! `/v1/projects`: the admin key creates and deletes projects; a project's owner sets its
//! custom domains; any key lists the projects it can see (a scoped key: its own). Another
//! project answers exactly like a missing one.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use updraft_api::{Code, CreateProject, ProjectInfo, ProjectList, SetCors, SetDomains};
use updraft_registry::Error as RegistryError;

use crate::State as AppState;
use crate::auth::Caller;
use crate::error::ApiError;

type Shared = State<Arc<AppState>>;

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t)
        .map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))
}

/// `name`, if the caller may see it.
fn visible(caller: &Caller, name: &str) -> Result<(), ApiError> {
    if caller.may_act_in(name) {
        Ok(())
    } else {
        Err(RegistryError::project_not_found(name).into())
    }
}

pub(crate) async fn list(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
) -> Json<ProjectList> {
    Json(ProjectList {
        projects: state.registry.projects(caller.scope.as_deref()).await,
    })
}

pub(crate) async fn get(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<ProjectInfo>, ApiError> {
    visible(&caller, &name)?;
    state
        .registry
        .projects(Some(&name))
        .await
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| RegistryError::project_not_found(&name).into())
}

pub(crate) async fn create(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    b: Result<Json<CreateProject>, JsonRejection>,
) -> Result<(StatusCode, Json<ProjectInfo>), ApiError> {
    let req = body(b)?;
    let info = state
        .registry
        .create_project(&req.name, &req.domains)
        .await?;
    tracing::info!(project = %info.name, by = %caller.id, "project created");
    Ok((StatusCode::CREATED, Json(info)))
}

pub(crate) async fn set_domains(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    b: Result<Json<SetDomains>, JsonRejection>,
) -> Result<Json<ProjectInfo>, ApiError> {
    visible(&caller, &name)?;
    let req = body(b)?;
    let info = state.registry.set_domains(&name, &req.domains).await?;
    tracing::info!(project = %name, domains = ?info.domains, by = %caller.id, "project domains set");
    Ok(Json(info))
}

pub(crate) async fn set_cors(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    b: Result<Json<SetCors>, JsonRejection>,
) -> Result<Json<ProjectInfo>, ApiError> {
    visible(&caller, &name)?;
    let req = body(b)?;
    let info = state.registry.set_cors(&name, &req.origins).await?;
    tracing::info!(project = %name, origins = ?info.cors_origins, by = %caller.id, "project CORS origins set");
    Ok(Json(info))
}

pub(crate) async fn delete(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.registry.delete_project(&name).await?;
    if let Err(e) = state.kv.store().kv_delete_project(&name).await {
        tracing::error!(project = %name, error = %e, "could not delete the project's key-value data");
    }
    if let Err(e) = state.docs.delete_project(&name).await {
        tracing::error!(project = %name, error = %e, "could not delete the project's documents");
    }
    // Its keys are deleted with it; stop honouring them at once (and its users' tokens).
    state.auth.remove_project(&name);
    state.users.forget_project(&name);
    state.user_tokens.forget(&name);
    tracing::info!(project = %name, by = %caller.id, "project deleted");
    Ok(StatusCode::NO_CONTENT)
}
