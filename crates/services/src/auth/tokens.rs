//! Access tokens (JWTs, ES256) and the session answers that carry them, in GoTrue's shapes.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AuthError;
use super::keys::ProjectKeys;
use super::users::UserView;

/// The `aud` claim of every access token (GoTrue's).
pub const AUDIENCE: &str = "authenticated";

/// The `iss` claim of `project`'s tokens.
pub fn issuer(project: &str) -> String {
    format!("updraft:{project}")
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// `updraft:<project>`.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// `authenticated`.
    pub aud: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// The user's email (empty for an anonymous user).
    #[serde(default)]
    pub email: String,
    /// Always empty (phone sign-in is not offered).
    #[serde(default)]
    pub phone: String,
    /// The user's role (`authenticated` unless an admin set another).
    pub role: String,
    /// Authenticator assurance level: `aal1`.
    #[serde(default)]
    pub aal: String,
    /// The session the token belongs to.
    pub session_id: String,
    /// Whether the user signed in anonymously.
    #[serde(default)]
    pub is_anonymous: bool,
    /// Metadata only the platform and admins set.
    #[serde(default)]
    pub app_metadata: Value,
    /// Metadata the user sets.
    #[serde(default)]
    pub user_metadata: Value,
    /// How the user authenticated (`[{"method": "password", "timestamp": ...}]`).
    #[serde(default)]
    pub amr: Vec<Value>,
}

/// A session as sign-in and refresh answer it.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// The access token (a JWT).
    pub access_token: String,
    /// `bearer`.
    pub token_type: &'static str,
    /// Seconds the access token is valid for.
    pub expires_in: u64,
    /// When it expires (seconds since the epoch).
    pub expires_at: i64,
    /// The refresh token (used once).
    pub refresh_token: String,
    /// The user.
    pub user: UserView,
}

pub(crate) fn issue(keys: &ProjectKeys, claims: &Claims) -> Result<String, AuthError> {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(keys.signing.0.clone());
    jsonwebtoken::encode(&header, claims, &keys.signing.1)
        .map_err(|e| AuthError::internal("signing an access token", e))
}

pub(crate) fn verify(keys: &ProjectKeys, project: &str, token: &str) -> Result<Claims, AuthError> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| AuthError::bad_jwt(format!("invalid JWT: {e}")))?;
    if header.alg != Algorithm::ES256 {
        return Err(AuthError::bad_jwt(
            "invalid JWT: only ES256 tokens are accepted",
        ));
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.verifying.get(kid))
        .ok_or_else(|| AuthError::bad_jwt("invalid JWT: not signed by a key of this project"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[issuer(project)]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map(|d| d.claims)
        .map_err(|e| AuthError::bad_jwt(format!("invalid JWT: {e}")))
}

#[cfg(test)]
mod tests;
