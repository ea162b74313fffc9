//! The auth API under `/_updraft/auth/v1/`, in Supabase Auth's (GoTrue's) shapes: errors are
//! `{"code": <status>, "error_code": "...", "msg": "..."}`.
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | POST | `/signup` | `{email, password, data?}` → session; `{}` → anonymous session |
//! | POST | `/token?grant_type=password` | `{email, password}` → session |
//! | POST | `/token?grant_type=refresh_token` | `{refresh_token}` → session (a new refresh token) |
//! | POST | `/logout?scope=global\|local\|others` | ends sessions (bearer access token) → 204 |
//! | POST | `/recover` | `{email}` → mails a recovery link and code; `{}` either way |
//! | POST | `/otp`, `/magiclink` | `{email, create_user?}` → mails a sign-in link and code |
//! | GET | `/authorize?provider=&redirect_to=` | to the OpenID Connect provider (302) |
//! | GET | `/callback?code=&state=` | back from it: a session (or 303 to `redirect_to`) |
//! | POST, GET | `/verify` | `{type, token, email}` or `{type, token_hash}` → session; GET: the link |
//! | GET, PUT | `/user` | the signed-in user / update `{email?, password?, data?}` |
//! | GET | `/.well-known/jwks.json` | the project's public keys |
//! | GET | `/settings`, `/health` | what is enabled; liveness |
//!
//! The mount hands each request a [`Caller`] extension: the project (from the host) and the
//! client's address (for rate limits).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Auth, AuthError, Claims};

/// Who is asking: set by the mount.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The project the request's host names.
    pub project: String,
    /// The client's address.
    pub ip: String,
    /// This API's URL as the client reached it (`http://shop.localhost:3000/_updraft/auth/v1`):
    /// where emailed links point.
    pub base_url: String,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"code": self.status, "error_code": self.code, "msg": self.message});
        (status, Json(body)).into_response()
    }
}

type Shared = State<Arc<Auth>>;

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, AuthError> {
    b.map(|Json(t)| t).map_err(|e| {
        AuthError::new(
            400,
            "validation_failed",
            format!("invalid request body: {}", e.body_text()),
        )
    })
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            AuthError::new(
                401,
                "no_authorization",
                "This endpoint requires a Bearer token",
            )
        })
}

async fn signed_in(auth: &Auth, caller: &Caller, headers: &HeaderMap) -> Result<Claims, AuthError> {
    auth.verify(&caller.project, bearer(headers)?).await
}

/// The auth API's router (mount it at `/_updraft/auth/v1`).
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/signup", post(signup))
        .route("/token", post(token))
        .route("/logout", post(logout))
        .route("/recover", post(recover))
        .route("/otp", post(otp))
        .route("/magiclink", post(otp))
        .route("/verify", post(verify_post).get(verify_get))
        .route("/authorize", get(authorize))
        .route("/callback", get(callback))
        .route("/user", get(get_user).put(put_user))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/settings", get(settings))
        .route(
            "/health",
            get(|| async { Json(json!({"name": "updraft-auth"})) }),
        )
        .fallback(|| async { AuthError::new(404, "not_found", "no such auth endpoint") })
        .with_state(auth)
}

#[derive(Deserialize)]
struct SignUp {
    email: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    // Accepted and ignored: GoTrue clients send them.
    #[serde(default, rename = "gotrue_meta_security")]
    _security: Option<Value>,
    #[serde(default, rename = "code_challenge")]
    _code_challenge: Option<Value>,
    #[serde(default, rename = "code_challenge_method")]
    _code_challenge_method: Option<Value>,
}

async fn signup(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    b: Result<Json<SignUp>, JsonRejection>,
) -> Result<Response, AuthError> {
    let req = body(b)?;
    let session = match (req.email.as_deref(), req.password.as_deref()) {
        (Some(e), Some(p)) => {
            let signed_up = auth
                .sign_up(
                    &caller.project,
                    &caller.ip,
                    e,
                    p,
                    req.data.as_ref(),
                    &caller.base_url,
                )
                .await?;
            return Ok(Json(signed_up).into_response());
        }
        (None, None) => {
            auth.sign_in_anonymously(&caller.project, &caller.ip, req.data.as_ref())
                .await?
        }
        _ => {
            return Err(AuthError::new(
                400,
                "validation_failed",
                "Signup requires a valid password and email (or neither, for an anonymous user)",
            ));
        }
    };
    Ok(Json(session).into_response())
}

