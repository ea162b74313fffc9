//! The data plane's front door: the HTTP listener for function traffic.
//!
//! It owns the hyper server and the route table: it accepts requests, matches each to a
//! function's route (`404` for an unknown route, `405` with `Allow`), picks the version (the
//! route's alias, `live` unless it names another, drawing a canary by its weight; or the version
//! or alias a caller pins with `x-updraft-version` / `x-updraft-alias` when the function allows
//! it or the request carries the admin token, [`AdminCheck`]), tells the guest which route
//! matched (`x-updraft-route`, `x-updraft-param-*`, `x-updraft-path-info`), and hands the
//! request to the [`Dispatcher`], which admits, runs and meters it. Connection hygiene (caps,
//! timeouts, header limits) is [`listen`]'s, shared with the control API's listener.
//!
//! Each request is for one project, picked by its host ([`Gateway::project_of`]): a custom
//! domain of a project, `<project>.localhost` (the base domain is configurable), and the
//! `default` project for any other host. Routes are looked up in that project only.
//!
//! What is served is the registry's current [`Snapshot`] (route table + functions), read
//! lock-free per request: a deploy or an alias move publishes a new one atomically. A request
//! holds an `Arc` of its version, so in-flight requests finish on the code they started on.
//!
//! Paths under [`SERVICES_PREFIX`] (`/_updraft/`) go to the platform's own APIs ([`Mounted`],
//! handed in by the composition root), not to function routes.
//!
//! It must not touch storage nor know what runs a function: that is the dispatcher's.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use updraft_api::{Code, DEFAULT_PROJECT, Trigger, headers};
use updraft_dispatch::{
    Body, BodyError, Dispatcher, Function, Input, Origin, Pin, TRACEPARENT, error_response,
    with_function,
};
use updraft_manifest::{RouteMatch, RoutePolicy};
use updraft_registry::{Lookup, Project, Registry, Snapshot};

mod cors;
pub mod listen;
mod mounts;
pub use listen::ListenConfig;
pub use mounts::{Mounted, SiteFallback};

/// Decides whether a request carries an Updraft key, and one that may pin a version.
pub trait AdminCheck: Send + Sync + 'static {
    /// Whether `authorization` (the header's value) is a valid bearer key that may pin a
    /// version of a function of `project` (the admin key, or a key of that project that may
    /// deploy).
    fn may_pin(&self, authorization: &str, project: &str) -> bool;

    /// Whether `authorization` is any valid Updraft key: such a header is for Updraft, never
    /// for a guest.
    fn is_key(&self, authorization: &str) -> bool;

    /// Whether `authorization` is a key of `project` that may use its routes (any role but
    /// metrics), for routes with `auth = "key"`.
    fn is_project_key(&self, authorization: &str, project: &str) -> bool;
}

/// Verifies end users' access tokens, for routes with `auth = "user"` or claims.
pub trait UserCheck: Send + Sync + 'static {
    /// The user `token` stands for, if it is a valid access token of `project`; otherwise
    /// why not.
    fn verify<'a>(
        &'a self,
        project: &'a str,
        token: &'a str,
    ) -> updraft_dispatch::BoxFuture<'a, Result<Arc<VerifiedUser>, String>>;
}

/// A verified end user, ready to hand to a guest.
#[derive(Debug, Clone)]
pub struct VerifiedUser {
    /// The token's claims.
    pub claims: serde_json::Value,
    /// `x-updraft-user-id`: the `sub` claim.
    pub user_id: Option<HeaderValue>,
    /// `x-updraft-claims`: the claims as JSON.
    pub claims_header: Option<HeaderValue>,
}

impl VerifiedUser {
    /// The headers of `claims`, computed once.
    pub fn new(claims: serde_json::Value) -> Self {
        Self {
            user_id: claims["sub"]
                .as_str()
                .and_then(|s| HeaderValue::from_str(s).ok()),
            claims_header: HeaderValue::from_str(&claims.to_string()).ok(),
            claims,
        }
    }
}

/// How an `authorization` header carrying an Updraft admin token starts.
const ADMIN_TOKEN_SHAPE: &str = "Bearer upd_";

/// The data plane. Share it behind an `Arc`.
pub struct Gateway {
    registry: Arc<Registry>,
    dispatcher: Arc<Dispatcher>,
    admin: Option<Arc<dyn AdminCheck>>,
    services: Option<Arc<dyn Mounted>>,
    sites: Option<Arc<dyn SiteFallback>>,
    users: Option<Arc<dyn UserCheck>>,
    base_domain: String,
}

/// The base domain projects are served under by default: `<project>.localhost`.
pub const DEFAULT_BASE_DOMAIN: &str = "localhost";

