//! Sign-in with OpenID Connect providers (`[[auth.oidc]]`): the authorization code flow with
//! PKCE (S256), `state` and `nonce`. `/authorize?provider=` sends the browser to the provider;
//! `/callback` takes the code back, exchanges it (with the verifier and the client secret),
//! verifies the ID token against the provider's JWKS (its issuer, this client as audience,
//! the nonce, expiry; RS256 or ES256), then signs in the user linked to that identity. A new
//! identity whose provider says its email is verified is linked to the account with that email,
//! or gets a new account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use updraft_store::now_ms;

use super::fetch;
use super::tokens::Session;
use super::users::new_user;
use super::{Auth, AuthError, percent_encode};

/// How long a sign-in may take between `/authorize` and `/callback`.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Most sign-ins pending at once.
const MAX_PENDING: usize = 10_000;

/// An OpenID Connect provider (`[[auth.oidc]]`).
#[derive(Clone, PartialEq)]
pub struct OidcProvider {
    /// Its name in `/authorize?provider=<name>`.
    pub name: String,
    /// Its issuer URL (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// This server's client id there.
    pub client_id: String,
    /// This server's client secret there.
    pub client_secret: String,
    /// Scopes asked for (`openid` is always among them).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
}

/// A sign-in between `/authorize` and `/callback`.
pub(crate) struct Pending {
    project: String,
    provider: String,
    nonce: String,
    verifier: String,
    redirect_to: Option<String>,
    started: Instant,
}

/// Pending sign-ins by `state`.
#[derive(Default)]
pub(crate) struct PendingSignIns(Mutex<HashMap<String, Pending>>);

impl PendingSignIns {
    fn insert(&self, state: String, p: Pending) -> Result<(), AuthError> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, p| p.started.elapsed() < PENDING_TTL);
        if map.len() >= MAX_PENDING {
            return Err(AuthError::new(
                429,
                "over_request_rate_limit",
                "too many sign-ins in progress",
            ));
        }
        map.insert(state, p);
        Ok(())
    }

    fn take(&self, state: &str) -> Option<Pending> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(state)
            .filter(|p| p.started.elapsed() < PENDING_TTL)
    }
}

fn random() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn provider_error(why: impl std::fmt::Display) -> AuthError {
    AuthError::new(
        502,
        "provider_error",
        format!("the identity provider: {why}"),
    )
}

