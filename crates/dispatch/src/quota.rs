//! Usage quotas: invocations or GB-seconds per UTC day or month, for a function or a whole
//! project. A request over a quota is refused with 429 `quota_exceeded` naming it.
//!
//! Invocation quotas are counted at admission, so concurrent requests cannot overshoot them: the
//! request that would make the count pass the limit is refused. GB-seconds are only known when
//! an invocation ends, so a GB-second quota refuses requests once the count has reached the
//! limit and can be overshot by the invocations in flight when it did. Counts start from what
//! the invocation records say when the server starts ([`Quota::new`]'s `used`).

use std::fmt::Write as _;
use std::sync::Mutex;

use updraft_api::QuotaStatus;
use updraft_manifest::{QuotaMetric, QuotaPeriod};

use crate::lock;

const DAY_MS: i64 = 86_400_000;

/// What a quota applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaScope {
    /// One function.
    Function,
    /// Every function of a project.
    Project,
}

impl QuotaScope {
    /// `function` or `project`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaScope::Function => "function",
            QuotaScope::Project => "project",
        }
    }
}

/// One quota and its count for the current period.
pub struct Quota {
    /// Function or project.
    pub scope: QuotaScope,
    /// The function's or project's name.
    pub name: String,
    /// What it counts.
    pub metric: QuotaMetric,
    /// When it resets.
    pub period: QuotaPeriod,
    state: Mutex<State>,
}

struct State {
    limit: u64,
    /// The current period, `[start, end)` in ms since the epoch.
    start_ms: i64,
    end_ms: i64,
    used: f64,
}

impl State {
    /// Starts a new period if the current one is over.
    fn roll(&mut self, period: QuotaPeriod, now_ms: i64) {
        if now_ms >= self.end_ms || now_ms < self.start_ms {
            (self.start_ms, self.end_ms) = period_bounds(period, now_ms);
            self.used = 0.0;
        }
    }
}

impl Quota {
    /// A quota of `limit` per `period`, of which `used` is used in the period containing
    /// `now_ms`.
    pub fn new(
        scope: QuotaScope,
        name: &str,
        metric: QuotaMetric,
        period: QuotaPeriod,
        limit: u64,
        used: f64,
        now_ms: i64,
    ) -> Self {
        let (start_ms, end_ms) = period_bounds(period, now_ms);
        Self {
            scope,
            name: name.to_owned(),
            metric,
            period,
            state: Mutex::new(State {
                limit,
                start_ms,
                end_ms,
                used,
            }),
        }
    }

    /// Changes the limit (a redeploy changed it), keeping the count.
    pub fn set_limit(&self, limit: u64) {
        lock(&self.state).limit = limit;
    }

    /// Admits one request at `now_ms`, counting it if this quota counts invocations.
    ///
    /// # Errors
    /// When it is used up: a message naming the quota, and when its window ends (Unix ms).
    pub(crate) fn admit(&self, now_ms: i64) -> Result<(), (String, i64)> {
        let mut s = lock(&self.state);
        s.roll(self.period, now_ms);
        let limit = s.limit as f64;
        let over = match self.metric {
            QuotaMetric::Invocations => s.used + 1.0 > limit,
            QuotaMetric::GbSeconds => s.used >= limit,
        };
        if over {
            let message = format!(
                "quota exceeded: {} `{}` may use {} {} per {} (UTC); {} used, resets at {}",
                self.scope.as_str(),
                self.name,
                s.limit,
                match self.metric {
                    QuotaMetric::Invocations => "invocations",
                    QuotaMetric::GbSeconds => "GB-seconds",
                },
                self.period.as_str(),
                format_used(s.used),
                rfc3339(s.end_ms),
            );
            return Err((message, s.end_ms));
        }
        if self.metric == QuotaMetric::Invocations {
            s.used += 1.0;
        }
        Ok(())
    }

    /// Takes back an admission whose request did not run after all (throttled).
    pub(crate) fn release(&self) {
        if self.metric == QuotaMetric::Invocations {
            let mut s = lock(&self.state);
            s.used = (s.used - 1.0).max(0.0);
        }
    }

    /// Counts the GB-seconds of an invocation that started at `started_ms`.
    pub(crate) fn charge(&self, gb_seconds: f64, started_ms: i64) {
        if self.metric == QuotaMetric::GbSeconds {
            let mut s = lock(&self.state);
            let at = started_ms.max(s.start_ms);
            s.roll(self.period, at);
            if started_ms >= s.start_ms {
                s.used += gb_seconds;
            }
        }
    }

    /// The quota's state at `now_ms`, for the usage API.
    pub fn status(&self, now_ms: i64) -> QuotaStatus {
        let mut s = lock(&self.state);
        s.roll(self.period, now_ms);
        let limit = s.limit as f64;
        QuotaStatus {
            scope: self.scope.as_str().to_owned(),
            name: self.name.clone(),
            metric: self.metric.as_str().to_owned(),
            period: self.period.as_str().to_owned(),
            limit,
            used: s.used,
            resets_at_ms: s.end_ms,
            exceeded: match self.metric {
                QuotaMetric::Invocations => s.used >= limit,
                QuotaMetric::GbSeconds => s.used >= limit,
            },
        }
    }
}

fn format_used(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// The UTC day or month containing `ms`, as `[start, end)` in ms since the epoch.
pub fn period_bounds(period: QuotaPeriod, ms: i64) -> (i64, i64) {
    let day = ms.div_euclid(DAY_MS);
    match period {
        QuotaPeriod::Day => (day * DAY_MS, (day + 1) * DAY_MS),
        QuotaPeriod::Month => {
            let (y, m, _) = civil_from_days(day);
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (
                days_from_civil(y, m, 1) * DAY_MS,
                days_from_civil(ny, nm, 1) * DAY_MS,
            )
        }
    }
}

/// `2026-11-24T00:00:00Z` for a time in ms since the epoch.
pub fn rfc3339(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    let secs = ms.rem_euclid(DAY_MS) / 1000;
    let mut out = String::new();
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    out
}

/// Year, month, day of a day number since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Day number since 1970-01-01 of a date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests;