/// Paths under this prefix are served by the [`Mounted`] services (queues and topics for
/// clients), not by function routes.
pub const SERVICES_PREFIX: &str = "/_updraft/";

impl Gateway {
    /// A gateway serving what `registry` publishes, handing requests to `dispatcher`.
    pub fn new(registry: Arc<Registry>, dispatcher: Arc<Dispatcher>) -> Self {
        Self {
            registry,
            dispatcher,
            admin: None,
            services: None,
            sites: None,
            users: None,
            base_domain: DEFAULT_BASE_DOMAIN.to_owned(),
        }
    }

    /// Serves project `p` at `p.<base>` (default [`DEFAULT_BASE_DOMAIN`]).
    #[must_use]
    pub fn with_base_domain(mut self, base: &str) -> Self {
        self.base_domain = base.trim_matches('.').to_ascii_lowercase();
        self
    }

    /// The request's `Origin`, if its project lets browsers call it from there.
    fn allowed_origin<B>(&self, req: &Request<B>) -> Option<HeaderValue> {
        let origin = req.headers().get(header::ORIGIN)?;
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        let snapshot = self.registry.snapshot();
        let project = self.project_of(&snapshot, req).ok()?;
        let allowed = &project.record.as_ref()?.cors_origins;
        allowed
            .iter()
            .any(|o| o == "*" || *o == text)
            .then(|| origin.clone())
    }

    /// The base domain projects are served under.
    pub fn base_domain(&self) -> &str {
        &self.base_domain
    }

