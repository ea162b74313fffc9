//! Users and sessions: sign-up, sign-in (password, anonymous), refresh, sign-out, the
//! signed-in user's own record, and the admin operations.

use serde::Serialize;
use serde_json::{Value, json};

use updraft_store::{Refreshed, SessionRecord, UserRecord, now_ms};

use super::tokens::{self, AUDIENCE, Claims, Session};
use super::{Auth, AuthError, passwords, sha256};

/// Longest email accepted.
const MAX_EMAIL: usize = 254;
/// Longest password accepted (Argon2 takes any length; this bounds the work).
const MAX_PASSWORD: usize = 1024;
/// Largest `user_metadata`, serialized.
const MAX_METADATA: usize = 16 << 10;

/// A user as the auth API answers it (GoTrue's shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserView {
    /// Its id.
    pub id: String,
    /// `authenticated`.
    pub aud: &'static str,
    /// Its role.
    pub role: String,
    /// Its email (empty when anonymous).
    pub email: String,
    /// When its email was confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_confirmed_at: Option<String>,
    /// Always empty.
    pub phone: &'static str,
    /// When it was confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<String>,
    /// When it last signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<String>,
    /// Platform and admin metadata (`provider`, `providers`).
    pub app_metadata: Value,
    /// Its own metadata.
    pub user_metadata: Value,
    /// Linked identities (none yet).
    pub identities: Vec<Value>,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Whether it signed in anonymously.
    pub is_anonymous: bool,
    /// Disabled by an admin.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub banned: bool,
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| String::new(), |t| t.to_string())
}

fn object(text: &str) -> Value {
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

/// The API view of a stored user.
pub fn user_view(u: &UserRecord) -> UserView {
    let confirmed = u.email_confirmed_at.map(rfc3339);
    UserView {
        id: u.id.clone(),
        aud: AUDIENCE,
        role: u.role.clone(),
        email: u.email.clone().unwrap_or_default(),
        email_confirmed_at: confirmed.clone(),
        phone: "",
        confirmed_at: confirmed,
        last_sign_in_at: u.last_sign_in_at.map(rfc3339),
        app_metadata: object(&u.app_metadata),
        user_metadata: object(&u.user_metadata),
        identities: Vec::new(),
        created_at: rfc3339(u.created_at),
        updated_at: rfc3339(u.updated_at),
        is_anonymous: u.is_anonymous,
        banned: u.disabled,
    }
}

/// What a sign-up answers: a session, or (when the email must be confirmed first) the user.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SignedUp {
    /// Signed in.
    Session(Box<Session>),
    /// Confirmation mailed.
    Confirm(Box<UserView>),
}

/// A new user record (not stored yet): `email` confirmed unless it is `None`.
pub(crate) fn new_user(
    project: &str,
    email: Option<String>,
    password_hash: Option<String>,
    data: Option<&Value>,
) -> Result<UserRecord, AuthError> {
    let now = now_ms();
    Ok(UserRecord {
        project: project.to_owned(),
        id: uuid(),
        email,
        email_confirmed_at: None,
        password_hash,
        is_anonymous: false,
        role: AUDIENCE.to_owned(),
        app_metadata: json!({"provider": "email", "providers": ["email"]}).to_string(),
        user_metadata: metadata(data)?,
        disabled: false,
        created_at: now,
        updated_at: now,
        last_sign_in_at: None,
    })
}

/// A random UUID (version 4).
pub(crate) fn uuid() -> String {
    let mut b = rand::random::<[u8; 16]>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn bad(code: &'static str, message: impl Into<String>) -> AuthError {
    AuthError::new(400, code, message)
}

/// An email, trimmed and lower-cased, if it looks like one.
pub(crate) fn email(raw: &str) -> Result<String, AuthError> {
    let e = raw.trim().to_ascii_lowercase();
    let ok = e.len() <= MAX_EMAIL
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e)
    } else {
        Err(bad(
            "validation_failed",
            "Unable to validate email address: invalid format",
        ))
    }
}

fn metadata(data: Option<&Value>) -> Result<String, AuthError> {
    match data {
        None | Some(Value::Null) => Ok("{}".to_owned()),
        Some(v @ Value::Object(_)) => {
            let s = v.to_string();
            if s.len() > MAX_METADATA {
                Err(bad(
                    "validation_failed",
                    "user metadata is larger than 16 KiB",
                ))
            } else {
                Ok(s)
            }
        }
        Some(_) => Err(bad("validation_failed", "data must be a JSON object")),
    }
}

fn invalid_credentials() -> AuthError {
    bad("invalid_credentials", "Invalid login credentials")
}

impl Auth {
    fn check_password(&self, password: &str) -> Result<(), AuthError> {
        if password.chars().count() < self.config.min_password_length {
            return Err(AuthError::new(
                422,
                "weak_password",
                format!(
                    "Password should be at least {} characters.",
                    self.config.min_password_length
                ),
            ));
        }
        if password.len() > MAX_PASSWORD {
            return Err(bad(
                "validation_failed",
                "Password is longer than 1024 bytes.",
            ));
        }
        Ok(())
    }

