//! What keeps the log from growing without bound: the per-queue depth limit, checked on every
//! client send, and the expiry of finished asynchronous invokes.

use rusqlite::params;

use super::db::Db;
use crate::EventError;

impl Db {
    /// Refuses `n` more messages when the queue would hold more than its depth limit. Cheap
    /// while the queue is well below it: the exact (bounded) count runs only when the upper
    /// bound kept in memory says the queue may be full.
    pub(super) fn check_depth(
        &self,
        tx: &rusqlite::Connection,
        project: &str,
        queue: &str,
        n: u64,
    ) -> Result<(), EventError> {
        let max = self.max_depth.load(std::sync::atomic::Ordering::Relaxed);
        let mut bounds = self
            .depth_bound
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bound = bounds
            .entry((project.to_owned(), queue.to_owned()))
            .or_insert(u64::MAX);
        if bound.saturating_add(n) > max {
            let exact: i64 = tx.query_row(
                "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE project = ?1 AND queue = ?2 \
                 LIMIT ?3)",
                params![project, queue, i64::try_from(max).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )?;
            *bound = u64::try_from(exact).unwrap_or(0);
            if *bound + n > max {
                return Err(EventError::QueueFull {
                    queue: queue.to_owned(),
                    max,
                });
            }
        }
        *bound += n;
        Ok(())
    }

    /// Deletes finished asynchronous invokes last updated before `before_ms`, a thousand rows
    /// per transaction.
    pub(super) fn expire_async(&self, before_ms: i64) -> Result<u64, EventError> {
        let mut total = 0;
        loop {
            let n = self.tx(|tx| {
                Ok(tx.execute(
                    "DELETE FROM async_invocations WHERE rowid IN (SELECT rowid FROM \
                     async_invocations WHERE status IN ('succeeded', 'failed') AND updated_ms < ?1 \
                     LIMIT 1000)",
                    params![before_ms],
                )? as u64)
            })?;
            total += n;
            if n < 1000 {
                return Ok(total);
            }
        }
    }
}