    /// The project a request is for, by its host (`Host`, or the URI's authority over
    /// HTTP/2): a project's custom domain; `<project>.<base domain>`; any other host is the
    /// `default` project's.
    ///
    /// # Errors
    /// The name the host gives when it is `<name>.<base domain>` and no project has it.
    pub fn project_of<'a, B>(
        &self,
        snapshot: &'a Snapshot,
        req: &Request<B>,
    ) -> Result<&'a Arc<Project>, String> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(http::uri::Authority::as_str))
            .map(host_name)
            .unwrap_or_default();
        let named = match snapshot.domains.get(&host) {
            Some(p) => p.clone(),
            None => match host
                .strip_suffix(self.base_domain.as_str())
                .and_then(|h| h.strip_suffix('.'))
                .filter(|label| !label.is_empty() && !label.contains('.'))
            {
                Some(label) => label.to_owned(),
                None => DEFAULT_PROJECT.to_owned(),
            },
        };
        snapshot.project(&named).ok_or(named)
    }

    /// The dispatcher requests go to.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// Lets requests carrying the admin token (as `check` decides) pin a version of any
    /// function.
    #[must_use]
    pub fn with_admin_check(mut self, check: Arc<dyn AdminCheck>) -> Self {
        self.admin = Some(check);
        self
    }

    /// Verifies end users' tokens with `users` (without it, routes that need a user answer
    /// 401).
    #[must_use]
    pub fn with_user_check(mut self, users: Arc<dyn UserCheck>) -> Self {
        self.users = Some(users);
        self
    }

    /// Answers what no route matches from the project's site.
    #[must_use]
    pub fn with_sites(mut self, sites: Arc<dyn SiteFallback>) -> Self {
        self.sites = Some(sites);
        self
    }

    /// Serves [`SERVICES_PREFIX`] with `services`.
    #[must_use]
    pub fn with_services(mut self, services: Arc<dyn Mounted>) -> Self {
        self.services = Some(services);
        self
    }

    /// What is served now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        arc_swap::Guard::into_inner(self.registry.snapshot())
    }

    /// Serves one data-plane request: route, pick a version, dispatch.
    pub async fn handle<B>(&self, mut req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let origin = Origin::new(Trigger::Http, traceparent(req.headers()));
        let snapshot = self.registry.snapshot();
        let path = req.uri().path().to_owned();
        let project = match self.project_of(&snapshot, &req) {
            Ok(p) => p,
            Err(name) => {
                return error_response(
                    Code::ProjectNotFound,
                    format!("no project named `{name}` (from the request's host)"),
                    &origin.request_id,
                );
            }
        };
        // Everything the route decides is settled while the snapshot is held, so nothing of
        // it is copied out but the function and the version.
        let (function, chosen, policy, presented) =
            match project.routes.lookup(req.method().as_str(), &path) {
                Lookup::Found(route, m) => {
                    let function = route.function.clone();
                    let policy = route.trigger.auth.clone();
                    // What the caller presented, read before Updraft's own headers are stripped.
                    let presented = (!policy.is_public())
                        .then(|| req.headers().get(header::AUTHORIZATION))
                        .flatten()
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let chosen = self
                        .requested_pin(&function, req.headers_mut())
                        .and_then(|pin| function.resolve(pin.as_ref(), route.trigger.alias()));
                    if chosen.is_ok() {
                        strip_updraft_headers(req.headers_mut());
                        self.strip_admin_token(req.headers_mut());
                        set_route_headers(req.headers_mut(), &route.pattern, &m);
                    }
                    (function, chosen, policy, presented)
                }
                Lookup::MethodNotAllowed(allowed) => {
                    let mut resp = error_response(
                        Code::MethodNotAllowed,
                        format!(
                            "{} is not allowed on {path}; allowed: {}",
                            req.method(),
                            allowed.join(", ")
                        ),
                        &origin.request_id,
                    );
                    if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                        resp.headers_mut().insert(header::ALLOW, v);
                    }
                    return resp;
                }
                Lookup::NotFound => {
                    let name = project.record.as_ref().map_or(DEFAULT_PROJECT, |r| &r.id);
                    if let Some(answer) = self
                        .sites
                        .as_ref()
                        .and_then(|s| s.serve(name, req.method(), req.uri(), req.headers()))
                    {
                        drop(snapshot);
                        return answer.await;
                    }
                    return error_response(
                        Code::RouteNotFound,
                        format!("no function is routed at {path}"),
                        &origin.request_id,
                    );
                }
            };
        drop(snapshot);
        let chosen = match chosen {
            Ok(v) => self
                .admit(&function, &policy, presented.as_deref(), req.headers_mut())
                .await
                .map(|()| v),
            Err(e) => Err(e),
        };
        match chosen {
            Ok(version) => {
                let input = Input::Http(req.map(body));
                self.dispatcher
                    .dispatch(&function, &version, origin, input)
                    .await
            }
            Err((code, msg)) => {
                let resp = error_response(code, msg, &origin.request_id);
                with_function(resp, &origin.request_id, &function, None)
            }
        }
    }

    /// Checks the route's policy: `key` needs a key of the function's project; `user` and
    /// claims a valid access token of that project (whose claims match). A verified user is
    /// handed to the guest as `x-updraft-user-id` and `x-updraft-claims` (JSON).
    async fn admit(
        &self,
        function: &Function,
        policy: &RoutePolicy,
        presented: Option<&str>,
        headers: &mut http::HeaderMap,
    ) -> Result<(), (Code, String)> {
        let unauthorized = |msg: &str| (Code::Unauthorized, msg.to_owned());
        match policy {
            RoutePolicy::Public => Ok(()),
            RoutePolicy::Key => {
                let ok = presented.is_some_and(|h| {
                    self.admin
                        .as_ref()
                        .is_some_and(|a| a.is_project_key(h, &function.project))
                });
                if ok {
                    Ok(())
                } else {
                    Err(unauthorized(
                        "this route needs an API key of its project: Authorization: Bearer <key>",
                    ))
                }
            }
            RoutePolicy::User | RoutePolicy::Claims(_) => {
                let token = presented
                    .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        unauthorized(
                            "this route needs a signed-in user: Authorization: Bearer <access token>",
                        )
                    })?;
                let users = self
                    .users
                    .as_ref()
                    .ok_or_else(|| unauthorized("end-user auth is not available"))?;
                let user = users
                    .verify(&function.project, token)
                    .await
                    .map_err(|why| (Code::Unauthorized, why))?;
                if let Some(claim) = policy.unmet(&user.claims) {
                    return Err((
                        Code::Forbidden,
                        format!("the user's `{claim}` claim does not allow this route"),
                    ));
                }
                if let Some(v) = &user.user_id {
                    headers.insert("x-updraft-user-id", v.clone());
                }
                if let Some(v) = &user.claims_header {
                    headers.insert("x-updraft-claims", v.clone());
                }
                Ok(())
            }
        }
    }

    /// Removes `authorization` if it carries an Updraft key (the admin key or a scoped one): it
    /// is for Updraft, never for a guest (a caller pinning a version of a function that allows
    /// pinning may still send it). Only a bearer token shaped like Updraft's is hashed and
    /// checked.
    fn strip_admin_token(&self, headers: &mut http::HeaderMap) {
        let Some(admin) = &self.admin else { return };
        if headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.starts_with(ADMIN_TOKEN_SHAPE) && admin.is_key(h))
        {
            headers.remove(header::AUTHORIZATION);
        }
    }

    /// The version or alias a request pins with `x-updraft-version` / `x-updraft-alias`, if
    /// it may: the function allows pinning, or the request carries the admin token (which is
    /// then removed: it is for Updraft, never for the guest).
    fn requested_pin(
        &self,
        function: &Function,
        headers: &mut http::HeaderMap,
    ) -> Result<Option<Pin>, (Code, String)> {
        let bad = |msg: String| (Code::BadRequest, msg);
        let pin = match (headers.get(headers::VERSION), headers.get(headers::ALIAS)) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "send {} or {}, not both",
                    headers::VERSION,
                    headers::ALIAS
                )));
            }
            (Some(v), None) => v
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .map(Pin::Version)
                .ok_or_else(|| bad(format!("{} must be a version number", headers::VERSION)))?,
            (None, Some(a)) => Pin::Alias(
                a.to_str()
                    .map_err(|_| bad(format!("{} must be an alias name", headers::ALIAS)))?
                    .trim()
                    .to_owned(),
            ),
        };
        if !function.allow_pinning {
            let admin = headers
                .get(header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| {
                    self.admin
                        .as_ref()
                        .is_some_and(|a| a.may_pin(h, &function.project))
                });
            if !admin {
                return Err((
                    Code::Forbidden,
                    format!(
                        "function `{}` does not let callers pick a version: send the admin \
                         token, or set allow_version_pinning = true in its manifest",
                        function.name
                    ),
                ));
            }
            headers.remove(header::AUTHORIZATION);
        }
        Ok(Some(pin))
    }

    /// Invokes `function` directly with `req` (no routing), as the control API's invoke does:
    /// the version `pin` names, or one picked by `live`.
    pub async fn invoke<B>(
        &self,
        function: &Arc<Function>,
        pin: Option<&Pin>,
        mut req: Request<B>,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let origin = Origin::new(Trigger::Invoke, traceparent(req.headers()));
        let version = match function.resolve(pin, updraft_manifest::LIVE) {
            Ok(v) => v,
            Err((code, msg)) => {
                let resp = error_response(code, msg, &origin.request_id);
                return with_function(resp, &origin.request_id, function, None);
            }
        };
        strip_updraft_headers(req.headers_mut());
        let input = Input::Http(req.map(body));
        self.dispatcher
            .dispatch(function, &version, origin, input)
            .await
    }

    /// Serves the data plane on `listener` with `config`'s connection limits until
    /// `shutdown` resolves, then stops accepting and waits up to `drain` for in-flight
    /// requests to finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        config: &ListenConfig,
        shutdown: impl Future<Output = ()> + Send,
        drain: Duration,
    ) {
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let gateway = self.clone();
            async move {
                // CORS, for the origins the request's project allows.
                let origin = gateway.allowed_origin(&req);
                if let Some(origin) = &origin
                    && cors::is_preflight(&req)
                {
                    return Ok::<_, Infallible>(cors::preflight(origin, req.headers()));
                }
                let mut resp = match &gateway.services {
                    Some(services) if req.uri().path().starts_with(SERVICES_PREFIX) => {
                        services.call(req).await
                    }
                    _ => gateway.handle(req).await,
                };
                if let Some(origin) = origin {
                    cors::allow(resp.headers_mut(), origin);
                }
                Ok::<_, Infallible>(resp)
            }
        });
        listen::serve(listener, config, "data plane", service, shutdown, drain).await;
    }
}

