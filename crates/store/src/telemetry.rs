//! Log lines and invocation records: queued by the request path, written in batches by one
//! thread, stored as chunks.
//!
//! [`LogWriter::write`] and [`LogWriter::record`] never block. A line goes on a bounded queue
//! and, if the queue is full (the disk cannot keep up), is dropped and counted. An invocation
//! record (usage, cost and quotas are built from them) goes apart from the lines, on its own list
//! the writer empties into every batch, so no flood of lines can crowd one out; only past
//! [`MAX_PENDING_RECORDS`] waiting (the disk stalled for minutes) are records dropped. The
//! writer thread commits what it has at least every [`FLUSH_INTERVAL`], so a `kill -9` loses at
//! most that much, and [`LogWriter::flush`] (used at shutdown) waits until everything queued so
//! far is on disk. Lines get their id when they are queued, so followers
//! ([`LogWriter::subscribe`]) see them at once, with the id they will be stored under.
//!
//! Storage: each batch is stored as one row per function and kind, a *chunk* (`log_chunks`,
//! `invocation_chunks`) holding its entries in a compact encoding (`codec`), plus per-minute
//! usage sums (`usage_minutes`) for usage and quotas. One row per batch instead of one per line
//! and record costs SQLite a fraction of the work on the write path, which runs for every
//! invocation; queries decode the chunks their bounds select (`query`).
//!
//! Retention ([`Retention`]) is applied by the same thread, a chunk at a time: log lines past
//! their age or past the size budget (oldest first), invocation records and usage sums past
//! theirs.

mod codec;
mod migrate;
mod query;
mod writer;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::broadcast;
use updraft_api::Invocation;

use crate::StoreError;

/// Longest time a queued line waits before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Log lines (and wake-ups, flushes) waiting for the writer.
const QUEUE: usize = 64 * 1024;
/// Invocation records waiting for the writer (a few hundred MiB at most) before any is dropped.
pub(crate) const MAX_PENDING_RECORDS: usize = 1 << 20;
/// Lines a follower may fall behind by before it misses some.
const FOLLOW_BUFFER: usize = 4096;

/// How long log lines and invocation records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Log lines older than this are deleted.
    pub log_max_age: Duration,
    /// The oldest log lines are deleted while all of them take more than this many bytes
    /// (text plus ~100 bytes of overhead per line), a stored chunk at a time.
    pub log_max_bytes: u64,
    /// Invocation records older than this are deleted.
    pub invocation_max_age: Duration,
    /// The oldest invocation records are deleted while all of them take more than this many
    /// bytes (encoded, about 60 each), a stored chunk at a time. Usage sums stay.
    pub invocation_max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            log_max_age: Duration::from_secs(7 * 86_400),
            log_max_bytes: 1 << 30,
            invocation_max_age: Duration::from_secs(90 * 86_400),
            invocation_max_bytes: 1 << 30,
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

/// A filter over invocation records.
#[derive(Debug, Clone, Default)]
pub struct InvocationQuery {
    /// Only this function.
    pub function: Option<String>,
    /// Only this request id.
    pub request_id: Option<String>,
    /// Only invocations started at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only failed ones.
    pub errors_only: bool,
    /// At most this many, newest first.
    pub limit: usize,
}

/// Summed usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Invocations.
    pub invocations: u64,
    /// Failed invocations.
    pub errors: u64,
    /// Cold starts.
    pub cold_starts: u64,
    /// Billed milliseconds.
    pub billed_ms: u64,
    /// Configured MiB x billed ms, summed (GB-seconds x 1,024,000).
    pub mb_ms: u64,
    /// Key-value keys and documents read.
    pub data_reads: u64,
    /// Key-value keys and documents written or deleted.
    pub data_writes: u64,
}

/// Data operations counted for one function in one minute (see
/// [`crate::TelemetryStore::record_data_usage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUsage {
    /// The project.
    pub project: String,
    /// The function (`""`: the HTTP APIs, called with a key, a user's token, or nothing).
    pub function: String,
    /// The minute (ms since the epoch / 60,000).
    pub minute: i64,
    /// Keys and documents read.
    pub reads: u64,
    /// Keys and documents written or deleted.
    pub writes: u64,
}

