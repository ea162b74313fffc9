//! The event log's errors.

/// Why an event-log operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// No such queue.
    #[error("queue `{0}` does not exist")]
    QueueNotFound(String),
    /// No such topic.
    #[error("topic `{0}` does not exist")]
    TopicNotFound(String),
    /// No such asynchronous invoke.
    #[error("no asynchronous invocation has id `{0}`")]
    AsyncNotFound(String),
    /// A message is larger than its queue accepts.
    #[error("message of {size} bytes is larger than queue `{queue}` accepts ({max} bytes)")]
    TooLarge {
        /// The queue.
        queue: String,
        /// The message's size.
        size: u64,
        /// The queue's limit.
        max: u64,
    },
    /// The queue holds as many messages as it may; consumers must catch up first.
    #[error(
        "queue `{queue}` is full: it holds {max} messages, the limit ([events] max_queue_depth)"
    )]
    QueueFull {
        /// The queue.
        queue: String,
        /// Its depth limit.
        max: u64,
    },
    /// The request contradicts the log's state (e.g. deleting a queue a function consumes).
    #[error("{0}")]
    Conflict(String),
    /// The backend failed (its database, its connection).
    #[error("event log: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}
