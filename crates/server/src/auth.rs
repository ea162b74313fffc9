//! Admin tokens for the control API.
//!
//! Tokens are 256-bit random strings (`upd_` + 64 hex). Only their SHA-256 is stored: a token
//! has full entropy, so a slow password hash (argon2) would add latency to every API call and no
//! protection. The first start of a data directory creates one token, returns it to be printed
//! once, and writes it to `<data dir>/admin-token` with mode 0600 so the local CLI can use it.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use updraft_api::Code;
use updraft_store::MetadataStore;

use crate::ServerError;
use crate::error::ApiError;

/// File name of the first admin token inside the data directory.
pub(crate) const TOKEN_FILE: &str = "admin-token";

pub(crate) fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// The known token hashes.
pub(crate) struct Tokens {
    hashes: RwLock<HashSet<String>>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tokens {
    /// Loads the stored token hashes; on a fresh data directory creates the first token and
    /// returns it.
    pub(crate) async fn load_or_bootstrap(
        store: &dyn MetadataStore,
        data_dir: &Path,
    ) -> Result<(Self, Option<String>), ServerError> {
        let mut hashes: HashSet<String> = store.admin_tokens().await?.into_iter().collect();
        let mut created = None;
        if hashes.is_empty() {
            let token = format!("upd_{}", hex::encode(rand::random::<[u8; 32]>()));
            write_private(&token_file(data_dir), &token)
                .map_err(ServerError::io("writing the admin token file"))?;
            store.add_admin_token(&hash(&token)).await?;
            hashes.insert(hash(&token));
            created = Some(token);
        }
        Ok((
            Self {
                hashes: RwLock::new(hashes),
            },
            created,
        ))
    }

    pub(crate) fn is_valid(&self, token: &str) -> bool {
        let h = hash(token);
        self.hashes
            .read()
            .map(|set| set.contains(&h))
            .unwrap_or(false)
    }
}

impl updraft_gateway::AdminCheck for Tokens {
    fn is_admin(&self, authorization: &str) -> bool {
        authorization
            .strip_prefix("Bearer ")
            .is_some_and(|t| self.is_valid(t.trim()))
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
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
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

/// Middleware: requires `Authorization: Bearer <admin token>`.
pub(crate) async fn require_admin(
    State(state): State<std::sync::Arc<crate::State>>,
    req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(t) if state.auth.is_valid(t) => next.run(req).await,
        Some(_) => ApiError::new(Code::Unauthorized, "the admin token is not valid").into_response(),
        None => ApiError::new(
            Code::Unauthorized,
            "missing `Authorization: Bearer <admin token>` header (the token is in <data dir>/admin-token)",
        )
        .into_response(),
    }
}
