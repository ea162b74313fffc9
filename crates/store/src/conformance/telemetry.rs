//! The [`TelemetryStore`] suite.

use super::Outcome;
use updraft_api::{ErrorClass, Invocation, Trigger};

use super::TelemetrySubject;
use crate::{
    InvocationQuery, LogQuery, LogRecord, StoreError, TelemetryStore, Usage, UsageQuery, now_ms,
};

const P: &str = "default";
const HOUR: i64 = 3_600_000;
/// 2026-11-23T00:00:00Z.
const DAY0: i64 = 1_795_392_000_000;

fn rec(function: &str, request_id: &str, line: &str) -> LogRecord {
    LogRecord {
        id: 0,
        project: P.into(),
        function: function.into(),
        version: Some(1),
        request_id: request_id.into(),
        ts_ms: now_ms(),
        stream: "stdout".into(),
        line: line.into(),
    }
}

fn inv(function: &str, started_ms: i64, duration_us: u64, memory_mb: u64) -> Invocation {
    let billed_ms = Invocation::billed_ms(duration_us);
    Invocation {
        request_id: format!("{started_ms:012x}{:020x}", duration_us),
        project: P.into(),
        function: function.into(),
        version: 1,
        trigger: Trigger::Http,
        started_ms,
        duration_us,
        billed_ms,
        memory_mb,
        peak_memory_bytes: 1 << 20,
        gb_seconds: Invocation::gb_seconds(memory_mb, billed_ms),
        cold: false,
        status: 200,
        error: None,
        trace_id: None,
    }
}

async fn logs(store: &dyn TelemetryStore, q: LogQuery) -> Result<Vec<LogRecord>, StoreError> {
    store.query_logs(P, &q).await
}

