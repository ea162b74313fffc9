//! Queue access keys: the queue's own key (in `queues`) and its send-only and consume-only
//! keys (`queue_keys`), stored as SHA-256 hashes.

use rusqlite::{OptionalExtension, params};

use super::db::*;
use crate::{EventError, KeyRole, now_ms};

impl Db {
    pub(super) fn rotate_queue_key(
        &self,
        project: &str,
        queue: &str,
    ) -> Result<String, EventError> {
        self.tx(|tx| {
            let key = rotate_key(tx, "queues", project, queue)?
                .ok_or_else(|| EventError::QueueNotFound(queue.to_owned()))?;
            tx.execute(
                "DELETE FROM queue_keys WHERE project = ?1 AND queue = ?2",
                params![project, queue],
            )?;
            Ok(key)
        })
    }

    pub(super) fn add_queue_key(
        &self,
        project: &str,
        queue: &str,
        role: KeyRole,
    ) -> Result<String, EventError> {
        if role == KeyRole::Full {
            return self.rotate_queue_key(project, queue);
        }
        self.tx(|tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM queues WHERE project = ?1 AND name = ?2",
                    params![project, queue],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Err(EventError::QueueNotFound(queue.to_owned()));
            }
            let key = new_key();
            tx.execute(
                "INSERT INTO queue_keys (project, queue, key_sha256, role, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![project, queue, hash(&key), role.as_str(), now_ms()],
            )?;
            Ok(key)
        })
    }

    pub(super) fn check_queue_key(
        &self,
        project: &str,
        queue: &str,
        key: &str,
    ) -> Result<Option<KeyRole>, EventError> {
        let conn = self.lock();
        let full = check_key(&conn, "queues", project, queue, key)?
            .ok_or_else(|| EventError::QueueNotFound(queue.to_owned()))?;
        if full {
            return Ok(Some(KeyRole::Full));
        }
        let role: Option<String> = conn
            .query_row(
                "SELECT role FROM queue_keys WHERE project = ?1 AND queue = ?2 \
                 AND key_sha256 = ?3",
                params![project, queue, hash(key)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(role.as_deref().and_then(KeyRole::parse))
    }
}
