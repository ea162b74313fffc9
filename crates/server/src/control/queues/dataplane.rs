//! The data plane's `/_updraft/` mount: the message routes, behind per-queue and per-topic
//! access keys (or a deployer key of the project), and the end-user auth API
//! (`/_updraft/auth/v1`, `updraft-services`), told the project by host, the client's address
//! (`[auth] trusted_proxies`) and the URL its emailed links point at.

use std::sync::Arc;

use crate::auth::InProject;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::error::ApiError;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{self, Next};
use http_body_util::BodyExt;
use std::sync::OnceLock;
use tower::ServiceExt;
use updraft_api::Code;
use updraft_events::{EventError, KeyRole};

use super::{AppState, MAX_BODY, message_routes};

#[derive(Default)]
pub(crate) struct DataPlane {
    router: OnceLock<Router>,
}

impl DataPlane {
    /// Builds the router once the state exists.
    pub(crate) fn attach(&self, state: &Arc<AppState>) {
        // End-user auth: its own router, told the project (by host) and the client's address.
        let auth = updraft_services::auth::router(state.users.clone())
            .layer(middleware::from_fn_with_state(state.clone(), auth_caller))
            .layer(DefaultBodyLimit::max(AUTH_MAX_BODY));
        let router = Router::new()
            .nest("/_updraft", message_routes())
            .layer(middleware::from_fn_with_state(state.clone(), require_key))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .nest_service("/_updraft/auth/v1", auth)
            .nest_service(
                "/_updraft/db/v1",
                super::super::docs::data_routes(state)
                    .layer(DefaultBodyLimit::max(super::super::docs::max_body(state))),
            )
            .nest_service(
                "/_updraft/storage/v1",
                super::super::storage::data_routes(state),
            )
            .nest_service(
                "/_updraft/kv/v1",
                super::super::kv::data_routes(state)
                    .layer(DefaultBodyLimit::max(super::super::kv::max_body(state))),
            )
            .fallback(|| async {
                ApiError::new(
                    Code::RouteNotFound,
                    "no such platform API; see docs/queues.md",
                )
            })
            .method_not_allowed_fallback(|| async {
                ApiError::new(
                    Code::MethodNotAllowed,
                    "method not allowed here (queues and topics are managed on the control API)",
                )
            })
            .with_state(state.clone());
        let _ = self.router.set(router);
    }
}

