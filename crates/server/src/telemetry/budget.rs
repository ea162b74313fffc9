//! Per-function log budgets: at most `max_lines_per_second` lines (platform lines included) a
//! second per function, so one function flooding its log can't crowd its neighbours' lines out
//! of the shared writer queue, nor a flood of throttled requests the log with platform lines.
//! What is dropped is said once the second is over, in one platform line.

use std::collections::HashMap;
use std::sync::Mutex;

/// Default of `[logs] max_lines_per_second`.
pub(crate) const DEFAULT_MAX_LINES_PER_SECOND: u32 = 1_000;

pub(crate) struct LineBudget {
    per_second: u32,
    /// By project, then function (looked up by `&str`: no allocation per line).
    windows: Mutex<HashMap<String, HashMap<String, Window>>>,
}

#[derive(Clone, Copy)]
struct Window {
    second: i64,
    used: u32,
    dropped: u64,
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
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one line of `function` at `now_ms`.
    pub(crate) fn admit(&self, project: &str, function: &str, now_ms: i64) -> Verdict {
        let second = now_ms.div_euclid(1000);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !windows.contains_key(project) {
            windows.insert(project.to_owned(), HashMap::new());
        }
        let Some(functions) = windows.get_mut(project) else {
            return Verdict::Write;
        };
        if !functions.contains_key(function) {
            functions.insert(
                function.to_owned(),
                Window {
                    second,
                    used: 0,
                    dropped: 0,
                },
            );
        }
        let Some(w) = functions.get_mut(function) else {
            return Verdict::Write;
        };
        let mut dropped_before = 0;
        if w.second != second {
            dropped_before = w.dropped;
            *w = Window {
                second,
                used: 0,
                dropped: 0,
            };
        }
        if w.used >= self.per_second {
            w.dropped += 1;
            return Verdict::Drop;
        }
        w.used += 1;
        if dropped_before > 0 {
            Verdict::WriteAfterDropped(dropped_before)
        } else {
            Verdict::Write
        }
    }

    /// The limit, for notices.
    pub(crate) fn per_second(&self) -> u32 {
        self.per_second
    }
}

#[cfg(test)]
mod tests;
