//! Invocation log lines: queued by the request path, written in batches by one thread.
//!
//! [`LogWriter::write`] never blocks: it puts the line on a bounded queue and, if the queue is
//! full (the disk cannot keep up), drops the line and counts it. The writer thread commits what
//! it has at least every [`FLUSH_INTERVAL`], so a `kill -9` loses at most that much, and
//! [`LogWriter::flush`] (used at shutdown) waits until everything queued so far is on disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use crate::{Store, StoreError};

/// Longest time a queued line waits before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Lines kept in the database; older ones are deleted as new ones arrive.
pub const MAX_LOG_LINES: i64 = 1_000_000;
const QUEUE: usize = 64 * 1024;
/// How often the writer drains the queue while it gathers a batch.
const POLL: Duration = Duration::from_millis(10);
const BATCH: usize = 4096;

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

enum Msg {
    Line(LogRecord),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Handle to the background log writer. Cloning shares the same queue.
#[derive(Clone)]
pub struct LogWriter {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
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
    pub(crate) fn start(mut conn: Connection) -> Result<Self, StoreError> {
        // Log lines are not acknowledged writes: trade fsync per batch for throughput.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("updraft-logs".into())
            .spawn(move || run(&mut conn, &rx))
            .map_err(|source| StoreError::Io {
                path: "log writer thread".into(),
                source,
            })?;
        Ok(Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            _thread: Arc::new(WriterThread(Mutex::new(Some(handle)))),
        })
    }

    /// Queues a line. Never blocks; drops the line if the queue is full.
    pub fn write(&self, record: LogRecord) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Line(record))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every line queued before this call is committed.
    pub fn flush(&self) {
        let (ack_tx, ack_rx) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
    }
}

fn run(conn: &mut Connection, rx: &Receiver<Msg>) {
    let mut batch: Vec<LogRecord> = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    let mut since_trim = 0usize;
    loop {
        let mut disconnected = false;
        // Block for the first message only. After it, gather what arrives by draining the queue
        // every POLL until the batch is full, a flush is asked for, or the flush interval is up:
        // blocking per message would wake this thread for every line written, which costs the
        // request path a context switch per line.
        match rx.recv() {
            Ok(Msg::Line(r)) => batch.push(r),
            Ok(Msg::Flush(ack)) => acks.push(ack),
            Err(_) => disconnected = true,
        }
        let deadline = Instant::now() + FLUSH_INTERVAL;
        while !disconnected && acks.is_empty() && batch.len() < BATCH {
            match rx.try_recv() {
                Ok(Msg::Line(r)) => batch.push(r),
                Ok(Msg::Flush(ack)) => acks.push(ack),
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
        if !batch.is_empty() {
            since_trim += batch.len();
            if let Err(e) = insert(conn, &batch) {
                tracing::warn!(error = %e, lines = batch.len(), "could not store log lines");
            }
            batch.clear();
            if since_trim >= 10_000 {
                since_trim = 0;
                if let Err(e) = conn.execute(
                    "DELETE FROM logs WHERE id <= (SELECT MAX(id) FROM logs) - ?1",
                    params![MAX_LOG_LINES],
                ) {
                    tracing::warn!(error = %e, "could not trim old log lines");
                }
            }
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        if disconnected {
            return;
        }
    }
}

fn insert(conn: &mut Connection, batch: &[LogRecord]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO logs (project, function, request_id, ts_ms, stream, line)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in batch {
            stmt.execute(params![
                r.project,
                r.function,
                r.request_id,
                r.ts_ms,
                r.stream,
                r.line
            ])?;
        }
    }
    tx.commit()
}

impl Store {
    /// Stored log lines of `project` matching `q`, oldest first.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn query_logs(&self, project: &str, q: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let limit = i64::try_from(q.limit.clamp(1, 10_000)).unwrap_or(10_000);
        self.with_conn(|c| {
            // Newest `limit` lines matching, then put back in order. With `after_id`, the
            // oldest `limit` lines after it (paging forward / following).
            let order = if q.after_id.is_some() { "ASC" } else { "DESC" };
            let sql = format!(
                "SELECT id, project, function, request_id, ts_ms, stream, line FROM logs
                 WHERE project = ?1
                   AND (?2 IS NULL OR function = ?2)
                   AND (?3 IS NULL OR request_id = ?3)
                   AND (?4 IS NULL OR ts_ms >= ?4)
                   AND (?5 IS NULL OR id > ?5)
                 ORDER BY id {order} LIMIT ?6"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![
                    project,
                    q.function,
                    q.request_id,
                    q.since_ms,
                    q.after_id,
                    limit
                ],
                |r| {
                    Ok(LogRecord {
                        id: r.get(0)?,
                        project: r.get(1)?,
                        function: r.get(2)?,
                        request_id: r.get(3)?,
                        ts_ms: r.get(4)?,
                        stream: r.get(5)?,
                        line: r.get(6)?,
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

#[cfg(test)]
mod tests;
