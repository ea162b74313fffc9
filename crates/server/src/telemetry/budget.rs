//! Per-function log budgets: at most `max_lines_per_second` lines (platform lines included) a
//! second per function, so one function flooding its log can't crowd its neighbours' lines out
//! of the shared writer queue, nor a flood of throttled requests the log with platform lines.
//! What is dropped is said once the second is over, in one platform line.
//!
//! Lines are counted with atomics, under a read lock taken only to find the function: a flooding
//! guest on a low-priority thread (see the engine's long runs) must never hold a lock another
//! function's line waits for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Default of `[logs] max_lines_per_second`.
pub(crate) const DEFAULT_MAX_LINES_PER_SECOND: u32 = 1_000;

pub(crate) struct LineBudget {
    per_second: u32,
    /// By project, then function (looked up by `&str`: no allocation per line). Written only
    /// when a function logs for the first time.
    windows: RwLock<HashMap<String, HashMap<String, Arc<Window>>>>,
}

/// One function's current second: the second (high 32 bits) and the lines used in it (low 32
/// bits), and the lines dropped since the last notice.
#[derive(Default)]
struct Window {
    state: AtomicU64,
    dropped: AtomicU64,
}

/// What to do with a line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write it.
    Write,
    /// Write it, after a notice that `n` lines of the previous window were dropped.
    WriteAfterDropped(u64),
    /// Drop it.
    Drop,
}

impl LineBudget {
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second: per_second.max(1),
            windows: RwLock::new(HashMap::new()),
        }
    }

    /// Counts one line of `function` at `now_ms`.
    pub(crate) fn admit(&self, project: &str, function: &str, now_ms: i64) -> Verdict {
        let second = u32::try_from(now_ms.div_euclid(1000)).unwrap_or(u32::MAX);
        self.window(project, function)
            .admit(second, self.per_second)
    }

    fn window(&self, project: &str, function: &str) -> Arc<Window> {
        {
            let windows = self
                .windows
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(w) = windows.get(project).and_then(|f| f.get(function)) {
                return w.clone();
            }
        }
        let mut windows = self
            .windows
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        windows
            .entry(project.to_owned())
            .or_default()
            .entry(function.to_owned())
            .or_default()
            .clone()
    }

    /// The limit, for notices.
    pub(crate) fn per_second(&self) -> u32 {
        self.per_second
    }
}

impl Window {
    fn admit(&self, second: u32, per_second: u32) -> Verdict {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let (at, used) = ((current >> 32) as u32, current as u32);
            // A later second starts a new window (a line stamped a moment earlier on another
            // thread counts in the current one).
            let (next, fresh) = if second > at {
                (u64::from(second) << 32 | 1, true)
            } else if used >= per_second {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return Verdict::Drop;
            } else {
                (current + 1, false)
            };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) if fresh => {
                    return match self.dropped.swap(0, Ordering::Relaxed) {
                        0 => Verdict::Write,
                        n => Verdict::WriteAfterDropped(n),
                    };
                }
                Ok(_) => return Verdict::Write,
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests;
