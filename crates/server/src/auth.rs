//! Who is calling the control API, and what they may do.
//!
//! Two kinds of bearer keys, both `upd_` + 64 hex (256 random bits), of which only the SHA-256
//! is stored: a key has full entropy, so a slow password hash (argon2) would add latency to
//! every API call and no protection.
//! - The server-wide **admin key**: the first start of a data directory creates one, returns it
//!   to be printed once, and writes it to `<data dir>/admin-token` (mode 0600) for the local
//!   CLI. It may do everything, in every project.
//! - **Scoped keys** (`/v1/keys`): a project, a [`Role`] and optionally an expiry. Revoking one
//!   takes effect at once.
//!
//! [`require_role`] checks every control request against [`roles::required`] and hands the
//! handler the [`Caller`].

mod roles;

pub(crate) use roles::Role;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use updraft_api::{Code, DEFAULT_PROJECT, PROJECT_HEADER};
use updraft_store::{ApiKeyRecord, MetadataStore, now_ms};

use crate::ServerError;
use crate::error::ApiError;

/// File name of the first admin token inside the data directory.
pub(crate) const TOKEN_FILE: &str = "admin-token";

pub(crate) fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Who made a request, as [`require_role`] found it.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The key's id (`key_...`), or `admin`.
    pub(crate) id: String,
    /// The project a scoped key belongs to; `None` for the admin key (any project).
    pub(crate) scope: Option<String>,
    pub(crate) role: Role,
    /// The project the request acts in: the `x-updraft-project` header, else the key's own
    /// project, else `default`. It exists (checked before any handler runs, but for the
    /// `/v1/projects` routes, which name their project in the path).
    pub(crate) project: String,
}

impl Caller {
    /// Whether the caller may act in `project`.
    pub(crate) fn may_act_in(&self, project: &str) -> bool {
        self.scope.as_deref().is_none_or(|p| p == project)
    }
}

/// The known keys: admin key hashes, and scoped keys by hash.
pub(crate) struct Auth {
    admin: RwLock<HashSet<String>>,
    keys: RwLock<HashMap<String, ApiKeyRecord>>,
}

pub(crate) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random key.
pub(crate) fn new_key() -> String {
    format!("upd_{}", hex::encode(rand::random::<[u8; 32]>()))
}

impl Auth {
    /// Loads the stored keys; on a fresh data directory creates the admin key and returns it.
    pub(crate) async fn load_or_bootstrap(
        store: &dyn MetadataStore,
        data_dir: &Path,
    ) -> Result<(Self, Option<String>), ServerError> {
        let mut admin: HashSet<String> = store.admin_tokens().await?.into_iter().collect();
        let mut created = None;
        if admin.is_empty() {
            let token = new_key();
            write_private(&token_file(data_dir), &token)
                .map_err(ServerError::io("writing the admin token file"))?;
            store.add_admin_token(&hash(&token)).await?;
            admin.insert(hash(&token));
            created = Some(token);
        }
        let keys = store
            .api_keys(None)
            .await?
            .into_iter()
            .map(|k| (k.key_sha256.clone(), k))
            .collect();
        Ok((
            Self {
                admin: RwLock::new(admin),
                keys: RwLock::new(keys),
            },
            created,
        ))
    }

