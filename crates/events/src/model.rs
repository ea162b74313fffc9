//! The event log's data: queue settings, messages stored and received, how they are settled,
//! and what a function's triggers record.

use std::collections::BTreeMap;
use std::time::Duration;

use updraft_api::{AttemptError, Filter};

use crate::{DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_VISIBILITY_TIMEOUT};

/// Settings of a queue being created.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    /// Its name.
    pub name: String,
    /// How long a received message stays invisible.
    pub visibility_timeout: Duration,
    /// Largest message accepted.
    pub max_message_bytes: u64,
}

impl QueueSpec {
    /// A queue with default settings.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// A message to store.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// Its id (a new one when `None`).
    pub id: Option<String>,
    /// Where it comes from (a URI reference: `/queues/orders`).
    pub source: String,
    /// Its CloudEvents type.
    pub kind: String,
    /// Its media type.
    pub content_type: String,
    /// String attributes.
    pub attributes: BTreeMap<String, String>,
    /// The body.
    pub data: Vec<u8>,
    /// When it was first produced (ms since the epoch; now when `None`).
    pub time_ms: Option<i64>,
    /// How long it stays invisible after it is stored.
    pub delay: Duration,
}

/// The event triggers one function declares (see [`EventLog::sync_triggers`](crate::EventLog::sync_triggers)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionTriggers {
    /// The function.
    pub function: String,
    /// Queues it consumes.
    pub queues: Vec<String>,
    /// Topics it subscribes to, with their filters.
    pub topics: Vec<(String, Filter)>,
    /// Keys of its schedules.
    pub schedules: Vec<String>,
    /// Its change feeds: each key (`db.orders`) with the position a new feed starts after.
    pub feeds: Vec<(String, u64)>,
}

/// A received message, leased until its visibility timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id (`ce-id`).
    pub id: String,
    /// The handle that settles it while the lease lasts.
    pub receipt: String,
    /// The queue it is in.
    pub queue: String,
    /// Where it came from.
    pub source: String,
    /// Its CloudEvents type.
    pub kind: String,
    /// Its media type.
    pub content_type: String,
    /// String attributes.
    pub attributes: BTreeMap<String, String>,
    /// The body.
    pub data: Vec<u8>,
    /// When it was produced (ms since the epoch).
    pub time_ms: i64,
    /// How many times it has been received from this queue, this time included.
    pub attempts: u32,
    /// Failed deliveries so far.
    pub errors: Vec<AttemptError>,
}

/// Who holds a lease: the server's own deliverer (its leases are released when the server
/// starts again, as nothing can be running them), or a client of the queue API (its leases run
/// their full visibility timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The server's deliverer.
    Deliverer,
    /// A client of the queue API.
    Client,
}

/// How to settle delivered messages.
#[derive(Debug, Clone)]
pub enum Settle {
    /// Delivered: delete them.
    Ack,
    /// The delivery failed: record the error, then retry after `delay`, or move them to
    /// `dead_letter` when they have had `max_attempts`.
    Fail {
        /// What went wrong.
        error: AttemptError,
        /// Attempts allowed.
        max_attempts: u32,
        /// Backoff before the next one.
        delay: Duration,
        /// Where they go when out of attempts (created if missing).
        dead_letter: String,
    },
    /// Not attempted after all (the function was throttled): make them visible again after
    /// `delay` without counting the attempt.
    Release {
        /// Backoff before the next try.
        delay: Duration,
    },
}

/// The outcome of an asynchronous invoke's attempt, kept on its record.
#[derive(Debug, Clone, Default)]
pub struct AsyncResult {
    /// The attempt's request id.
    pub request_id: String,
    /// The HTTP status (0 when there was none).
    pub status: u16,
    /// The response body (successes only; cut at [`MAX_ASYNC_RESULT`](crate::MAX_ASYNC_RESULT)).
    pub body: Option<Vec<u8>>,
    /// What went wrong.
    pub error: Option<String>,
}

/// What became of settled messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Deleted (acked).
    Acked,
    /// Visible again at this time (ms since the epoch).
    Retrying(i64),
    /// Moved to the dead-letter queue.
    DeadLettered,
    /// The lease had run out (the message was received again, or deleted): nothing done.
    Gone,
}

/// One queue's depth, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// The project.
    pub project: String,
    /// The queue.
    pub queue: String,
    /// Messages in it.
    pub depth: u64,
    /// Received and leased.
    pub in_flight: u64,
    /// Age of the oldest message, in ms.
    pub oldest_age_ms: u64,
}
