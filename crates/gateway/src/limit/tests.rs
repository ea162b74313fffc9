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