    /// The caller a bearer key stands for, or why it stands for none.
    pub(crate) fn authenticate(&self, token: &str) -> Result<Caller, &'static str> {
        let h = hash(token);
        if read(&self.admin).contains(&h) {
            return Ok(Caller {
                id: "admin".to_owned(),
                scope: None,
                role: Role::Admin,
                project: DEFAULT_PROJECT.to_owned(),
            });
        }
        let keys = read(&self.keys);
        let Some(key) = keys.get(&h) else {
            return Err("the key is not valid (unknown or revoked)");
        };
        if key.expires_at.is_some_and(|at| at <= now_ms()) {
            return Err("the key has expired");
        }
        let Some(role) = Role::parse(&key.role) else {
            return Err("the key has a role this server does not know");
        };
        Ok(Caller {
            id: key.id.clone(),
            scope: Some(key.project.clone()),
            role,
            project: key.project.clone(),
        })
    }

    /// Starts honouring a key just stored.
    pub(crate) fn add(&self, key: ApiKeyRecord) {
        write(&self.keys).insert(key.key_sha256.clone(), key);
    }

    /// The scoped key with this id, if any.
    pub(crate) fn key(&self, id: &str) -> Option<ApiKeyRecord> {
        read(&self.keys).values().find(|k| k.id == id).cloned()
    }

    /// Stops honouring a key at once.
    pub(crate) fn remove(&self, id: &str) {
        write(&self.keys).retain(|_, k| k.id != id);
    }

    /// Stops honouring every key of `project` at once.
    pub(crate) fn remove_project(&self, project: &str) {
        write(&self.keys).retain(|_, k| k.project != project);
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl updraft_gateway::AdminCheck for Auth {
    fn may_pin(&self, authorization: &str, project: &str) -> bool {
        authorization.strip_prefix("Bearer ").is_some_and(|t| {
            self.authenticate(t.trim())
                .is_ok_and(|c| c.role.allows(Role::Deployer) && c.may_act_in(project))
        })
    }

    fn is_project_key(&self, authorization: &str, project: &str) -> bool {
        authorization.strip_prefix("Bearer ").is_some_and(|t| {
            self.authenticate(t.trim())
                .is_ok_and(|c| c.role.allows(Role::Viewer) && c.may_act_in(project))
        })
    }

    fn is_key(&self, authorization: &str) -> bool {
        authorization
            .strip_prefix("Bearer ")
            .is_some_and(|t| self.authenticate(t.trim()).is_ok())
    }
}

/// A short, safe-to-show fingerprint of the token a request carries (for "deployed by").
pub(crate) fn fingerprint(authorization: Option<&str>) -> Option<String> {
    let token = authorization?.strip_prefix("Bearer ")?.trim();
    Some(hash(token).chars().take(8).collect())
}

/// Writes `contents` to a new file `path` readable only by the owner. Whatever was at `path`
/// is removed first and the file is created exclusively (`O_EXCL`), so a symlink planted there
/// is never followed.
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Middleware: requires a key whose role allows the endpoint ([`roles::required`]), and hands
/// the handler its [`Caller`].
pub(crate) async fn require_role(
    State(state): State<std::sync::Arc<crate::State>>,
    mut req: Request,
    next: Next,
) -> Response {
    let needed = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(Role::Owner, |p| roles::required(req.method(), p.as_str()));
    let Some(token) = bearer(req.headers()) else {
        return ApiError::new(
            Code::Unauthorized,
            "missing `Authorization: Bearer <key>` header (the admin key is in <data dir>/admin-token; `updraft key create` makes scoped ones)",
        )
        .into_response();
    };
    let caller = match state.auth.authenticate(token) {
        Ok(c) => c,
        Err(why) => return ApiError::new(Code::Unauthorized, why).into_response(),
    };
    let mut caller = caller;
    let named = req
        .headers()
        .get(PROJECT_HEADER)
        .map(|v| v.to_str().map(str::trim));
    match named {
        None => {}
        Some(Ok(p)) if caller.may_act_in(p) => p.clone_into(&mut caller.project),
        // A key of another project is told what a missing project answers.
        Some(Ok(p)) => return project_not_found(p),
        Some(Err(_)) => {
            return ApiError::new(
                Code::BadRequest,
                format!("the {PROJECT_HEADER} header must be a project name"),
            )
            .into_response();
        }
    }
    let names_its_project = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| p.as_str().starts_with("/v1/projects"));
    if !names_its_project && state.registry.snapshot().project(&caller.project).is_none() {
        return project_not_found(&caller.project);
    }
    if !caller.role.allows(needed) {
        let message = if caller.role == Role::Metrics {
            "a metrics key may only read /metrics".to_owned()
        } else {
            format!(
                "this needs a key with the {} role or above; this key is a {} key",
                needed.as_str(),
                caller.role.as_str()
            )
        };
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let path = req.uri().path().to_owned();
        let actor = crate::audit::Actor {
            id: caller.id.clone(),
            project: caller.project.clone(),
        };
        crate::audit::denied(&state, &actor, req.method(), &route, &path, &message).await;
        return ApiError::new(Code::Forbidden, message).into_response();
    }
    req.extensions_mut()
        .insert(InProject(caller.project.clone()));
    req.extensions_mut().insert(Producer(caller.id.clone()));
    req.extensions_mut().insert(crate::audit::Actor {
        id: caller.id.clone(),
        project: caller.project.clone(),
    });
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The project a request acts in, for handlers both the control API and the data plane
/// serve (queues and topics): the caller's project there, the host's here.
#[derive(Debug, Clone)]
pub(crate) struct InProject(pub(crate) String);

/// Who produces the events a request sends (a key id, `admin`, `queue:<name>` or
/// `topic:<name>` for those access keys): events carry it to the functions they reach.
#[derive(Debug, Clone)]
pub(crate) struct Producer(pub(crate) String);

fn project_not_found(project: &str) -> Response {
    ApiError::new(
        Code::ProjectNotFound,
        format!("no project named `{project}`"),
    )
    .into_response()
}

#[cfg(test)]
mod tests;

/// The token of an `Authorization: Bearer <token>` header, trimmed.
pub(crate) fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}
