//! Log lines and invocation records: queued by the request path, written in batches by one
//! thread.
//!
//! [`LogWriter::write`] and [`LogWriter::record`] never block: they put the line or record on a
//! bounded queue and, if the queue is full (the disk cannot keep up), drop it and count it. The
//! writer thread commits what it has at least every [`FLUSH_INTERVAL`], so a `kill -9` loses at
//! most that much, and [`LogWriter::flush`] (used at shutdown) waits until everything queued so
//! far is on disk. Lines get their id when they are queued, so followers
//! ([`LogWriter::subscribe`]) see them at once, with the id they will be stored under.
//!
//! Retention ([`Retention`]) is applied by the same thread: log lines past their age or past the
//! size budget (oldest first), invocation records past theirs.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::broadcast;
use updraft_api::Invocation;

use crate::{Store, StoreError, now_ms};

/// Longest time a queued line waits before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
const QUEUE: usize = 64 * 1024;
/// How often the writer drains the queue while it gathers a batch.
const POLL: Duration = Duration::from_millis(10);
const BATCH: usize = 4096;
/// Rows deleted per age-retention statement.
const TRIM_CHUNK: i64 = 10_000;
/// Rows deleted per size-retention statement (the budget is overshot by at most this many).
const SIZE_TRIM_CHUNK: i64 = 100;
/// Bytes a stored line costs beyond its text (columns, row and index overhead), for the size
/// budget.
const ROW_OVERHEAD: i64 = 100;
/// Lines a follower may fall behind by before it misses some.
const FOLLOW_BUFFER: usize = 4096;

/// How long log lines and invocation records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Log lines older than this are deleted.
    pub log_max_age: Duration,
    /// The oldest log lines are deleted while all of them take more than this many bytes
    /// (text plus ~100 bytes of overhead per line).
    pub log_max_bytes: u64,
    /// Invocation records older than this are deleted.
    pub invocation_max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            log_max_age: Duration::from_secs(7 * 86_400),
            log_max_bytes: 1 << 30,
            invocation_max_age: Duration::from_secs(90 * 86_400),
        }
    }
}

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogRecord {
    /// Position in the log (increasing); pass as `after_id` to page or follow.
    #[serde(default)]
    pub id: i64,
    /// The project (tenant).
    pub project: String,
    /// The function that wrote it.
    pub function: String,
    /// The version that wrote it (none for function-level platform events).
    pub version: Option<u32>,
    /// The invocation that wrote it.
    pub request_id: String,
    /// When it was written (ms since the epoch).
    pub ts_ms: i64,
    /// `stdout`, `stderr` or `platform`.
    pub stream: String,
    /// The line, without its newline.
    pub line: String,
}

/// A filter over stored log lines.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only this function.
    pub function: Option<String>,
    /// Only this invocation.
    pub request_id: Option<String>,
    /// Only lines written at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only lines after this id.
    pub after_id: Option<i64>,
    /// At most this many lines (the newest ones when `after_id` is unset).
    pub limit: usize,
}

impl LogQuery {
    /// Whether `r` (of `project`) passes the filter, ignoring `limit`.
    pub fn matches(&self, r: &LogRecord) -> bool {
        self.function.as_ref().is_none_or(|f| *f == r.function)
            && self.request_id.as_ref().is_none_or(|q| *q == r.request_id)
            && self.since_ms.is_none_or(|s| r.ts_ms >= s)
            && self.after_id.is_none_or(|a| r.id > a)
    }
}

