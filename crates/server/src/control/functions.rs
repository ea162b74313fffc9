//! Functions, versions and aliases: deploy, list, get, delete, invoke, and the version and
//! alias routes, each a call into the registry (or, for invoke, the gateway).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;
use updraft_api::{Code, DeployRequest, FunctionList, RollbackRequest, SetAlias};

use super::params::{not_found, parse_version};
use crate::State as AppState;
use crate::auth;
use crate::error::ApiError;

type Shared = State<Arc<AppState>>;

pub(crate) async fn deploy_app(
    State(state): Shared,
    Extension(caller): Extension<auth::Caller>,
    headers: http::HeaderMap,
    body: Result<Json<DeployRequest>, JsonRejection>,
) -> Result<Json<updraft_api::DeployResponse>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    // Who deployed: what the client says, and which key it used (a scoped key by its id, the
    // admin key by a fingerprint).
    let token = match caller.scope {
        Some(_) => Some(format!("key {}", caller.id)),
        None => auth::fingerprint(
            headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )
        .map(|f| format!("token {f}")),
    };
    let said = req
        .deployer
        .as_deref()
        .map(|d| {
            d.chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect::<String>()
        })
        .filter(|d| !d.trim().is_empty());
    let deployer = match (said, token) {
        (Some(d), Some(t)) => format!("{d} ({t})"),
        (None, Some(t)) => t,
        (Some(d), None) => d,
        (None, None) => "unknown".to_owned(),
    };
    // The site is checked before anything changes (its files must be uploaded), published
    // after the functions.
    let site = sites_of(&state, &caller.project, &req).await?;
    let files = req.site.clone();
    let mut resp = state
        .registry
        .deploy(&caller.project, req, deployer.clone())
        .await?;
    resp.site_version = match (site, files) {
        (Some(config), Some(files)) => Some(
            state
                .sites
                .publish(&caller.project, &resp.app, config, files, &deployer)
                .await?
                .version,
        ),
        _ => {
            state.sites.unpublish(&caller.project, &resp.app).await?;
            None
        }
    };
    Ok(Json(resp))
}

/// The `[site]` of a deploy, its files checked to be uploaded.
async fn sites_of(
    state: &AppState,
    project: &str,
    req: &DeployRequest,
) -> Result<Option<updraft_manifest::Site>, ApiError> {
    let file = req.manifest_file.as_deref().unwrap_or("updraft.toml");
    // A manifest that does not parse is the registry's to report.
    let Ok(manifest) = updraft_manifest::Manifest::parse(file, &req.manifest) else {
        return Ok(None);
    };
    match (manifest.site, &req.site) {
        (None, _) => Ok(None),
        (Some(_), None) => Err(ApiError::new(
            Code::BadRequest,
            format!("{file} has [site] but the request lists no site files (`site`)"),
        )),
        (Some(site), Some(files)) => {
            // One site per project: refused before the functions change.
            if let Some(owner) = state.sites.owner(project).await?
                && owner != manifest.app.name.as_str()
            {
                return Err(ApiError::new(
                    Code::Conflict,
                    format!("the project's site belongs to app `{owner}`; a project has one site"),
                ));
            }
            let digests: Vec<String> = files.values().map(|f| f.digest.clone()).collect();
            let missing = state.sites.missing(&digests).await?;
            if let Some(d) = missing.first() {
                return Err(ApiError::new(
                    Code::BadRequest,
                    format!(
                        "site file {d} was not uploaded (PUT /v1/site/files/{d}); {} missing",
                        missing.len()
                    ),
                ));
            }
            Ok(Some(site))
        }
    }
}

pub(crate) async fn list_versions(
    State(state): Shared,
    Extension(caller): Extension<auth::Caller>,
    Path(name): Path<String>,
) -> Result<Json<updraft_api::VersionList>, ApiError> {
    Ok(Json(state.registry.versions(&caller.project, &name).await?))
}

pub(crate) async fn get_version(
    State(state): Shared,
    Extension(caller): Extension<auth::Caller>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<updraft_api::VersionDetail>, ApiError> {
    let n = parse_version(&version)?;
    Ok(Json(
        state.registry.version(&caller.project, &name, n).await?,
    ))
}

pub(crate) async fn set_alias(
    State(state): Shared,
    Extension(caller): Extension<auth::Caller>,
    Path((name, alias)): Path<(String, String)>,
    body: Result<Json<SetAlias>, JsonRejection>,
) -> Result<Json<updraft_api::AliasInfo>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    Ok(Json(
        state
            .registry
            .set_alias(&caller.project, &name, &alias, req)
            .await?,
    ))
}

