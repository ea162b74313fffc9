//! The control API under `/v1` (JSON; every route but `/v1/health` needs the admin token).
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | GET | `/v1/health` | liveness, no token |
//! | GET | `/v1/status` | version, function count, compile counters |
//! | HEAD/GET | `/v1/artifacts/{digest}` | 200 if stored and compiled, else 404 |
//! | PUT | `/v1/artifacts/{digest}` | upload a component (raw body); validated and compiled |
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
//! | GET | `/metrics` | Prometheus text (admin token required) |

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, middleware};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Deserialize;
use updraft_api::{
    ArtifactUploaded, Code, DeployRequest, FunctionList, RollbackRequest, SetAlias, Status,
};

use crate::State as AppState;
use crate::error::ApiError;
use crate::{auth, logs, queues, usage};

/// Largest component upload accepted (componentize-py output is ~40 MiB).
const MAX_ARTIFACT_BYTES: usize = 256 << 20;
/// Largest body of any other control request (manifests, invoke payloads).
const MAX_BODY_BYTES: usize = 16 << 20;

type Shared = State<Arc<AppState>>;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/v1/status", get(status))
        .route(
            "/v1/artifacts/{digest}",
            get(artifact_exists)
                .head(artifact_exists)
                .put(upload_artifact)
                .layer(DefaultBodyLimit::max(MAX_ARTIFACT_BYTES)),
        )
        .route("/v1/apps", post(deploy_app))
        .route("/v1/functions", get(list_functions))
        .route(
            "/v1/functions/{name}",
            get(get_function).delete(delete_function),
        )
        .route("/v1/functions/{name}/versions", get(list_versions))
        .route("/v1/functions/{name}/versions/{version}", get(get_version))
        .route(
            "/v1/functions/{name}/aliases/{alias}",
            axum::routing::put(set_alias).delete(delete_alias),
        )
        .route("/v1/functions/{name}/rollback", post(rollback))
        .route("/v1/functions/{name}/invoke", post(invoke))
        .route("/v1/functions/{name}/logs", get(logs::logs))
        .route(
            "/v1/functions/{name}/invocations",
            get(usage::function_invocations).post(queues::invoke_async),
        )
        .nest("/v1", queues::control_routes())
        .route("/v1/invocations/{request_id}", get(usage::invocation))
        .route("/v1/usage", get(usage::usage))
        .route("/metrics", get(usage::metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
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

fn valid_digest(digest: &str) -> Result<(), ApiError> {
    if digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::BadRequest,
            format!("`{digest}` is not a sha256 digest (64 lower-case hex characters)"),
        ))
    }
}

async fn status(State(state): Shared) -> Json<Status> {
    let stats = state.engine.stats();
    Json(Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        functions: state.gateway.snapshot().functions.len(),
        compilations: stats.compilations,
        cache_loads: stats.cache_loads,
        data_plane_url: state.data_url.get().cloned().unwrap_or_default(),
    })
}

async fn artifact_exists(
    State(state): Shared,
    Path(digest): Path<String>,
) -> Result<StatusCode, ApiError> {
    valid_digest(&digest)?;
    let stored = state.artifacts.exists(&digest).await?;
    if stored && state.engine.is_cached(&digest) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::new(
            Code::ArtifactNotFound,
            format!("artifact {digest} is not stored"),
        ))
    }
}

