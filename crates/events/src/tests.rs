#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn backoff_grows_with_jitter_and_caps() {
    let base = Duration::from_millis(100);
    let max = Duration::from_secs(1);
    for _ in 0..100 {
        let d1 = backoff(base, max, 1);
        assert!((Duration::from_millis(50)..=base).contains(&d1), "{d1:?}");
        let d3 = backoff(base, max, 3);
        assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&d3));
        assert!(backoff(base, max, 30) <= max);
    }
}
