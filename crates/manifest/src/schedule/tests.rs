use super::*;

const MIN: i64 = 60_000;

#[test]
fn rates_are_epoch_aligned() {
    let s = Schedule::rate("30s").unwrap();
    assert_eq!(s.next_after(0), Some(30_000));
    assert_eq!(s.next_after(29_999), Some(30_000));
    assert_eq!(s.next_after(30_000), Some(60_000));
    assert_eq!(s.due(30_000, 120_000, 100), (3, Some(120_000)));
    assert_eq!(s.due(30_000, 59_999, 100), (0, None));
    assert!(Schedule::rate("500ms").is_err());
    assert!(Schedule::rate("soon").is_err());
}

#[test]
fn cron_in_utc_and_in_a_time_zone() {
    let s = Schedule::cron("*/5 * * * *", None).unwrap();
    assert_eq!(s.next_after(0), Some(5 * MIN));
    assert_eq!(s.next_after(5 * MIN), Some(10 * MIN));
    assert_eq!(s.due(0, 60 * MIN, 1000), (12, Some(60 * MIN)));
    // 03:00 in Berlin on 2026-01-15 (UTC+1) is 02:00 UTC.
    let s = Schedule::cron("0 3 * * *", Some("Europe/Berlin")).unwrap();
    let jan15 = 1_768_435_200_000; // 2026-01-15T00:00:00Z
    assert_eq!(s.next_after(jan15), Some(jan15 + 2 * 60 * MIN));
    // In July (UTC+2) it is 01:00 UTC.
    let jul15 = 1_784_073_600_000; // 2026-07-15T00:00:00Z
    assert_eq!(s.next_after(jul15), Some(jul15 + 60 * MIN));
    assert_ne!(
        Schedule::cron("0 3 * * *", None).unwrap().key(),
        s.key(),
        "the time zone is part of the key"
    );
}

#[test]
fn malformed_cron_is_named() {
    let e = Schedule::cron("*/5 * * *", None).unwrap_err();
    assert!(e.contains("4 fields"), "{e}");
    let e = Schedule::cron("61 * * * *", None).unwrap_err();
    assert!(e.contains("not a valid cron expression"), "{e}");
    let e = Schedule::cron("0 3 * * *", Some("Mars/Olympus")).unwrap_err();
    assert!(e.contains("Mars/Olympus"), "{e}");
    assert!(
        Schedule::cron("0 0 30 2 *", None).is_err(),
        "February 30th never comes"
    );
}

#[test]
fn counting_stops_at_the_cap() {
    let s = Schedule::cron("* * * * *", None).unwrap();
    let (n, latest) = s.due(0, 24 * 60 * MIN, 10);
    assert_eq!(n, 10);
    assert_eq!(latest, Some(24 * 60 * MIN));
}
