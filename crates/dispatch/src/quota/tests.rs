use super::*;

/// 2026-11-23T10:00:00Z.
const NOW: i64 = 1_795_428_000_000;

#[test]
fn periods_are_utc_days_and_months() {
    assert_eq!(rfc3339(NOW), "2026-11-23T10:00:00Z");
    let (start, end) = period_bounds(QuotaPeriod::Day, NOW);
    assert_eq!(rfc3339(start), "2026-11-23T00:00:00Z");
    assert_eq!(rfc3339(end), "2026-11-24T00:00:00Z");
    let (start, end) = period_bounds(QuotaPeriod::Month, NOW);
    assert_eq!(rfc3339(start), "2026-11-01T00:00:00Z");
    assert_eq!(rfc3339(end), "2026-12-01T00:00:00Z");
    // December rolls into the next year; February of a leap year has 29 days.
    let dec = period_bounds(QuotaPeriod::Month, end + 5);
    assert_eq!(rfc3339(dec.1), "2027-01-01T00:00:00Z");
    let feb = period_bounds(QuotaPeriod::Month, 1_709_251_200_000 - 1); // 2024-02-29T23:59:59.999Z
    assert_eq!(rfc3339(feb.0), "2024-02-01T00:00:00Z");
    assert_eq!(rfc3339(feb.1), "2024-03-01T00:00:00Z");
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
}

#[test]
fn an_invocation_quota_admits_exactly_its_limit_and_resets_with_the_period() {
    let q = Quota::new(
        QuotaScope::Function,
        "hello",
        QuotaMetric::Invocations,
        QuotaPeriod::Day,
        3,
        1.0,
        NOW,
    );
    assert!(q.admit(NOW).is_ok());
    assert!(q.admit(NOW).is_ok());
    let (err, resets_ms) = q.admit(NOW).unwrap_err();
    assert_eq!(
        resets_ms,
        NOW - NOW % DAY_MS + DAY_MS,
        "the window ends at the next UTC day"
    );
    assert_eq!(
        err,
        "quota exceeded: function `hello` may use 3 invocations per day (UTC); 3 used, resets at \
         2026-11-24T00:00:00Z"
    );
    assert!(q.status(NOW).exceeded);
    q.release();
    assert!(q.admit(NOW).is_ok(), "a released admission frees its place");
    let tomorrow = NOW + DAY_MS;
    assert!(q.admit(tomorrow).is_ok());
    let s = q.status(tomorrow);
    assert_eq!((s.used, s.limit, s.exceeded), (1.0, 3.0, false));
    q.set_limit(1);
    assert!(q.admit(tomorrow).is_err());
}

#[test]
fn a_gb_second_quota_refuses_once_reached() {
    let q = Quota::new(
        QuotaScope::Project,
        "default",
        QuotaMetric::GbSeconds,
        QuotaPeriod::Month,
        2,
        0.0,
        NOW,
    );
    assert!(q.admit(NOW).is_ok());
    q.charge(1.5, NOW);
    assert!(q.admit(NOW).is_ok(), "1.5 of 2 used");
    q.charge(0.5, NOW);
    assert!(
        q.admit(NOW)
            .unwrap_err()
            .0
            .contains("2 GB-seconds per month")
    );
    // Charges for an invocation that started last period do not count.
    q.charge(10.0, NOW - 40 * DAY_MS);
    assert_eq!(q.status(NOW).used, 2.0);
}
