use super::*;

#[tokio::test(start_paused = true)]
async fn admits_up_to_the_limit_queues_then_throttles() {
    let limit = Arc::new(ConcurrencyLimit::new(1, Duration::from_secs(1)));
    let running = limit.acquire(None).await.unwrap();
    // One may wait; it gets the slot when the running one finishes.
    let waiter = tokio::spawn({
        let limit = limit.clone();
        async move { limit.acquire(None).await.map(|_| ()) }
    });
    tokio::task::yield_now().await;
    // The queue (size 1) is now full.
    assert_eq!(limit.acquire(None).await.err(), Some(Throttled::QueueFull));
    drop(running);
    assert_eq!(waiter.await.unwrap(), Ok(()));

    // A waiter that never gets a slot is throttled after the queue timeout.
    let _held = limit.acquire(None).await.unwrap();
    assert_eq!(limit.acquire(None).await.err(), Some(Throttled::Timeout));
}

#[tokio::test(start_paused = true)]
async fn the_global_cap_throttles_across_functions() {
    let global = Arc::new(Semaphore::new(1));
    let a = ConcurrencyLimit::new(5, Duration::from_secs(1));
    let b = ConcurrencyLimit::new(5, Duration::from_secs(1));
    let held = a.acquire(Some(&global)).await.unwrap();
    // `b` has free slots of its own but the server is at its cap.
    assert_eq!(
        b.acquire(Some(&global)).await.err(),
        Some(Throttled::Global)
    );
    drop(held);
    assert!(b.acquire(Some(&global)).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn resizing_keeps_running_slots_and_retires_them_as_they_finish() {
    let limit = ConcurrencyLimit::new(2, Duration::from_millis(10));
    let a = limit.acquire(None).await.unwrap();
    let b = limit.acquire(None).await.unwrap();
    // Shrink to 1 while both run: neither is disturbed, nothing new gets in.
    limit.resize(1);
    assert_eq!(limit.max(), 1);
    assert!(limit.acquire(None).await.is_err());
    // The first to finish is retired, not handed on.
    drop(a);
    assert!(limit.acquire(None).await.is_err());
    drop(b);
    let c = limit.acquire(None).await.unwrap();
    assert!(limit.acquire(None).await.is_err(), "the limit is 1 now");
    // Growing adds slots at once.
    limit.resize(3);
    let d = limit.acquire(None).await.unwrap();
    let e = limit.acquire(None).await.unwrap();
    assert!(limit.acquire(None).await.is_err());
    drop((c, d, e));
    // Shrinking with free slots takes effect at once.
    limit.resize(1);
    let _f = limit.acquire(None).await.unwrap();
    assert!(limit.acquire(None).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn growing_back_cancels_slots_still_to_retire() {
    let limit = ConcurrencyLimit::new(2, Duration::from_millis(10));
    let a = limit.acquire(None).await.unwrap();
    let b = limit.acquire(None).await.unwrap();
    limit.resize(1); // one slot to retire
    limit.resize(2); // ...not any more
    drop(a);
    drop(b);
    let _c = limit.acquire(None).await.unwrap();
    let _d = limit.acquire(None).await.unwrap();
    assert!(limit.acquire(None).await.is_err());
}
