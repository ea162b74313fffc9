use super::*;

#[test]
fn each_function_gets_its_own_lines_per_second_and_drops_are_reported_once() {
    let b = LineBudget::new(3);
    let t = 10_000;
    for _ in 0..3 {
        assert_eq!(b.admit("p", "noisy", t), Verdict::Write);
    }
    assert_eq!(b.admit("p", "noisy", t + 10), Verdict::Drop);
    assert_eq!(b.admit("p", "noisy", t + 999), Verdict::Drop);
    // A neighbour is unaffected.
    assert_eq!(b.admit("p", "quiet", t + 10), Verdict::Write);
    // The next second starts afresh, with one notice of what was dropped.
    assert_eq!(
        b.admit("p", "noisy", t + 1000),
        Verdict::WriteAfterDropped(2)
    );
    assert_eq!(b.admit("p", "noisy", t + 1001), Verdict::Write);
}
