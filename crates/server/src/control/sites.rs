//! `/v1/site`: the project's static site (`[site]`, published by `POST /v1/apps`).
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/v1/site/files/missing` | `{"digests": [...]}` → `{"missing": [...]}`: what to upload |
//! | PUT | `/v1/site/files/{digest}` | a file's bytes (checked against the digest) |
//! | GET | `/v1/site` | the live version and the kept ones |
//! | POST | `/v1/site/rollback` | `{"version": N}` (default: the one before the live one) |
//!
//! The gateway's [`SiteFallback`](updraft_gateway::SiteFallback) is here too: requests no
//! route matches go to the project's site.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use updraft_api::Code;
use updraft_services::sites::{SiteRequest, SiteService, SitesError};

use crate::State as AppState;
use crate::auth::Caller;
use crate::error::ApiError;

type Shared = State<Arc<AppState>>;

/// Most digests one `missing` call may ask about.
const MAX_DIGESTS: usize = 100_000;

impl From<SitesError> for ApiError {
    fn from(e: SitesError) -> Self {
        let code = match &e {
            SitesError::Invalid(_) => Code::BadRequest,
            SitesError::Conflict(_) => Code::Conflict,
            SitesError::NotFound(_) => Code::VersionNotFound,
            _ => Code::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The gateway's fallback to the site service.
pub(crate) struct Sites(pub(crate) Arc<SiteService>);

impl updraft_gateway::SiteFallback for Sites {
    fn serve(
        &self,
        project: &str,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Option<
        std::pin::Pin<
            Box<dyn Future<Output = http::Response<updraft_dispatch::Body>> + Send + 'static>,
        >,
    > {
        let req = SiteRequest {
            method: method.clone(),
            uri: uri.clone(),
            headers: headers.clone(),
        };
        self.0
            .serve(project, req)
            .map(|f| Box::pin(f) as std::pin::Pin<Box<dyn Future<Output = _> + Send>>)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Missing {
    digests: Vec<String>,
}

pub(crate) async fn missing(
    State(state): Shared,
    body: Result<Json<Missing>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(|e| {
        ApiError::new(
            Code::BadRequest,
            format!("{}; expected {{\"digests\": [...]}}", e.body_text()),
        )
    })?;
    if req.digests.len() > MAX_DIGESTS {
        return Err(ApiError::new(
            Code::BadRequest,
            format!("at most {MAX_DIGESTS} digests per call"),
        ));
    }
    let missing = state.sites.missing(&req.digests).await?;
    Ok(Json(json!({ "missing": missing })))
}

pub(crate) async fn upload(
    State(state): Shared,
    Path(digest): Path<String>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let size = state.sites.upload(&digest, body.into_data_stream()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "digest": digest, "size": size })),
    ))
}

pub(crate) async fn show(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let live = state.sites.live(&caller.project).map(|v| v.version);
    let versions: Vec<Value> = state
        .sites
        .versions(&caller.project)
        .await?
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "app": v.app,
                "files": v.files.len(),
                "bytes": v.files.values().map(|f| f.size).sum::<u64>(),
                "deployer": v.deployer,
                "created_at": updraft_dispatch::rfc3339(v.created_at),
            })
        })
        .collect();
    Ok(Json(json!({ "live": live, "versions": versions })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rollback {
    version: Option<u32>,
}

pub(crate) async fn rollback(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    body: Result<Json<Rollback>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let req = match body {
        Ok(Json(r)) => r,
        Err(JsonRejection::MissingJsonContentType(_)) => Rollback::default(),
        Err(e) => return Err(ApiError::new(Code::BadRequest, e.body_text())),
    };
    state.sites.rollback(&caller.project, req.version).await?;
    show(State(state), Extension(caller)).await
}
