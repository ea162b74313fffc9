use super::*;
use updraft_manifest::LIVE;

fn alias(stable: u32) -> AliasRecord {
    AliasRecord {
        name: LIVE.to_owned(),
        version: stable,
        canary: None,
        updated_at: 0,
    }
}

fn canary(auto_rollback: bool, promote_after_ms: Option<u64>) -> Canary {
    Canary {
        version: 2,
        weight: 10,
        auto_rollback,
        promote_after_ms,
        started_at: 1_000,
    }
}

fn summary(requests: u64, errors: u64, p99_ms: u64) -> Summary {
    Summary {
        requests,
        errors,
        p99: Some(Duration::from_millis(p99_ms)),
    }
}

#[test]
fn a_failing_canary_is_rolled_back_once_it_has_enough_requests() {
    let config = CanaryConfig::default();
    let c = canary(true, None);
    // Too few requests to judge.
    assert!(
        judge(
            &config,
            &alias(1),
            &c,
            summary(100, 0, 5),
            summary(19, 10, 5),
            2_000
        )
        .is_none()
    );
    // 50% errors against 0%: rolled back, with the figures in the reason.
    let Some(Verdict::RollBack(why)) = judge(
        &config,
        &alias(1),
        &c,
        summary(100, 0, 5),
        summary(20, 10, 5),
        2_000,
    ) else {
        panic!("not rolled back");
    };
    assert!(
        why.contains("error rate 50.0% over 20 requests vs 0.0% for stable version 1"),
        "{why}"
    );
    // Within the allowed increase (stable 10%, canary 14%): kept.
    assert!(
        judge(
            &config,
            &alias(1),
            &c,
            summary(100, 10, 5),
            summary(50, 7, 5),
            2_000
        )
        .is_none()
    );
}

#[test]
fn a_slow_canary_is_rolled_back_only_past_ratio_and_margin() {
    let config = CanaryConfig::default();
    let c = canary(true, None);
    // 3x slower but only 10 ms: under the 50 ms margin.
    assert!(
        judge(
            &config,
            &alias(1),
            &c,
            summary(100, 0, 5),
            summary(50, 0, 15),
            2_000
        )
        .is_none()
    );
    let Some(Verdict::RollBack(why)) = judge(
        &config,
        &alias(1),
        &c,
        summary(100, 0, 20),
        summary(50, 0, 400),
        2_000,
    ) else {
        panic!("not rolled back");
    };
    assert!(why.contains("p99 latency 400 ms vs 20 ms"), "{why}");
}

#[test]
fn promotion_waits_for_its_time_and_for_evidence() {
    let config = CanaryConfig::default();
    let c = canary(true, Some(10_000));
    // Not yet time.
    assert!(
        judge(
            &config,
            &alias(1),
            &c,
            summary(100, 0, 5),
            summary(50, 0, 5),
            5_000
        )
        .is_none()
    );
    // Time, but a guarded canary with too few requests is not promoted blind.
    assert!(
        judge(
            &config,
            &alias(1),
            &c,
            summary(100, 0, 5),
            summary(3, 0, 5),
            11_000
        )
        .is_none()
    );
    assert!(matches!(
        judge(
            &config,
            &alias(1),
            &c,
            summary(100, 0, 5),
            summary(50, 0, 5),
            11_000
        ),
        Some(Verdict::Promote(_))
    ));
    // An unguarded timed rollout is promoted on time alone.
    let timed = canary(false, Some(10_000));
    assert!(matches!(
        judge(
            &config,
            &alias(1),
            &timed,
            Summary::default(),
            Summary::default(),
            11_000
        ),
        Some(Verdict::Promote(_))
    ));
}
