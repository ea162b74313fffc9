//! Sessions and their refresh tokens. A refresh token is used once: using it revokes it and
//! stores its successor, in one transaction. Presenting a used one again after the grace window
//! (concurrent tabs refreshing at once) is taken as theft: the whole session goes.

use rusqlite::params;

use super::one;
use crate::{Store, StoreError};

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Its id (a UUID, the `session_id` claim).
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// When it began (ms since the epoch).
    pub created_at: i64,
    /// When its refresh token was last used.
    pub refreshed_at: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// It was current (or used within the grace window): the new token is stored.
    Rotated {
        /// The session.
        session_id: String,
        /// Its user.
        user_id: String,
    },
    /// It was used before, past the grace window: the session and all its tokens are revoked.
    Reused,
    /// No such token (never issued, or its session ended).
    Unknown,
}

impl Store {
    pub(crate) fn create_session(
        &self,
        project: &str,
        session: &SessionRecord,
        refresh_sha256: &str,
    ) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO auth_sessions (project, id, user_id, created_at, refreshed_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![project, session.id, session.user_id, session.created_at],
            )?;
            tx.execute(
                "INSERT INTO auth_refresh_tokens (token_sha256, project, session_id, user_id, \
                 revoked, created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                params![
                    refresh_sha256,
                    project,
                    session.id,
                    session.user_id,
                    session.created_at
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Uses refresh token `presented` and stores `next` as its successor.
    pub(crate) fn refresh(
        &self,
        project: &str,
        presented: &str,
        next: &str,
        grace_ms: i64,
        now: i64,
    ) -> Result<Refreshed, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let row: Option<(String, String, bool, Option<i64>)> = one(tx.query_row(
                "SELECT t.session_id, t.user_id, t.revoked, t.used_at FROM auth_refresh_tokens t \
                 JOIN auth_sessions s ON s.project = t.project AND s.id = t.session_id \
                 WHERE t.token_sha256 = ?1 AND t.project = ?2",
                params![presented, project],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            ))?;
            let Some((session_id, user_id, revoked, used_at)) = row else {
                return Ok(Refreshed::Unknown);
            };
            if revoked && used_at.is_none_or(|at| now - at > grace_ms) {
                tx.execute(
                    "DELETE FROM auth_refresh_tokens WHERE project = ?1 AND session_id = ?2",
                    params![project, session_id],
                )?;
                tx.execute(
                    "DELETE FROM auth_sessions WHERE project = ?1 AND id = ?2",
                    params![project, session_id],
                )?;
                tx.commit()?;
                return Ok(Refreshed::Reused);
            }
            if !revoked {
                tx.execute(
                    "UPDATE auth_refresh_tokens SET revoked = 1, used_at = ?2 \
                     WHERE token_sha256 = ?1",
                    params![presented, now],
                )?;
            }
            tx.execute(
                "INSERT INTO auth_refresh_tokens (token_sha256, project, session_id, user_id, \
                 parent, revoked, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                params![next, project, session_id, user_id, presented, now],
            )?;
            tx.execute(
                "UPDATE auth_sessions SET refreshed_at = ?3 WHERE project = ?1 AND id = ?2",
                params![project, session_id, now],
            )?;
            tx.commit()?;
            Ok(Refreshed::Rotated {
                session_id,
                user_id,
            })
        })
    }

    pub(crate) fn session(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.with_conn(|c| {
            one(c.query_row(
                "SELECT id, user_id, created_at, refreshed_at FROM auth_sessions \
                 WHERE project = ?1 AND id = ?2",
                params![project, id],
                |r| {
                    Ok(SessionRecord {
                        id: r.get(0)?,
                        user_id: r.get(1)?,
                        created_at: r.get(2)?,
                        refreshed_at: r.get(3)?,
                    })
                },
            ))
        })
    }

    /// Ends sessions of `user_id`: `only` that one, or all but `keep`, or all. Returns how many.
    pub(crate) fn end_sessions(
        &self,
        project: &str,
        user_id: &str,
        only: Option<&str>,
        keep: Option<&str>,
    ) -> Result<usize, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let filter = "project = ?1 AND user_id = ?2 AND (?3 IS NULL OR session_id = ?3) \
                          AND (?4 IS NULL OR session_id != ?4)";
            tx.execute(
                &format!("DELETE FROM auth_refresh_tokens WHERE {filter}"),
                params![project, user_id, only, keep],
            )?;
            let n = tx.execute(
                "DELETE FROM auth_sessions WHERE project = ?1 AND user_id = ?2 \
                 AND (?3 IS NULL OR id = ?3) AND (?4 IS NULL OR id != ?4)",
                params![project, user_id, only, keep],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }
}
