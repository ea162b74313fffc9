//! Change feeds: each `[[functions.db]]`, `[[functions.kv]]` and `[[functions.bucket]]`
//! trigger has a *feeder* that reads the collection's (store's, bucket's) committed changes from a [`ChangeSource`] after the
//! feed's position and forwards them to the trigger's internal queue, moving the position in the
//! same transaction
//! ([`EventLog::forward`](updraft_events::EventLog::forward)). From there the trigger's consumer
//! delivers them like any event: at least once, with retries and a dead-letter queue.
//!
//! A feed starts at the position of the latest change when it is first recorded (a new trigger
//! does not replay history). A feed further behind than the source keeps changes (the
//! database's `changes_max_age`) misses what was trimmed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use updraft_events::{DEFAULT_MAX_MESSAGE_BYTES, NewMessage};

use crate::{Task, Triggers};

/// Most changes one forward carries.
const BATCH: usize = 100;
/// The longest a feeder sleeps without being woken before it looks again.
const IDLE_POLL: Duration = Duration::from_secs(30);
/// The pause after an error.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// What a feed follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A document collection's changes (`created`, `updated`, `deleted`).
    Collection(String),
    /// A key-value store's changes (`set`, `deleted`).
    Store(String),
    /// A bucket's objects (`created`, `removed`).
    Bucket(String),
}

impl Source {
    /// The feed's key: `db.<collection>` or `kv.<store>`.
    pub(crate) fn key(&self) -> String {
        match self {
            Source::Collection(c) => format!("db.{c}"),
            Source::Store(s) => format!("kv.{s}"),
            Source::Bucket(b) => format!("bucket.{b}"),
        }
    }

    /// The CloudEvents `source` and the prefix of `type` of its events.
    fn names(&self) -> (String, &'static str) {
        match self {
            Source::Collection(c) => (format!("/collections/{c}"), "dev.updraft.db"),
            Source::Store(s) => (format!("/stores/{s}"), "dev.updraft.kv"),
            Source::Bucket(b) => (format!("/buckets/{b}"), "dev.updraft.bucket"),
        }
    }
}

/// One committed change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its position: unique, increasing in commit order across the source.
    pub position: u64,
    /// What happened: `created`, `updated`, `deleted` (documents); `set`, `deleted` (keys);
    /// `created`, `removed` (objects).
    pub op: String,
    /// The document's id or the key, or the object's key (the event's `subject`).
    pub id: String,
    /// When it committed (ms since the epoch).
    pub at: i64,
    /// The event's data: a JSON object (its `data`, `before` and `value` members are dropped,
    /// and `truncated` set, when it is too large for one message).
    pub body: Value,
    /// The function whose credentials made the change, if any: that function's own feeds skip
    /// it (the loop guard: a function writing where it is triggered does not trigger itself).
    pub writer: Option<String>,
}

/// Where feeds read committed changes (the document database's change log).
#[async_trait::async_trait]
pub trait ChangeSource: Send + Sync + 'static {
    /// The position of the latest committed change (new feeds start after it).
    ///
    /// # Errors
    /// What went wrong reading it.
    async fn position(&self) -> Result<u64, String>;

    /// Starts logging `source`'s changes if it does not already (a key-value store's log is
    /// off until a trigger follows it).
    ///
    /// # Errors
    /// What went wrong (the store does not exist).
    async fn follow(&self, project: &str, source: &Source) -> Result<(), String>;

    /// Up to `limit` changes of `source` after `after`, oldest first.
    ///
    /// # Errors
    /// What went wrong reading them.
    async fn changes(
        &self,
        project: &str,
        source: &Source,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, String>;

    /// Changes whenever a change commits (its value is the latest position).
    fn watch(&self) -> watch::Receiver<u64>;
}

