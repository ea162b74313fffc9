//! Concurrency limits with a bounded wait queue: per function, and for the whole server.
//!
//! At most `max_concurrency` invocations of a function run at once, whichever of its versions
//! they run (a canary shares its function's limit), and at most the global cap across all
//! functions. An invocation beyond either waits in its function's queue, which holds at most
//! `max_concurrency` invocations, for at most `queue_timeout` in all; one that finds the queue
//! full, or waits too long, is throttled (the dispatcher answers 429 with `Retry-After`).
//! Waiting is per function, so a flooded function fills its own queue, not another's. Permits
//! are held until the invocation's response body is finished or dropped, because the guest runs
//! until then. A redeploy that changes `max_concurrency` resizes the limit in place: invocations
//! running keep their slots, and a smaller limit takes effect as they finish.

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
    /// The current `max_concurrency` (also the most that may wait).
    max: AtomicUsize,
    /// Slots to retire as running invocations give them back (after a shrink).
    debt: Arc<AtomicUsize>,
    queue_timeout: Duration,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// The wait queue was full.
    QueueFull,
    /// No slot of the function freed up within the queue timeout.
    Timeout,
    /// The function had a slot but the server stayed at its global cap for the queue timeout.
    Global,
}

/// The slots an admitted invocation holds: its function's and the server's.
pub struct Permits {
    function: Option<OwnedSemaphorePermit>,
    debt: Arc<AtomicUsize>,
    _global: Option<OwnedSemaphorePermit>,
}

impl Drop for Permits {
    fn drop(&mut self) {
        // After a shrink, the slot is retired instead of given back.
        if let Some(p) = self.function.take()
            && self
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
                .is_ok()
        {
            p.forget();
        }
    }
}

impl ConcurrencyLimit {
    /// `max_concurrency` running at once; as many again may wait up to `queue_timeout`.
    pub fn new(max_concurrency: u32, queue_timeout: Duration) -> Self {
        let max = usize::try_from(max_concurrency.max(1)).unwrap_or(1);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            waiting: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
            debt: Arc::new(AtomicUsize::new(0)),
            queue_timeout,
        }
    }

    /// The current `max_concurrency`.
    pub fn max(&self) -> u32 {
        u32::try_from(self.max.load(Ordering::Acquire)).unwrap_or(u32::MAX)
    }

    /// Changes `max_concurrency` (a redeploy changed it). Invocations running keep their
    /// slots; when the limit shrinks, slots are retired as they are given back.
    pub fn resize(&self, max_concurrency: u32) {
        let new = usize::try_from(max_concurrency.max(1)).unwrap_or(1);
        let old = self.max.swap(new, Ordering::AcqRel);
        if new > old {
            // Cancel slots still to retire first, then add what is left.
            let mut grow = new - old;
            let mut debt = self.debt.load(Ordering::Acquire);
            loop {
                let cancel = debt.min(grow);
                match self.debt.compare_exchange(
                    debt,
                    debt - cancel,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        grow -= cancel;
                        break;
                    }
                    Err(d) => debt = d,
                }
            }
            if grow > 0 {
                self.slots.add_permits(grow);
            }
        } else if new < old {
            let shrink = old - new;
            let forgotten = self.slots.forget_permits(shrink);
            self.debt.fetch_add(shrink - forgotten, Ordering::AcqRel);
        }
    }

    /// Seconds a throttled client should wait before retrying (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        self.queue_timeout.as_secs().max(1)
    }

    /// Waits for a slot of this function and then one of `global` (the server-wide cap, if
    /// any), bounded as described in the module docs.
    ///
    /// # Errors
    /// [`Throttled`] when the request must be turned away.
    pub async fn acquire(&self, global: Option<&Arc<Semaphore>>) -> Result<Permits, Throttled> {
        if let Ok(f) = self.slots.clone().try_acquire_owned() {
            match global.map(|g| g.clone().try_acquire_owned()) {
                None => return Ok(self.permits(f, None)),
                Some(Ok(g)) => return Ok(self.permits(f, Some(g))),
                // The server is full: give the slot back and queue for both.
                Some(Err(_)) => drop(f),
            }
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max.load(Ordering::Acquire) {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Throttled::QueueFull);
        }
        let mut waiting_global = false;
        let result = tokio::time::timeout(self.queue_timeout, async {
            // The semaphores are never closed; `Err` cannot happen but is mapped anyway.
            let f = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Throttled::Timeout)?;
            waiting_global = true;
            let g = match global {
                Some(g) => Some(
                    g.clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| Throttled::Global)?,
                ),
                None => None,
            };
            Ok(self.permits(f, g))
        })
        .await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match result {
            Ok(r) => r,
            // Timed out: on the function's slots, or on the global ones.
            Err(_) if waiting_global => Err(Throttled::Global),
            Err(_) => Err(Throttled::Timeout),
        }
    }
}

impl ConcurrencyLimit {
    fn permits(&self, f: OwnedSemaphorePermit, g: Option<OwnedSemaphorePermit>) -> Permits {
        Permits {
            function: Some(f),
            debt: self.debt.clone(),
            _global: g,
        }
    }
}

#[cfg(test)]
mod tests;
