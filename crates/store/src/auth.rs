//! End-user auth state per project: users, sessions with their refresh tokens, the keys access
//! tokens are signed with (sealed by the server), and one-time tokens. Only hashes of tokens are
//! stored; what a token is, and how keys are sealed, is the auth service's business.

mod otp;
mod sessions;
mod users;

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

pub use otp::{MailRecord, OtpRecord};
pub use sessions::{Refreshed, SessionRecord};
pub use users::UserRecord;

/// A key access tokens of a project are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (`kid` in tokens and the JWKS).
    pub kid: String,
    /// The private key, sealed by the server.
    pub sealed: Vec<u8>,
    /// The public key as the JWKS publishes it (a JSON object).
    pub public_jwk: String,
    /// When it was made (ms since the epoch).
    pub created_at: i64,
    /// When it stopped signing (it still verifies until its tokens expire), if it has.
    pub retired_at: Option<i64>,
}

impl Store {
    pub(crate) fn signing_keys(&self, project: &str) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT kid, sealed, public_jwk, created_at, retired_at FROM auth_keys \
                 WHERE project = ?1 ORDER BY created_at, kid",
            )?;
            let rows = stmt.query_map(params![project], |r| {
                Ok(SigningKeyRecord {
                    kid: r.get(0)?,
                    sealed: r.get(1)?,
                    public_jwk: r.get(2)?,
                    created_at: r.get(3)?,
                    retired_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Adds `key` and retires every other signing key of `project` at `key.created_at`.
    pub(crate) fn rotate_signing_key(
        &self,
        project: &str,
        key: &SigningKeyRecord,
    ) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE auth_keys SET retired_at = ?2 WHERE project = ?1 AND retired_at IS NULL",
                params![project, key.created_at],
            )?;
            tx.execute(
                "INSERT INTO auth_keys (project, kid, sealed, public_jwk, created_at, retired_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
                params![project, key.kid, key.sealed, key.public_jwk, key.created_at],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Deletes keys retired before `before_ms` (no token they signed is still valid).
    pub(crate) fn drop_retired_keys(
        &self,
        project: &str,
        before_ms: i64,
    ) -> Result<usize, StoreError> {
        self.with_conn(|c| {
            Ok(c.execute(
                "DELETE FROM auth_keys WHERE project = ?1 AND retired_at IS NOT NULL \
                 AND retired_at < ?2",
                params![project, before_ms],
            )?)
        })
    }
}

/// `Some(x)` if a row was found.
pub(crate) fn one<T>(r: rusqlite::Result<T>) -> Result<Option<T>, StoreError> {
    Ok(r.optional()?)
}
