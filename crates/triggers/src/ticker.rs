//! Schedule tickers: each fires its schedule's slots into the schedule's internal queue, once
//! per slot (the event log records the last slot fired, in the same transaction).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use updraft_events::{NewMessage, now_ms};
use updraft_manifest::Schedule;

use crate::{Task, Triggers};

/// The most slots a ticker counts one by one when it catches up.
const MAX_MISSED_COUNT: u64 = 100_000;

/// One schedule of one function.
#[derive(Debug)]
pub(crate) struct Ticker {
    pub(crate) project: String,
    pub(crate) function: String,
    pub(crate) schedule: Schedule,
    pub(crate) key: String,
    pub(crate) queue: String,
}

impl PartialEq for Ticker {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.function == other.function && self.project == other.project
    }
}

impl Triggers {
    /// A schedule's ticker: fires each slot into the schedule's queue, until stopped.
    pub(crate) async fn tick(self: Arc<Self>, mut rx: watch::Receiver<Option<Arc<Task>>>) {
        let Some(task) = rx.borrow().clone() else {
            return;
        };
        let Task::Tick(t) = &*task else { return };
        let last = self.log.last_slot(&t.project, &t.function, &t.key).await;
        let mut last = match last {
            Ok(Some(ms)) => ms,
            Ok(None) => now_ms(),
            Err(e) => {
                tracing::error!(function = t.function, error = %e, "schedule not started");
                return;
            }
        };
        loop {
            let Some(task) = rx.borrow().clone() else {
                return;
            };
            let Task::Tick(t) = &*task else { return };
            let now = now_ms();
            let (due, latest) = t.schedule.due(last, now, MAX_MISSED_COUNT);
            if let Some(slot) = latest {
                let missed = due.saturating_sub(1);
                let data = serde_json::json!({
                    "schedule": t.schedule.to_string(),
                    "slot": updraft_dispatch::rfc3339(slot),
                    "missed": missed,
                });
                let message = NewMessage {
                    id: Some(format!("{}-{slot}", t.queue.trim_start_matches('~'))),
                    source: format!("/functions/{}/schedules", t.function),
                    kind: "dev.updraft.schedule.fired".into(),
                    content_type: "application/json".into(),
                    data: serde_json::to_vec(&data).unwrap_or_default(),
                    time_ms: Some(slot),
                    ..NewMessage::default()
                };
                let fired = self
                    .log
                    .fire(&t.project, &t.function, &t.key, slot, &t.queue, message)
                    .await;
                match fired {
                    Ok(_) => {
                        last = slot;
                        if missed > 0 {
                            self.platform_line(
                                &t.project,
                                &t.function,
                                &format!(
                                    "{}: {missed} slot(s) were missed while the server was down; fired once for the latest",
                                    t.schedule
                                ),
                            );
                        }
                        self.wakeups.wake(&t.project, &t.queue);
                    }
                    Err(e) => {
                        tracing::warn!(function = t.function, error = %e, "could not fire a schedule");
                    }
                }
            }
            let wait = t
                .schedule
                .next_after(last)
                .map_or(Duration::from_secs(3600), |next| {
                    Duration::from_millis(u64::try_from(next - now_ms()).unwrap_or(0))
                });
            tokio::select! {
                () = tokio::time::sleep(wait) => {},
                r = rx.changed() => if r.is_err() { return },
            }
        }
    }
}
