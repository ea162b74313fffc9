use super::*;

#[tokio::test(start_paused = true)]
async fn admits_up_to_the_limit_queues_then_throttles() {
    let limit = Arc::new(ConcurrencyLimit::new(1, Duration::from_secs(1)));
    let running = limit.acquire().await.unwrap();
    // One may wait; it gets the slot when the running one finishes.
    let waiter = tokio::spawn({
        let limit = limit.clone();
        async move { limit.acquire().await.map(|_| ()) }
    });
    tokio::task::yield_now().await;
    // The queue (size 1) is now full.
    assert_eq!(limit.acquire().await.err(), Some(Throttled::QueueFull));
    drop(running);
    assert_eq!(waiter.await.unwrap(), Ok(()));

    // A waiter that never gets a slot is throttled after the queue timeout.
    let _held = limit.acquire().await.unwrap();
    assert_eq!(limit.acquire().await.err(), Some(Throttled::Timeout));
}
