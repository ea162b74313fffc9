//! The writer thread: gathers what is queued into batches, stores each batch as chunks (one row
//! per function and kind) and per-minute usage sums, and applies retention.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use updraft_api::Invocation;

use super::{Msg, Pending, Retention, codec};
use crate::{LogRecord, now_ms};

/// How often the writer drains the queue while it gathers a batch.
const POLL: Duration = Duration::from_millis(10);
/// Most entries in one batch.
const BATCH: usize = 4096;
/// Chunks deleted per age-retention statement.
const TRIM_CHUNK: i64 = 1_000;
/// Bytes a stored line costs beyond its text, for the size budget.
pub(super) const LINE_OVERHEAD: i64 = 100;
/// How often age-based retention runs.
const AGE_TRIM_EVERY: Duration = Duration::from_secs(60);
/// Most bytes (by the size budget's measure) of lines in one chunk: retention by size deletes
/// a chunk at a time, so this is how finely it honours the budget.
const MAX_CHUNK_BYTES: i64 = 16 << 10;
/// Most records in one chunk: a query decodes whole chunks.
const MAX_CHUNK_RECORDS: usize = 512;
/// One minute, the granularity of the usage sums.
pub(super) const MINUTE_MS: i64 = 60_000;

pub(super) struct Writer {
    conn: Connection,
    retention: Retention,
    /// Bytes the stored lines take, by the size budget's measure.
    bytes: i64,
    /// When age-based retention last ran (never: at start).
    last_age_trim: Option<Instant>,
    /// Invocation records waiting, apart from the line queue; emptied into every batch.
    records: Pending,
    /// Bytes the stored invocation records take (encoded).
    record_bytes: i64,
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
            // The records themselves are taken from the list when the batch is written.
            Msg::Records => {}
            Msg::Flush(ack) => self.acks.push(ack),
        }
    }

    fn len(&self) -> usize {
        self.lines.len()
    }
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        retention: Retention,
        bytes: i64,
        records: Pending,
    ) -> Self {
        let record_bytes = conn
            .query_row(
                "SELECT COALESCE(SUM(length(records)), 0) FROM invocation_chunks",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        Self {
            conn,
            retention,
            bytes,
            last_age_trim: None,
            records,
            record_bytes,
        }
    }

    pub(super) fn run(&mut self, rx: &Receiver<Msg>) {
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
            let deadline = Instant::now() + super::FLUSH_INTERVAL;
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
            // Every record queued before a flush was asked for is in the list by now.
            std::mem::swap(&mut batch.invocations, &mut *crate::lock(&self.records));
            if batch.len() > 0 || !batch.invocations.is_empty() {
                match insert(&mut self.conn, &batch.lines, &batch.invocations) {
                    Ok(added) => {
                        self.bytes += added.line_bytes;
                        self.record_bytes += added.record_bytes;
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
    pub(super) fn trim(&mut self) {
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
        let budget = i64::try_from(self.retention.invocation_max_bytes).unwrap_or(i64::MAX);
        while self.record_bytes > budget {
            // The oldest chunk goes first, one at a time; the per-minute usage sums (which
            // usage, cost and quotas read) stay.
            let freed: Vec<i64> = self
                .conn
                .prepare_cached(
                    "DELETE FROM invocation_chunks WHERE id IN
                        (SELECT id FROM invocation_chunks ORDER BY last_ms, id LIMIT 1)
                     RETURNING length(records)",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if freed.is_empty() {
                self.record_bytes = 0;
                break;
            }
            self.record_bytes -= freed.iter().sum::<i64>();
        }
        let budget = i64::try_from(self.retention.log_max_bytes).unwrap_or(i64::MAX);
        while self.bytes > budget {
            let freed: Option<i64> = self
                .conn
                .prepare_cached(
                    "DELETE FROM log_chunks WHERE first_id =
                        (SELECT first_id FROM log_chunks ORDER BY first_id LIMIT 1)
                     RETURNING bytes",
                )?
                .query_map([], |r| r.get(0))?
                .next()
                .transpose()?;
            match freed {
                Some(n) => self.bytes -= n,
                None => {
                    self.bytes = 0;
                    break;
                }
            }
        }
        Ok(())
    }

    fn trim_age(&mut self) -> rusqlite::Result<()> {
        let cutoff = |age: Duration| now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        let logs = cutoff(self.retention.log_max_age);
        // A chunk goes when its newest line is past the age, in bounded statements.
        loop {
            let freed: Vec<i64> = self
                .conn
                .prepare_cached(
                    "DELETE FROM log_chunks WHERE first_id IN
                        (SELECT first_id FROM log_chunks WHERE last_ms < ?2 LIMIT ?1)
                     RETURNING bytes",
                )?
                .query_map(params![TRIM_CHUNK, logs], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            self.bytes -= freed.iter().sum::<i64>();
            if i64::try_from(freed.len()).unwrap_or(0) < TRIM_CHUNK {
                break;
            }
        }
        let records = cutoff(self.retention.invocation_max_age);
        self.conn.execute(
            "DELETE FROM invocation_chunks WHERE last_ms < ?1",
            params![records],
        )?;
        for table in ["usage_minutes", "data_minutes"] {
            self.conn.execute(
                &format!("DELETE FROM {table} WHERE minute < ?1"),
                params![records.div_euclid(MINUTE_MS)],
            )?;
        }
        Ok(())
    }
}

/// Per-minute usage sums of one function.
#[derive(Default)]
struct Sums {
    invocations: i64,
    errors: i64,
    cold: i64,
    billed_ms: i64,
    mb_ms: i64,
}

/// Stores a batch in one transaction: a chunk per function for its lines, one for its
/// records, and the records' usage sums. Returns the bytes the lines add to the size budget.
pub(super) fn insert(
    conn: &mut Connection,
    lines: &[LogRecord],
    invocations: &[Invocation],
) -> rusqlite::Result<Added> {
    let tx = conn.transaction()?;
    let mut added = 0;
    let mut record_bytes = 0;
    let mut by_function: BTreeMap<(&str, &str), Vec<&LogRecord>> = BTreeMap::new();
    for l in lines {
        by_function
            .entry((&l.project, &l.function))
            .or_default()
            .push(l);
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO log_chunks (first_id, last_id, project, function, first_ms, last_ms,
                 bytes, lines) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut blob = Vec::new();
        let chunks = by_function.into_iter().flat_map(|(key, group)| {
            // Split at MAX_CHUNK_BYTES.
            let mut parts: Vec<((&str, &str), Vec<&LogRecord>)> = Vec::new();
            let mut size = 0;
            for l in group {
                let n = i64::try_from(l.line.len()).unwrap_or(0) + LINE_OVERHEAD;
                if parts.is_empty() || size + n > MAX_CHUNK_BYTES {
                    parts.push((key, Vec::new()));
                    size = 0;
                }
                size += n;
                if let Some((_, p)) = parts.last_mut() {
                    p.push(l);
                }
            }
            parts
        });
        for ((project, function), group) in chunks {
            let first_id = group.iter().map(|l| l.id).min().unwrap_or(0);
            let last_id = group.iter().map(|l| l.id).max().unwrap_or(0);
            let first_ms = group.iter().map(|l| l.ts_ms).min().unwrap_or(0);
            let last_ms = group.iter().map(|l| l.ts_ms).max().unwrap_or(0);
            blob.clear();
            let mut bytes = 0;
            for l in &group {
                codec::put_line(&mut blob, l, first_id, first_ms);
                bytes += i64::try_from(l.line.len()).unwrap_or(0) + LINE_OVERHEAD;
            }
            stmt.execute(params![
                first_id, last_id, project, function, first_ms, last_ms, bytes, blob
            ])?;
            added += bytes;
        }
    }
    let mut records: BTreeMap<(&str, &str), Vec<&Invocation>> = BTreeMap::new();
    let mut sums: BTreeMap<(&str, &str, i64), Sums> = BTreeMap::new();
    let big = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for i in invocations {
        records
            .entry((&i.project, &i.function))
            .or_default()
            .push(i);
        let s = sums
            .entry((&i.project, &i.function, i.started_ms.div_euclid(MINUTE_MS)))
            .or_default();
        s.invocations += 1;
        s.errors += i64::from(i.error.is_some());
        s.cold += i64::from(i.cold);
        s.billed_ms += big(i.billed_ms);
        s.mb_ms += big(i.memory_mb).saturating_mul(big(i.billed_ms));
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO invocation_chunks (project, function, first_ms, last_ms, count, records)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut blob = Vec::new();
        let chunks = records.into_iter().flat_map(|(key, group)| {
            group
                .chunks(MAX_CHUNK_RECORDS)
                .map(|c| (key, c.to_vec()))
                .collect::<Vec<_>>()
        });
        for ((project, function), group) in chunks {
            let first_ms = group.iter().map(|i| i.started_ms).min().unwrap_or(0);
            let last_ms = group.iter().map(|i| i.started_ms).max().unwrap_or(0);
            blob.clear();
            for i in &group {
                codec::put_invocation(&mut blob, i, first_ms);
            }
            stmt.execute(params![
                project,
                function,
                first_ms,
                last_ms,
                i64::try_from(group.len()).unwrap_or(i64::MAX),
                blob
            ])?;
            record_bytes += i64::try_from(blob.len()).unwrap_or(i64::MAX);
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO usage_minutes (project, function, minute, invocations, errors,
                 cold_starts, billed_ms, mb_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (project, function, minute) DO UPDATE SET
                 invocations = invocations + excluded.invocations,
                 errors = errors + excluded.errors,
                 cold_starts = cold_starts + excluded.cold_starts,
                 billed_ms = billed_ms + excluded.billed_ms,
                 mb_ms = mb_ms + excluded.mb_ms",
        )?;
        for ((project, function, minute), s) in sums {
            stmt.execute(params![
                project,
                function,
                minute,
                s.invocations,
                s.errors,
                s.cold,
                s.billed_ms,
                s.mb_ms
            ])?;
        }
    }
    tx.commit()?;
    Ok(Added {
        line_bytes: added,
        record_bytes,
    })
}

/// What a batch added, by the size budgets' measures.
pub(super) struct Added {
    /// Lines' bytes (text plus [`LINE_OVERHEAD`] each).
    pub(super) line_bytes: i64,
    /// Encoded invocation records' bytes.
    pub(super) record_bytes: i64,
}