enum Msg {
    Line(LogRecord),
    Invocation(Box<Invocation>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Handle to the background writer of log lines and invocation records. Cloning shares the
/// same queue.
#[derive(Clone)]
pub(crate) struct LogWriter {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    next_id: Arc<AtomicI64>,
    follow: broadcast::Sender<Arc<LogRecord>>,
    // Joined when the last handle goes away (see Drop for WriterThread).
    _thread: Arc<WriterThread>,
}

struct WriterThread(Mutex<Option<std::thread::JoinHandle<()>>>);

impl Drop for WriterThread {
    fn drop(&mut self) {
        // The sender was dropped with the last LogWriter; the thread drains and exits.
        if let Some(h) = self.0.lock().ok().and_then(|mut h| h.take()) {
            let _ = h.join();
        }
    }
}

impl LogWriter {
    pub(crate) fn start(conn: Connection, retention: Retention) -> Result<Self, StoreError> {
        // Log lines are not acknowledged writes: trade fsync per batch for throughput. In WAL
        // mode a committed batch still survives a crash of the process (not of the machine).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Keep the indexes' hot pages in this connection's cache rather than re-reading them
        // from the OS for every batch (32 MiB).
        conn.pragma_update(None, "cache_size", -32_768)?;
        let last: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM logs", [], |r| r.get(0))?;
        let bytes: i64 = conn.query_row(
            "SELECT COALESCE(SUM(length(line)), 0) + COUNT(*) * ?1 FROM logs",
            params![ROW_OVERHEAD],
            |r| r.get(0),
        )?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let mut writer = Writer {
            conn,
            retention,
            bytes,
            last_age_trim: None,
        };
        writer.trim();
        let handle = std::thread::Builder::new()
            .name("updraft-logs".into())
            .spawn(move || writer.run(&rx))
            .map_err(|source| StoreError::Io {
                path: "log writer thread".into(),
                source,
            })?;
        Ok(Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            next_id: Arc::new(AtomicI64::new(last + 1)),
            follow: broadcast::channel(FOLLOW_BUFFER).0,
            _thread: Arc::new(WriterThread(Mutex::new(Some(handle)))),
        })
    }

    /// Queues a line, giving it its id (any id it had is replaced). Never blocks; drops the
    /// line if the queue is full.
    pub(crate) fn write(&self, mut record: LogRecord) {
        record.id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.follow.receiver_count() > 0 {
            let _ = self.follow.send(Arc::new(record.clone()));
        }
        self.send(Msg::Line(record));
    }

    /// Queues an invocation record. Never blocks; drops it if the queue is full.
    pub(crate) fn record(&self, invocation: Invocation) {
        self.send(Msg::Invocation(Box::new(invocation)));
    }

    fn send(&self, msg: Msg) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(msg) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every line queued from now on, as it is queued (before it is on disk). A follower that
    /// falls more than a few thousand lines behind misses the oldest ones
    /// (`RecvError::Lagged`).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<LogRecord>> {
        self.follow.subscribe()
    }

    /// Lines and records dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every line and record queued before this call is committed.
    pub(crate) fn flush(&self) {
        let (ack_tx, ack_rx) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
    }
}

struct Writer {
    conn: Connection,
    retention: Retention,
    /// Bytes the stored lines take, by the size budget's measure.
    bytes: i64,
    /// When age-based retention last ran (never: at start).
    last_age_trim: Option<Instant>,
}

/// How often age-based retention runs.
const AGE_TRIM_EVERY: Duration = Duration::from_secs(60);

impl Writer {
    fn run(&mut self, rx: &Receiver<Msg>) {
        let mut batch = Batch::default();
        loop {
            let mut disconnected = false;
            // Block for the first message only. After it, gather what arrives by draining the
            // queue every POLL until the batch is full, a flush is asked for, or the flush
            // interval is up: blocking per message would wake this thread for every line
            // written, which costs the request path a context switch per line.
            match rx.recv() {
                Ok(msg) => batch.take(msg),
                Err(_) => disconnected = true,
            }
            let deadline = Instant::now() + FLUSH_INTERVAL;
            while !disconnected && batch.acks.is_empty() && batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(msg) => batch.take(msg),
                    Err(TryRecvError::Disconnected) => disconnected = true,
                    Err(TryRecvError::Empty) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        std::thread::sleep(left.min(POLL));
                    }
                }
            }
            if batch.len() > 0 {
                match insert(&mut self.conn, &batch.lines, &batch.invocations) {
                    Ok(()) => {
                        self.bytes += batch
                            .lines
                            .iter()
                            .map(|l| i64::try_from(l.line.len()).unwrap_or(0) + ROW_OVERHEAD)
                            .sum::<i64>();
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        lines = batch.lines.len(),
                        invocations = batch.invocations.len(),
                        "could not store log lines and invocation records"
                    ),
                }
                batch.lines.clear();
                batch.invocations.clear();
                self.trim();
            }
            for ack in batch.acks.drain(..) {
                let _ = ack.send(());
            }
            if disconnected {
                return;
            }
        }
    }

    /// Applies retention: the size budget after every batch, ages once a minute.
    fn trim(&mut self) {
        if let Err(e) = self.trim_size() {
            tracing::warn!(error = %e, "could not trim log lines to their size budget");
        }
        if self
            .last_age_trim
            .is_none_or(|t| t.elapsed() >= AGE_TRIM_EVERY)
        {
            self.last_age_trim = Some(Instant::now());
            if let Err(e) = self.trim_age() {
                tracing::warn!(error = %e, "could not delete expired log lines and records");
            }
        }
    }

    fn trim_size(&mut self) -> rusqlite::Result<()> {
        let budget = i64::try_from(self.retention.log_max_bytes).unwrap_or(i64::MAX);
        while self.bytes > budget {
            let freed: Vec<i64> = self
                .conn
                .prepare_cached(
                    "DELETE FROM logs WHERE id IN (SELECT id FROM logs ORDER BY id LIMIT ?1)
                     RETURNING length(line)",
                )?
                .query_map(params![SIZE_TRIM_CHUNK], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if freed.is_empty() {
                self.bytes = 0;
                break;
            }
            self.bytes -= freed.iter().map(|n| n + ROW_OVERHEAD).sum::<i64>();
        }
        Ok(())
    }

    fn trim_age(&mut self) -> rusqlite::Result<()> {
        let cutoff = |age: Duration| now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        let logs = cutoff(self.retention.log_max_age);
        // Oldest first, in chunks, so neither the scan nor the transaction gets large.
        loop {
            let freed: Vec<i64> = self
                .conn
                .prepare_cached(
                    "DELETE FROM logs WHERE id IN (SELECT id FROM logs ORDER BY id LIMIT ?1)
                       AND ts_ms < ?2
                     RETURNING length(line)",
                )?
                .query_map(params![TRIM_CHUNK, logs], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            self.bytes -= freed.iter().map(|n| n + ROW_OVERHEAD).sum::<i64>();
            if i64::try_from(freed.len()).unwrap_or(0) < TRIM_CHUNK {
                break;
            }
        }
        self.conn.execute(
            "DELETE FROM invocations WHERE started_ms < ?1",
            params![cutoff(self.retention.invocation_max_age)],
        )?;
        Ok(())
    }
}

/// What the writer has gathered since its last commit.
#[derive(Default)]
struct Batch {
    lines: Vec<LogRecord>,
    invocations: Vec<Invocation>,
    acks: Vec<std::sync::mpsc::Sender<()>>,
}

impl Batch {
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Line(r) => self.lines.push(r),
            Msg::Invocation(i) => self.invocations.push(*i),
            Msg::Flush(ack) => self.acks.push(ack),
        }
    }

    fn len(&self) -> usize {
        self.lines.len() + self.invocations.len()
    }
}

