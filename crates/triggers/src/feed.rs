//! Change feeds: each `[[functions.db]]` trigger has a *feeder* that reads the collection's
//! committed changes from a [`ChangeSource`] after the feed's position and forwards them to the
//! trigger's internal queue, moving the position in the same transaction
//! ([`EventLog::forward`](updraft_events::EventLog::forward)). From there the trigger's consumer
//! delivers them like any event: at least once, with retries and a dead-letter queue.
//!
//! A feed starts at the position of the latest change when it is first recorded (a new trigger
//! does not replay history). A feed further behind than the source keeps changes (the
//! database's `changes_max_age`) misses what was trimmed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use updraft_events::{DEFAULT_MAX_MESSAGE_BYTES, NewMessage};

use crate::{Task, Triggers};

/// Most changes one forward carries.
const BATCH: usize = 100;
/// The longest a feeder sleeps without being woken before it looks again.
const IDLE_POLL: Duration = Duration::from_secs(30);
/// The pause after an error.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// One committed change of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its position: unique, increasing in commit order across the source.
    pub position: u64,
    /// `created`, `updated` or `deleted`.
    pub op: String,
    /// The document's id.
    pub id: String,
    /// When it committed (ms since the epoch).
    pub at: i64,
    /// The document after (`None` when deleted).
    pub after: Option<Value>,
    /// The document before (`None` when created).
    pub before: Option<Value>,
}

/// Where feeds read committed changes (the document database's change log).
#[async_trait::async_trait]
pub trait ChangeSource: Send + Sync + 'static {
    /// The position of the latest committed change (new feeds start after it).
    ///
    /// # Errors
    /// What went wrong reading it.
    async fn position(&self) -> Result<u64, String>;

    /// Up to `limit` changes of `collection` after `after`, oldest first.
    ///
    /// # Errors
    /// What went wrong reading them.
    async fn changes(
        &self,
        project: &str,
        collection: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, String>;

    /// Changes whenever a change commits (its value is the latest position).
    fn watch(&self) -> watch::Receiver<u64>;
}

/// One feed: a collection's changes into one function's internal queue.
#[derive(Debug, PartialEq)]
pub(crate) struct Feeder {
    pub(crate) project: String,
    pub(crate) function: String,
    /// The feed's key: `db.<collection>`.
    pub(crate) key: String,
    pub(crate) collection: String,
    /// The changes it forwards (`created`, `updated`, `deleted`); the rest it skips.
    pub(crate) events: Vec<String>,
    pub(crate) queue: String,
}

/// The key of the feed that watches `collection`.
pub(crate) fn db_feed_key(collection: &str) -> String {
    format!("db.{collection}")
}

impl Feeder {
    /// A change as the message the function gets: a CloudEvent `dev.updraft.db.<op>` whose
    /// subject is the document's id and whose data has the document before and after. A
    /// change too large for one message carries no documents, and says so (`truncated`).
    fn message(&self, c: &Change) -> NewMessage {
        let mut data = json!({
            "collection": self.collection,
            "op": c.op,
            "id": c.id,
            "revision": c.position,
            "at": c.at,
            "data": c.after,
            "before": c.before,
        });
        let mut body = data.to_string().into_bytes();
        if body.len() as u64 > DEFAULT_MAX_MESSAGE_BYTES {
            data["data"] = Value::Null;
            data["before"] = Value::Null;
            data["truncated"] = Value::Bool(true);
            body = data.to_string().into_bytes();
        }
        NewMessage {
            id: Some(format!("{}-{}", self.key, c.position)),
            source: format!("/collections/{}", self.collection),
            kind: format!("dev.updraft.db.{}", c.op),
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
            .changes(&f.project, &f.collection, position, BATCH)
            .await?;
        let Some(last) = changes.last().map(|c| c.position) else {
            return Ok(false);
        };
        let messages: Vec<NewMessage> = changes
            .iter()
            .filter(|c| f.events.contains(&c.op))
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
