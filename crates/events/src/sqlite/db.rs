//! The SQLite connection of the embedded backend: schema, transactions, and the helpers the
//! operations share.
//!
//! `events.db` is a SQLite database in WAL mode. Transactions that accept
//! events (sends, publishes, schedule fires, async submits) and change queues commit with
//! `synchronous = FULL`: they are on disk before they are acknowledged, even across a power
//! loss. Leases and settles (receive, ack, retry, dead-letter) commit with `NORMAL`: they
//! survive a crash of the process, and a power loss can only undo the latest of them, which
//! delivers those events again (at least once), never loses one. The next `FULL` commit makes
//! everything before it durable too.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use updraft_api::{AsyncInvocation, AsyncStatus, Filter, QueueInfo, Subscription, TopicInfo};

use crate::{EventError, Feed, NewMessage, QueueSpec, internal_queue, new_id, now_ms};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS queues (
    project       TEXT NOT NULL,
    name          TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    visibility_ms INTEGER NOT NULL,
    max_bytes     INTEGER NOT NULL,
    key_sha256    TEXT NOT NULL,
    internal      INTEGER NOT NULL,
    PRIMARY KEY (project, name)
);
CREATE TABLE IF NOT EXISTS queue_keys (
    project    TEXT NOT NULL,
    queue      TEXT NOT NULL,
    key_sha256 TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (project, queue, key_sha256)
);
CREATE TABLE IF NOT EXISTS messages (
    seq          INTEGER PRIMARY KEY,
    project      TEXT NOT NULL,
    queue        TEXT NOT NULL,
    id           TEXT NOT NULL,
    visible_ms   INTEGER NOT NULL,
    receipt      TEXT,
    holder       TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    time_ms      INTEGER NOT NULL,
    source       TEXT NOT NULL,
    type         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    attributes   TEXT NOT NULL,
    data         BLOB NOT NULL,
    errors       TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (project, queue, visible_ms, seq);
CREATE INDEX IF NOT EXISTS messages_leased ON messages (holder) WHERE holder IS NOT NULL;
CREATE TABLE IF NOT EXISTS topics (
    project     TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    key_sha256  TEXT NOT NULL,
    PRIMARY KEY (project, name)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    project     TEXT NOT NULL,
    topic       TEXT NOT NULL,
    queue       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    filter      TEXT NOT NULL,
    PRIMARY KEY (project, topic, queue)
);
CREATE TABLE IF NOT EXISTS consumers (
    project     TEXT NOT NULL,
    queue       TEXT NOT NULL,
    function    TEXT NOT NULL,
    PRIMARY KEY (project, queue, function)
);
CREATE TABLE IF NOT EXISTS schedules (
    project     TEXT NOT NULL,
    function    TEXT NOT NULL,
    key         TEXT NOT NULL,
    last_slot_ms INTEGER NOT NULL,
    PRIMARY KEY (project, function, key)
);
CREATE TABLE IF NOT EXISTS feeds (
    project     TEXT NOT NULL,
    function    TEXT NOT NULL,
    key         TEXT NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (project, function, key)
);
CREATE TABLE IF NOT EXISTS async_invocations (
    project     TEXT NOT NULL,
    id          TEXT NOT NULL,
    function    TEXT NOT NULL,
    idem_key    TEXT,
    status      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    request_id  TEXT,
    resp_status INTEGER,
    resp_body   BLOB,
    error       TEXT,
    PRIMARY KEY (project, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS async_by_key ON async_invocations (project, function, idem_key)
    WHERE idem_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS async_finished ON async_invocations (updated_ms)
    WHERE status IN ('succeeded', 'failed');
"#;

/// The SQLite event log's connection, used under a mutex: every operation is one short
/// transaction.
pub(super) struct Db {
    conn: Mutex<Conn>,
    /// Most messages a client may keep in one queue (see [`crate::DEFAULT_MAX_QUEUE_DEPTH`]).
    pub(super) max_depth: std::sync::atomic::AtomicU64,
    /// Per queue, at least as many messages as it holds (sends add, deletes don't subtract):
    /// an exact count is taken only when this says the queue may be full.
    pub(super) depth_bound: Mutex<std::collections::HashMap<(String, String), u64>>,
}

/// The connection and its current `synchronous` setting.
pub(super) struct Conn {
    db: Connection,
    full: bool,
}

impl std::ops::Deref for Conn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.db
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.db
    }
}

pub(super) fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub(super) fn new_key() -> String {
    format!("uqk_{}", hex::encode(rand::random::<[u8; 20]>()))
}

pub(super) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

pub(super) fn u(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Db {
    /// Opens (creating if needed) the event log at `path`.
    ///
    /// # Errors
    /// [`EventError::Db`] if the file cannot be opened or its schema created.
    pub(super) fn open(path: &Path) -> Result<Self, EventError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", -16_384)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(Conn {
                db: conn,
                full: true,
            }),
            max_depth: std::sync::atomic::AtomicU64::new(crate::DEFAULT_MAX_QUEUE_DEPTH),
            depth_bound: Mutex::new(std::collections::HashMap::new()),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A transaction that accepts events: durable before it returns.
    pub(super) fn tx<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, EventError>,
    ) -> Result<T, EventError> {
        self.tx_with(true, f)
    }

    /// A lease or settle: survives a process crash; a power loss may undo it (redelivery).
    pub(super) fn light_tx<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, EventError>,
    ) -> Result<T, EventError> {
        self.tx_with(false, f)
    }

    fn tx_with<T>(
        &self,
        full: bool,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, EventError>,
    ) -> Result<T, EventError> {
        let mut conn = self.lock();
        if conn.full != full {
            conn.db
                .pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })?;
            conn.full = full;
        }
        let tx = conn
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

