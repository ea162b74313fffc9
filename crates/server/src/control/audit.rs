//! `GET /v1/audit?since=&limit=&all=`: the audit log of the acting project, newest first
//! (`all=true`: every project's, for the admin key).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use updraft_api::{AuditEntry, AuditList, Code};
use updraft_store::AuditQuery;

use super::params::parse_since;
use crate::State as AppState;
use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    since: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    all: bool,
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditList>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    if p.all && caller.scope.is_some() {
        return Err(ApiError::new(
            Code::Forbidden,
            "all=true (every project's entries) needs the admin key",
        ));
    }
    let q = AuditQuery {
        project: (!p.all).then(|| caller.project.clone()),
        since_ms: p
            .since
            .as_deref()
            .map(parse_since)
            .transpose()?
            .unwrap_or(0),
        limit: p.limit.unwrap_or(100),
    };
    let entries = state.metadata.audit(&q).await?;
    Ok(Json(AuditList {
        entries: entries
            .into_iter()
            .map(|e| AuditEntry {
                id: e.id,
                project: e.project,
                ts_ms: e.ts_ms,
                actor: e.actor,
                action: e.action,
                target: e.target,
                outcome: e.outcome,
                status: e.status,
                detail: e.detail,
            })
            .collect(),
    }))
}