fn insert(
    conn: &mut Connection,
    lines: &[LogRecord],
    invocations: &[Invocation],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    insert_rows(
        &tx,
        "INSERT INTO logs (id, project, function, version, request_id, ts_ms, stream, line)",
        8,
        lines,
        |s, at, r| {
            s.raw_bind_parameter(at + 1, r.id)?;
            s.raw_bind_parameter(at + 2, &r.project)?;
            s.raw_bind_parameter(at + 3, &r.function)?;
            s.raw_bind_parameter(at + 4, r.version)?;
            s.raw_bind_parameter(at + 5, &r.request_id)?;
            s.raw_bind_parameter(at + 6, r.ts_ms)?;
            s.raw_bind_parameter(at + 7, &r.stream)?;
            s.raw_bind_parameter(at + 8, &r.line)
        },
    )?;
    let big = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    insert_rows(
        &tx,
        "INSERT INTO invocations (request_id, project, function, version, trigger, started_ms,
             duration_us, billed_ms, memory_mb, peak_memory, cold, status, error, trace_id)",
        14,
        invocations,
        |s, at, i| {
            s.raw_bind_parameter(at + 1, &i.request_id)?;
            s.raw_bind_parameter(at + 2, &i.project)?;
            s.raw_bind_parameter(at + 3, &i.function)?;
            s.raw_bind_parameter(at + 4, i.version)?;
            s.raw_bind_parameter(at + 5, i.trigger.as_str())?;
            s.raw_bind_parameter(at + 6, i.started_ms)?;
            s.raw_bind_parameter(at + 7, big(i.duration_us))?;
            s.raw_bind_parameter(at + 8, big(i.billed_ms))?;
            s.raw_bind_parameter(at + 9, big(i.memory_mb))?;
            s.raw_bind_parameter(at + 10, big(i.peak_memory_bytes))?;
            s.raw_bind_parameter(at + 11, i.cold)?;
            s.raw_bind_parameter(at + 12, i.status)?;
            s.raw_bind_parameter(at + 13, i.error.map(|e| e.as_str()))?;
            s.raw_bind_parameter(at + 14, &i.trace_id)
        },
    )?;
    tx.commit()
}

/// Rows per multi-row `INSERT`: one statement per chunk instead of per row saves most of
/// SQLite's per-statement work.
const ROWS_PER_INSERT: usize = 32;

