//! SQLite-specific: retention by size and age. What every telemetry backend must do is in the
//! conformance suite (`crate::conformance::telemetry`).

use super::*;
use crate::Store;

fn rec(function: &str, request_id: &str, line: &str) -> LogRecord {
    LogRecord {
        id: 0,
        project: crate::DEFAULT_PROJECT.into(),
        function: function.into(),
        version: Some(1),
        request_id: request_id.into(),
        ts_ms: crate::now_ms(),
        stream: "stdout".into(),
        line: line.into(),
    }
}

#[test]
fn the_size_budget_deletes_the_oldest_lines() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        log_max_bytes: 50_000,
        ..Retention::default()
    };
    let store = Store::open_with(dir.path(), retention).unwrap();
    // 3,000 lines of 100 bytes + 100 overhead = 600,000 bytes; 50,000 keeps ~250.
    for i in 0..3_000 {
        store.logs().write(rec("a", "r", &format!("{i:0>100}")));
    }
    store.logs().flush();
    let kept = store
        .query_logs(
            crate::DEFAULT_PROJECT,
            &LogQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(kept.len() <= 250, "kept {}", kept.len());
    assert!(!kept.is_empty());
    assert_eq!(
        kept.last().unwrap().line,
        format!("{:0>100}", 2_999),
        "newest kept"
    );
}

#[test]
fn expired_lines_and_records_are_deleted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut old = rec("a", "r", "old");
    old.ts_ms -= 3 * 86_400_000;
    store.logs().write(old);
    store.logs().write(rec("a", "r", "new"));
    store.logs().flush();
    drop(store);
    let retention = Retention {
        log_max_age: std::time::Duration::from_secs(86_400),
        ..Retention::default()
    };
    let store = Store::open_with(dir.path(), retention).unwrap();
    store.logs().flush();
    let kept = store
        .query_logs(
            crate::DEFAULT_PROJECT,
            &LogQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        kept.iter().map(|r| r.line.as_str()).collect::<Vec<_>>(),
        ["new"]
    );
}

#[test]
fn billing_rounds_up_to_the_millisecond() {
    assert_eq!(Invocation::billed_ms(1), 1);
    assert_eq!(Invocation::billed_ms(1_000), 1);
    assert_eq!(Invocation::billed_ms(1_001), 2);
    assert_eq!(
        Invocation::billed_ms(0),
        1,
        "every invocation bills at least 1 ms"
    );
    assert!((Invocation::gb_seconds(128, 1_000) - 0.125).abs() < 1e-12);
}

