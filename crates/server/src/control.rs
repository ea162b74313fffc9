//! The control API under `/v1` (JSON; every route but `/v1/health` needs a key whose role
//! allows it: see `auth::roles`).
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | GET | `/v1/health` | liveness, no token |
//! | any | `/v1/kv/...` | key-value stores (see `updraft_services::kv`): a viewer reads, a deployer writes |
//! | GET | `/v1/backup` | the database (every key-value store and collection) as one SQLite file (admin) |
//! | POST | `/v1/restore?project=` | replace the database, or one project's part, with a backup (admin) |
//! | any | `/v1/db/...` | document collections (see `updraft_services::docs`), as a key: a viewer reads, a deployer writes |
//! | GET | `/v1/status` | version, function count, compile counters |
//! | HEAD/GET | `/v1/artifacts/{digest}` | 200 if stored and compiled, else 404 |
//! | PUT | `/v1/artifacts/{digest}` | upload a component or a process bundle (a zip; raw body): validated, then compiled or unpacked |
//! | POST | `/v1/apps` | deploy an app ([`DeployRequest`]) |
//! | GET | `/v1/functions` | list functions |
//! | GET/DELETE | `/v1/functions/{name}` | one function / delete it |
//! | GET | `/v1/functions/{name}/versions` | versions (newest first) and aliases |
//! | GET | `/v1/functions/{name}/versions/{n}` | one version, with the manifest it came from |
//! | PUT/DELETE | `/v1/functions/{name}/aliases/{alias}` | point an alias ([`SetAlias`]) / delete it |
//! | POST | `/v1/functions/{name}/rollback` | roll an alias back ([`RollbackRequest`]) |
//! | POST | `/v1/functions/{name}/invoke?method=&path=&version=&alias=` | invoke directly, body passed through |
//! | GET | `/v1/functions/{name}/logs?since=&request_id=&after=&limit=&follow=` | stored log lines; `follow=true`: Server-Sent Events |
//! | GET | `/v1/functions/{name}/invocations?since=&limit=&errors=` | invocation records, newest first |
//! | GET | `/v1/invocations/{request_id}` | one invocation record |
//! | GET | `/v1/usage?function=&since=&by=` | usage, cost estimate and quotas ([`updraft_api::UsageReport`]) |
//! | POST | `/v1/functions/{name}/invocations?async=true` | asynchronous invoke: 202 + id (`Idempotency-Key` dedupes) |
//! | GET | `/v1/async/{id}` | an asynchronous invoke's status and result |
//! | ... | `/v1/queues/...`, `/v1/topics/...` | queues and topics (see `queues.rs`) |
//! | GET/POST | `/v1/keys` | scoped API keys ([`updraft_api::CreateKey`]); owner or admin |
//! | DELETE | `/v1/keys/{id}` | revoke a key |
//! | GET/POST | `/v1/buckets` | the project's buckets and stored totals / create one (`{name, public_read}`; deployer) |
//! | DELETE | `/v1/buckets/{name}` | delete an empty bucket (deployer) |
//! | GET | `/v1/buckets/{name}/objects?prefix=&from=&limit=` | a page of objects and the `next` key |
//! | GET/PUT/DELETE | `/v1/buckets/{name}/objects/{key}` | an object's bytes (streamed) / store them (deployer) / delete it |
//! | GET/POST | `/v1/s3-keys` | S3 access keys / create one (`{name, buckets: ["b:read"]}`: the secret is in this answer only; owner) |
//! | DELETE | `/v1/s3-keys/{id}` | revoke an S3 access key (owner) |
//! | GET/POST | `/v1/projects` | projects the key can see / create one ([`updraft_api::CreateProject`]; admin key) |
//! | GET/DELETE | `/v1/projects/{name}` | one project / delete an empty one (admin key) |
//! | PUT | `/v1/projects/{name}/domains` | set its custom domains ([`updraft_api::SetDomains`]; owner) |
//! | GET | `/v1/audit?since=&limit=&all=` | the audit log, newest first (owner; `all`: admin) |
//! | GET | `/v1/users?limit=&offset=` | the project's end users (owner) |
//! | GET/DELETE | `/v1/users/{id}` | one user (by id or email) / delete it (owner) |
//! | POST | `/v1/users/{id}/disable`, `/enable`, `/revoke-sessions` | (owner) |
//! | POST | `/v1/auth/keys/rotate` | a new signing key for access tokens (owner) |
//! | GET | `/v1/auth/mail?to=&limit=` | the development mailbox (owner) |
//! | GET | `/v1/secrets` | the project's secrets: names, times, users; never values |
//! | PUT/DELETE | `/v1/secrets/{name}` | set ([`updraft_api::SetSecret`]) / delete a secret (owner) |
//! | GET | `/metrics` | Prometheus text (a project's key: its project's series) |
//!
//! Every call acts in one project: the `x-updraft-project` header names it, else the key's
//! own project, else `default`. A key of one project naming another gets the answer a missing
//! project gets (404 `project_not_found`).

mod artifacts;
mod audit;
mod backup;
mod docs;
mod functions;
mod keys;
mod kv;
mod logs;
mod objects;
mod params;
mod projects;
mod queues;
mod secrets;
mod sites;
mod storage;
mod usage;
mod users;

