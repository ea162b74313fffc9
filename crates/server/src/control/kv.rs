//! The key-value API's two mounts: `/v1/kv` on the control API (the caller's key and project
//! as for every control route: a viewer reads, a deployer writes) and `/_updraft/kv/v1` on the
//! data plane (the project from the host; a control key of that project, or the admin key, as
//! `Authorization: Bearer`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use updraft_api::Code;
use updraft_services::kv::KvCaller;

use super::queues::host_project;
use crate::State as AppState;
use crate::auth::{Caller, Role};
use crate::error::ApiError;

/// Largest request body of the key-value API: the largest value, plus room for a little JSON.
pub(crate) fn max_body(state: &AppState) -> usize {
    state.kv.config().max_value_bytes.saturating_add(4096)
}

/// The control API's mount (behind `require_role`, which set the [`Caller`]).
pub(crate) fn control_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    super::as_service(
        updraft_services::kv::router(state.kv.clone()),
        |caller: Caller| KvCaller {
            project: caller.project,
            write: caller.role.allows(Role::Deployer),
        },
    )
}

/// The data plane's mount.
pub(crate) fn data_routes(state: &Arc<AppState>) -> Router {
    updraft_services::kv::router(state.kv.clone())
        .layer(middleware::from_fn_with_state(state.clone(), data_caller))
}

/// A control key of the host's project (viewer or better), or the admin key.
async fn data_caller(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let project = match host_project(&state, &req) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let token = crate::auth::bearer(req.headers()).map(str::to_owned);
    let Some(token) = token else {
        return ApiError::new(
            Code::Unauthorized,
            "missing `Authorization: Bearer <key>` header (a key of the project)",
        )
        .into_response();
    };
    let caller = match state.auth.authenticate(&token) {
        Ok(c) => c,
        Err(why) => return ApiError::new(Code::Unauthorized, why).into_response(),
    };
    if !caller.may_act_in(&project) || !caller.role.allows(Role::Viewer) {
        return ApiError::new(
            Code::Forbidden,
            format!("this key may not use the key-value stores of project `{project}`"),
        )
        .into_response();
    }
    req.extensions_mut().insert(KvCaller {
        project,
        write: caller.role.allows(Role::Deployer),
    });
    next.run(req).await
}
