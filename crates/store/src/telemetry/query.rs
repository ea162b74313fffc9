//! Reading chunks back: log lines, invocation records and usage sums.
//!
//! A query selects the chunks its bounds allow (function, id or time), decodes them newest or
//! oldest first, and stops once no further chunk can hold an entry better than the ones it has.
//! Usage sums whole minutes from `usage_minutes` and decodes only the records of the partial
//! minutes at either end of the span, so it is exact to the millisecond.

use std::collections::BTreeMap;

use rusqlite::params;
use updraft_api::Invocation;

use super::codec::{self, Reader};
use super::writer::MINUTE_MS;
use super::{ID_TIME_SLACK_MS, request_time_ms};
use crate::{
    InvocationQuery, LogQuery, LogRecord, Store, StoreError, Usage, UsageQuery, UsageSummary,
};

/// The oldest time `age` keeps.
fn cutoff(age: std::time::Duration) -> i64 {
    crate::now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

/// Most lines or records one query returns.
const MAX_LIMIT: usize = 10_000;

impl Store {
    /// Stored log lines of `project` matching `q`, oldest first: the newest `limit`, or with
    /// `after_id` the oldest `limit` after it.
    pub(crate) fn query_logs(
        &self,
        project: &str,
        q: &LogQuery,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let limit = q.limit.clamp(1, MAX_LIMIT);
        // A time bound, from `since` or from the time a request id starts with, selects chunks
        // by their newest line (with slack: ids and times are taken a moment apart).
        let from_ms = [
            q.since_ms,
            q.request_id.as_deref().and_then(request_time_ms),
        ]
        .into_iter()
        .flatten()
        .max()
        .map_or(i64::MIN, |ms| ms.saturating_sub(ID_TIME_SLACK_MS));
        let after = q.after_id.unwrap_or(i64::MIN);
        let ascending = q.after_id.is_some();
        let kept_from = cutoff(self.retention().log_max_age);
        self.with_conn(|c| {
            let sql = format!(
                "SELECT first_id, last_id, function, first_ms, lines FROM log_chunks
                 WHERE project = ?1 AND (?2 IS NULL OR function = ?2)
                   AND last_id > ?3 AND last_ms >= ?4
                 ORDER BY {}",
                if ascending {
                    "first_id ASC"
                } else {
                    "last_id DESC"
                }
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![project, q.function, after, from_ms])?;
            let mut out: Vec<LogRecord> = Vec::new();
            while let Some(row) = rows.next()? {
                let (first_id, last_id): (i64, i64) = (row.get(0)?, row.get(1)?);
                // Once `limit` lines are kept, a chunk entirely past the worst of them cannot
                // improve on them, and neither can any later one.
                if out.len() >= limit {
                    out.sort_by_key(|r| if ascending { r.id } else { -r.id });
                    out.truncate(limit);
                    let worst = out.last().map_or(0, |r| r.id);
                    if (ascending && first_id > worst) || (!ascending && last_id < worst) {
                        break;
                    }
                }
                let function: String = row.get(2)?;
                let first_ms: i64 = row.get(3)?;
                let blob = row.get_ref(4)?.as_blob()?;
                let mut r = Reader::new(blob);
                while !r.done() {
                    let line = codec::get_line(&mut r, (project, &function), first_id, first_ms)?;
                    if q.matches(&line) && line.ts_ms >= kept_from {
                        out.push(line);
                    }
                }
            }
            out.sort_by_key(|r| if ascending { r.id } else { -r.id });
            out.truncate(limit);
            if !ascending {
                out.reverse();
            }
            Ok(out)
        })
    }

    /// Invocation records of `project` matching `q`, newest first (by start, then by when they
    /// were stored).
    pub(crate) fn invocations(
        &self,
        project: &str,
        q: &InvocationQuery,
    ) -> Result<Vec<Invocation>, StoreError> {
        let limit = q.limit.clamp(1, MAX_LIMIT);
        // A request id starts with its time in ms (12 hex digits); its invocation was admitted
        // after that and within the longest queue wait plus slack.
        let window = q
            .request_id
            .as_deref()
            .and_then(request_time_ms)
            .map(|ms| (ms - 60_000, ms + 60 * 60_000));
        let from = [q.since_ms, window.map(|w| w.0)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(i64::MIN);
        let until = window.map_or(i64::MAX, |w| w.1);
        let kept_from = cutoff(self.retention().invocation_max_age);
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, function, first_ms, last_ms, records FROM invocation_chunks
                 WHERE project = ?1 AND (?2 IS NULL OR function = ?2)
                   AND last_ms >= ?3 AND first_ms <= ?4
                 ORDER BY last_ms DESC",
            )?;
            let mut rows = stmt.query(params![project, q.function, from, until])?;
            // (started_ms, chunk, index): the order records were stored in breaks ties.
            let mut out: Vec<((i64, i64, usize), Invocation)> = Vec::new();
            let key = |e: &((i64, i64, usize), Invocation)| std::cmp::Reverse(e.0);
            while let Some(row) = rows.next()? {
                let chunk: i64 = row.get(0)?;
                let function: String = row.get(1)?;
                let first_ms: i64 = row.get(2)?;
                let last_ms: i64 = row.get(3)?;
                // Once `limit` records are kept, a chunk whose newest record started before the
                // oldest of them cannot improve on them, and neither can any later one.
                if out.len() >= limit {
                    out.sort_by_key(key);
                    out.truncate(limit);
                    if last_ms < out.last().map_or(i64::MIN, |e| e.0.0) {
                        break;
                    }
                }
                let blob = row.get_ref(4)?.as_blob()?;
                let mut r = Reader::new(blob);
                let mut index = 0;
                while !r.done() {
                    let inv = codec::get_invocation(&mut r, (project, &function), first_ms)?;
                    index += 1;
                    let wanted = q.request_id.as_ref().is_none_or(|id| *id == inv.request_id)
                        && q.since_ms.is_none_or(|s| inv.started_ms >= s)
                        && (!q.errors_only || inv.error.is_some())
                        && inv.started_ms >= kept_from;
                    if wanted {
                        out.push(((inv.started_ms, chunk, index), inv));
                    }
                }
            }
            out.sort_by_key(key);
            out.truncate(limit);
            Ok(out.into_iter().map(|(_, i)| i).collect())
        })
    }

    /// Usage of `project` over `q`'s span (`[since_ms, until_ms)`, by start time). Buckets
    /// should be whole minutes (hours and days are).
    pub(crate) fn usage(&self, project: &str, q: &UsageQuery) -> Result<UsageSummary, StoreError> {
        let (lo, hi) = (q.since_ms, q.until_ms.max(q.since_ms));
        // Whole minutes [ml, mh) come from the sums; the partial minutes at either end from
        // the records themselves.
        let ml = lo.div_euclid(MINUTE_MS) + i64::from(lo.rem_euclid(MINUTE_MS) != 0);
        let mh = hi.div_euclid(MINUTE_MS);
        let bucket = |ms: i64| q.bucket_ms.map(|b| ms.div_euclid(b.max(1)) * b.max(1));
        let mut totals = Usage::default();
        let mut functions: BTreeMap<String, Usage> = BTreeMap::new();
        let mut buckets: BTreeMap<i64, Usage> = BTreeMap::new();
        let mut data: Vec<(String, i64, Usage)> = Vec::new();
        let mut add = |function: &str, at_ms: i64, u: Usage| {
            totals.add(&u);
            functions.entry(function.to_owned()).or_default().add(&u);
            if let Some(b) = bucket(at_ms) {
                buckets.entry(b).or_default().add(&u);
            }
        };
        self.with_conn(|c| {
            if ml < mh {
                let mut stmt = c.prepare_cached(
                    "SELECT function, minute, invocations, errors, cold_starts, billed_ms, mb_ms
                     FROM usage_minutes
                     WHERE project = ?1 AND (?2 IS NULL OR function = ?2)
                       AND minute >= ?3 AND minute < ?4",
                )?;
                let mut rows = stmt.query(params![project, q.function, ml, mh])?;
                while let Some(r) = rows.next()? {
                    let n = |i: usize| -> rusqlite::Result<u64> {
                        Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
                    };
                    let function: String = r.get(0)?;
                    let minute: i64 = r.get(1)?;
                    let u = Usage {
                        invocations: n(2)?,
                        errors: n(3)?,
                        cold_starts: n(4)?,
                        billed_ms: n(5)?,
                        mb_ms: n(6)?,
                        ..Usage::default()
                    };
                    add(&function, minute * MINUTE_MS, u);
                }
            }
            // Data operations are counted per minute: every minute the span touches.
            let mut stmt = c.prepare_cached(
                "SELECT function, minute, reads, writes FROM data_minutes
                 WHERE project = ?1 AND (?2 IS NULL OR function = ?2)
                   AND minute >= ?3 AND minute <= ?4",
            )?;
            let last = (hi - 1).max(lo).div_euclid(MINUTE_MS);
            let mut rows =
                stmt.query(params![project, q.function, lo.div_euclid(MINUTE_MS), last])?;
            while let Some(r) = rows.next()? {
                let function: String = r.get(0)?;
                let minute: i64 = r.get(1)?;
                let n = |i: usize| -> rusqlite::Result<u64> {
                    Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
                };
                let u = Usage {
                    data_reads: n(2)?,
                    data_writes: n(3)?,
                    ..Usage::default()
                };
                data.push((function, minute * MINUTE_MS, u));
            }
            let edges = if ml > mh {
                vec![(lo, hi)]
            } else {
                vec![(lo, ml * MINUTE_MS), (mh * MINUTE_MS, hi)]
            };
            let mut stmt = c.prepare_cached(
                "SELECT function, first_ms, records FROM invocation_chunks
                 WHERE project = ?1 AND (?2 IS NULL OR function = ?2)
                   AND last_ms >= ?3 AND first_ms < ?4",
            )?;
            for (start, end) in edges.into_iter().filter(|(s, e)| s < e) {
                let mut rows = stmt.query(params![project, q.function, start, end])?;
                while let Some(row) = rows.next()? {
                    let function: String = row.get(0)?;
                    let first_ms: i64 = row.get(1)?;
                    let mut r = Reader::new(row.get_ref(2)?.as_blob()?);
                    while !r.done() {
                        let i = codec::get_invocation(&mut r, (project, &function), first_ms)?;
                        if (start..end).contains(&i.started_ms) {
                            add(&function, i.started_ms, Usage::of(&i));
                        }
                    }
                }
            }
            Ok(())
        })?;
        // The HTTP APIs' own (`""`) count in the totals and buckets, not as a function.
        for (function, at_ms, u) in data {
            totals.add(&u);
            if !function.is_empty() {
                functions.entry(function).or_default().add(&u);
            }
            if let Some(b) = bucket(at_ms) {
                buckets.entry(b).or_default().add(&u);
            }
        }
        let mut functions: Vec<(String, Usage)> = functions.into_iter().collect();
        functions.sort_by(|a, b| {
            b.1.invocations
                .cmp(&a.1.invocations)
                .then_with(|| a.0.cmp(&b.0))
        });
        Ok(UsageSummary {
            totals,
            functions,
            buckets: buckets.into_iter().collect(),
        })
    }
}
