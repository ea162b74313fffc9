//! Schedules: a cron expression in a time zone, or a fixed rate, and the slots they name.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use croner::Cron;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::units::{format_duration, parse_duration};

/// Shortest `rate` a schedule may have.
pub const MIN_RATE: Duration = Duration::from_secs(1);

/// When a schedule fires. Slots are whole milliseconds since the Unix epoch.
#[derive(Clone)]
pub enum Schedule {
    /// `cron = "*/5 * * * *"` (five fields, or six with seconds first), evaluated in `timezone`
    /// (default UTC; daylight-saving gaps and repeats are resolved the way croner does: a slot
    /// in a gap fires once at the gap's end, a repeated hour fires once).
    Cron {
        /// The parsed expression.
        cron: Box<Cron>,
        /// The expression as written.
        text: String,
        /// The IANA time zone it is evaluated in.
        timezone: TimeZone,
        /// The time zone's name as written (`UTC` when none was).
        timezone_name: String,
    },
    /// `rate = "30s"`: every multiple of the rate since the Unix epoch (so slots are the same
    /// across restarts and redeploys).
    Rate(Duration),
}

impl Schedule {
    /// A cron schedule.
    ///
    /// # Errors
    /// A message naming what is wrong with the expression or the time zone.
    pub fn cron(text: &str, timezone: Option<&str>) -> Result<Self, String> {
        let fields = text.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(format!(
                "`{text}` is not a cron expression: it has {fields} fields; use 5 (minute hour \
                 day-of-month month day-of-week) or 6 (seconds first)"
            ));
        }
        let cron = Cron::from_str(text)
            .map_err(|e| format!("`{text}` is not a valid cron expression: {e}"))?;
        let (timezone, timezone_name) = match timezone {
            None => (TimeZone::UTC, "UTC".to_owned()),
            Some(name) => (
                TimeZone::get(name).map_err(|_| {
                    format!("`{name}` is not an IANA time zone (e.g. Europe/Berlin)")
                })?,
                name.to_owned(),
            ),
        };
        let schedule = Schedule::Cron {
            cron: Box::new(cron),
            text: text.to_owned(),
            timezone,
            timezone_name,
        };
        if schedule.next_after(0).is_none() {
            return Err(format!("`{text}` never fires"));
        }
        Ok(schedule)
    }

    /// A rate schedule from text like `30s`.
    ///
    /// # Errors
    /// A message when the text is not a duration or is shorter than [`MIN_RATE`].
    pub fn rate(text: &str) -> Result<Self, String> {
        let d = parse_duration(text)?;
        if d < MIN_RATE || d.subsec_nanos() != 0 {
            return Err(format!(
                "rate must be at least {} and a whole number of seconds",
                format_duration(MIN_RATE)
            ));
        }
        Ok(Schedule::Rate(d))
    }

    /// The first slot strictly after `after_ms`, or `None` if there is none.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::Rate(d) => {
                let r = i64::try_from(d.as_millis()).ok()?.max(1);
                after_ms.div_euclid(r).checked_add(1)?.checked_mul(r)
            }
            Schedule::Cron { cron, timezone, .. } => {
                let ts = Timestamp::from_millisecond(after_ms).ok()?;
                let zoned = ts.to_zoned(timezone.clone());
                let next = cron.find_next_occurrence(&zoned, false).ok()?;
                Some(next.timestamp().as_millisecond())
            }
        }
    }

    /// The slots in `(after_ms, until_ms]`: how many there are (counting stops at `cap`) and
    /// the latest one.
    pub fn due(&self, after_ms: i64, until_ms: i64, cap: u64) -> (u64, Option<i64>) {
        if let Schedule::Rate(d) = self {
            let r = i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1);
            let first = after_ms.div_euclid(r) + 1;
            let last = until_ms.div_euclid(r);
            if last < first {
                return (0, None);
            }
            let n = u64::try_from(last - first + 1).unwrap_or(u64::MAX);
            return (n.min(cap), Some(last * r));
        }
        let mut n = 0;
        let mut at = after_ms;
        let mut latest = None;
        while let Some(next) = self.next_after(at) {
            if next > until_ms {
                break;
            }
            n += 1;
            latest = Some(next);
            at = next;
            if n >= cap {
                // Too many to count one by one: jump to the last slot before `until_ms`.
                if let Schedule::Cron { cron, timezone, .. } = self
                    && let Ok(ts) = Timestamp::from_millisecond(until_ms)
                    && let Ok(prev) =
                        cron.find_previous_occurrence(&ts.to_zoned(timezone.clone()), true)
                {
                    latest = Some(prev.timestamp().as_millisecond());
                }
                break;
            }
        }
        (n, latest)
    }

    /// A stable text naming the schedule (`cron:*/5 * * * *@Europe/Berlin`, `rate:30s`): a
    /// schedule's last fired slot is kept under it, so changing the schedule starts it afresh.
    pub fn key(&self) -> String {
        match self {
            Schedule::Cron {
                text,
                timezone_name,
                ..
            } => format!("cron:{text}@{timezone_name}"),
            Schedule::Rate(d) => format!("rate:{}", format_duration(*d)),
        }
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron {
                text,
                timezone_name,
                ..
            } => write!(f, "cron \"{text}\" ({timezone_name})"),
            Schedule::Rate(d) => write!(f, "rate {}", format_duration(*d)),
        }
    }
}

#[cfg(test)]
mod tests;