async fn upload_artifact(
    State(state): Shared,
    Path(digest): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<ArtifactUploaded>), ApiError> {
    valid_digest(&digest)?;
    let bytes: Bytes = body
        .collect()
        .await
        .map_err(|e| {
            ApiError::new(
                Code::PayloadTooLarge,
                format!("could not read the upload (larger than {MAX_ARTIFACT_BYTES} bytes?): {e}"),
            )
        })?
        .to_bytes();
    let actual = updraft_engine::digest(&bytes);
    if actual != digest {
        return Err(ApiError::new(
            Code::DigestMismatch,
            format!("the uploaded bytes hash to sha256 {actual}, not {digest}"),
        ));
    }
    let size = bytes.len() as u64;
    if state.artifacts.exists(&digest).await? && state.engine.is_cached(&digest) {
        let result = ArtifactUploaded {
            digest,
            size,
            compiled: false,
            compile_ms: 0,
        };
        return Ok((StatusCode::OK, Json(result)));
    }
    // Compile (which validates) before storing: a bad upload leaves nothing behind.
    let (engine, d, b) = (state.engine.clone(), digest.clone(), bytes.clone());
    let compiled = tokio::task::spawn_blocking(move || engine.compile(&d, &b))
        .await?
        .map_err(|e| {
            if e.is_user_error() {
                ApiError::new(Code::InvalidComponent, e.to_string())
            } else {
                ApiError::internal("compiling a component", e)
            }
        })?;
    let mut writer = state.artifacts.writer(&digest).await?;
    writer.write(&bytes).await?;
    writer.commit().await?;
    let result = ArtifactUploaded {
        digest,
        size,
        compiled: compiled.compiled_now,
        compile_ms: compiled.elapsed_ms,
    };
    let status = if result.compiled {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(result)))
}

async fn deploy_app(
    State(state): Shared,
    headers: http::HeaderMap,
    body: Result<Json<DeployRequest>, JsonRejection>,
) -> Result<Json<updraft_api::DeployResponse>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    // Who deployed: what the client says, and which admin token it used.
    let token = auth::fingerprint(
        headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
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
        (Some(d), Some(t)) => format!("{d} (token {t})"),
        (None, Some(t)) => format!("token {t}"),
        (Some(d), None) => d,
        (None, None) => "unknown".to_owned(),
    };
    Ok(Json(state.registry.deploy(req, deployer).await?))
}

async fn list_versions(
    State(state): Shared,
    Path(name): Path<String>,
) -> Result<Json<updraft_api::VersionList>, ApiError> {
    Ok(Json(state.registry.versions(&name).await?))
}

async fn get_version(
    State(state): Shared,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<updraft_api::VersionDetail>, ApiError> {
    let n = parse_version(&version)?;
    Ok(Json(state.registry.version(&name, n).await?))
}

fn parse_version(v: &str) -> Result<u32, ApiError> {
    v.parse()
        .map_err(|_| ApiError::new(Code::BadRequest, format!("`{v}` is not a version number")))
}

async fn set_alias(
    State(state): Shared,
    Path((name, alias)): Path<(String, String)>,
    body: Result<Json<SetAlias>, JsonRejection>,
) -> Result<Json<updraft_api::AliasInfo>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    Ok(Json(state.registry.set_alias(&name, &alias, req).await?))
}

async fn delete_alias(
    State(state): Shared,
    Path((name, alias)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.registry.delete_alias(&name, &alias).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rollback(
    State(state): Shared,
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
    Ok(Json(state.registry.rollback(&name, req).await?))
}

async fn list_functions(State(state): Shared) -> Json<FunctionList> {
    Json(FunctionList {
        functions: state.registry.list().await,
    })
}

pub(crate) fn not_found(name: &str) -> ApiError {
    ApiError::new(
        Code::FunctionNotFound,
        format!("no function named `{name}`"),
    )
}

async fn get_function(
    State(state): Shared,
    Path(name): Path<String>,
) -> Result<Json<updraft_api::FunctionInfo>, ApiError> {
    Ok(Json(state.registry.function(&name).await?))
}

async fn delete_function(
    State(state): Shared,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.registry.delete(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&name))
    }
}

#[derive(Deserialize)]
struct InvokeParams {
    method: Option<String>,
    path: Option<String>,
    version: Option<String>,
    alias: Option<String>,
}

async fn invoke(
    State(state): Shared,
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
        .functions
        .get(&name)
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

/// `since` is a duration back from now (`10m`, `24h`) or a timestamp in ms since the epoch.
pub(crate) fn parse_since(s: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let d = updraft_manifest::parse_duration(s)
        .map_err(|e| ApiError::new(Code::BadRequest, format!("since: {e}")))?;
    Ok(updraft_store::now_ms() - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))
}