#[test]
fn rows_from_before_chunks_are_converted_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("updraft.db");
    {
        // A data directory at migration 3: telemetry as rows.
        let c = rusqlite::Connection::open(&db).unwrap();
        for m in &crate::db::MIGRATIONS[..3] {
            c.execute_batch(m).unwrap();
        }
        c.pragma_update(None, "user_version", 3).unwrap();
        let t = crate::now_ms() - 1_000;
        c.execute_batch(&format!(
            "INSERT INTO logs (id, project, function, request_id, ts_ms, stream, line, version)
                 VALUES (7, 'default', 'a', 'r1', {t}, 'stdout', 'old line', 2);
             INSERT INTO logs (id, project, function, request_id, ts_ms, stream, line, version)
                 VALUES (8, 'default', 'a', 'r1', {t}, 'platform', 'old event', NULL);
             INSERT INTO invocations VALUES ('r1', 'default', 'a', 2, 'queue', {t}, 1500, 2,
                 128, 4096, 1, 500, 'trap', 'abc');"
        ))
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let lines = store
        .query_logs(
            crate::DEFAULT_PROJECT,
            &LogQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        lines
            .iter()
            .map(|l| (l.id, l.line.as_str(), l.version, l.stream.as_str()))
            .collect::<Vec<_>>(),
        [
            (7, "old line", Some(2), "stdout"),
            (8, "old event", None, "platform")
        ]
    );
    let records = store
        .invocations(
            crate::DEFAULT_PROJECT,
            &InvocationQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (r.trigger, r.status, r.error, r.cold, r.trace_id.as_deref()),
        (
            updraft_api::Trigger::Queue,
            500,
            Some(updraft_api::ErrorClass::Trap),
            true,
            Some("abc")
        )
    );
    // New lines continue the ids.
    let mut follow = store.logs().subscribe();
    store.logs().write(rec("a", "r2", "new"));
    assert_eq!(follow.try_recv().unwrap().id, 9);
    // Usage of the converted record comes from its sums.
    let usage = store
        .usage(
            crate::DEFAULT_PROJECT,
            &UsageQuery {
                since_ms: 0,
                until_ms: crate::now_ms() + 1,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((usage.totals.invocations, usage.totals.errors), (1, 1));
}

#[test]
fn the_codec_keeps_every_field() {
    let mut line = rec("f", "req", "hello\nworld ünïcode");
    line.id = 42;
    line.stream = "custom".into();
    line.version = None;
    let mut blob = Vec::new();
    codec::put_line(&mut blob, &line, 40, line.ts_ms - 5);
    let mut r = codec::Reader::new(&blob);
    let back = codec::get_line(&mut r, ("default", "f"), 40, line.ts_ms - 5).unwrap();
    assert_eq!(back, line);
    assert!(r.done());
    // A truncated chunk is an error, not a panic.
    let mut r = codec::Reader::new(&blob[..blob.len() - 3]);
    assert!(codec::get_line(&mut r, ("default", "f"), 40, 0).is_err());
}

fn invocation(function: &str, n: i64, started_ms: i64) -> updraft_api::Invocation {
    updraft_api::Invocation {
        request_id: format!("{started_ms:012x}{n:020x}"),
        project: crate::DEFAULT_PROJECT.into(),
        function: function.into(),
        version: 1,
        trigger: updraft_api::Trigger::Http,
        started_ms,
        duration_us: 1_000,
        billed_ms: 1,
        memory_mb: 128,
        peak_memory_bytes: 0,
        gb_seconds: 0.0,
        cold: false,
        status: 200,
        error: None,
        trace_id: None,
    }
}

#[test]
fn a_flood_of_lines_never_costs_an_invocation_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), Retention::default()).unwrap();
    let now = crate::now_ms();
    // A slow disk: another connection holds the write lock, so the writer stalls on its first
    // batch (for less than its busy timeout) while lines pile up past the queue's capacity.
    let blocker = rusqlite::Connection::open(dir.path().join("updraft.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    store.logs().write(rec("noisy", "r", "first"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    // More records than any share of the line queue could hold (a quarter of it, before).
    let lines = QUEUE + 16_000;
    let mut recorded = 0;
    for i in 0..lines {
        store.logs().write(rec("noisy", "r", ""));
        if i % 4 == 0 {
            store
                .logs()
                .record(invocation("quiet", i64::try_from(recorded).unwrap(), now));
            recorded += 1;
        }
    }
    assert!(
        store.logs().dropped() > 0,
        "the flood never filled the queue: the test proves nothing"
    );
    blocker.execute_batch("COMMIT").unwrap();
    store.logs().flush();
    let usage = store
        .usage(
            crate::DEFAULT_PROJECT,
            &UsageQuery {
                function: Some("quiet".into()),
                since_ms: now - 60_000,
                until_ms: now + 120_000,
                bucket_ms: None,
            },
        )
        .unwrap();
    assert_eq!(
        usage.totals.invocations, recorded,
        "records were lost to the flood"
    );
}

#[test]
fn the_record_size_budget_deletes_the_oldest_records_and_keeps_usage() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        invocation_max_bytes: 20_000,
        ..Retention::default()
    };
    let store = Store::open_with(dir.path(), retention).unwrap();
    let now = crate::now_ms();
    for batch in 0..20 {
        for i in 0..100 {
            let n = batch * 100 + i;
            store.logs().record(invocation("a", n, now + n));
        }
        store.logs().flush();
    }
    let kept = store
        .invocations(
            crate::DEFAULT_PROJECT,
            &InvocationQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(kept.len() < 2_000, "kept all {}", kept.len());
    assert!(!kept.is_empty());
    assert_eq!(kept[0].started_ms, now + 1_999, "the newest is kept");
    let usage = store
        .usage(
            crate::DEFAULT_PROJECT,
            &UsageQuery {
                function: None,
                since_ms: now - 60_000,
                until_ms: now + 120_000,
                bucket_ms: None,
            },
        )
        .unwrap();
    assert_eq!(
        usage.totals.invocations, 2_000,
        "usage sums outlive the records"
    );
}
