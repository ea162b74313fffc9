use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::{Activity, Background, FunctionLoad, RunClock, WINDOW};

#[test]
fn a_run_is_long_after_its_allowance_of_ticks() {
    let now = Instant::now();
    // Alone: a run's own allowance still holds.
    let mut clock = RunClock::new(2, FunctionLoad::new(Activity::new()));
    assert!(!clock.tick(now));
    assert!(!clock.tick(now + WINDOW));
    assert!(clock.tick(now + 2 * WINDOW));
    clock.restart();
    assert!(
        !clock.tick(now + 4 * WINDOW),
        "a new run starts interactive again"
    );
}

#[test]
fn a_function_busy_with_many_short_runs_makes_them_long_while_another_runs() {
    let activity = Activity::new();
    let load = FunctionLoad::new(activity.clone());
    let now = Instant::now();
    // A neighbour started a run.
    let other = FunctionLoad::new(activity.clone());
    RunClock::new(2, other.clone()).restart();
    // Three short runs of one tick each, in the same window: the third is over the allowance.
    let mut runs: Vec<_> = (0..3).map(|_| RunClock::new(2, load.clone())).collect();
    assert!(!runs[0].tick(now));
    assert!(!runs[1].tick(now));
    assert!(runs[2].tick(now));
    // In the next window the previous one still counts; two windows on, the load is forgotten.
    assert!(RunClock::new(2, load.clone()).tick(now + WINDOW));
    assert!(!RunClock::new(2, load.clone()).tick(now + 3 * WINDOW));
    // Another function's runs are not affected.
    assert!(!RunClock::new(2, other).tick(now));
}

#[test]
fn a_busy_function_alone_keeps_its_short_runs_interactive() {
    let activity = Activity::new();
    let load = FunctionLoad::new(activity.clone());
    let now = Instant::now();
    let mut runs: Vec<_> = (0..5).map(|_| RunClock::new(2, load.clone())).collect();
    for r in &mut runs {
        r.restart();
        assert!(!r.tick(now), "nobody to yield to: not moved");
    }
    // A neighbour starts running: the load counts again.
    RunClock::new(2, FunctionLoad::new(activity)).restart();
    assert!(RunClock::new(2, load).tick(now));
}

#[tokio::test]
async fn a_run_that_turns_long_moves_to_the_background_threads() {
    let background = Background::new(1);
    let long = Arc::new(AtomicBool::new(false));
    // A short run finishes where it started.
    let here = std::thread::current().id();
    let ran_on = background
        .run(async { std::thread::current().id() }, &long)
        .await;
    assert_eq!(ran_on, Some(here));
    // A run that turns long while it waits finishes on a background thread.
    let flag = long.clone();
    let ran_on = background
        .run(
            async move {
                flag.store(true, Ordering::Release);
                tokio::task::yield_now().await;
                std::thread::current().name().map(str::to_owned)
            },
            &long,
        )
        .await;
    assert_eq!(ran_on, Some(Some("updraft-long-run".to_owned())));
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn background_threads_run_at_the_lowest_priority() {
    let background = Background::new(1);
    let long = Arc::new(AtomicBool::new(true));
    #[allow(unsafe_code)]
    fn policy() -> i32 {
        // SAFETY: pid 0 names the calling thread; the call reads nothing from us.
        unsafe { libc::sched_getscheduler(0) }
    }
    let moved = background
        .run(
            async {
                tokio::task::yield_now().await;
                policy()
            },
            &long,
        )
        .await;
    assert_eq!(moved, Some(libc::SCHED_IDLE));
    assert_ne!(
        policy(),
        libc::SCHED_IDLE,
        "the caller's thread was left alone"
    );
}

#[tokio::test]
async fn a_panic_in_a_moved_run_reaches_its_caller() {
    let background = Background::new(1);
    let long = Arc::new(AtomicBool::new(true));
    let caller = tokio::spawn(async move {
        background
            .run(
                async {
                    tokio::task::yield_now().await;
                    panic!("guest host code panicked");
                },
                &long,
            )
            .await
    });
    assert!(caller.await.unwrap_err().is_panic());
}

/// A tick seen just after a run resumed from a wait passed while it waited: no yield, not
/// counted. One seen a tick later, or in a run's first poll, is the run's own.
#[test]
fn a_tick_just_after_a_resume_passed_while_the_run_waited() {
    let clock = RunClock::new(2, FunctionLoad::new(Activity::new()));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut waited = false;
    let run = std::future::poll_fn(|_| {
        if std::mem::replace(&mut waited, true) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    });
    let mut run = std::pin::pin!(super::stamped(run, clock.poll_mark()));
    assert!(run.as_mut().poll(&mut cx).is_pending());
    assert!(
        !clock.waited_through(Instant::now()),
        "a first poll is not a resume: its ticks count"
    );
    // Instants from before the resume: a slow test thread cannot make them look late.
    let resumed = Instant::now();
    assert!(run.as_mut().poll(&mut cx).is_ready());
    assert!(clock.waited_through(resumed));
    assert!(
        !clock.waited_through(resumed + std::time::Duration::from_secs(1)),
        "a run computing on after its resume yields"
    );
}
