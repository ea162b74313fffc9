use super::*;

#[test]
fn buckets_are_ordered_and_bound_their_values() {
    let mut last = 0;
    for us in [
        1u64, 2, 3, 5, 8, 100, 999, 1_000, 1_500, 50_000, 1_000_000, 60_000_000,
    ] {
        let d = Duration::from_micros(us);
        let b = bucket(d);
        assert!(b >= last, "{us}");
        assert!(bucket_upper(b) >= d, "{us} > {:?}", bucket_upper(b));
        // Within one bucket width (25% of the octave base) of the value.
        assert!(
            bucket_upper(b) <= d + d / 2 + Duration::from_micros(1),
            "{us}"
        );
        last = b;
    }
    assert_eq!(bucket(Duration::from_secs(100_000)), BUCKETS - 1);
}

#[test]
fn records_only_while_watched() {
    let h = Health::new(Duration::from_secs(60));
    h.record(true, Duration::from_millis(1));
    assert_eq!(h.summary(Duration::from_secs(60)).requests, 0);
    h.watch(true);
    for i in 0..200u64 {
        // 2 of every 10 fail; one in a hundred is slow.
        let latency = if i % 100 == 0 { 80 } else { 2 };
        h.record(i % 10 < 2, Duration::from_millis(latency));
    }
    let s = h.summary(Duration::from_secs(60));
    assert_eq!((s.requests, s.errors), (200, 40));
    assert!((s.error_rate() - 0.2).abs() < 1e-9);
    // 2 of 200 are slow: the 99th percentile is still the fast bucket.
    let p99 = s.p99.unwrap();
    assert!(
        p99 >= Duration::from_millis(2) && p99 < Duration::from_millis(3),
        "{p99:?}"
    );
    // Watching again starts afresh.
    h.watch(false);
    h.watch(true);
    assert_eq!(h.summary(Duration::from_secs(60)), Summary::default());
}