impl Auth {
    fn provider(&self, name: &str) -> Result<&OidcProvider, AuthError> {
        self.config
            .oidc
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                AuthError::new(
                    400,
                    "provider_not_found",
                    format!("no identity provider `{name}`"),
                )
            })
    }

    async fn discover(&self, p: &OidcProvider) -> Result<Discovery, AuthError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            p.issuer.trim_end_matches('/')
        );
        let answer = fetch::get(&url).await.map_err(provider_error)?;
        if answer.status != 200 {
            return Err(provider_error(format!(
                "discovery answered {}",
                answer.status
            )));
        }
        let d: Discovery = serde_json::from_slice(&answer.body).map_err(provider_error)?;
        if d.issuer.trim_end_matches('/') != p.issuer.trim_end_matches('/') {
            return Err(provider_error(format!(
                "discovery names issuer {}, not {}",
                d.issuer, p.issuer
            )));
        }
        Ok(d)
    }

    /// `GET /authorize?provider=`: where to send the browser.
    ///
    /// # Errors
    /// An unknown provider, one that can't be reached.
    pub async fn oidc_authorize(
        &self,
        project: &str,
        provider: &str,
        redirect_to: Option<&str>,
        base_url: &str,
    ) -> Result<String, AuthError> {
        let p = self.provider(provider)?;
        let d = self.discover(p).await?;
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut scopes = p.scopes.clone();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        let location = format!(
            "{}{}response_type=code&client_id={}&redirect_uri={}&scope={}&state={state}&\
             nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
            d.authorization_endpoint,
            if d.authorization_endpoint.contains('?') {
                '&'
            } else {
                '?'
            },
            percent_encode(&p.client_id),
            percent_encode(&format!("{base_url}/callback")),
            percent_encode(&scopes.join(" ")),
        );
        self.oidc_pending.insert(
            state,
            Pending {
                project: project.to_owned(),
                provider: provider.to_owned(),
                nonce,
                verifier,
                redirect_to: redirect_to
                    .filter(|r| self.redirect_allowed(r))
                    .map(str::to_owned),
                started: Instant::now(),
            },
        )?;
        Ok(location)
    }

    /// `GET /callback?code=&state=`: the session of the user the provider vouches for, and
    /// where to send the browser with it (if `/authorize` was given an allowed place).
    ///
    /// # Errors
    /// An unknown or expired `state` (403), a code the provider refuses, an ID token that does
    /// not verify.
    pub async fn oidc_callback(
        &self,
        project: &str,
        ip: &str,
        state: &str,
        code: &str,
        base_url: &str,
    ) -> Result<(Session, Option<String>), AuthError> {
        self.limits.client(project, ip)?;
        let bad_state = || AuthError::new(403, "bad_oauth_state", "unknown or expired OAuth state");
        let pending = self.oidc_pending.take(state).ok_or_else(bad_state)?;
        if pending.project != project {
            return Err(bad_state());
        }
        let p = self.provider(&pending.provider)?;
        let d = self.discover(p).await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &format!("{base_url}/callback")),
            ("client_id", &p.client_id),
            ("client_secret", &p.client_secret),
            ("code_verifier", &pending.verifier),
        ];
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let answer = fetch::post_form(&d.token_endpoint, body)
            .await
            .map_err(provider_error)?;
        if answer.status != 200 {
            let text: String = String::from_utf8_lossy(&answer.body)
                .chars()
                .take(300)
                .collect();
            return Err(provider_error(format!(
                "the code exchange answered {}: {text}",
                answer.status
            )));
        }
        let tokens: Value = serde_json::from_slice(&answer.body).map_err(provider_error)?;
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or_else(|| provider_error("no id_token in the token answer"))?;
        let mut claims = self
            .verify_id_token(p, &d, id_token, &pending.nonce)
            .await?;
        let subject = claims["sub"]
            .as_str()
            .ok_or_else(|| provider_error("the ID token has no sub"))?
            .to_owned();
        // Many providers put the email in the userinfo answer, not the ID token.
        if claims.get("email").is_none()
            && let (Some(url), Some(access)) =
                (&d.userinfo_endpoint, tokens["access_token"].as_str())
        {
            let answer = fetch::get_bearer(url, access)
                .await
                .map_err(provider_error)?;
            let info: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            // Only what it says about the same subject counts.
            if answer.status == 200 && info["sub"].as_str() == Some(subject.as_str()) {
                for k in ["email", "email_verified"] {
                    if let Some(v) = info.get(k) {
                        claims[k] = v.clone();
                    }
                }
            }
        }
        let subject = subject.as_str();
        let user = self.oidc_user(project, p, subject, &claims).await?;
        let session = self.start_session(project, &user, "oauth").await?;
        Ok((session, pending.redirect_to))
    }

    async fn verify_id_token(
        &self,
        p: &OidcProvider,
        d: &Discovery,
        token: &str,
        nonce: &str,
    ) -> Result<Value, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(provider_error)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(provider_error(format!(
                "ID token algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let answer = fetch::get(&d.jwks_uri).await.map_err(provider_error)?;
        let jwks: JwkSet = serde_json::from_slice(&answer.body).map_err(provider_error)?;
        let jwk = match &header.kid {
            Some(kid) => jwks.find(kid),
            None => jwks.keys.first(),
        }
        .ok_or_else(|| provider_error("the ID token's key is not in the provider's JWKS"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(provider_error)?;
        let mut v = Validation::new(header.alg);
        v.set_audience(&[p.client_id.as_str()]);
        v.set_issuer(&[d.issuer.as_str()]);
        v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let claims: Value = jsonwebtoken::decode(token, &key, &v)
            .map_err(|e| provider_error(format!("the ID token does not verify: {e}")))?
            .claims;
        if claims["nonce"].as_str() != Some(nonce) {
            return Err(provider_error("the ID token's nonce is not this sign-in's"));
        }
        Ok(claims)
    }

    /// The user linked to (`provider`, `subject`): linked before; else the account with the
    /// email the provider says is verified; else a new account.
    async fn oidc_user(
        &self,
        project: &str,
        p: &OidcProvider,
        subject: &str,
        claims: &Value,
    ) -> Result<updraft_store::UserRecord, AuthError> {
        let disabled = || AuthError::new(403, "user_banned", "User is banned");
        if let Some(id) = self.store.identity_user(project, &p.name, subject).await? {
            let user = self.store.user(project, &id).await?;
            return user.filter(|u| !u.disabled).ok_or_else(disabled);
        }
        let verified_email = claims["email"]
            .as_str()
            .filter(|_| claims["email_verified"].as_bool() == Some(true))
            .map(str::to_ascii_lowercase);
        let existing = match &verified_email {
            Some(e) => self.store.user_by_email(project, e).await?,
            None => None,
        };
        let user = match existing {
            Some(u) if u.disabled => return Err(disabled()),
            Some(u) => u,
            None => {
                if !self.config.signup_enabled {
                    return Err(AuthError::new(
                        422,
                        "signup_disabled",
                        "Signups not allowed for this instance",
                    ));
                }
                let mut u = new_user(project, verified_email.clone(), None, None)?;
                u.email_confirmed_at = verified_email.as_ref().map(|_| now_ms());
                u.app_metadata = json!({"provider": p.name, "providers": [p.name]}).to_string();
                if !self.store.create_user(&u).await? {
                    return Err(AuthError::new(
                        422,
                        "email_exists",
                        "A user with this email address has already been registered",
                    ));
                }
                u
            }
        };
        self.store
            .link_identity(project, &p.name, subject, &user.id)
            .await?;
        Ok(user)
    }
}
