//! End users' access tokens as the gateway's route policies check them, verified once and
//! remembered until they expire.

use std::sync::Arc;

/// End users' access tokens, as the gateway's route policies verify them: an ES256
/// verification costs about as much as a small function's whole request, so a token verified
/// once is remembered (exactly that token string, of that project) until it expires.
pub(crate) struct UserTokens {
    auth: Arc<updraft_services::auth::Auth>,
    verified: std::sync::RwLock<VerifiedTokens>,
}

/// Verified tokens by their signature (the part after the last `.`, 86 random-looking
/// characters: short to hash), each with the whole token (compared in full on a hit), its
/// project, its expiry (seconds since the epoch) and its user.
type VerifiedTokens = std::collections::HashMap<String, VerifiedToken>;

/// A remembered token: the token, its project, its expiry, its user.
type VerifiedToken = (String, String, i64, Arc<updraft_gateway::VerifiedUser>);

/// The part of a token the cache is keyed by.
fn signature(token: &str) -> &str {
    token.rsplit('.').next().unwrap_or(token)
}

/// Most verified tokens remembered.
const MAX_VERIFIED: usize = 10_000;

impl UserTokens {
    /// Tokens `auth` verifies, none remembered yet.
    pub(crate) fn new(auth: Arc<updraft_services::auth::Auth>) -> Self {
        Self {
            auth,
            verified: std::sync::RwLock::default(),
        }
    }

    /// Forgets the tokens of `project` (it was deleted: a project made later under its name
    /// has other keys).
    pub(crate) fn forget(&self, project: &str) {
        self.verified
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, (_, p, _, _)| p != project);
    }
}

impl updraft_gateway::UserCheck for UserTokens {
    fn verify<'a>(
        &'a self,
        project: &'a str,
        token: &'a str,
    ) -> updraft_dispatch::BoxFuture<'a, Result<Arc<updraft_gateway::VerifiedUser>, String>> {
        Box::pin(async move {
            let now = updraft_store::now_ms() / 1000;
            if let Some((t, p, exp, user)) = self
                .verified
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(signature(token))
                && t == token
                && p == project
                && *exp > now
            {
                return Ok(user.clone());
            }
            let claims = self
                .auth
                .verify(project, token)
                .await
                .map_err(|e| e.message)?;
            let exp = claims.exp;
            let value = serde_json::to_value(claims).map_err(|e| e.to_string())?;
            let user = Arc::new(updraft_gateway::VerifiedUser::new(value));
            let mut cache = self
                .verified
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.len() >= MAX_VERIFIED {
                cache.retain(|_, (_, _, e, _)| *e > now);
                if cache.len() >= MAX_VERIFIED {
                    cache.clear();
                }
            }
            cache.insert(
                signature(token).to_owned(),
                (token.to_owned(), project.to_owned(), exp, user.clone()),
            );
            Ok(user)
        })
    }
}