    /// Signs up with email and password. Answers a session, or with `[auth] confirm_email`
    /// the user, a confirmation link and code having been mailed. A taken email answers
    /// `422 user_already_exists`.
    pub async fn sign_up(
        &self,
        project: &str,
        ip: &str,
        raw_email: &str,
        password: &str,
        data: Option<&Value>,
        link_base: &str,
    ) -> Result<SignedUp, AuthError> {
        self.limits.client(project, ip)?;
        if !self.config.signup_enabled {
            return Err(AuthError::new(
                422,
                "signup_disabled",
                "Signups not allowed for this instance",
            ));
        }
        let email = email(raw_email)?;
        self.check_password(password)?;
        let hash = passwords::hash(password.to_owned()).await?;
        let mut user = new_user(project, Some(email), Some(hash), data)?;
        if !self.config.confirm_email {
            user.email_confirmed_at = Some(user.created_at);
            user.last_sign_in_at = Some(user.created_at);
        }
        if !self.store.create_user(&user).await? {
            return Err(AuthError::new(
                422,
                "user_already_exists",
                "User already registered",
            ));
        }
        if self.config.confirm_email {
            self.send_token(project, &user, super::otp::Purpose::Signup, link_base, None)
                .await?;
            return Ok(SignedUp::Confirm(Box::new(user_view(&user))));
        }
        Ok(SignedUp::Session(Box::new(
            self.start_session(project, &user, "password").await?,
        )))
    }

    /// Signs in anonymously: a new user without email, which can later add one.
    pub async fn sign_in_anonymously(
        &self,
        project: &str,
        ip: &str,
        data: Option<&Value>,
    ) -> Result<Session, AuthError> {
        self.limits.client(project, ip)?;
        if !self.config.anonymous_enabled {
            return Err(AuthError::new(
                422,
                "anonymous_provider_disabled",
                "Anonymous sign-ins are disabled",
            ));
        }
        let now = now_ms();
        let user = UserRecord {
            project: project.to_owned(),
            id: uuid(),
            is_anonymous: true,
            role: AUDIENCE.to_owned(),
            app_metadata: json!({}).to_string(),
            user_metadata: metadata(data)?,
            created_at: now,
            updated_at: now,
            last_sign_in_at: Some(now),
            ..Default::default()
        };
        self.store.create_user(&user).await?;
        self.start_session(project, &user, "anonymous").await
    }

    /// `grant_type=password`. Unknown email, wrong password and a disabled account all answer
    /// `400 invalid_credentials`, after the same Argon2 work.
    pub async fn sign_in_password(
        &self,
        project: &str,
        ip: &str,
        raw_email: &str,
        password: &str,
    ) -> Result<Session, AuthError> {
        self.limits.client(project, ip)?;
        let email = email(raw_email).map_err(|_| invalid_credentials())?;
        self.limits.account(project, &email)?;
        let user = self.store.user_by_email(project, &email).await?;
        let phc = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let matches = passwords::verify(password.to_owned(), phc).await;
        let Some(mut user) = user.filter(|u| matches && !u.disabled) else {
            return Err(invalid_credentials());
        };
        if user.email_confirmed_at.is_none() {
            return Err(bad("email_not_confirmed", "Email not confirmed"));
        }
        user.last_sign_in_at = Some(now_ms());
        self.store.update_user(&user).await?;
        self.start_session(project, &user, "password").await
    }