pub(super) fn queue_limits(
    tx: &Connection,
    project: &str,
    queue: &str,
) -> Result<(i64, u64), EventError> {
    tx.query_row(
        "SELECT visibility_ms, max_bytes FROM queues WHERE project = ?1 AND name = ?2",
        params![project, queue],
        |r| Ok((r.get(0)?, u(r.get(1)?))),
    )
    .optional()?
    .ok_or_else(|| EventError::QueueNotFound(queue.to_owned()))
}

pub(super) fn queue_info(
    tx: &Connection,
    project: &str,
    queue: &str,
) -> Result<QueueInfo, EventError> {
    let now = now_ms();
    let row = tx
        .query_row(
            "SELECT created_ms, visibility_ms, max_bytes FROM queues WHERE project = ?1 AND name = ?2",
            params![project, queue],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
        )
        .optional()?
        .ok_or_else(|| EventError::QueueNotFound(queue.to_owned()))?;
    let (depth, in_flight, delayed, oldest): (i64, i64, i64, Option<i64>) = tx.query_row(
        "SELECT count(*),
                coalesce(sum(receipt IS NOT NULL AND visible_ms > ?3), 0),
                coalesce(sum(receipt IS NULL AND visible_ms > ?3), 0),
                min(time_ms)
         FROM messages WHERE project = ?1 AND queue = ?2",
        params![project, queue, now],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let mut stmt = tx.prepare_cached(
        "SELECT function FROM consumers WHERE project = ?1 AND queue = ?2 ORDER BY function",
    )?;
    let consumers = stmt
        .query_map(params![project, queue], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(QueueInfo {
        name: queue.to_owned(),
        created_ms: row.0,
        visibility_timeout_ms: u(row.1),
        max_message_bytes: u(row.2),
        depth: u(depth),
        in_flight: u(in_flight),
        delayed: u(delayed),
        oldest_age_ms: oldest.map_or(0, |t| u(now - t)),
        consumers,
    })
}

pub(super) fn ensure_queue(
    tx: &Connection,
    project: &str,
    spec: &QueueSpec,
    internal: bool,
) -> Result<Option<String>, EventError> {
    let key = new_key();
    let n = tx.execute(
        "INSERT OR IGNORE INTO queues (project, name, created_ms, visibility_ms, max_bytes, key_sha256, internal)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            project,
            spec.name,
            now_ms(),
            ms(spec.visibility_timeout),
            i64::try_from(spec.max_message_bytes).unwrap_or(i64::MAX),
            hash(&key),
            internal
        ],
    )?;
    Ok((n == 1).then_some(key))
}

pub(super) fn insert(
    tx: &Connection,
    project: &str,
    queue: &str,
    m: &NewMessage,
    id: &str,
    now: i64,
) -> Result<(), EventError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO messages (project, queue, id, visible_ms, time_ms, source, type, content_type, attributes, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let attributes = serde_json::to_string(&m.attributes).unwrap_or_else(|_| "{}".into());
    stmt.execute(params![
        project,
        queue,
        id,
        now + ms(m.delay),
        m.time_ms.unwrap_or(now),
        m.source,
        m.kind,
        m.content_type,
        attributes,
        m.data
    ])?;
    Ok(())
}

pub(super) fn send_to(
    tx: &Connection,
    project: &str,
    queue: &str,
    messages: Vec<NewMessage>,
) -> Result<Vec<String>, EventError> {
    let (_, max) = queue_limits(tx, project, queue)?;
    let now = now_ms();
    let mut ids = Vec::with_capacity(messages.len());
    for m in messages {
        let size = m.data.len() as u64;
        if size > max {
            return Err(EventError::TooLarge {
                queue: queue.to_owned(),
                size,
                max,
            });
        }
        let id = m.id.clone().unwrap_or_else(new_id);
        insert(tx, project, queue, &m, &id, now)?;
        ids.push(id);
    }
    Ok(ids)
}

pub(super) fn receipt_seq(receipt: &str) -> Option<i64> {
    receipt.split_once('-')?.0.parse().ok()
}

pub(super) fn topic_info(
    tx: &Connection,
    project: &str,
    topic: &str,
) -> Result<TopicInfo, EventError> {
    let created_ms: i64 = tx
        .query_row(
            "SELECT created_ms FROM topics WHERE project = ?1 AND name = ?2",
            params![project, topic],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| EventError::TopicNotFound(topic.to_owned()))?;
    let mut stmt = tx.prepare_cached(
        "SELECT kind, target, filter FROM subscriptions WHERE project = ?1 AND topic = ?2 ORDER BY kind, target",
    )?;
    let subscriptions = stmt
        .query_map(params![project, topic], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .map(|r| {
            r.map(|(kind, target, filter)| Subscription {
                kind,
                target,
                filter: serde_json::from_str(&filter).unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TopicInfo {
        name: topic.to_owned(),
        created_ms,
        subscriptions,
    })
}

pub(super) fn ensure_topic(
    tx: &Connection,
    project: &str,
    topic: &str,
) -> Result<Option<String>, EventError> {
    let key = new_key();
    let n = tx.execute(
        "INSERT OR IGNORE INTO topics (project, name, created_ms, key_sha256) VALUES (?1, ?2, ?3, ?4)",
        params![project, topic, now_ms(), hash(&key)],
    )?;
    Ok((n == 1).then_some(key))
}

pub(super) fn read_async(
    tx: &Connection,
    project: &str,
    id: &str,
) -> Result<AsyncInvocation, EventError> {
    tx.query_row(
        "SELECT id, function, status, idem_key, created_ms, updated_ms, attempts, request_id, resp_status, resp_body, error
         FROM async_invocations WHERE project = ?1 AND id = ?2",
        params![project, id],
        |r| {
            let body: Option<Vec<u8>> = r.get(9)?;
            Ok(AsyncInvocation {
                id: r.get(0)?,
                function: r.get(1)?,
                status: AsyncStatus::parse(&r.get::<_, String>(2)?).unwrap_or(AsyncStatus::Queued),
                idempotency_key: r.get(3)?,
                created_ms: r.get(4)?,
                updated_ms: r.get(5)?,
                attempts: r.get(6)?,
                request_id: r.get(7)?,
                response_status: r.get(8)?,
                response_body: body.map(|b| String::from_utf8_lossy(&b).into_owned()),
                error: r.get(10)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| EventError::AsyncNotFound(id.to_owned()))
}

pub(super) fn check_key(
    conn: &Connection,
    table: &str,
    project: &str,
    name: &str,
    key: &str,
) -> Result<Option<bool>, EventError> {
    let sql = format!("SELECT key_sha256 FROM {table} WHERE project = ?1 AND name = ?2");
    let stored: Option<String> = conn
        .query_row(&sql, params![project, name], |r| r.get(0))
        .optional()?;
    Ok(stored.map(|s| s == hash(key)))
}

pub(super) fn rotate_key(
    conn: &Connection,
    table: &str,
    project: &str,
    name: &str,
) -> Result<Option<String>, EventError> {
    let key = new_key();
    let sql = format!("UPDATE {table} SET key_sha256 = ?3 WHERE project = ?1 AND name = ?2");
    let n = conn.execute(&sql, params![project, name, hash(&key)])?;
    Ok((n == 1).then_some(key))
}

/// Replaces a function's topic subscriptions (topics and its internal queues created as needed).
pub(super) fn set_subscriptions(
    tx: &Connection,
    project: &str,
    function: &str,
    topics: &[(String, Filter)],
) -> Result<(), EventError> {
    tx.execute(
        "DELETE FROM subscriptions WHERE project = ?1 AND kind = 'function' AND target = ?2",
        params![project, function],
    )?;
    for (topic, filter) in topics {
        ensure_topic(tx, project, topic)?;
        let queue = internal_queue(function, Feed::Topic(topic));
        ensure_queue(tx, project, &QueueSpec::new(queue.clone()), true)?;
        tx.execute(
            "INSERT OR REPLACE INTO subscriptions (project, topic, queue, kind, target, filter)
             VALUES (?1, ?2, ?3, 'function', ?4, ?5)",
            params![
                project,
                topic,
                queue,
                function,
                serde_json::to_string(filter).unwrap_or_default()
            ],
        )?;
    }
    Ok(())
}

/// Keeps exactly these schedules of a function; new ones start at `now_ms`.
pub(super) fn set_schedules(
    tx: &Connection,
    project: &str,
    function: &str,
    keys: &[String],
    now_ms: i64,
) -> Result<(), EventError> {
    let existing: Vec<String> = tx
        .prepare_cached("SELECT key FROM schedules WHERE project = ?1 AND function = ?2")?
        .query_map(params![project, function], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for k in existing.iter().filter(|k| !keys.contains(k)) {
        tx.execute(
            "DELETE FROM schedules WHERE project = ?1 AND function = ?2 AND key = ?3",
            params![project, function, k],
        )?;
    }
    for k in keys {
        tx.execute(
            "INSERT OR IGNORE INTO schedules (project, function, key, last_slot_ms) VALUES (?1, ?2, ?3, ?4)",
            params![project, function, k, now_ms],
        )?;
    }
    for k in keys {
        let queue = internal_queue(function, Feed::Schedule(k));
        ensure_queue(tx, project, &QueueSpec::new(queue), true)?;
    }
    Ok(())
}

/// Replaces the list of queues a function consumes (created if missing).
pub(super) fn set_consumers(
    tx: &Connection,
    project: &str,
    function: &str,
    queues: &[String],
) -> Result<(), EventError> {
    tx.execute(
        "DELETE FROM consumers WHERE project = ?1 AND function = ?2",
        params![project, function],
    )?;
    for q in queues {
        ensure_queue(tx, project, &QueueSpec::new(q.clone()), false)?;
        tx.execute(
            "INSERT OR IGNORE INTO consumers (project, queue, function) VALUES (?1, ?2, ?3)",
            params![project, q, function],
        )?;
    }
    Ok(())
}

/// Deletes a function's schedules, subscriptions, feeds, internal queues and async records.
pub(super) fn forget(tx: &Connection, project: &str, function: &str) -> Result<(), EventError> {
    for table in ["schedules", "feeds"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE project = ?1 AND function = ?2"),
            params![project, function],
        )?;
    }
    tx.execute(
        "DELETE FROM subscriptions WHERE project = ?1 AND target = ?2 AND kind = 'function'",
        params![project, function],
    )?;
    tx.execute(
        "DELETE FROM consumers WHERE project = ?1 AND function = ?2",
        params![project, function],
    )?;
    tx.execute(
        "DELETE FROM async_invocations WHERE project = ?1 AND function = ?2",
        params![project, function],
    )?;
    let owned = "(name = ?2 OR substr(name, 1, length(?3)) = ?3 OR substr(name, 1, length(?4)) = ?4 \
                 OR substr(name, 1, length(?5)) = ?5)";
    let args = params![
        project,
        internal_queue(function, Feed::Async),
        format!("~schedule.{function}."),
        internal_queue(function, Feed::Topic("")),
        internal_queue(function, Feed::Change("")),
    ];
    tx.execute(
        &format!(
            "DELETE FROM messages WHERE project = ?1 AND {}",
            owned.replace("name", "queue")
        ),
        args,
    )?;
    tx.execute(
        &format!("DELETE FROM queues WHERE project = ?1 AND {owned}"),
        args,
    )?;
    Ok(())
}

impl From<rusqlite::Error> for EventError {
    fn from(e: rusqlite::Error) -> Self {
        EventError::Backend(Box::new(e))
    }
}