/// Inserts `rows` with `head` (`INSERT INTO t (columns...)`), `ROWS_PER_INSERT` rows per
/// statement and the remainder one by one. `bind` binds one row's `columns` values after
/// parameter `at`.
fn insert_rows<T>(
    tx: &rusqlite::Transaction<'_>,
    head: &str,
    columns: usize,
    rows: &[T],
    bind: impl Fn(&mut rusqlite::Statement<'_>, usize, &T) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let sql = |n: usize| {
        let row = format!("({})", vec!["?"; columns].join(", "));
        format!("{head} VALUES {}", vec![row; n].join(", "))
    };
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if rows.len() >= ROWS_PER_INSERT {
        let mut stmt = tx.prepare_cached(&sql(ROWS_PER_INSERT))?;
        for chunk in &mut chunks {
            for (i, row) in chunk.iter().enumerate() {
                bind(&mut stmt, i * columns, row)?;
            }
            stmt.raw_execute()?;
        }
    }
    let mut stmt = tx.prepare_cached(&sql(1))?;
    for row in chunks.remainder() {
        bind(&mut stmt, 0, row)?;
        stmt.raw_execute()?;
    }
    Ok(())
}

impl Store {
    /// Stored log lines of `project` matching `q`, oldest first.
    ///
    /// # Errors
    /// SQLite errors.
    pub(crate) fn query_logs(
        &self,
        project: &str,
        q: &LogQuery,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let limit = i64::try_from(q.limit.clamp(1, 10_000)).unwrap_or(10_000);
        self.with_conn(|c| {
            // There is no index on time or request id (each would cost every write): a time
            // bound, from `since` or from the time a request id starts with, becomes a bound on
            // the line id, found by binary search since ids and times rise together.
            let from_ms = [
                q.since_ms,
                q.request_id.as_deref().and_then(request_time_ms),
            ]
            .into_iter()
            .flatten()
            .max();
            let lower = match from_ms {
                Some(ms) => Some(first_id_at(c, ms - ID_TIME_SLACK_MS)? - 1),
                None => None,
            };
            let after = q.after_id.max(lower);
            // Newest `limit` lines matching, then put back in order. With `after_id`, the
            // oldest `limit` lines after it (paging forward / following).
            let order = if q.after_id.is_some() { "ASC" } else { "DESC" };
            let sql = format!(
                "SELECT id, project, function, version, request_id, ts_ms, stream, line FROM logs
                 WHERE project = ?1
                   AND (?2 IS NULL OR function = ?2)
                   AND (?3 IS NULL OR request_id = ?3)
                   AND (?4 IS NULL OR ts_ms >= ?4)
                   AND (?5 IS NULL OR id > ?5)
                 ORDER BY id {order} LIMIT ?6"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![project, q.function, q.request_id, q.since_ms, after, limit],
                |r| {
                    Ok(LogRecord {
                        id: r.get(0)?,
                        project: r.get(1)?,
                        function: r.get(2)?,
                        version: r.get(3)?,
                        request_id: r.get(4)?,
                        ts_ms: r.get(5)?,
                        stream: r.get(6)?,
                        line: r.get(7)?,
                    })
                },
            )?;
            let mut out: Vec<LogRecord> = rows.collect::<Result<_, _>>()?;
            if q.after_id.is_none() {
                out.reverse();
            }
            Ok(out)
        })
    }
}

/// How far a line's time may run behind the order of ids (ids and times are taken a moment
/// apart, on different threads), and how long before its request id's time a request may write
/// (none: the id is made when the request arrives).
const ID_TIME_SLACK_MS: i64 = 60_000;

/// The time a request id starts with (its first 12 hex digits, in ms), if it has one.
pub(crate) fn request_time_ms(id: &str) -> Option<i64> {
    i64::from_str_radix(id.get(..12)?, 16).ok()
}

/// The smallest id of a line written at or after `ms` (one past the largest id if none): a
/// binary search over ids, each probe one primary-key lookup.
fn first_id_at(c: &Connection, ms: i64) -> rusqlite::Result<i64> {
    let (mut lo, mut hi): (i64, i64) = c.query_row(
        "SELECT COALESCE(MIN(id), 1), COALESCE(MAX(id), 0) + 1 FROM logs",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut probe =
        c.prepare_cached("SELECT id, ts_ms FROM logs WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let found: Option<(i64, i64)> = probe
            .query_row(params![mid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            Some((id, ts)) if id < hi && ts < ms => lo = id + 1,
            Some((id, _)) if id < hi => hi = id,
            // No line in [mid, hi): the answer is below mid, or is hi.
            _ => hi = mid,
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests;
