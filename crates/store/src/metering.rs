//! Queries over invocation records: listing them, and usage figures summed per function and
//! per hour or day (what `updraft usage`, cost estimates and quotas are computed from).
//!
//! GB-seconds are summed exactly, as integer MiB-milliseconds, and converted once.

use rusqlite::params;
use updraft_api::{ErrorClass, Invocation, Trigger};

use crate::{Store, StoreError};

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
}

impl Usage {
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

const SUMS: &str = "COUNT(*), COALESCE(SUM(error IS NOT NULL), 0), COALESCE(SUM(cold), 0),
     COALESCE(SUM(billed_ms), 0), COALESCE(SUM(memory_mb * billed_ms), 0)";

fn usage_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Usage> {
    let n = |i: usize| -> rusqlite::Result<u64> {
        Ok(u64::try_from(r.get::<_, i64>(first + i)?).unwrap_or(0))
    };
    Ok(Usage {
        invocations: n(0)?,
        errors: n(1)?,
        cold_starts: n(2)?,
        billed_ms: n(3)?,
        mb_ms: n(4)?,
    })
}

impl Store {
    /// Invocation records of `project` matching `q`, newest first.
    ///
    /// # Errors
    /// SQLite errors; [`StoreError::Corrupt`] for a row with an unknown trigger.
    pub(crate) fn invocations(
        &self,
        project: &str,
        q: &InvocationQuery,
    ) -> Result<Vec<Invocation>, StoreError> {
        let limit = i64::try_from(q.limit.clamp(1, 10_000)).unwrap_or(10_000);
        // A request id starts with its time in ms (12 hex digits); its invocation was admitted
        // after that and within the longest queue wait plus slack, so the time index finds it.
        let window = q
            .request_id
            .as_deref()
            .and_then(crate::logs::request_time_ms)
            .map(|ms| (ms - 60_000, ms + 60 * 60_000));
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT request_id, project, function, version, trigger, started_ms, duration_us,
                        billed_ms, memory_mb, peak_memory, cold, status, error, trace_id
                 FROM invocations
                 WHERE project = ?1
                   AND (?2 IS NULL OR function = ?2)
                   AND (?3 IS NULL OR request_id = ?3)
                   AND (?4 IS NULL OR started_ms >= ?4)
                   AND (?7 IS NULL OR started_ms BETWEEN ?7 AND ?8)
                   AND (NOT ?5 OR error IS NOT NULL)
                 ORDER BY started_ms DESC, rowid DESC LIMIT ?6",
            )?;
            let rows = stmt.query_map(
                params![
                    project,
                    q.function,
                    q.request_id,
                    q.since_ms,
                    q.errors_only,
                    limit,
                    window.map(|w| w.0),
                    window.map(|w| w.1),
                ],
                |r| {
                    let u = |i: usize| -> rusqlite::Result<u64> {
                        Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
                    };
                    let trigger: String = r.get(4)?;
                    let error: Option<String> = r.get(12)?;
                    let memory_mb = u(8)?;
                    let billed_ms = u(7)?;
                    Ok((
                        Invocation {
                            request_id: r.get(0)?,
                            project: r.get(1)?,
                            function: r.get(2)?,
                            version: r.get(3)?,
                            trigger: Trigger::Http,
                            started_ms: r.get(5)?,
                            duration_us: u(6)?,
                            billed_ms,
                            memory_mb,
                            peak_memory_bytes: u(9)?,
                            gb_seconds: Invocation::gb_seconds(memory_mb, billed_ms),
                            cold: r.get(10)?,
                            status: r.get(11)?,
                            error: None,
                            trace_id: r.get(13)?,
                        },
                        trigger,
                        error,
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (mut inv, trigger, error) = row?;
                inv.trigger = Trigger::parse(&trigger)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown trigger `{trigger}`")))?;
                inv.error = match error {
                    None => None,
                    Some(e) => Some(ErrorClass::parse(&e).ok_or_else(|| {
                        StoreError::Corrupt(format!("unknown error class `{e}`"))
                    })?),
                };
                out.push(inv);
            }
            Ok(out)
        })
    }

    /// Usage of `project` over `q`'s span.
    ///
    /// # Errors
    /// SQLite errors.
    pub(crate) fn usage(&self, project: &str, q: &UsageQuery) -> Result<UsageSummary, StoreError> {
        self.with_conn(|c| {
            let filter = "FROM invocations WHERE project = ?1 AND (?2 IS NULL OR function = ?2)
                 AND started_ms >= ?3 AND started_ms < ?4";
            let args = params![project, q.function, q.since_ms, q.until_ms];
            let totals = c
                .prepare_cached(&format!("SELECT {SUMS} {filter}"))?
                .query_row(args, |r| usage_at(r, 0))?;
            let functions = c
                .prepare_cached(&format!(
                    "SELECT function, {SUMS} {filter} GROUP BY function
                     ORDER BY COUNT(*) DESC, function"
                ))?
                .query_map(args, |r| Ok((r.get(0)?, usage_at(r, 1)?)))?
                .collect::<Result<_, _>>()?;
            let buckets = match q.bucket_ms {
                None => Vec::new(),
                Some(size) => c
                    .prepare_cached(&format!(
                        "SELECT (started_ms / ?5) * ?5 AS bucket, {SUMS} {filter}
                         GROUP BY bucket ORDER BY bucket"
                    ))?
                    .query_map(
                        params![project, q.function, q.since_ms, q.until_ms, size.max(1)],
                        |r| Ok((r.get(0)?, usage_at(r, 1)?)),
                    )?
                    .collect::<Result<_, _>>()?,
            };
            Ok(UsageSummary {
                totals,
                functions,
                buckets,
            })
        })
    }
}

#[cfg(test)]
mod tests;
