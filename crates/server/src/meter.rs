//! Data metering: the key-value and document services count reads and writes per project and
//! function in memory; every [`EVERY`] (and before a usage report is read, and at shutdown)
//! they are taken and added to the telemetry store's per-minute sums, which `updraft usage`
//! reports. A `kill -9` loses at most the last few seconds of counts.

use std::collections::BTreeMap;
use std::time::Duration;

use updraft_store::DataUsage;

use crate::State;

/// How often counts are stored.
const EVERY: Duration = Duration::from_secs(10);

/// Stores the counts taken since the last flush.
pub(crate) async fn flush(state: &State) {
    let minute = updraft_store::now_ms().div_euclid(60_000);
    let mut sums: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for c in state.kv.take_usage(None) {
        let e = sums.entry((c.project, c.function)).or_default();
        e.0 += c.reads;
        e.1 += c.writes;
    }
    for c in state.docs.take_usage() {
        let e = sums.entry((c.project, c.function)).or_default();
        e.0 += c.reads;
        e.1 += c.writes;
    }
    if sums.is_empty() {
        return;
    }
    let rows: Vec<DataUsage> = sums
        .into_iter()
        .map(|((project, function), (reads, writes))| DataUsage {
            project,
            function,
            minute,
            reads,
            writes,
        })
        .collect();
    if let Err(e) = state.telemetry.record_data_usage(rows).await {
        tracing::warn!(error = %e, "could not store data usage counts; they are lost");
    }
}

/// Flushes every [`EVERY`] until `stop` resolves, then once more.
pub(crate) async fn run(state: std::sync::Arc<State>, stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => flush(&state).await,
            () = &mut stop => break,
        }
    }
    flush(&state).await;
}
