use super::*;

#[test]
fn durations() {
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
    assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    assert!(parse_duration("30").unwrap_err().contains("unknown unit"));
    assert!(parse_duration("s").unwrap_err().contains("whole number"));
    assert!(parse_duration("1.5s").unwrap_err().contains("unknown unit"));
    assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    assert_eq!(format_duration(Duration::from_secs(600)), "10m");
}

#[test]
fn sizes() {
    assert_eq!(parse_size("128MiB"), Ok(128 << 20));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert_eq!(parse_size("10MB"), Ok(10_000_000));
    assert!(parse_size("12XB").unwrap_err().contains("unknown unit"));
    assert!(parse_size("99999999999999999999GiB").is_err());
}
