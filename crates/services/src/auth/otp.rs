//! Flows by email: confirming a sign-up, recovering a password, signing in by magic link or
//! one-time code. Each sends a link (a 256-bit token) and a 6-digit code, both stored hashed,
//! valid once for [`AuthConfig::otp_ttl`](super::AuthConfig). Asking for a message answers
//! the same whether or not the account exists; verifying is rate limited per address and per
//! account, so a code can't be guessed.

use serde_json::Value;
use updraft_store::{OtpRecord, UserRecord, now_ms};

use super::tokens::Session;
use super::users::{email, new_user};
use super::{Auth, AuthError, sha256};

/// The hash a code is stored under: bound to the email, so two users' equal codes differ.
fn code_hash(email: &str, code: &str) -> String {
    sha256(&format!("{email}:{code}"))
}

/// What a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Signup,
    Recovery,
    MagicLink,
}

impl Purpose {
    fn kind(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Recovery => "recovery",
            Self::MagicLink => "magiclink",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Self::Signup => "Confirm your email",
            Self::Recovery => "Reset your password",
            Self::MagicLink => "Your sign-in link",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Self::Signup => "confirm your email address",
            Self::Recovery => "reset your password",
            Self::MagicLink => "sign in",
        }
    }
}

/// The kinds of token a `type` of `/verify` accepts (GoTrue's types).
fn kinds(verify_type: &str) -> Result<&'static [&'static str], AuthError> {
    Ok(match verify_type {
        "signup" => &["signup"],
        "recovery" => &["recovery"],
        "magiclink" => &["magiclink"],
        "email" => &["signup", "magiclink"],
        other => {
            return Err(AuthError::new(
                400,
                "validation_failed",
                format!("verify type `{other}` is not one of signup, recovery, magiclink, email"),
            ));
        }
    })
}

fn otp_invalid() -> AuthError {
    AuthError::new(403, "otp_expired", "Token has expired or is invalid")
}

impl Auth {
    /// Makes a token for `user` and mails its link (under `link_base`, the auth API's URL as
    /// the client reached it) and code.
    pub(crate) async fn send_token(
        &self,
        project: &str,
        user: &UserRecord,
        purpose: Purpose,
        link_base: &str,
        redirect_to: Option<&str>,
    ) -> Result<(), AuthError> {
        let Some(to) = user.email.as_deref() else {
            return Ok(());
        };
        let token = hex::encode(rand::random::<[u8; 32]>());
        let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
        let now = now_ms();
        let ttl = i64::try_from(self.config.otp_ttl.as_millis()).unwrap_or(3_600_000);
        self.store
            .create_otp(&OtpRecord {
                project: project.to_owned(),
                token_sha256: sha256(&token),
                code_sha256: code_hash(to, &code),
                user_id: user.id.clone(),
                kind: purpose.kind().to_owned(),
                created_at: now,
                expires_at: now + ttl,
            })
            .await?;
        let mut link = format!("{link_base}/verify?token={token}&type={}", purpose.kind());
        if let Some(r) = redirect_to.filter(|r| self.redirect_allowed(r)) {
            link.push_str("&redirect_to=");
            link.push_str(&super::percent_encode(r));
        }
        let minutes = self.config.otp_ttl.as_secs() / 60;
        let body = format!(
            "Follow this link to {action} ({to}):\n\n{link}\n\nOr enter this code: {code}\n\n\
             It works once, for {minutes} minutes. If you did not ask for this, ignore this \
             message.\n",
            action = purpose.action()
        );
        self.mailer
            .send(project, to, purpose.subject(), &body)
            .await
            .map_err(|e| AuthError::internal("sending mail", e))
    }

    /// Whether `/verify` may redirect to `url`: it starts with one of `[auth] redirect_urls`.
    pub(crate) fn redirect_allowed(&self, url: &str) -> bool {
        self.config
            .redirect_urls
            .iter()
            .any(|allowed| url.starts_with(allowed.as_str()))
    }

    /// `POST /recover`: mails a recovery link if the account exists; answers the same if not.
    pub async fn recover(
        &self,
        project: &str,
        ip: &str,
        raw_email: &str,
        link_base: &str,
        redirect_to: Option<&str>,
    ) -> Result<(), AuthError> {
        self.limits.client(project, ip)?;
        let email = email(raw_email)?;
        self.limits.account(project, &email)?;
        if let Some(user) = self.store.user_by_email(project, &email).await?
            && !user.disabled
        {
            self.send_token(project, &user, Purpose::Recovery, link_base, redirect_to)
                .await?;
        }
        Ok(())
    }

    /// `POST /otp`: mails a magic link and code; makes the (passwordless) account first when
    /// `create_user` and sign-up is allowed. Answers the same whether or not it exists.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_magic_link(
        &self,
        project: &str,
        ip: &str,
        raw_email: &str,
        create_user: bool,
        data: Option<&Value>,
        link_base: &str,
        redirect_to: Option<&str>,
    ) -> Result<(), AuthError> {
        self.limits.client(project, ip)?;
        let email = email(raw_email)?;
        self.limits.account(project, &email)?;
        let user = match self.store.user_by_email(project, &email).await? {
            Some(u) => Some(u),
            None if create_user && self.config.signup_enabled => {
                let user = new_user(project, Some(email.clone()), None, data)?;
                self.store.create_user(&user).await?;
                self.store.user_by_email(project, &email).await?
            }
            None => None,
        };
        if let Some(user) = user.filter(|u| !u.disabled) {
            self.send_token(project, &user, Purpose::MagicLink, link_base, redirect_to)
                .await?;
        }
        Ok(())
    }

    /// `POST /verify` and `GET /verify`: uses a link token (`token` or `token_hash`), or a
    /// code with its `email`; confirms the email and starts a session.
    pub async fn verify_otp(
        &self,
        project: &str,
        ip: &str,
        verify_type: &str,
        token: &str,
        raw_email: Option<&str>,
    ) -> Result<Session, AuthError> {
        self.limits.client(project, ip)?;
        let kinds = kinds(verify_type)?;
        let hash = match raw_email {
            Some(e) => {
                let e = email(e)?;
                self.limits.account(project, &e)?;
                code_hash(&e, token.trim())
            }
            // A link's token, or its hash (`token_hash`, as GoTrue's PKCE links carry it).
            None if token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) => {
                sha256(token)
            }
            None => return Err(otp_invalid()),
        };
        let otp = self
            .store
            .take_otp(project, &hash, kinds, now_ms())
            .await?
            .ok_or_else(otp_invalid)?;
        let mut user = self
            .store
            .user(project, &otp.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(otp_invalid)?;
        let now = now_ms();
        if user.email_confirmed_at.is_none() {
            user.email_confirmed_at = Some(now);
        }
        user.last_sign_in_at = Some(now);
        user.updated_at = now;
        self.store.update_user(&user).await?;
        self.start_session(project, &user, &otp.kind).await
    }
}

/// A message of the development mailbox.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MailView {
    /// Its id.
    pub id: i64,
    /// The recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body (with its link and code).
    pub body: String,
    /// When it was sent (ms since the epoch).
    pub sent_at: i64,
}

impl Auth {
    /// The development mailbox of `project` (to `to` only, if given), newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn mailbox(
        &self,
        project: &str,
        to: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MailView>, AuthError> {
        Ok(self
            .store
            .mails(project, to, limit)
            .await?
            .into_iter()
            .map(|m| MailView {
                id: m.id,
                to: m.to,
                subject: m.subject,
                body: m.body,
                sent_at: m.created_at,
            })
            .collect())
    }
}
