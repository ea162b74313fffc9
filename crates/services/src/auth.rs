//! End-user auth for a project's apps.
//!
//! - Passwords are hashed with Argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane) on a
//!   blocking thread; an unknown email is checked against a dummy hash, so a sign-in takes as
//!   long and answers the same whether or not the account exists.
//! - Access tokens are JWTs signed with ES256 by a per-project key ([`keys`]); the JWKS
//!   publishes the current key and retired ones while tokens they signed can still be valid.
//! - Refresh tokens are 256 random bits, stored as SHA-256, used once: each use returns a new
//!   one; a used one presented again after [`AuthConfig::refresh_reuse_grace`] revokes the whole
//!   session (token theft).
//! - Sign-up, sign-in and refresh are rate limited per client address and per account
//!   (the `limits` module).

mod admin;
mod fetch;
mod http;
pub mod keys;
mod limits;
pub mod mail;
mod oidc;
mod otp;
mod passwords;
mod tokens;
mod users;

pub use http::{Caller, router};
pub use keys::Sealer;
pub use oidc::OidcProvider;
pub use otp::MailView;
pub use tokens::{AUDIENCE, Claims, Session, issuer};
pub use users::{SignedUp, UserView, user_view};

use std::sync::Arc;
use std::time::Duration;

use updraft_store::{AuthStore, StoreError};

/// Settings of end-user auth (the server config's `[auth]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// How long an access token is valid.
    pub access_token_ttl: Duration,
    /// How long after a refresh token's use it may be used again (tabs refreshing at once)
    /// before that counts as theft.
    pub refresh_reuse_grace: Duration,
    /// Whether anyone may sign up with email and password.
    pub signup_enabled: bool,
    /// Whether anonymous sign-ins are allowed.
    pub anonymous_enabled: bool,
    /// Shortest password accepted.
    pub min_password_length: usize,
    /// Sign-up, sign-in and refresh attempts per client address per minute.
    pub per_ip_per_minute: u32,
    /// Sign-in attempts per account per hour.
    pub per_account_per_hour: u32,
    /// Whether a new account must confirm its email (a link or code by mail) before it can
    /// sign in.
    pub confirm_email: bool,
    /// How long a link or code sent by mail works.
    pub otp_ttl: Duration,
    /// URLs (prefixes) a `redirect_to` of an emailed link may go to.
    pub redirect_urls: Vec<String>,
    /// The mail server messages to users go through; `None`: the development mailbox.
    pub smtp: Option<mail::SmtpConfig>,
    /// OpenID Connect providers users may sign in with.
    pub oidc: Vec<oidc::OidcProvider>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(3600),
            refresh_reuse_grace: Duration::from_secs(10),
            signup_enabled: true,
            anonymous_enabled: true,
            min_password_length: 8,
            per_ip_per_minute: 60,
            per_account_per_hour: 30,
            confirm_email: false,
            otp_ttl: Duration::from_secs(3600),
            redirect_urls: Vec::new(),
            smtp: None,
            oidc: Vec::new(),
        }
    }
}

/// Why an auth operation failed, with GoTrue's error codes where it has one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    /// HTTP status.
    pub status: u16,
    /// A stable code (`invalid_credentials`, `over_request_rate_limit`, ...).
    pub code: &'static str,
    /// For the client.
    pub message: String,
}

impl AuthError {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        Self::new(
            500,
            "unexpected_failure",
            format!("{context}; see the server log"),
        )
    }

    /// 401: the token is missing, malformed, expired, not signed by this project's key, or
    /// not for this project.
    pub(crate) fn bad_jwt(why: impl Into<String>) -> Self {
        Self::new(401, "bad_jwt", why)
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        Self::internal("auth storage error", e)
    }
}

/// Lower-case hex SHA-256 of `s`: how tokens and codes are stored.
pub(crate) fn sha256(s: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// `s` percent-encoded for a URL's query (every byte but the unreserved ones).
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// End-user auth for every project. Share it behind an `Arc`.
pub struct Auth {
    pub(crate) store: Arc<dyn AuthStore>,
    pub(crate) oidc_pending: oidc::PendingSignIns,
    pub(crate) mailer: Arc<dyn mail::Mailer>,
    pub(crate) keys: keys::Keys,
    pub(crate) config: AuthConfig,
    pub(crate) limits: limits::Limits,
    pub(crate) dummy_hash: String,
}

impl Auth {
    /// Auth over `store`, its signing keys sealed by `sealer`, mail sent through
    /// `config.smtp` (or kept in the development mailbox).
    ///
    /// # Errors
    /// SMTP settings that can't be used.
    pub fn new(
        store: Arc<dyn AuthStore>,
        sealer: Arc<dyn Sealer>,
        config: AuthConfig,
    ) -> Result<Arc<Self>, String> {
        let mailer: Arc<dyn mail::Mailer> = match &config.smtp {
            Some(c) => Arc::new(mail::Smtp::new(c)?),
            None => Arc::new(mail::DevMailbox(store.clone())),
        };
        Ok(Arc::new(Self {
            oidc_pending: oidc::PendingSignIns::default(),
            keys: keys::Keys::new(store.clone(), sealer),
            mailer,
            limits: limits::Limits::new(config.per_ip_per_minute, config.per_account_per_hour),
            dummy_hash: passwords::dummy_hash(),
            store,
            config,
        }))
    }

    /// The settings in force.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Verifies an access token of `project`: its signature (by a key of that project, ES256
    /// only), expiry, audience and issuer.
    ///
    /// # Errors
    /// [`AuthError`] 401 `bad_jwt` saying why.
    pub async fn verify(&self, project: &str, token: &str) -> Result<Claims, AuthError> {
        let keys = self.keys.of(project).await?;
        tokens::verify(&keys, project, token)
    }

    /// Makes a new signing key for `project`; the old ones keep verifying the tokens they
    /// signed until those expire. Returns the new key's id.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn rotate_keys(&self, project: &str) -> Result<String, AuthError> {
        self.keys
            .rotate(project, self.config.access_token_ttl)
            .await
    }

    /// The JWKS of `project` (`{"keys": [...]}`).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn jwks(&self, project: &str) -> Result<serde_json::Value, AuthError> {
        Ok(self.keys.of(project).await?.jwks())
    }
}