pub(crate) use docs::Collections;
pub(crate) use queues::DataPlane;
pub(crate) use sites::Sites;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, middleware};
use updraft_api::Code;

use crate::State as AppState;
use crate::auth;
use crate::error::ApiError;

/// Largest body of any other control request (manifests, invoke payloads).
const MAX_BODY_BYTES: usize = 16 << 20;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/v1/status", get(artifacts::status))
        .route(
            "/v1/artifacts/{digest}",
            get(artifacts::artifact_exists)
                .head(artifacts::artifact_exists)
                .put(artifacts::upload_artifact)
                .layer(DefaultBodyLimit::max(artifacts::MAX_ARTIFACT_BYTES)),
        )
        .route("/v1/apps", post(functions::deploy_app))
        .route("/v1/functions", get(functions::list_functions))
        .route(
            "/v1/functions/{name}",
            get(functions::get_function).delete(functions::delete_function),
        )
        .route(
            "/v1/functions/{name}/versions",
            get(functions::list_versions),
        )
        .route(
            "/v1/functions/{name}/versions/{version}",
            get(functions::get_version),
        )
        .route(
            "/v1/functions/{name}/aliases/{alias}",
            axum::routing::put(functions::set_alias).delete(functions::delete_alias),
        )
        .route("/v1/functions/{name}/rollback", post(functions::rollback))
        .route("/v1/functions/{name}/invoke", post(functions::invoke))
        .route("/v1/functions/{name}/logs", get(logs::logs))
        .route(
            "/v1/functions/{name}/invocations",
            get(usage::function_invocations).post(queues::invoke_async),
        )
        .nest("/v1", queues::control_routes())
        .route("/v1/invocations/{request_id}", get(usage::invocation))
        .route("/v1/usage", get(usage::usage))
        .route("/metrics", get(usage::metrics))
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route("/v1/keys/{id}", axum::routing::delete(keys::revoke))
        .route(
            "/v1/buckets",
            get(objects::list_buckets).post(objects::create_bucket),
        )
        .route(
            "/v1/buckets/{name}",
            axum::routing::delete(objects::delete_bucket),
        )
        .nest("/v1", storage::control_routes())
        .route("/v1/site", get(sites::show))
        .route("/v1/site/rollback", post(sites::rollback))
        .route("/v1/site/files/missing", post(sites::missing))
        .route(
            "/v1/site/files/{digest}",
            axum::routing::put(sites::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/s3-keys",
            get(objects::list_keys).post(objects::create_key),
        )
        .route(
            "/v1/s3-keys/{id}",
            axum::routing::delete(objects::delete_key),
        )
        .route("/v1/audit", get(audit::list))
        .route("/v1/users", get(users::list))
        .route("/v1/users/{id}", get(users::show).delete(users::delete))
        .route("/v1/users/{id}/disable", post(users::disable))
        .route("/v1/users/{id}/enable", post(users::enable))
        .route(
            "/v1/users/{id}/revoke-sessions",
            post(users::revoke_sessions),
        )
        .route("/v1/auth/keys/rotate", post(users::rotate_keys))
        .route("/v1/auth/mail", get(users::mail))
        .route("/v1/secrets", get(secrets::list))
        .route(
            "/v1/secrets/{name}",
            axum::routing::put(secrets::set).delete(secrets::delete),
        )
        .route("/v1/projects", get(projects::list).post(projects::create))
        .route(
            "/v1/projects/{name}",
            get(projects::get).delete(projects::delete),
        )
        .route(
            "/v1/projects/{name}/domains",
            axum::routing::put(projects::set_domains),
        )
        .route(
            "/v1/projects/{name}/cors",
            axum::routing::put(projects::set_cors),
        )
        .nest("/v1/kv", kv::control_routes(&state))
        .nest("/v1/db", docs::control_routes(&state))
        .route("/v1/backup", get(backup::backup))
        .route(
            "/v1/restore",
            post(backup::restore).layer(DefaultBodyLimit::disable()),
        )
        // Inner first: the role check runs, then the audit recorder sees the caller.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::audit::record,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_role,
        ));
    Router::new()
        .route(
            "/v1/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .merge(protected)
        .fallback(|| async { ApiError::new(Code::BadRequest, "no such API endpoint") })
        .method_not_allowed_fallback(|| async {
            let mut resp = ApiError::new(
                Code::MethodNotAllowed,
                "method not allowed on this endpoint",
            )
            .into_response();
            *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            resp
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// A service's router mounted on the control API, its handlers told who calls as the service
/// names it (`map` of the [`auth::Caller`] `require_role` set).
fn as_service<T: Clone + Send + Sync + 'static>(
    router: Router<Arc<AppState>>,
    map: fn(auth::Caller) -> T,
) -> Router<Arc<AppState>> {
    router.route_layer(middleware::from_fn(
        move |mut req: axum::extract::Request, next: middleware::Next| async move {
            let Some(caller) = req.extensions().get::<auth::Caller>().cloned() else {
                return ApiError::new(Code::Unauthorized, "no caller").into_response();
            };
            req.extensions_mut().insert(map(caller));
            next.run(req).await
        },
    ))
}
