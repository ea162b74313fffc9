//! The durable event log: queues and their messages, topics and their subscriptions, the last
//! fired slot of every schedule, and asynchronous invokes.
//!
//! Everything that makes a function run later goes through a queue here: a `[[functions.queue]]`
//! trigger consumes a user's queue; schedules, topic subscriptions and asynchronous invokes each
//! feed a hidden per-function queue ([`internal_queue`]). A consumer *receives* messages with a
//! lease (a visibility timeout and a receipt), then *settles* them: acked (deleted), retried
//! after a backoff with the error kept in the message's history, or moved to a dead-letter queue
//! once `max_attempts` have failed. A crash loses no acknowledged message: a send is one
//! transaction, and an unsettled lease simply runs out.
//!
//! [`EventLog`] is the boundary (async, with no backend type in its signatures or errors);
//! [`SqliteLog`] is the embedded backend (`events.db` in the data directory). A cluster backend
//! (NATS JetStream) implements the same trait and must pass the same `conformance` suite (feature `conformance`).
//! [`Wakeups`] tell consumers and long-polling receivers that a queue has something new
//! ([`LocalWakeups`] within one process; a cluster backend's would cross nodes).
//!
//! This crate knows nothing of HTTP, functions or Wasmtime: trigger delivery
//! (`updraft-triggers`) turns messages into invocations and settles them.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
mod keys;
mod model;
mod sqlite;
mod wakeups;

pub use error::EventError;
pub use keys::KeyRole;
pub use model::{
    AsyncResult, Fate, FunctionTriggers, Holder, Message, NewMessage, QueueSpec, QueueStats, Settle,
};
pub use sqlite::SqliteLog;
pub use wakeups::{LocalWakeups, Waiter, Wakeups};

use std::time::Duration;

use sha2::Digest as _;

use updraft_api::{AsyncInvocation, AsyncStatus, Filter, QueueInfo, TopicInfo};

/// Default visibility timeout of a queue.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest message of a queue (SQS's).
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 256 << 10;
/// Largest `max_message_size` a queue may have.
pub const MAX_MESSAGE_BYTES: u64 = 1 << 20;
/// Longest delay a message may be sent with.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Longest visibility timeout.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// Most of a successful asynchronous invoke's response body that is kept.
pub const MAX_ASYNC_RESULT: usize = 256 << 10;

/// Most messages a queue holds before client sends are refused ([`EventError::QueueFull`]).
pub const DEFAULT_MAX_QUEUE_DEPTH: u64 = 1_000_000;

/// The hidden queue that feeds one function's schedules, topic subscriptions or asynchronous
/// invokes. Its name has a `~`, which user queue names cannot.
pub fn internal_queue(function: &str, feed: Feed<'_>) -> String {
    match feed {
        Feed::Async => format!("~async.{function}"),
        Feed::Schedule(key) => {
            let h = hex::encode(&sha2::Sha256::digest(key.as_bytes())[..4]);
            format!("~schedule.{function}.{h}")
        }
        Feed::Topic(topic) => format!("~topic.{function}.{topic}"),
        Feed::Change(key) => format!("~change.{function}.{key}"),
    }
}

