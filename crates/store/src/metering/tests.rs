use updraft_api::{ErrorClass, Invocation, Trigger};

use super::*;
use crate::DEFAULT_PROJECT;

const HOUR: i64 = 3_600_000;
/// 2026-11-23T00:00:00Z.
const DAY0: i64 = 1_795_392_000_000;

fn inv(function: &str, started_ms: i64, duration_us: u64, memory_mb: u64) -> Invocation {
    let billed_ms = Invocation::billed_ms(duration_us);
    Invocation {
        request_id: format!("{function}-{started_ms}"),
        project: DEFAULT_PROJECT.into(),
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
fn usage_sums_match_hand_computed_figures() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
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
        store.logs().record(c.clone());
    }
    store.logs().flush();

    let q = |function: Option<&str>, bucket_ms| UsageQuery {
        function: function.map(str::to_owned),
        since_ms: DAY0,
        until_ms: DAY0 + 86_400_000,
        bucket_ms,
    };
    let all = store.usage(DEFAULT_PROJECT, &q(None, Some(HOUR))).unwrap();
    assert_eq!(
        all.totals,
        Usage {
            invocations: 5,
            errors: 1,
            cold_starts: 1,
            billed_ms: 2 + 10 + 1 + 250 + 30_001,
            mb_ms: 256 + 1_280 + 128 + 64_000 + 30_721_024,
        }
    );
    // 30,786,688 MiB-ms / 1,024,000 = 30.0651... GB-s.
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

    let b = store.usage(DEFAULT_PROJECT, &q(Some("b"), None)).unwrap();
    assert_eq!(b.totals.invocations, 1);
    assert_eq!(b.totals.errors, 1);
    assert!(b.buckets.is_empty());

    // The span is half-open and filters by start time.
    let late = store
        .usage(
            DEFAULT_PROJECT,
            &UsageQuery {
                since_ms: DAY0 + 2 * HOUR,
                until_ms: DAY0 + 2 * HOUR + 6,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(late.totals.invocations, 1);

    let listed = store
        .invocations(
            DEFAULT_PROJECT,
            &InvocationQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(listed.len(), 5);
    assert_eq!(listed[0], calls[4], "newest first, every field kept");
    let failed = store
        .invocations(
            DEFAULT_PROJECT,
            &InvocationQuery {
                errors_only: true,
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(failed.len(), 1);
}

#[test]
fn large_batches_keep_every_record_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // 70 = two multi-row statements of 32 and six single-row ones.
    let calls: Vec<Invocation> = (0..70)
        .map(|i| {
            let mut c = inv("f", DAY0 + i, 1_000 * (i as u64 + 1), 128);
            c.error = (i % 7 == 0).then_some(ErrorClass::Trap);
            c
        })
        .collect();
    for c in &calls {
        store.logs().record(c.clone());
    }
    store.logs().flush();
    let mut listed = store
        .invocations(
            DEFAULT_PROJECT,
            &InvocationQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    listed.reverse();
    assert_eq!(listed, calls);
}
