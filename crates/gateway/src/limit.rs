//! Per-function concurrency limits with a bounded wait queue.
//!
//! At most `max_concurrency` invocations of a function run at once. A request beyond that waits
//! in the function's queue, which holds at most `max_queue` requests, for at most
//! `queue_timeout`; a request that finds the queue full, or waits too long, is throttled (the
//! gateway answers 429 with `Retry-After`). A permit is held until the invocation's response
//! body is finished or dropped, because the guest runs until then.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a request may wait for a free slot before it is throttled.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

/// The concurrency limit of one function.
pub struct ConcurrencyLimit {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queue: usize,
    queue_timeout: Duration,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// The wait queue was full.
    QueueFull,
    /// No slot freed up within the queue timeout.
    Timeout,
}

impl ConcurrencyLimit {
    /// `max_concurrency` running at once; as many again may wait up to `queue_timeout`.
    pub fn new(max_concurrency: u32, queue_timeout: Duration) -> Self {
        let max = usize::try_from(max_concurrency.max(1)).unwrap_or(1);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            waiting: AtomicUsize::new(0),
            max_queue: max,
            queue_timeout,
        }
    }

    /// Seconds a throttled client should wait before retrying (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        self.queue_timeout.as_secs().max(1)
    }

    /// Waits for a slot, bounded as described in the module docs.
    ///
    /// # Errors
    /// [`Throttled`] when the request must be turned away.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, Throttled> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Throttled::QueueFull);
        }
        let result =
            tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match result {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a timeout if it ever is.
            Ok(Err(_)) | Err(_) => Err(Throttled::Timeout),
        }
    }
}

#[cfg(test)]
mod tests;
