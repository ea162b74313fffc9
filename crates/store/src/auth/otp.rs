//! One-time tokens (email confirmation, password recovery, magic links) and the development
//! mailbox the messages carrying them go to when no mail server is set.

use rusqlite::params;

use super::one;
use crate::{Store, StoreError};

/// A one-time token: a long one for links and a short code to type, both stored as SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpRecord {
    /// The project.
    pub project: String,
    /// SHA-256 of the link token.
    pub token_sha256: String,
    /// SHA-256 of the code (with the email, so equal codes of two users differ).
    pub code_sha256: String,
    /// Whose.
    pub user_id: String,
    /// `signup`, `recovery` or `magiclink`.
    pub kind: String,
    /// When it was made (ms since the epoch).
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
}

/// A message in the development mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecord {
    /// Its id, increasing (set by the store).
    pub id: i64,
    /// The project.
    pub project: String,
    /// The recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// When it was sent (ms since the epoch).
    pub created_at: i64,
}

impl Store {
    /// Stores `otp`, replacing the user's unused tokens of the same kind.
    pub(crate) fn create_otp(&self, otp: &OtpRecord) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM auth_otps WHERE project = ?1 AND user_id = ?2 AND kind = ?3",
                params![otp.project, otp.user_id, otp.kind],
            )?;
            tx.execute(
                "INSERT INTO auth_otps (token_sha256, code_sha256, project, user_id, kind, \
                 created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    otp.token_sha256,
                    otp.code_sha256,
                    otp.project,
                    otp.user_id,
                    otp.kind,
                    otp.created_at,
                    otp.expires_at
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Uses the token whose link or code hash is `sha256`, of one of `kinds`: deleted and
    /// returned if it has not expired at `now`.
    pub(crate) fn take_otp(
        &self,
        project: &str,
        sha256: &str,
        kinds: &[&str],
        now: i64,
    ) -> Result<Option<OtpRecord>, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let found = one(tx.query_row(
                "SELECT token_sha256, code_sha256, user_id, kind, created_at, expires_at \
                 FROM auth_otps WHERE project = ?1 AND (token_sha256 = ?2 OR code_sha256 = ?2)",
                params![project, sha256],
                |r| {
                    Ok(OtpRecord {
                        project: project.to_owned(),
                        token_sha256: r.get(0)?,
                        code_sha256: r.get(1)?,
                        user_id: r.get(2)?,
                        kind: r.get(3)?,
                        created_at: r.get(4)?,
                        expires_at: r.get(5)?,
                    })
                },
            ))?;
            let Some(otp) = found.filter(|o| kinds.contains(&o.kind.as_str())) else {
                return Ok(None);
            };
            tx.execute(
                "DELETE FROM auth_otps WHERE token_sha256 = ?1",
                params![otp.token_sha256],
            )?;
            tx.commit()?;
            Ok((otp.expires_at > now).then_some(otp))
        })
    }

    pub(crate) fn push_mail(&self, m: &MailRecord) -> Result<i64, StoreError> {
        self.with_conn(|c| {
            c.execute(
                "INSERT INTO auth_mail (project, to_addr, subject, body, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![m.project, m.to, m.subject, m.body, m.created_at],
            )?;
            // The mailbox is for development: keep the newest 1 000 messages per project.
            c.execute(
                "DELETE FROM auth_mail WHERE project = ?1 AND id <= \
                 (SELECT id FROM auth_mail WHERE project = ?1 ORDER BY id DESC LIMIT 1 OFFSET 1000)",
                params![m.project],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub(crate) fn mails(
        &self,
        project: &str,
        to: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MailRecord>, StoreError> {
        let limit = i64::try_from(limit.clamp(1, 1000)).unwrap_or(50);
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT id, project, to_addr, subject, body, created_at FROM auth_mail \
                 WHERE project = ?1 AND (?2 IS NULL OR to_addr = ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![project, to, limit], |r| {
                Ok(MailRecord {
                    id: r.get(0)?,
                    project: r.get(1)?,
                    to: r.get(2)?,
                    subject: r.get(3)?,
                    body: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
