//! End users of a project.

use rusqlite::params;

use super::one;
use crate::{Store, StoreError};

/// A user of a project's apps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserRecord {
    /// The project.
    pub project: String,
    /// Its id (a UUID).
    pub id: String,
    /// Its email, lower-cased; `None` for an anonymous user.
    pub email: Option<String>,
    /// When its email was confirmed.
    pub email_confirmed_at: Option<i64>,
    /// Its password's Argon2id hash (PHC string); `None` without a password.
    pub password_hash: Option<String>,
    /// Signed in anonymously and not linked to an email yet.
    pub is_anonymous: bool,
    /// The `role` claim of its tokens.
    pub role: String,
    /// Metadata only the platform and admins set (JSON object).
    pub app_metadata: String,
    /// Metadata the user sets (JSON object).
    pub user_metadata: String,
    /// Disabled by an admin: it can't sign in or refresh.
    pub disabled: bool,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When it last signed in.
    pub last_sign_in_at: Option<i64>,
}

const COLUMNS: &str = "project, id, email, email_confirmed_at, password_hash, is_anonymous, role, \
                       app_metadata, user_metadata, disabled, created_at, updated_at, \
                       last_sign_in_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        project: r.get(0)?,
        id: r.get(1)?,
        email: r.get(2)?,
        email_confirmed_at: r.get(3)?,
        password_hash: r.get(4)?,
        is_anonymous: r.get(5)?,
        role: r.get(6)?,
        app_metadata: r.get(7)?,
        user_metadata: r.get(8)?,
        disabled: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        last_sign_in_at: r.get(12)?,
    })
}

impl Store {
    /// Stores a new user; `Ok(false)` if its email is taken in its project.
    pub(crate) fn create_user(&self, u: &UserRecord) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let n = c.execute(
                &format!(
                    "INSERT OR IGNORE INTO auth_users ({COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
                params![
                    u.project,
                    u.id,
                    u.email,
                    u.email_confirmed_at,
                    u.password_hash,
                    u.is_anonymous,
                    u.role,
                    u.app_metadata,
                    u.user_metadata,
                    u.disabled,
                    u.created_at,
                    u.updated_at,
                    u.last_sign_in_at
                ],
            )?;
            Ok(n == 1)
        })
    }

    /// Replaces a user's fields; `Ok(false)` if there is no such user or its new email is
    /// taken.
    pub(crate) fn update_user(&self, u: &UserRecord) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let r = c.execute(
                "UPDATE auth_users SET email = ?3, email_confirmed_at = ?4, password_hash = ?5, \
                 is_anonymous = ?6, role = ?7, app_metadata = ?8, user_metadata = ?9, \
                 disabled = ?10, updated_at = ?11, last_sign_in_at = ?12 \
                 WHERE project = ?1 AND id = ?2",
                params![
                    u.project,
                    u.id,
                    u.email,
                    u.email_confirmed_at,
                    u.password_hash,
                    u.is_anonymous,
                    u.role,
                    u.app_metadata,
                    u.user_metadata,
                    u.disabled,
                    u.updated_at,
                    u.last_sign_in_at
                ],
            );
            match r {
                Ok(n) => Ok(n == 1),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    pub(crate) fn user(&self, project: &str, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.with_conn(|c| {
            one(c.query_row(
                &format!("SELECT {COLUMNS} FROM auth_users WHERE project = ?1 AND id = ?2"),
                params![project, id],
                from_row,
            ))
        })
    }

    pub(crate) fn user_by_email(
        &self,
        project: &str,
        email: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.with_conn(|c| {
            one(c.query_row(
                &format!("SELECT {COLUMNS} FROM auth_users WHERE project = ?1 AND email = ?2"),
                params![project, email],
                from_row,
            ))
        })
    }

    pub(crate) fn users(
        &self,
        project: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let (limit, offset) = (
            i64::try_from(limit.min(10_000)).unwrap_or(100),
            i64::try_from(offset).unwrap_or(0),
        );
        self.with_conn(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM auth_users WHERE project = ?1 \
                 ORDER BY created_at, id LIMIT ?2 OFFSET ?3"
            ))?;
            let rows = stmt.query_map(params![project, limit, offset], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Deletes a user with its sessions and refresh tokens.
    pub(crate) fn delete_user(&self, project: &str, id: &str) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM auth_refresh_tokens WHERE project = ?1 AND user_id = ?2",
                params![project, id],
            )?;
            tx.execute(
                "DELETE FROM auth_sessions WHERE project = ?1 AND user_id = ?2",
                params![project, id],
            )?;
            tx.execute(
                "DELETE FROM auth_otps WHERE project = ?1 AND user_id = ?2",
                params![project, id],
            )?;
            tx.execute(
                "DELETE FROM auth_identities WHERE project = ?1 AND user_id = ?2",
                params![project, id],
            )?;
            let n = tx.execute(
                "DELETE FROM auth_users WHERE project = ?1 AND id = ?2",
                params![project, id],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    /// The user an external identity (`provider`, `subject`) is linked to.
    pub(crate) fn identity_user(
        &self,
        project: &str,
        provider: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        self.with_conn(|c| {
            one(c.query_row(
                "SELECT user_id FROM auth_identities WHERE project = ?1 AND provider = ?2 \
                 AND subject = ?3",
                params![project, provider, subject],
                |r| r.get(0),
            ))
        })
    }

    /// Links an external identity to a user (again: nothing changes).
    pub(crate) fn link_identity(
        &self,
        project: &str,
        provider: &str,
        subject: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.execute(
                "INSERT OR IGNORE INTO auth_identities (project, provider, subject, user_id, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![project, provider, subject, user_id, crate::now_ms()],
            )?;
            Ok(())
        })
    }
}