    /// `grant_type=refresh_token`: a new session answer for a current refresh token.
    pub async fn refresh(
        &self,
        project: &str,
        ip: &str,
        refresh_token: &str,
    ) -> Result<Session, AuthError> {
        self.limits.client(project, ip)?;
        let invalid = || {
            bad(
                "refresh_token_not_found",
                "Invalid Refresh Token: Refresh Token Not Found",
            )
        };
        if refresh_token.is_empty() || refresh_token.len() > 256 {
            return Err(invalid());
        }
        let next = new_refresh_token();
        let grace = i64::try_from(self.config.refresh_reuse_grace.as_millis()).unwrap_or(0);
        let outcome = self
            .store
            .refresh(
                project,
                &sha256(refresh_token),
                &sha256(&next),
                grace,
                now_ms(),
            )
            .await?;
        let (session_id, user_id) = match outcome {
            Refreshed::Rotated {
                session_id,
                user_id,
            } => (session_id, user_id),
            Refreshed::Reused => {
                tracing::warn!(
                    project,
                    "a used refresh token was presented again: session revoked"
                );
                return Err(bad(
                    "refresh_token_already_used",
                    "Invalid Refresh Token: Already Used",
                ));
            }
            Refreshed::Unknown => return Err(invalid()),
        };
        let user = self
            .store
            .user(project, &user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(invalid)?;
        self.session_answer(project, &user, &session_id, next, "token_refresh")
            .await
    }

    /// Ends the session of `claims` (`scope = local`), every session of its user (`global`),
    /// or every other one (`others`).
    pub async fn sign_out(
        &self,
        project: &str,
        claims: &Claims,
        scope: &str,
    ) -> Result<usize, AuthError> {
        let sid = claims.session_id.as_str();
        let (only, keep) = match scope {
            "" | "global" => (None, None),
            "local" => (Some(sid), None),
            "others" => (None, Some(sid)),
            other => {
                return Err(bad(
                    "validation_failed",
                    format!("scope `{other}` is not one of global, local, others"),
                ));
            }
        };
        Ok(self
            .store
            .end_sessions(project, &claims.sub, only, keep)
            .await?)
    }

    /// The signed-in user's record.
    pub async fn user(&self, project: &str, claims: &Claims) -> Result<UserView, AuthError> {
        self.store
            .user(project, &claims.sub)
            .await?
            .map(|u| user_view(&u))
            .ok_or_else(|| AuthError::new(404, "user_not_found", "User not found"))
    }

    /// Updates the signed-in user's email, password or metadata (an anonymous user becomes a
    /// permanent one by setting both email and password).
    pub async fn update_user(
        &self,
        project: &str,
        claims: &Claims,
        new_email: Option<&str>,
        new_password: Option<&str>,
        data: Option<&Value>,
        link_base: &str,
    ) -> Result<UserView, AuthError> {
        let mut user = self
            .store
            .user(project, &claims.sub)
            .await?
            .ok_or_else(|| AuthError::new(404, "user_not_found", "User not found"))?;
        let mut confirm = false;
        if let Some(e) = new_email {
            let e = email(e)?;
            if user.email.as_deref() != Some(e.as_str()) {
                user.email = Some(e);
                // With confirmation on, a new address is confirmed by mail like a sign-up's.
                confirm = self.config.confirm_email;
                user.email_confirmed_at = (!confirm).then(now_ms);
            }
        }
        if let Some(p) = new_password {
            self.check_password(p)?;
            user.password_hash = Some(passwords::hash(p.to_owned()).await?);
        }
        if user.is_anonymous && user.email.is_some() && user.password_hash.is_some() {
            user.is_anonymous = false;
            user.app_metadata = json!({"provider": "email", "providers": ["email"]}).to_string();
        }
        if let Some(d) = data {
            let mut merged = object(&user.user_metadata);
            let Value::Object(new) =
                serde_json::from_str::<Value>(&metadata(Some(d))?).unwrap_or_else(|_| json!({}))
            else {
                return Err(bad("validation_failed", "data must be a JSON object"));
            };
            if let Value::Object(m) = &mut merged {
                m.extend(new);
            }
            user.user_metadata = metadata(Some(&merged))?;
        }
        user.updated_at = now_ms();
        if !self.store.update_user(&user).await? {
            return Err(AuthError::new(
                422,
                "email_exists",
                "A user with this email address has already been registered",
            ));
        }
        if confirm {
            self.send_token(project, &user, super::otp::Purpose::Signup, link_base, None)
                .await?;
        }
        Ok(user_view(&user))
    }

    pub(crate) async fn start_session(
        &self,
        project: &str,
        user: &UserRecord,
        method: &str,
    ) -> Result<Session, AuthError> {
        let session = SessionRecord {
            id: uuid(),
            user_id: user.id.clone(),
            created_at: now_ms(),
            refreshed_at: now_ms(),
        };
        let refresh = new_refresh_token();
        self.store
            .create_session(project, &session, &sha256(&refresh))
            .await?;
        self.session_answer(project, user, &session.id, refresh, method)
            .await
    }

    async fn session_answer(
        &self,
        project: &str,
        user: &UserRecord,
        session_id: &str,
        refresh_token: String,
        method: &str,
    ) -> Result<Session, AuthError> {
        let keys = self.keys.of(project).await?;
        let now = now_ms() / 1000;
        let ttl = self.config.access_token_ttl.as_secs().max(1);
        let claims = Claims {
            iss: tokens::issuer(project),
            sub: user.id.clone(),
            aud: AUDIENCE.to_owned(),
            exp: now + i64::try_from(ttl).unwrap_or(3600),
            iat: now,
            email: user.email.clone().unwrap_or_default(),
            phone: String::new(),
            role: user.role.clone(),
            aal: "aal1".to_owned(),
            session_id: session_id.to_owned(),
            is_anonymous: user.is_anonymous,
            app_metadata: object(&user.app_metadata),
            user_metadata: object(&user.user_metadata),
            amr: vec![json!({"method": method, "timestamp": now})],
        };
        Ok(Session {
            access_token: tokens::issue(&keys, &claims)?,
            token_type: "bearer",
            expires_in: ttl,
            expires_at: claims.exp,
            refresh_token,
            user: user_view(user),
        })
    }
}

fn new_refresh_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}