impl Usage {
    /// The usage of one invocation.
    pub fn of(i: &Invocation) -> Self {
        Self {
            invocations: 1,
            errors: u64::from(i.error.is_some()),
            cold_starts: u64::from(i.cold),
            billed_ms: i.billed_ms,
            mb_ms: i.memory_mb.saturating_mul(i.billed_ms),
            data_reads: 0,
            data_writes: 0,
        }
    }

    /// Adds `other` to this.
    pub fn add(&mut self, other: &Usage) {
        self.invocations += other.invocations;
        self.errors += other.errors;
        self.cold_starts += other.cold_starts;
        self.billed_ms += other.billed_ms;
        self.mb_ms += other.mb_ms;
        self.data_reads += other.data_reads;
        self.data_writes += other.data_writes;
    }

    /// GB-seconds (GiB of configured memory x seconds billed).
    pub fn gb_seconds(&self) -> f64 {
        self.mb_ms as f64 / 1_024_000.0
    }
}

/// What to sum.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    /// Only this function.
    pub function: Option<String>,
    /// From (inclusive, ms since the epoch).
    pub since_ms: i64,
    /// Until (exclusive, ms since the epoch).
    pub until_ms: i64,
    /// Also sum per bucket of this many ms (aligned to the epoch, so UTC hours and days).
    pub bucket_ms: Option<i64>,
}

/// Usage over a span: in all, per function, per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageSummary {
    /// The whole span.
    pub totals: Usage,
    /// Per function, most invocations first.
    pub functions: Vec<(String, Usage)>,
    /// Per bucket start, oldest first (empty without `bucket_ms`).
    pub buckets: Vec<(i64, Usage)>,
}

enum Msg {
    Line(LogRecord),
    /// Records are waiting in [`Pending`] (sent when the list stops being empty).
    Records,
    Flush(std::sync::mpsc::Sender<()>),
}

/// Invocation records waiting for the writer, apart from the line queue.
pub(crate) type Pending = Arc<Mutex<Vec<Invocation>>>;

/// Handle to the background writer of log lines and invocation records. Cloning shares the
/// same queue.
#[derive(Clone)]
pub(crate) struct LogWriter {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    records: Pending,
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
        let mut conn = conn;
        migrate::rows_to_chunks(&mut conn)?;
        let last: i64 = conn.query_row(
            "SELECT COALESCE(MAX(last_id), 0) FROM log_chunks",
            [],
            |r| r.get(0),
        )?;
        let bytes: i64 =
            conn.query_row("SELECT COALESCE(SUM(bytes), 0) FROM log_chunks", [], |r| {
                r.get(0)
            })?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let records = Pending::default();
        let mut writer = writer::Writer::new(conn, retention, bytes, records.clone());
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
            records,
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

    /// Queues an invocation record on the records' own list. Never blocks; drops it only past
    /// [`MAX_PENDING_RECORDS`] waiting.
    pub(crate) fn record(&self, invocation: Invocation) {
        let was_empty = {
            let mut records = crate::lock(&self.records);
            if records.len() >= MAX_PENDING_RECORDS {
                drop(records);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            records.push(invocation);
            records.len() == 1
        };
        // Wake the writer for the first record. If the line queue is full the wake-up is
        // lost, but then the writer is busy with a batch and empties the list into it anyway.
        if was_empty {
            let _ = self.tx.try_send(Msg::Records);
        }
    }

    /// Queues `msg`, counting it dropped if the queue is full.
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

/// How far a line's time may run behind the order of ids (ids and times are taken a moment
/// apart, on different threads), and how long before its request id's time a request may write
/// (none: the id is made when the request arrives).
pub(crate) const ID_TIME_SLACK_MS: i64 = 60_000;

/// The time a request id starts with (its first 12 hex digits, in ms), if it has one.
pub(crate) fn request_time_ms(id: &str) -> Option<i64> {
    i64::from_str_radix(id.get(..12)?, 16).ok()
}

#[cfg(test)]
mod tests;