#[derive(Deserialize)]
struct Grant {
    grant_type: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    email: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    #[serde(default, rename = "gotrue_meta_security")]
    _security: Option<Value>,
}

async fn token(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    Query(grant): Query<Grant>,
    b: Result<Json<TokenBody>, JsonRejection>,
) -> Result<Response, AuthError> {
    let req = body(b)?;
    let session = match grant.grant_type.as_deref() {
        Some("password") => {
            let (Some(e), Some(p)) = (req.email.as_deref(), req.password.as_deref()) else {
                return Err(AuthError::new(
                    400,
                    "validation_failed",
                    "password grant needs email and password",
                ));
            };
            auth.sign_in_password(&caller.project, &caller.ip, e, p)
                .await?
        }
        Some("refresh_token") => {
            let t = req.refresh_token.as_deref().unwrap_or("");
            auth.refresh(&caller.project, &caller.ip, t).await?
        }
        other => {
            return Err(AuthError::new(
                400,
                "validation_failed",
                format!(
                    "unsupported grant_type {}: use password or refresh_token",
                    other.map_or_else(|| "(none)".to_owned(), |g| format!("`{g}`"))
                ),
            ));
        }
    };
    Ok(Json(session).into_response())
}

#[derive(Deserialize)]
struct Scope {
    scope: Option<String>,
}

