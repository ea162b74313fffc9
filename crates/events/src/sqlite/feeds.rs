//! Change feeds on the SQLite connection: each function's feeds and their positions, and
//! forwarding a feed's changes into its queue in the same transaction that moves it.

use rusqlite::{Connection, OptionalExtension, params};

use super::db::{Db, ensure_queue, send_to};
use crate::{EventError, Feed, NewMessage, QueueSpec, internal_queue};

/// Keeps exactly these change feeds of a function; new ones start at their given position.
pub(super) fn set_feeds(
    tx: &Connection,
    project: &str,
    function: &str,
    feeds: &[(String, u64)],
) -> Result<(), EventError> {
    let existing: Vec<String> = tx
        .prepare_cached("SELECT key FROM feeds WHERE project = ?1 AND function = ?2")?
        .query_map(params![project, function], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for k in existing
        .iter()
        .filter(|k| !feeds.iter().any(|(f, _)| f == *k))
    {
        tx.execute(
            "DELETE FROM feeds WHERE project = ?1 AND function = ?2 AND key = ?3",
            params![project, function, k],
        )?;
    }
    for (k, start) in feeds {
        tx.execute(
            "INSERT OR IGNORE INTO feeds (project, function, key, position) VALUES (?1, ?2, ?3, ?4)",
            params![project, function, k, i64::try_from(*start).unwrap_or(i64::MAX)],
        )?;
        let queue = internal_queue(function, Feed::Change(k));
        ensure_queue(tx, project, &QueueSpec::new(queue), true)?;
    }
    Ok(())
}

impl Db {
    pub(super) fn feed_position(
        &self,
        project: &str,
        function: &str,
        key: &str,
    ) -> Result<Option<u64>, EventError> {
        let pos: Option<i64> = self
            .lock()
            .query_row(
                "SELECT position FROM feeds WHERE project = ?1 AND function = ?2 AND key = ?3",
                params![project, function, key],
                |r| r.get(0),
            )
            .optional()?;
        Ok(pos.map(|p| u64::try_from(p).unwrap_or(0)))
    }

    pub(super) fn forward(
        &self,
        project: &str,
        function: &str,
        key: &str,
        position: u64,
        queue: &str,
        messages: Vec<NewMessage>,
    ) -> Result<bool, EventError> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        self.tx(|tx| {
            let n = tx.execute(
                "UPDATE feeds SET position = ?4
                 WHERE project = ?1 AND function = ?2 AND key = ?3 AND position < ?4",
                params![project, function, key, position],
            )?;
            if n == 0 {
                return Ok(false);
            }
            if !messages.is_empty() {
                send_to(tx, project, queue, messages)?;
            }
            Ok(true)
        })
    }
}
