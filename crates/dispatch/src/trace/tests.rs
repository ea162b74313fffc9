use super::*;

#[test]
fn traceparent_is_parsed_and_written_per_the_w3c_spec() {
    let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let t = TraceContext::parse(v).unwrap();
    assert_eq!(t.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(t.parent, Some(0x00f0_67aa_0ba9_02b7));
    assert_eq!(t.flags, 1);
    assert_eq!(t.header(0x00f0_67aa_0ba9_02b7), v);
    assert_eq!(
        TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra")
            .map(|t| t.flags),
        Some(0),
        "a later version's extra fields are ignored"
    );
    for bad in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ] {
        assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
    }
    let mut hex = String::new();
    push_hex(&mut hex, 0xab_u128, 4);
    push_hex(&mut hex, u128::MAX, 3);
    assert_eq!(hex, "00abfff");
    let root = TraceContext::root();
    assert_ne!(root.trace_id, 0);
    assert_eq!(root.parent, None);
    assert!(TraceContext::parse(&root.header(span_id())).is_some());
}

#[test]
fn the_clock_maps_instants_to_wall_time() {
    let c = Clock::now();
    let later = c.instant() + Duration::from_millis(5);
    assert_eq!(c.nanos(later) - c.nanos(c.instant()), 5_000_000);
    let earlier = c.instant().checked_sub(Duration::from_millis(2)).unwrap();
    assert_eq!(c.nanos(c.instant()) - c.nanos(earlier), 2_000_000);
}