pub(crate) async fn delete_alias(
    State(state): Shared,
    Extension(caller): Extension<auth::Caller>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .registry
        .delete_alias(&caller.project, &name, &alias)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn rollback(
    State(state): Shared,
    Extension(caller): Extension<auth::Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<updraft_api::RollbackResponse>, ApiError> {
    // An empty body means the defaults.
    let req: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(Code::BadRequest, format!("rollback request: {e}")))?
    };
    Ok(Json(
        state.registry.rollback(&caller.project, &name, req).await?,
    ))
}

pub(crate) async fn list_functions(
    State(state): Shared,
    Extension(caller): Extension<auth::Caller>,
) -> Result<Json<FunctionList>, ApiError> {
    let mut functions = state.registry.list(&caller.project).await?;
    for f in &mut functions {
        with_sandbox(&state, f).await;
    }
    Ok(Json(FunctionList { functions }))
}

/// Fills in what the sandbox enforces, for a process function.
async fn with_sandbox(state: &crate::State, f: &mut updraft_api::FunctionInfo) {
    if f.kind == "wasm" {
        return;
    }
    let e = state.process.enforced().await;
    f.sandbox = Some(updraft_api::SandboxInfo {
        helper: e.helper,
        filesystem: e.filesystem,
        signals: e.signals,
        private_tmp: e.private_tmp,
        no_capabilities: e.no_capabilities,
        syscalls: e.syscalls,
        memory_cgroup: e.memory_cgroup,
        summary: e.summary(),
    });
}

pub(crate) async fn get_function(
    State(state): Shared,
    Extension(caller): Extension<auth::Caller>,
    Path(name): Path<String>,
) -> Result<Json<updraft_api::FunctionInfo>, ApiError> {
    let mut f = state.registry.function(&caller.project, &name).await?;
    with_sandbox(&state, &mut f).await;
    Ok(Json(f))
}

pub(crate) async fn delete_function(
    State(state): Shared,
    Extension(caller): Extension<auth::Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.registry.delete(&caller.project, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&name))
    }
}

#[derive(Deserialize)]
pub(crate) struct InvokeParams {
    method: Option<String>,
    path: Option<String>,
    version: Option<String>,
    alias: Option<String>,
}

pub(crate) async fn invoke(
    State(state): Shared,
    Extension(caller): Extension<auth::Caller>,
    Path(name): Path<String>,
    params: Result<Query<InvokeParams>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    let pin = match (&params.version, &params.alias) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Code::BadRequest,
                "give `version` or `alias`, not both",
            ));
        }
        (Some(v), None) => Some(updraft_dispatch::Pin::Version(parse_version(v)?)),
        (None, Some(a)) => Some(updraft_dispatch::Pin::Alias(a.clone())),
        (None, None) => None,
    };
    let function = state
        .gateway
        .snapshot()
        .function(&caller.project, &name)
        .cloned()
        .ok_or_else(|| not_found(&name))?;
    let method = params.method.as_deref().unwrap_or("POST");
    let method =
        http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            ApiError::new(
                Code::BadRequest,
                format!("`{method}` is not an HTTP method"),
            )
        })?;
    let path = params.path.as_deref().unwrap_or("/");
    if !path.starts_with('/') {
        return Err(ApiError::new(
            Code::BadRequest,
            format!("path `{path}` must start with '/'"),
        ));
    }
    let uri: http::Uri = path
        .parse()
        .map_err(|e| ApiError::new(Code::BadRequest, format!("path `{path}`: {e}")))?;
    let (parts, body) = req.into_parts();
    let mut forwarded = http::Request::builder().method(method).uri(uri);
    for (k, v) in &parts.headers {
        if k != http::header::AUTHORIZATION && k != http::header::HOST {
            forwarded = forwarded.header(k, v);
        }
    }
    let forwarded = forwarded
        .header(http::header::HOST, "localhost")
        .body(body)
        .map_err(|e| ApiError::new(Code::BadRequest, e.to_string()))?;
    let resp = state
        .gateway
        .invoke(&function, pin.as_ref(), forwarded)
        .await;
    Ok(resp.map(Body::new))
}
