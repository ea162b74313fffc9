//! Housekeeping that keeps the data directory from growing without bound, once a minute (and
//! once at start): records of finished asynchronous invokes past `[events]
//! async_result_max_age`, and uploaded artifacts no version uses past `[versions]
//! unused_artifact_grace`, audit log entries past `[audit] max_age`, expired key-value keys,
//! document and key-value changes past `[documents] changes_max_age`, object blobs nothing
//! names an hour after they were written (a crash between a blob's write and its commit leaves
//! one). (Log lines and invocation records are trimmed by the store's writer;
//! versions and the artifacts they free by the registry's retention at deploy.)

use std::sync::Arc;
use std::time::Duration;

use crate::State;

/// How often the janitor runs.
const EVERY: Duration = Duration::from_secs(60);

/// How old an unnamed blob (or an upload's temp file) must be before it is removed: far
/// longer than any commit takes, and than a stalled upload is worth keeping.
const ORPHAN_BLOB_AGE: Duration = Duration::from_secs(3600);

/// Runs until `stop` resolves.
pub(crate) async fn run(state: Arc<State>, stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => sweep(&state).await,
            () = &mut stop => break,
        }
    }
}

async fn sweep(state: &State) {
    let age = i64::try_from(state.async_result_max_age.as_millis()).unwrap_or(i64::MAX);
    let before = updraft_events::now_ms().saturating_sub(age);
    match state.log.expire_async(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(n, "expired finished asynchronous invokes"),
        Err(e) => tracing::warn!(error = %e, "could not expire asynchronous invokes"),
    }
    let age = i64::try_from(state.audit_max_age.as_millis()).unwrap_or(i64::MAX);
    match state
        .metadata
        .expire_audit(updraft_store::now_ms().saturating_sub(age))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(n, "expired audit log entries"),
        Err(e) => tracing::warn!(error = %e, "could not expire audit log entries"),
    }
    // Expired keys already read as absent; this frees their space (a batch per sweep).
    match state
        .kv
        .store()
        .kv_purge_expired(updraft_store::now_ms(), 10_000)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(n, "deleted expired key-value keys"),
        Err(e) => tracing::warn!(error = %e, "could not delete expired key-value keys"),
    }
    match state.docs.trim_changes().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(n, "trimmed the document change log"),
        Err(e) => tracing::warn!(error = %e, "could not trim the document change log"),
    }
    // Watched stores' change log: kept as long as the documents'.
    let age = i64::try_from(state.docs.config().changes_max_age.as_millis()).unwrap_or(i64::MAX);
    match state
        .kv
        .store()
        .kv_trim_changes(updraft_store::now_ms().saturating_sub(age))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(n, "trimmed the key-value change log"),
        Err(e) => tracing::warn!(error = %e, "could not trim the key-value change log"),
    }
    match state
        .objects
        .store()
        .trim_object_changes(updraft_store::now_ms().saturating_sub(age))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(n, "trimmed the bucket change log"),
        Err(e) => tracing::warn!(error = %e, "could not trim the bucket change log"),
    }
    // The blob sweep walks every blob file: once an hour (and at start), not every minute.
    let age = i64::try_from(ORPHAN_BLOB_AGE.as_millis()).unwrap_or(i64::MAX);
    let now = updraft_store::now_ms();
    let last = state
        .blobs_swept_at
        .load(std::sync::atomic::Ordering::Relaxed);
    if last == 0 || now - last >= age {
        state
            .blobs_swept_at
            .store(now, std::sync::atomic::Ordering::Relaxed);
        match state
            .objects
            .store()
            .sweep_blobs(now.saturating_sub(age))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "removed object blobs nothing names"),
            Err(e) => tracing::warn!(error = %e, "could not sweep object blobs"),
        }
        // Site files no kept version names (uploads not deployed within the hour included).
        match state.sites.collect_files(age).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "removed site files no version names"),
            Err(e) => tracing::warn!(error = %e, "could not collect site files"),
        }
    }
    if let Err(e) = state
        .registry
        .collect_unused_artifacts(state.unused_artifact_grace)
        .await
    {
        tracing::warn!(error = %e.message, "could not collect unused artifacts");
    }
}
