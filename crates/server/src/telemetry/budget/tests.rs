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

#[test]
fn lines_counted_from_many_threads_at_once_keep_to_the_budget() {
    let b = std::sync::Arc::new(LineBudget::new(1_000));
    let t = 50_000;
    let written: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                s.spawn(move || {
                    (0..2_000)
                        .filter(|_| b.admit("p", "noisy", t) == Verdict::Write)
                        .count() as u64
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(written, 1_000);
    assert_eq!(
        b.admit("p", "noisy", t + 1_000),
        Verdict::WriteAfterDropped(7_000)
    );
}
