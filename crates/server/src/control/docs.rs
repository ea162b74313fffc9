//! The document API's mount on the data plane (`/_updraft/db/v1`), and the registry's hook that
//! applies an app's `[[collections]]` at deploy.
//!
//! Who is calling: `Authorization: Bearer` holds a function's credential (its project and
//! granted collections are in it; see [`crate::credentials`]), or, with the project coming from
//! the host, a key of that project (or the admin key; rules do not apply to keys) or an end
//! user's access token (rules decide); no header is an anonymous caller (rules decide, with
//! `auth == null`). A token that is none of these answers 401.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use updraft_api::Code;
use updraft_dispatch::BoxFuture;
use updraft_gateway::UserCheck as _;
use updraft_manifest::Collection;
use updraft_services::docs::{DocCaller, DocService, Who};

use super::queues::host_project;
use crate::State as AppState;
use crate::auth::{Caller, Role};
use crate::credentials;
use crate::error::ApiError;

/// The registry's [`CollectionSink`](updraft_registry::CollectionSink): the document service,
/// and the key function credentials are minted with.
pub(crate) struct Collections {
    pub(crate) docs: Arc<DocService>,
    pub(crate) key: Arc<crate::secrets::SecretKey>,
}

impl updraft_registry::CollectionSink for Collections {
    fn check(&self, collections: &[Collection]) -> Result<(), String> {
        DocService::check(collections)
    }

    fn credential(&self, project: &str, function: &str, collections: &[String]) -> String {
        let grant = credentials::Grant {
            project: project.to_owned(),
            function: function.to_owned(),
            collections: collections.to_vec(),
            buckets: Vec::new(),
        };
        credentials::mint(self.key.credentials(), &grant)
    }

    fn apply<'a>(
        &'a self,
        project: &'a str,
        collections: &'a [Collection],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.docs.apply(project, collections))
    }
}

/// Largest request body of the document API: the largest document, plus room.
pub(crate) fn max_body(state: &AppState) -> usize {
    state.docs.config().max_document_bytes.saturating_add(4096)
}

/// The control API's mount `/v1/db` (behind `require_role`, which set the [`Caller`]): the
/// caller's key acts in its project, rules not applying; a viewer reads, a deployer writes.
pub(crate) fn control_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    super::as_service(
        updraft_services::docs::router(state.docs.clone()),
        |caller: Caller| DocCaller {
            project: caller.project,
            who: Who::Key {
                write: caller.role.allows(Role::Deployer),
            },
        },
    )
}

/// The data plane's mount.
pub(crate) fn data_routes(state: &Arc<AppState>) -> Router {
    updraft_services::docs::router(state.docs.clone())
        .layer(middleware::from_fn_with_state(state.clone(), caller))
}

async fn caller(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let bearer = crate::auth::bearer(req.headers());
    if let Some(token) = bearer.filter(|t| t.starts_with(credentials::PREFIX)) {
        let caller = match function_caller(&state, token) {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
        req.extensions_mut().insert(caller);
        return next.run(req).await;
    }
    let project = match host_project(&state, &req) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")));
    let who = match token {
        None => Who::Anonymous,
        Some(None) => {
            return ApiError::new(
                Code::Unauthorized,
                "`Authorization` must be `Bearer <key or access token>`",
            )
            .into_response();
        }
        Some(Some(token)) => {
            let token = token.trim();
            match state.auth.authenticate(token) {
                Ok(c) if c.may_act_in(&project) && c.role.allows(Role::Viewer) => Who::Key {
                    write: c.role.allows(Role::Deployer),
                },
                Ok(_) => {
                    return ApiError::new(
                        Code::Forbidden,
                        format!("this key may not use the documents of project `{project}`"),
                    )
                    .into_response();
                }
                Err(_) => match state.user_tokens.verify(&project, token).await {
                    Ok(user) => {
                        let mut claims = user.claims.clone();
                        if let Value::Object(m) = &mut claims {
                            let uid = m.get("sub").cloned().unwrap_or(Value::Null);
                            m.insert("uid".into(), uid);
                        }
                        Who::User(claims)
                    }
                    Err(why) => {
                        return ApiError::new(
                            Code::Unauthorized,
                            format!("the token is neither a key of the project nor a valid access token: {why}"),
                        )
                        .into_response();
                    }
                },
            }
        }
    };
    req.extensions_mut().insert(DocCaller { project, who });
    next.run(req).await
}

/// The caller a function credential stands for: its function must still be served.
fn function_caller(state: &AppState, token: &str) -> Result<DocCaller, ApiError> {
    let grant = credentials::verify(state.secret_key.credentials(), token).ok_or_else(|| {
        ApiError::new(
            Code::Unauthorized,
            "the function credential is not valid (altered, or minted with another secret key)",
        )
    })?;
    if state
        .registry
        .snapshot()
        .function(&grant.project, &grant.function)
        .is_none()
    {
        return Err(ApiError::new(
            Code::Unauthorized,
            format!(
                "the function credential's function `{}` is no longer served",
                grant.function
            ),
        ));
    }
    Ok(DocCaller {
        project: grant.project,
        who: Who::Function {
            name: grant.function,
            collections: grant.collections,
        },
    })
}
