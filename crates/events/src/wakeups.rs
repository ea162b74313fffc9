//! Wake-ups: a producer that commits something to a queue (a send, a publish, a schedule
//! fire, a retry coming due) wakes whoever waits on that queue, so idle consumers and
//! long-polling receivers sleep instead of polling.
//!
//! A waiter must register *before* it reads the queue ([`Wakeups::waiter`] returns a wake-up
//! that is already registered); a wake that comes after the registration is never lost, even if
//! the waiter has not started waiting yet.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// A registered wake-up: resolves at the first [`Wakeups::wake`] of its queue after it was made.
pub type Waiter = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Wakes those waiting on a queue. In-process today ([`LocalWakeups`]); a cluster backend's
/// crosses nodes.
pub trait Wakeups: Send + Sync + 'static {
    /// Wakes everyone waiting on `queue` of `project`.
    fn wake(&self, project: &str, queue: &str);

    /// A wake-up for `queue` of `project`, registered now.
    fn waiter(&self, project: &str, queue: &str) -> Waiter;
}

/// Wake-ups within one process.
#[derive(Default)]
pub struct LocalWakeups {
    queues: Mutex<HashMap<(String, String), Arc<Notify>>>,
}

impl LocalWakeups {
    fn notify(&self, project: &str, queue: &str) -> Arc<Notify> {
        let mut map = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((project.to_owned(), queue.to_owned()))
            .or_default()
            .clone()
    }
}

impl Wakeups for LocalWakeups {
    fn wake(&self, project: &str, queue: &str) {
        let map = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(&(project.to_owned(), queue.to_owned())) {
            n.notify_waiters();
        }
    }

    fn waiter(&self, project: &str, queue: &str) -> Waiter {
        let mut waiter = Box::pin(self.notify(project, queue).notified_owned());
        waiter.as_mut().enable();
        waiter
    }
}