/// What feeds an internal queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed<'a> {
    /// Asynchronous invokes.
    Async,
    /// One schedule of the function (by its key).
    Schedule(&'a str),
    /// A topic the function subscribes to.
    Topic(&'a str),
    /// A change feed of the function (by its key: `db.orders`).
    Change(&'a str),
}

/// The dead-letter queue of a function that names none: `<function>-dlq`.
pub fn default_dead_letter(function: &str) -> String {
    format!("{function}-dlq")
}

/// The durable event log. Every method is one transaction: when it returns `Ok`, what it did is
/// committed (sends, publishes, schedule fires and asynchronous submits durably, before they
/// are acknowledged). Backends: [`SqliteLog`] (embedded); a cluster backend (NATS JetStream)
/// implements the same trait and passes the same `conformance` suite (feature `conformance`).
#[async_trait::async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Creates a queue unless it exists. Returns it and, when created, its access key (shown
    /// once; only its hash is kept).
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn create_queue(
        &self,
        project: &str,
        spec: &QueueSpec,
    ) -> Result<(QueueInfo, Option<String>), EventError>;

    /// Replaces a queue's access key and returns the new one; every send-only and consume-only
    /// key of the queue is revoked with it.
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`].
    async fn rotate_queue_key(&self, project: &str, queue: &str) -> Result<String, EventError>;

    /// Adds a key that may do only what `role` allows ([`KeyRole::Send`] or
    /// [`KeyRole::Consume`]; [`KeyRole::Full`] rotates the queue's key) and returns it.
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`].
    async fn add_queue_key(
        &self,
        project: &str,
        queue: &str,
        role: KeyRole,
    ) -> Result<String, EventError>;

    /// What `key` may do with the queue, if it is one of its keys.
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`].
    async fn check_queue_key(
        &self,
        project: &str,
        queue: &str,
        key: &str,
    ) -> Result<Option<KeyRole>, EventError>;

    /// Deletes a queue, its messages and its subscriptions.
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`].
    async fn delete_queue(&self, project: &str, queue: &str) -> Result<(), EventError>;

    /// One queue and its depth.
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`].
    async fn queue(&self, project: &str, queue: &str) -> Result<QueueInfo, EventError>;

    /// The project's queues (internal ones too when `internal`), by name.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn queues(&self, project: &str, internal: bool) -> Result<Vec<QueueInfo>, EventError>;

    /// Stores messages in one transaction; returns their ids.
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`], [`EventError::TooLarge`] (nothing is stored).
    async fn send(
        &self,
        project: &str,
        queue: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>, EventError>;

    /// Leases up to `max` visible messages, oldest first, for `visibility` (`None`: the
    /// queue's visibility timeout).
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`].
    async fn receive(
        &self,
        project: &str,
        queue: &str,
        max: u32,
        visibility: Option<Duration>,
        holder: Holder,
    ) -> Result<Vec<Message>, EventError>;

    /// When the next message of the queue becomes visible (ms since the epoch), if it has any.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn next_visible(&self, project: &str, queue: &str) -> Result<Option<i64>, EventError>;

    /// Deletes messages of `queue` by receipt; returns how many were deleted (expired receipts,
    /// and receipts of another queue's messages, are not).
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn ack(&self, project: &str, queue: &str, receipts: &[String])
    -> Result<u64, EventError>;

    /// Settles delivered messages (one transaction), and updates the asynchronous-invoke record
    /// of each (if it is one) with `result`. Returns the fate of the first.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn settle(
        &self,
        project: &str,
        receipts: &[String],
        how: &Settle,
        result: Option<&AsyncResult>,
    ) -> Result<Fate, EventError>;

    /// Makes every message `holder` has leased visible again (at start-up, for the deliverer).
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn release_all(&self, holder: Holder) -> Result<u64, EventError>;

    /// Deletes every message of a queue; returns how many.
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`].
    async fn purge(&self, project: &str, queue: &str) -> Result<u64, EventError>;

    /// Depth of every queue of every project.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn stats(&self) -> Result<Vec<QueueStats>, EventError>;

    /// Creates a topic unless it exists; returns it and, when created, its publish key.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn create_topic(
        &self,
        project: &str,
        topic: &str,
    ) -> Result<(TopicInfo, Option<String>), EventError>;

    /// Replaces a topic's publish key and returns the new one.
    ///
    /// # Errors
    /// [`EventError::TopicNotFound`].
    async fn rotate_topic_key(&self, project: &str, topic: &str) -> Result<String, EventError>;

    /// Whether `key` is the topic's publish key.
    ///
    /// # Errors
    /// [`EventError::TopicNotFound`].
    async fn check_topic_key(
        &self,
        project: &str,
        topic: &str,
        key: &str,
    ) -> Result<bool, EventError>;

    /// Deletes a topic and its subscriptions.
    ///
    /// # Errors
    /// [`EventError::TopicNotFound`].
    async fn delete_topic(&self, project: &str, topic: &str) -> Result<(), EventError>;

    /// One topic.
    ///
    /// # Errors
    /// [`EventError::TopicNotFound`].
    async fn topic(&self, project: &str, topic: &str) -> Result<TopicInfo, EventError>;

    /// The project's topics.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn topics(&self, project: &str) -> Result<Vec<TopicInfo>, EventError>;

    /// Subscribes a queue to a topic (replacing its filter if subscribed).
    ///
    /// # Errors
    /// [`EventError::TopicNotFound`], [`EventError::QueueNotFound`].
    async fn subscribe_queue(
        &self,
        project: &str,
        topic: &str,
        queue: &str,
        filter: &Filter,
    ) -> Result<(), EventError>;

    /// Removes a queue's subscription; returns whether there was one.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn unsubscribe_queue(
        &self,
        project: &str,
        topic: &str,
        queue: &str,
    ) -> Result<bool, EventError>;

    /// Publishes: one copy to every subscription whose filter matches, in one transaction.
    /// Returns the event id and the queues that got a copy.
    ///
    /// # Errors
    /// [`EventError::TopicNotFound`], [`EventError::TooLarge`].
    async fn publish(
        &self,
        project: &str,
        topic: &str,
        message: NewMessage,
    ) -> Result<(String, Vec<String>), EventError>;

    /// The last slot a schedule fired (or its start), if the schedule exists.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn last_slot(
        &self,
        project: &str,
        function: &str,
        key: &str,
    ) -> Result<Option<i64>, EventError>;

    /// Fires a schedule's slot: in one transaction, records `slot_ms` as its last slot and
    /// stores `message` in `queue`, unless a slot at or after it was already fired. Returns
    /// whether it fired.
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`].
    async fn fire(
        &self,
        project: &str,
        function: &str,
        key: &str,
        slot_ms: i64,
        queue: &str,
        message: NewMessage,
    ) -> Result<bool, EventError>;

    /// Where a function's change feed stands: the position of the last change it forwarded
    /// (or its start), if the feed exists.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn feed_position(
        &self,
        project: &str,
        function: &str,
        key: &str,
    ) -> Result<Option<u64>, EventError>;

    /// Forwards a change feed's changes: in one transaction, records `position` as the feed's
    /// and stores `messages` (none when every change was filtered out) in `queue`, unless the
    /// feed is gone or already at or past `position`. Returns whether it forwarded. A crash
    /// before the commit forwards the same changes again, after it never: each change is
    /// delivered once from the feed, then at least once from the queue.
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`], [`EventError::TooLarge`].
    async fn forward(
        &self,
        project: &str,
        function: &str,
        key: &str,
        position: u64,
        queue: &str,
        messages: Vec<NewMessage>,
    ) -> Result<bool, EventError>;

    /// Accepts an asynchronous invoke: its record and its message in `queue`, in one
    /// transaction. With an idempotency key already used for the function, returns that
    /// invoke instead (and `false`).
    ///
    /// # Errors
    /// [`EventError::QueueNotFound`], [`EventError::TooLarge`].
    async fn submit_async(
        &self,
        project: &str,
        function: &str,
        queue: &str,
        idempotency_key: Option<&str>,
        message: NewMessage,
    ) -> Result<(AsyncInvocation, bool), EventError>;

    /// One asynchronous invoke.
    ///
    /// # Errors
    /// [`EventError::AsyncNotFound`].
    async fn async_invocation(
        &self,
        project: &str,
        id: &str,
    ) -> Result<AsyncInvocation, EventError>;

    /// Deletes the records of asynchronous invokes that finished (succeeded or failed) before
    /// `before_ms`, across projects; queued and retrying ones stay. Returns how many went.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn expire_async(&self, before_ms: i64) -> Result<u64, EventError>;

    /// Brings the triggers of `functions` in line, and deletes everything of `forgotten`
    /// functions, in one transaction. For each function: its async-invoke queue exists; it
    /// consumes exactly `queues` (created if missing; a consumed queue cannot be deleted); it
    /// subscribes to exactly `topics` (topics and its internal queues created as needed); it
    /// has exactly `schedules` (new ones start at `now_ms`, their first slot the next one after
    /// it; existing ones keep their last fired slot); it has exactly `feeds` (new ones start
    /// at their given position, existing ones keep theirs; each with its internal queue).
    /// Forgetting deletes a function's schedules, subscriptions, feeds, internal queues and
    /// asynchronous-invoke records.
    ///
    /// # Errors
    /// [`EventError::Backend`].
    async fn sync_triggers(
        &self,
        project: &str,
        functions: &[FunctionTriggers],
        forgotten: &[String],
        now_ms: i64,
    ) -> Result<(), EventError>;
}

/// Exponential backoff with jitter: attempt `n` (1 for the first retry) waits a random time
/// between half and all of `base x 2^(n-1)`, capped at `max`.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let full = exp.min(max);
    let half = full / 2;
    half + full.saturating_sub(half).mul_f64(rand::random::<f64>())
}

/// The state an asynchronous invoke is in after a settle.
pub(crate) fn async_status(how: &Settle, fate: Fate) -> Option<AsyncStatus> {
    match (how, fate) {
        (_, Fate::Gone) | (Settle::Release { .. }, _) => None,
        (Settle::Ack, _) => Some(AsyncStatus::Succeeded),
        (_, Fate::DeadLettered) => Some(AsyncStatus::Failed),
        _ => Some(AsyncStatus::Retrying),
    }
}

/// A new message or event id: the time in ms (12 hex digits) then 80 random bits, so ids sort
/// by time.
pub fn new_id() -> String {
    let ms = u64::try_from(now_ms()).unwrap_or(0) & 0xffff_ffff_ffff;
    let r: u128 = rand::random::<u128>() & ((1u128 << 80) - 1);
    format!("{ms:012x}{r:020x}")
}

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