async fn logout(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    Query(scope): Query<Scope>,
    headers: HeaderMap,
) -> Result<StatusCode, AuthError> {
    let claims = signed_in(&auth, &caller, &headers).await?;
    auth.sign_out(
        &caller.project,
        &claims,
        scope.scope.as_deref().unwrap_or("global"),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_user(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Response, AuthError> {
    let claims = signed_in(&auth, &caller, &headers).await?;
    Ok(Json(auth.user(&caller.project, &claims).await?).into_response())
}

/// GoTrue clients send more (`code_challenge`, `nonce`, ...): accepted and ignored.
#[derive(Deserialize)]
struct UserUpdate {
    email: Option<String>,
    password: Option<String>,
    data: Option<Value>,
}

async fn put_user(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    b: Result<Json<UserUpdate>, JsonRejection>,
) -> Result<Response, AuthError> {
    let claims = signed_in(&auth, &caller, &headers).await?;
    let req = body(b)?;
    let user = auth
        .update_user(
            &caller.project,
            &claims,
            req.email.as_deref(),
            req.password.as_deref(),
            req.data.as_ref(),
            &caller.base_url,
        )
        .await?;
    Ok(Json(user).into_response())
}

async fn jwks(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Response, AuthError> {
    let mut resp = Json(auth.jwks(&caller.project).await?).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=60"),
    );
    Ok(resp)
}

async fn settings(State(auth): Shared) -> Json<Value> {
    let c = auth.config();
    Json(json!({
        "external": {"email": true, "anonymous_users": c.anonymous_enabled, "phone": false},
        "disable_signup": !c.signup_enabled,
        "mailer_autoconfirm": true,
        "phone_autoconfirm": false,
        "sms_provider": "",
    }))
}

#[derive(Deserialize)]
struct Redirect {
    redirect_to: Option<String>,
}

#[derive(Deserialize)]
struct Recover {
    email: String,
    #[serde(default, rename = "gotrue_meta_security")]
    _security: Option<Value>,
}

async fn recover(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    Query(r): Query<Redirect>,
    b: Result<Json<Recover>, JsonRejection>,
) -> Result<Response, AuthError> {
    let req = body(b)?;
    auth.recover(
        &caller.project,
        &caller.ip,
        &req.email,
        &caller.base_url,
        r.redirect_to.as_deref(),
    )
    .await?;
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct Otp {
    email: String,
    #[serde(default = "yes")]
    create_user: bool,
    data: Option<Value>,
    #[serde(default, rename = "gotrue_meta_security")]
    _security: Option<Value>,
    #[serde(default, rename = "code_challenge")]
    _code_challenge: Option<Value>,
    #[serde(default, rename = "code_challenge_method")]
    _code_challenge_method: Option<Value>,
}

fn yes() -> bool {
    true
}

async fn otp(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    Query(r): Query<Redirect>,
    b: Result<Json<Otp>, JsonRejection>,
) -> Result<Response, AuthError> {
    let req = body(b)?;
    auth.send_magic_link(
        &caller.project,
        &caller.ip,
        &req.email,
        req.create_user,
        req.data.as_ref(),
        &caller.base_url,
        r.redirect_to.as_deref(),
    )
    .await?;
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct Verify {
    #[serde(rename = "type")]
    kind: String,
    token: Option<String>,
    token_hash: Option<String>,
    email: Option<String>,
    redirect_to: Option<String>,
}

async fn verify_post(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    b: Result<Json<Verify>, JsonRejection>,
) -> Result<Response, AuthError> {
    let req = body(b)?;
    let (token, email) = match (&req.token_hash, &req.token) {
        (Some(h), _) => (h.as_str(), None),
        (None, Some(t)) => (t.as_str(), req.email.as_deref()),
        (None, None) => {
            return Err(AuthError::new(
                400,
                "validation_failed",
                "give token (with email) or token_hash",
            ));
        }
    };
    let session = auth
        .verify_otp(&caller.project, &caller.ip, &req.kind, token, email)
        .await?;
    Ok(Json(session).into_response())
}

/// A 303 to `to` with `session` in the fragment, as GoTrue's implicit flow answers.
fn redirect_with(to: &str, session: &super::Session, kind: &str) -> Response {
    let fragment = format!(
        "access_token={}&expires_at={}&expires_in={}&refresh_token={}&token_type=bearer&type={kind}",
        session.access_token, session.expires_at, session.expires_in, session.refresh_token
    );
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!("{to}#{fragment}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[derive(Deserialize)]
struct Authorize {
    provider: String,
    redirect_to: Option<String>,
}

async fn authorize(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    q: Result<Query<Authorize>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AuthError> {
    let Query(q) = q.map_err(|e| AuthError::new(400, "validation_failed", e.body_text()))?;
    let location = auth
        .oidc_authorize(
            &caller.project,
            &q.provider,
            q.redirect_to.as_deref(),
            &caller.base_url,
        )
        .await?;
    let mut resp = StatusCode::FOUND.into_response();
    let v = header::HeaderValue::from_str(&location)
        .map_err(|e| AuthError::internal("redirecting to the provider", e))?;
    resp.headers_mut().insert(header::LOCATION, v);
    Ok(resp)
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    Query(q): Query<Callback>,
) -> Result<Response, AuthError> {
    if let Some(e) = q.error {
        return Err(AuthError::new(
            400,
            "provider_error",
            format!(
                "the provider refused: {e} {}",
                q.error_description.unwrap_or_default()
            ),
        ));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err(AuthError::new(
            400,
            "validation_failed",
            "the callback needs code and state",
        ));
    };
    let (session, redirect_to) = auth
        .oidc_callback(&caller.project, &caller.ip, &state, &code, &caller.base_url)
        .await?;
    Ok(match redirect_to {
        Some(to) => redirect_with(&to, &session, "oauth"),
        None => Json(session).into_response(),
    })
}

/// An emailed link: verifies, then redirects to `redirect_to` (an allowed one) with the
/// session in the fragment, as GoTrue does; without one, answers the session as JSON.
async fn verify_get(
    State(auth): Shared,
    Extension(caller): Extension<Caller>,
    Query(req): Query<Verify>,
) -> Result<Response, AuthError> {
    let token = req
        .token
        .as_deref()
        .or(req.token_hash.as_deref())
        .unwrap_or("");
    let session = auth
        .verify_otp(&caller.project, &caller.ip, &req.kind, token, None)
        .await?;
    match req
        .redirect_to
        .as_deref()
        .filter(|r| auth.redirect_allowed(r))
    {
        Some(to) => {
            let fragment = format!(
                "access_token={}&expires_at={}&expires_in={}&refresh_token={}&token_type=bearer&type={}",
                session.access_token,
                session.expires_at,
                session.expires_in,
                session.refresh_token,
                req.kind
            );
            let location = format!("{to}#{fragment}");
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = header::HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Ok(resp)
        }
        None => Ok(Json(session).into_response()),
    }
}