/// Lines are stored, queried by function, request id and position, and kept across a reopen.
pub async fn lines_are_written_queried_and_kept_across_reopen(
    subject: &dyn TelemetrySubject,
) -> Outcome {
    let store = subject.fresh().await;
    for i in 0..10 {
        store.write(rec("a", &format!("r{}", i % 2), &format!("line {i}")));
    }
    store.write(rec("b", "r9", "other"));
    store.flush().await;
    let all = logs(
        &*store,
        LogQuery {
            function: Some("a".into()),
            limit: 100,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(all.len(), 10);
    assert_eq!(all[0].line, "line 0");
    let last3 = logs(
        &*store,
        LogQuery {
            function: Some("a".into()),
            limit: 3,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        last3.iter().map(|r| r.line.as_str()).collect::<Vec<_>>(),
        ["line 7", "line 8", "line 9"]
    );
    let r1 = logs(
        &*store,
        LogQuery {
            request_id: Some("r1".into()),
            limit: 100,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(r1.len(), 5);
    let after = logs(
        &*store,
        LogQuery {
            after_id: Some(all[7].id),
            limit: 100,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(after.len(), 3, "two of `a` and one of `b`");
    let store = subject.reopen(store).await;
    let everything = logs(
        &*store,
        LogQuery {
            limit: 100,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(everything.len(), 11);
    Ok(())
}

/// A line gets its id when it is queued; followers see it at once, with the id it is stored
/// under; ids keep increasing across a reopen.
pub async fn ids_are_given_when_queued_and_followers_see_lines_at_once(
    subject: &dyn TelemetrySubject,
) -> Outcome {
    let store = subject.fresh().await;
    store.write(rec("a", "r1", "before"));
    let mut follow = store.subscribe();
    store.write(rec("a", "r1", "after"));
    let seen = follow.try_recv()?;
    assert_eq!(seen.line, "after");
    store.flush().await;
    let stored = logs(
        &*store,
        LogQuery {
            limit: 10,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[1].id, seen.id,
        "followers get the id the line is stored under"
    );
    assert!(stored[0].id < stored[1].id);
    let store = subject.reopen(store).await;
    let mut follow = store.subscribe();
    store.write(rec("a", "r2", "later"));
    assert!(follow.try_recv()?.id > seen.id);
    Ok(())
}

/// `since` and request-id filters find exactly the lines they name.
pub async fn time_and_request_filters(subject: &dyn TelemetrySubject) -> Outcome {
    let store = subject.fresh().await;
    let t0 = now_ms() - 10 * HOUR;
    // 600 lines one minute apart, each from a request whose id carries its time.
    let id_at = |ms: i64| format!("{ms:012x}{:020x}", 7);
    for i in 0..600i64 {
        let ts = t0 + i * 60_000;
        let mut r = rec("a", &id_at(ts), &format!("line {i}"));
        r.ts_ms = ts;
        store.write(r);
    }
    store.flush().await;
    let since = logs(
        &*store,
        LogQuery {
            since_ms: Some(t0 + 590 * 60_000),
            limit: 100,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(since.len(), 10);
    assert_eq!(since[0].line, "line 590");
    for i in [0i64, 1, 299, 599] {
        let got = logs(
            &*store,
            LogQuery {
                function: Some("a".into()),
                request_id: Some(id_at(t0 + i * 60_000)),
                limit: 100,
                ..Default::default()
            },
        )
        .await?;
        assert_eq!(got.len(), 1, "{i}");
        assert_eq!(got[0].line, format!("line {i}"));
    }
    let future = logs(
        &*store,
        LogQuery {
            since_ms: Some(now_ms() + 1),
            limit: 10,
            ..Default::default()
        },
    )
    .await?;
    assert!(future.is_empty());
    let every = logs(
        &*store,
        LogQuery {
            since_ms: Some(0),
            limit: 1000,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(every.len(), 600);
    Ok(())
}

/// Usage sums per span, function and bucket match figures computed by hand; GB-seconds are
/// summed exactly.
pub async fn usage_sums_match_hand_computed_figures(subject: &dyn TelemetrySubject) -> Outcome {
    let store = subject.fresh().await;
    // a: 3 calls in hour 0 and 1 in hour 2; b: 1 call in hour 2, failed and cold.
    let mut calls = vec![
        inv("a", DAY0 + 10, 1_500, 128),  // billed 2 ms, 256 MiB-ms
        inv("a", DAY0 + 20, 10_000, 128), // 10 ms, 1,280
        inv("a", DAY0 + 30, 999, 128),    // 1 ms, 128
        inv("a", DAY0 + 2 * HOUR + 5, 250_000, 256), // 250 ms, 64,000
        inv("b", DAY0 + 2 * HOUR + 7, 30_000_001, 1_024), // 30,001 ms, 30,721,024
    ];
    calls[4].error = Some(ErrorClass::Timeout);
    calls[4].cold = true;
    calls[4].status = 504;
    for c in &calls {
        store.record(c.clone());
    }
    store.flush().await;
    let q = |function: Option<&str>, bucket_ms| UsageQuery {
        function: function.map(str::to_owned),
        since_ms: DAY0,
        until_ms: DAY0 + 86_400_000,
        bucket_ms,
    };
    let all = store.usage(P, &q(None, Some(HOUR))).await?;
    assert_eq!(
        all.totals,
        Usage {
            invocations: 5,
            errors: 1,
            cold_starts: 1,
            billed_ms: 2 + 10 + 1 + 250 + 30_001,
            mb_ms: 256 + 1_280 + 128 + 64_000 + 30_721_024,
            ..Usage::default()
        }
    );
    assert!((all.totals.gb_seconds() - 30_786_688.0 / 1_024_000.0).abs() < 1e-9);
    assert_eq!(all.functions.len(), 2);
    assert_eq!(all.functions[0].0, "a");
    assert_eq!(all.functions[0].1.invocations, 4);
    assert_eq!(all.functions[0].1.mb_ms, 256 + 1_280 + 128 + 64_000);
    assert_eq!(
        all.buckets
            .iter()
            .map(|(t, u)| (*t, u.invocations))
            .collect::<Vec<_>>(),
        [(DAY0, 3), (DAY0 + 2 * HOUR, 2)]
    );
    assert_eq!(all.buckets[0].1.billed_ms, 13);
    let b = store.usage(P, &q(Some("b"), None)).await?;
    assert_eq!((b.totals.invocations, b.totals.errors), (1, 1));
    assert!(b.buckets.is_empty());
    // The span is half-open and filters by start time.
    let late = store
        .usage(
            P,
            &UsageQuery {
                since_ms: DAY0 + 2 * HOUR,
                until_ms: DAY0 + 2 * HOUR + 6,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(late.totals.invocations, 1);
    Ok(())
}

/// Data operations add up per function and minute; the APIs' own (`""`) count in the totals
/// only; spans take every minute they touch; projects stay apart.
pub async fn data_usage_sums_per_function_and_minute(subject: &dyn TelemetrySubject) -> Outcome {
    let store = subject.fresh().await;
    let minute = DAY0 / 60_000;
    let row = |project: &str, function: &str, m: i64, reads, writes| crate::DataUsage {
        project: project.into(),
        function: function.into(),
        minute: m,
        reads,
        writes,
    };
    store
        .record_data_usage(vec![
            row(P, "a", minute, 3, 1),
            row(P, "", minute, 10, 0),
            row(P, "a", minute + 2 * 60, 1, 1),
            row("other", "a", minute, 100, 100),
        ])
        .await?;
    store
        .record_data_usage(vec![row(P, "a", minute, 2, 2)])
        .await?;
    let all = store
        .usage(
            P,
            &UsageQuery {
                since_ms: DAY0,
                until_ms: DAY0 + 86_400_000,
                bucket_ms: Some(HOUR),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!((all.totals.data_reads, all.totals.data_writes), (16, 4));
    assert_eq!(all.functions.len(), 1);
    assert_eq!(all.functions[0].0, "a");
    assert_eq!(
        (
            all.functions[0].1.data_reads,
            all.functions[0].1.data_writes
        ),
        (6, 4)
    );
    assert_eq!(
        all.buckets
            .iter()
            .map(|(t, u)| (*t, u.data_reads))
            .collect::<Vec<_>>(),
        [(DAY0, 15), (DAY0 + 2 * HOUR, 1)]
    );
    // A span inside one minute still sees that minute's counts.
    let inside = store
        .usage(
            P,
            &UsageQuery {
                since_ms: DAY0 + 10,
                until_ms: DAY0 + 20,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(inside.totals.data_reads, 15);
    Ok(())
}

/// Many records at once are all kept, every field intact.
pub async fn large_batches_keep_every_record_and_field(subject: &dyn TelemetrySubject) -> Outcome {
    let store = subject.fresh().await;
    let calls: Vec<Invocation> = (0..70)
        .map(|i| {
            let mut c = inv("f", DAY0 + i, 1_000 * (i as u64 + 1), 128);
            c.error = (i % 7 == 0).then_some(ErrorClass::Trap);
            c.trigger = if i % 2 == 0 {
                Trigger::Queue
            } else {
                Trigger::Http
            };
            c.trace_id = (i % 3 == 0).then(|| format!("{i:032x}"));
            c
        })
        .collect();
    for c in &calls {
        store.record(c.clone());
    }
    store.flush().await;
    let mut listed = store
        .invocations(
            P,
            &InvocationQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await?;
    listed.reverse();
    assert_eq!(listed, calls);
    Ok(())
}

/// Invocation records are found by request id, and filtered by function, time and failure,
/// newest first.
pub async fn invocations_are_found_by_request_id_and_filtered(
    subject: &dyn TelemetrySubject,
) -> Outcome {
    let store = subject.fresh().await;
    let now = now_ms();
    let mut calls: Vec<Invocation> = (0..20)
        .map(|i| {
            inv(
                if i % 2 == 0 { "a" } else { "b" },
                now - 1_000 + i,
                1_000,
                128,
            )
        })
        .collect();
    calls[5].error = Some(ErrorClass::OutOfMemory);
    for c in &calls {
        store.record(c.clone());
    }
    store.flush().await;
    let by_id = store
        .invocations(
            P,
            &InvocationQuery {
                request_id: Some(calls[7].request_id.clone()),
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(by_id, [calls[7].clone()]);
    let a = store
        .invocations(
            P,
            &InvocationQuery {
                function: Some("a".into()),
                limit: 3,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(
        a.iter().map(|c| c.started_ms).collect::<Vec<_>>(),
        [now - 1_000 + 18, now - 1_000 + 16, now - 1_000 + 14]
    );
    let failed = store
        .invocations(
            P,
            &InvocationQuery {
                errors_only: true,
                limit: 10,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(failed, [calls[5].clone()]);
    let recent = store
        .invocations(
            P,
            &InvocationQuery {
                since_ms: Some(now - 1_000 + 15),
                limit: 100,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(recent.len(), 5);
    Ok(())
}

/// Another project's lines and records are invisible.
pub async fn projects_do_not_see_each_other(subject: &dyn TelemetrySubject) -> Outcome {
    let store = subject.fresh().await;
    let mut other = rec("a", "r1", "secret");
    other.project = "other".into();
    store.write(other);
    store.write(rec("a", "r1", "mine"));
    let mut theirs = inv("a", DAY0, 1_000, 128);
    theirs.project = "other".into();
    store.record(theirs);
    store.flush().await;
    let lines = logs(
        &*store,
        LogQuery {
            limit: 10,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        lines.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
        ["mine"]
    );
    let mine = store
        .invocations(
            P,
            &InvocationQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await?;
    assert!(mine.is_empty());
    let usage = store
        .usage(
            P,
            &UsageQuery {
                since_ms: 0,
                until_ms: i64::MAX,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(usage.totals.invocations, 0);
    // Forgetting the other project leaves this one's lines, and the other's are gone, the
    // queued ones included.
    let mut queued = rec("a", "r2", "queued");
    queued.project = "other".into();
    store.write(queued);
    store.forget_project("other").await?;
    let everything = UsageQuery {
        since_ms: 0,
        until_ms: i64::MAX,
        ..Default::default()
    };
    let q = LogQuery {
        limit: 10,
        ..Default::default()
    };
    assert!(store.query_logs("other", &q).await?.is_empty());
    assert_eq!(
        store.usage("other", &everything).await?.totals.invocations,
        0
    );
    assert_eq!(logs(&*store, q).await?.len(), 1);
    Ok(())
}

/// Newest-first and oldest-first queries with a limit are exact however the entries were
/// batched: written over several flushes, started out of order.
pub async fn limits_are_exact_across_batches(subject: &dyn TelemetrySubject) -> Outcome {
    let store = subject.fresh().await;
    let now = now_ms();
    let mut calls = Vec::new();
    for batch in 0..3i64 {
        for i in 0..700i64 {
            // Starts interleave across batches: batch b holds i*3+b.
            let mut c = inv("f", now - 100_000 + i * 3 + batch, 1_000, 128);
            c.request_id = format!("{:012x}{:020x}", c.started_ms, i * 3 + batch);
            store.record(c.clone());
            calls.push(c);
            store.write(rec("f", "r", &format!("{batch}-{i}")));
        }
        store.flush().await;
    }
    calls.sort_by_key(|c| std::cmp::Reverse(c.started_ms));
    let newest = store
        .invocations(
            P,
            &InvocationQuery {
                limit: 7,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(newest, calls[..7].to_vec());
    let lines = logs(
        &*store,
        LogQuery {
            limit: 5,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        lines.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
        ["2-695", "2-696", "2-697", "2-698", "2-699"]
    );
    let after = logs(
        &*store,
        LogQuery {
            after_id: Some(lines[0].id - 1_000),
            limit: 3,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(after.len(), 3);
    assert_eq!(after[0].id, lines[0].id - 999);
    assert!(after.windows(2).all(|w| w[0].id < w[1].id));
    let usage = store
        .usage(
            P,
            &UsageQuery {
                since_ms: now - 100_000,
                until_ms: now,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(usage.totals.invocations, 2_100);
    Ok(())
}
