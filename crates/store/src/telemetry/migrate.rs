//! Converting a data directory's telemetry from rows (one per line and record, before chunks)
//! to chunks, once, when the log writer starts.
//!
//! Rows are converted in batches, each batch's chunks written and its rows deleted in one
//! transaction, so a crash midway leaves every row either converted or not, never both; the
//! next start finishes the job. Then the old tables are dropped.

use rusqlite::{Connection, OptionalExtension, params};
use updraft_api::{ErrorClass, Invocation, Trigger};

use super::writer::insert;
use crate::{LogRecord, StoreError};

/// Rows converted per transaction.
const BATCH: i64 = 10_000;

pub(super) fn rows_to_chunks(conn: &mut Connection) -> Result<(), StoreError> {
    let has = |conn: &Connection, table: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            params![table],
            |_| Ok(()),
        )
        .optional()
        .map(|r| r.is_some())
    };
    if has(conn, "logs")? {
        let mut converted = 0usize;
        loop {
            let lines: Vec<LogRecord> = conn
                .prepare(
                    "SELECT id, project, function, version, request_id, ts_ms, stream, line
                     FROM logs ORDER BY id LIMIT ?1",
                )?
                .query_map(params![BATCH], |r| {
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
                })?
                .collect::<Result<_, _>>()?;
            let Some(last) = lines.last().map(|l| l.id) else {
                break;
            };
            insert(conn, &lines, &[])?;
            conn.execute("DELETE FROM logs WHERE id <= ?1", params![last])?;
            converted += lines.len();
        }
        conn.execute_batch("DROP TABLE logs;")?;
        if converted > 0 {
            tracing::info!(lines = converted, "log lines converted to chunks");
        }
    }
    if has(conn, "invocations")? {
        let mut converted = 0usize;
        loop {
            let rows: Vec<(i64, Invocation)> = conn
                .prepare(
                    "SELECT rowid, request_id, project, function, version, trigger, started_ms,
                            duration_us, billed_ms, memory_mb, peak_memory, cold, status, error,
                            trace_id
                     FROM invocations ORDER BY rowid LIMIT ?1",
                )?
                .query_map(params![BATCH], |r| {
                    let u = |i: usize| -> rusqlite::Result<u64> {
                        Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
                    };
                    let trigger: String = r.get(5)?;
                    let error: Option<String> = r.get(13)?;
                    let (memory_mb, billed_ms) = (u(9)?, u(8)?);
                    Ok((
                        r.get(0)?,
                        Invocation {
                            request_id: r.get(1)?,
                            project: r.get(2)?,
                            function: r.get(3)?,
                            version: r.get(4)?,
                            trigger: Trigger::parse(&trigger).unwrap_or(Trigger::Http),
                            started_ms: r.get(6)?,
                            duration_us: u(7)?,
                            billed_ms,
                            memory_mb,
                            peak_memory_bytes: u(10)?,
                            gb_seconds: Invocation::gb_seconds(memory_mb, billed_ms),
                            cold: r.get(11)?,
                            status: r.get(12)?,
                            error: error.as_deref().and_then(ErrorClass::parse),
                            trace_id: r.get(14)?,
                        },
                    ))
                })?
                .collect::<Result<_, _>>()?;
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            let records: Vec<Invocation> = rows.into_iter().map(|r| r.1).collect();
            insert(conn, &[], &records)?;
            conn.execute("DELETE FROM invocations WHERE rowid <= ?1", params![last])?;
            converted += records.len();
        }
        conn.execute_batch("DROP TABLE invocations;")?;
        if converted > 0 {
            tracing::info!(
                records = converted,
                "invocation records converted to chunks"
            );
        }
    }
    Ok(())
}