/// A request body as the dispatcher takes it.
fn body<B>(b: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    b.map_err(BodyError::failed).boxed_unsync()
}

/// The request's `traceparent`, if it has a readable one.
fn traceparent(headers: &http::HeaderMap) -> Option<&str> {
    headers.get(TRACEPARENT).and_then(|v| v.to_str().ok())
}

/// Tells the guest which route matched: `x-updraft-route`, one `x-updraft-param-<name>` per
/// parameter, and `x-updraft-path-info` for what a trailing `...` matched.
fn set_route_headers(headers: &mut http::HeaderMap, pattern: &str, m: &RouteMatch) {
    if let Ok(v) = HeaderValue::from_str(pattern) {
        headers.insert("x-updraft-route", v);
    }
    for (name, value) in &m.params {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(
                format!("x-updraft-param-{}", name.to_ascii_lowercase()).as_bytes(),
            ),
            HeaderValue::from_str(value),
        ) {
            headers.insert(k, v);
        }
    }
    if let Some(rest) = &m.rest
        && let Ok(v) = HeaderValue::from_str(rest)
    {
        headers.insert("x-updraft-path-info", v);
    }
}

/// Removes every `x-updraft-*` request header: those come from Updraft, never from clients.
fn strip_updraft_headers(headers: &mut http::HeaderMap) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-updraft-"))
        .cloned()
        .collect();
    for k in spoofed {
        headers.remove(k);
    }
}

/// The host name of a `Host` header value: lower case, without the port (an IPv6 literal
/// keeps its brackets).
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The address a listener is bound to, for printing.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