impl updraft_gateway::Mounted for DataPlane {
    fn call(
        &self,
        req: http::Request<hyper::body::Incoming>,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = http::Response<updraft_dispatch::Body>> + Send + 'static>,
    > {
        let router = self.router.get().cloned();
        Box::pin(async move {
            let Some(router) = router else {
                return to_gateway(ApiError::new(Code::Internal, "starting up").into_response())
                    .await;
            };
            // The platform's APIs are done with a body once they answer: what a refused
            // request left unread is drained first, so its client hears the refusal.
            let (parts, body) = req.into_parts();
            let (held, leftover) = updraft_dispatch::held::Held::new(body);
            let req = http::Request::from_parts(parts, Body::new(held));
            let resp = match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            if resp.status().is_client_error() || resp.status().is_server_error() {
                leftover.drain().await;
            }
            to_gateway(resp).await
        })
    }
}

/// The response as the gateway sends it: streamed, not gathered (a change stream never
/// ends).
async fn to_gateway(resp: Response) -> http::Response<updraft_dispatch::Body> {
    let (parts, body) = resp.into_parts();
    let body = body
        .map_err(updraft_dispatch::BodyError::failed)
        .boxed_unsync();
    http::Response::from_parts(parts, body)
}

/// Largest request body of the auth API.
const AUTH_MAX_BODY: usize = 64 << 10;

/// Tells the auth API which project the request is for (by its host) and where it came from.
async fn auth_caller(State(state): Shared, mut req: Request, next: Next) -> Response {
    let (project, domains) = {
        let snapshot = state.gateway.snapshot();
        match state.gateway.project_of(&snapshot, &req) {
            Ok(p) => p
                .record
                .as_ref()
                .map(|r| (r.id.clone(), r.domains.clone()))
                .unwrap_or_default(),
            Err(name) => {
                let body = serde_json::json!({
                    "code": 404,
                    "error_code": "project_not_found",
                    "msg": format!("no project named `{name}` (from the request's host)"),
                });
                return (http::StatusCode::NOT_FOUND, axum::Json(body)).into_response();
            }
        }
    };
    let ip = client_ip(&state, &req);
    let base_url = link_base(&state, &req, &project, &domains);
    req.extensions_mut().insert(updraft_services::auth::Caller {
        project,
        ip,
        base_url,
    });
    next.run(req).await
}

/// The client's address: the connection's, or, when that is a trusted proxy, the last
/// address in `X-Forwarded-For` that is not one (proxies append, so earlier entries are the
/// client's to forge).
fn client_ip(state: &AppState, req: &Request) -> String {
    let Some(peer) = req
        .extensions()
        .get::<updraft_gateway::listen::PeerAddr>()
        .map(|p| p.0.ip())
    else {
        return String::new();
    };
    let trusted = |ip: std::net::IpAddr| state.trusted_proxies.iter().any(|c| c.contains(ip));
    if !trusted(peer) {
        return peer.to_string();
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted(**ip))
        .or(forwarded.first())
        .unwrap_or(&peer)
        .to_string()
}

/// The auth API's URL for links mailed to users: the host the client used, if it is one of
/// the project's own (its custom domains, `<project>.<base domain>`, or, for `default`, the
/// base domain or a loopback name); otherwise `<project>.<base domain>`. A request with a
/// forged `Host` can't make a recovery link point elsewhere.
fn link_base(state: &AppState, req: &Request, project: &str, domains: &[String]) -> String {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !p.contains(']') => (n.to_owned(), format!(":{p}")),
        _ => (host.clone(), String::new()),
    };
    let base = state.gateway.base_domain();
    let own = format!("{project}.{base}");
    let known = name == own
        || domains.contains(&name)
        || (project == updraft_api::DEFAULT_PROJECT
            && (name == base || matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]")));
    let scheme = match req.headers().get("x-forwarded-proto").map(|v| v.as_bytes()) {
        Some(b"https") => "https",
        _ => "http",
    };
    let host = if known {
        format!("{name}{port}")
    } else {
        format!("{own}{port}")
    };
    format!("{scheme}://{host}/_updraft/auth/v1")
}

/// The project the request's host names, or the 404 answer for an unknown one. Every
/// `/_updraft/` API but auth (whose errors are GoTrue-shaped) answers so.
pub(crate) fn host_project(state: &AppState, req: &Request) -> Result<String, ApiError> {
    let snapshot = state.gateway.snapshot();
    match state.gateway.project_of(&snapshot, req) {
        Ok(p) => Ok(p.record.as_ref().map(|r| r.id.clone()).unwrap_or_default()),
        Err(name) => Err(ApiError::new(
            Code::ProjectNotFound,
            format!("no project named `{name}` (from the request's host)"),
        )),
    }
}

/// Data-plane auth: `Authorization: Bearer <key>` with a key of the queue or topic in the
/// path that allows the operation (a send-only key sends, a consume-only key receives and
/// acks, the queue's own key does both and purges), or the admin token. A missing queue or
/// topic answers exactly like a wrong key, so names can't be probed.
async fn require_key(State(state): Shared, mut req: Request, next: Next) -> Response {
    let project = match host_project(&state, &req) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(InProject(project.clone()));
    let token = crate::auth::bearer(req.headers()).map(str::to_owned);
    let mut segments = req.uri().path().trim_start_matches('/').split('/').skip(1);
    let (kind, target) = (
        segments.next().unwrap_or("").to_owned(),
        segments.next().unwrap_or("").to_owned(),
    );
    let rest: Vec<String> = segments.map(str::to_owned).collect();
    let Some(token) = token else {
        return ApiError::new(
            Code::Unauthorized,
            "missing `Authorization: Bearer <access key>` header (the queue's or topic's key)",
        )
        .into_response();
    };
    // A control key of the project that may deploy may also use its queues and topics.
    if let Ok(c) = state.auth.authenticate(&token)
        && c.role.allows(crate::auth::Role::Deployer)
        && c.may_act_in(&project)
    {
        req.extensions_mut().insert(crate::auth::Producer(c.id));
        return next.run(req).await;
    }
    let producer = format!("{}:{target}", kind.trim_end_matches('s'));
    req.extensions_mut().insert(crate::auth::Producer(producer));
    let allowed = match kind.as_str() {
        "queues" => {
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            let needed = needed_role(req.method(), &rest);
            state
                .log
                .check_queue_key(&project, &target, &token)
                .await
                .map(|role| role.is_some_and(|r| needed.is_none_or(|n| r.allows(n))))
        }
        "topics" => state.log.check_topic_key(&project, &target, &token).await,
        _ => Ok(false),
    };
    match allowed {
        Ok(true) => next.run(req).await,
        Ok(false) | Err(EventError::QueueNotFound(_) | EventError::TopicNotFound(_)) => {
            ApiError::new(
                Code::Unauthorized,
                "the access key is not valid for this queue or topic, or does not allow this",
            )
            .into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The role a queue operation needs (`None`: any key of the queue, e.g. reading its depth).
fn needed_role(method: &http::Method, rest: &[&str]) -> Option<KeyRole> {
    match (method, rest) {
        (&http::Method::GET, []) => None,
        (&http::Method::POST, ["messages"] | ["messages", "batch"]) => Some(KeyRole::Send),
        (&http::Method::POST, ["messages", "receive" | "ack"])
        | (&http::Method::DELETE, ["messages", _]) => Some(KeyRole::Consume),
        // Purge, and anything else: the queue's own key.
        _ => Some(KeyRole::Full),
    }
}
