use updraft_api::Invocation;

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