/// One feed: a collection's or store's changes into one function's internal queue.
#[derive(Debug, PartialEq)]
pub(crate) struct Feeder {
    pub(crate) project: String,
    pub(crate) function: String,
    /// The feed's key ([`Source::key`]).
    pub(crate) key: String,
    pub(crate) source: Source,
    /// The changes it forwards; the rest it skips.
    pub(crate) events: Vec<String>,
    /// Only ids (keys) with this prefix and suffix (a bucket trigger's filter; else empty).
    pub(crate) prefix: String,
    pub(crate) suffix: String,
    pub(crate) queue: String,
}

impl Feeder {
    /// A change as the message the function gets: a CloudEvent `dev.updraft.db.<op>` or
    /// `dev.updraft.kv.<op>` whose subject is the document's id or the key. A change too large
    /// for one message carries no documents or value, and says so (`truncated`).
    fn message(&self, c: &Change) -> NewMessage {
        let mut data = c.body.clone();
        let mut body = data.to_string().into_bytes();
        if body.len() as u64 > DEFAULT_MAX_MESSAGE_BYTES {
            if let Value::Object(o) = &mut data {
                for k in ["data", "before", "value"] {
                    if o.contains_key(k) {
                        o.insert(k.to_owned(), Value::Null);
                    }
                }
                o.insert("truncated".to_owned(), Value::Bool(true));
            }
            body = data.to_string().into_bytes();
        }
        let (source, kind) = self.source.names();
        NewMessage {
            id: Some(format!("{}-{}", self.key, c.position)),
            source,
            kind: format!("{kind}.{}", c.op),
            content_type: "application/json".into(),
            attributes: [("subject".to_owned(), c.id.clone())].into(),
            data: body,
            time_ms: Some(c.at),
            ..NewMessage::default()
        }
    }
}

impl Triggers {
    /// A feeder task: forwards committed changes to its queue, until stopped.
    pub(crate) async fn feed(self: Arc<Self>, mut rx: watch::Receiver<Option<Arc<Task>>>) {
        let Some(source) = self.changes.clone() else {
            return;
        };
        let mut committed = source.watch();
        loop {
            let Some(task) = rx.borrow().clone() else {
                return;
            };
            let Task::Feed(f) = &*task else { return };
            // Marked seen before the read, so a change committed after it wakes the feeder.
            committed.borrow_and_update();
            let forwarded = self.forward_some(&*source, f).await;
            let wait = match forwarded {
                Ok(true) => continue,
                Ok(false) => IDLE_POLL,
                Err(e) => {
                    tracing::warn!(function = f.function, feed = f.key, error = %e, "could not forward changes");
                    ERROR_PAUSE
                }
            };
            tokio::select! {
                r = committed.changed() => if r.is_err() {
                    // The source is gone (shutdown): poll until the task is stopped.
                    tokio::time::sleep(wait).await;
                },
                r = rx.changed() => if r.is_err() { return },
                () = tokio::time::sleep(wait) => {},
            }
        }
    }

    /// Forwards the next changes after the feed's position; `true` if there were any.
    async fn forward_some(&self, source: &dyn ChangeSource, f: &Feeder) -> Result<bool, String> {
        let position = self
            .log
            .feed_position(&f.project, &f.function, &f.key)
            .await
            .map_err(|e| e.to_string())?;
        // Not recorded (yet, or any more): the next reconcile says which.
        let Some(position) = position else {
            return Ok(false);
        };
        let changes = source
            .changes(&f.project, &f.source, position, BATCH)
            .await?;
        let Some(last) = changes.last().map(|c| c.position) else {
            return Ok(false);
        };
        let messages: Vec<NewMessage> = changes
            .iter()
            .filter(|c| {
                f.events.contains(&c.op)
                    && c.id.starts_with(&f.prefix)
                    && c.id.ends_with(&f.suffix)
                    && c.writer.as_deref() != Some(f.function.as_str())
            })
            .map(|c| f.message(c))
            .collect();
        let any = !messages.is_empty();
        self.log
            .forward(&f.project, &f.function, &f.key, last, &f.queue, messages)
            .await
            .map_err(|e| e.to_string())?;
        if any {
            self.wakeups.wake(&f.project, &f.queue);
        }
        Ok(true)
    }
}
