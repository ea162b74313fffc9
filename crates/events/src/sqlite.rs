//! The embedded backend: `events.db`, a SQLite database in WAL mode. Transactions that accept
//! events (sends, publishes, schedule fires, async submits) and change queues commit with
//! `synchronous = FULL`: they are on disk before they are acknowledged, even across a power
//! loss. Leases and settles (receive, ack, retry, dead-letter) commit with `NORMAL`: they
//! survive a crash of the process, and a power loss can only undo the latest of them, which
//! delivers those events again (at least once), never loses one. The next `FULL` commit makes
//! everything before it durable too.
//!
//! SQLite calls block, so every operation runs on Tokio's blocking pool; the connection is
//! shared under a mutex (`db`), the operations themselves are in `ops`.

mod db;
mod depth;
mod feeds;
mod keys;
mod ops;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use updraft_api::{AsyncInvocation, Filter, QueueInfo, TopicInfo};

use crate::{
    AsyncResult, EventError, EventLog, Fate, FunctionTriggers, Holder, KeyRole, Message,
    NewMessage, QueueSpec, QueueStats, Settle,
};

/// The SQLite event log. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct SqliteLog {
    db: Arc<db::Db>,
}

impl SqliteLog {
    /// Opens (creating if needed) the event log at `path`. Blocking: call it at start-up or
    /// from a blocking thread.
    ///
    /// # Errors
    /// [`EventError::Backend`] if the file cannot be opened or its schema created.
    pub fn open(path: &Path) -> Result<Self, EventError> {
        Ok(Self {
            db: Arc::new(db::Db::open(path)?),
        })
    }

    /// Sets the most messages a client may keep in one queue (default
    /// [`crate::DEFAULT_MAX_QUEUE_DEPTH`]); past it sends fail with
    /// [`EventError::QueueFull`].
    pub fn set_max_queue_depth(&self, max: u64) {
        self.db
            .max_depth
            .store(max.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs `f` on the connection on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&db::Db) -> Result<T, EventError> + Send + 'static,
    ) -> Result<T, EventError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .unwrap_or_else(|e| Err(EventError::Backend(Box::new(e))))
    }
}

fn own(s: &str) -> String {
    s.to_owned()
}

#[async_trait::async_trait]
impl EventLog for SqliteLog {
    async fn create_queue(
        &self,
        project: &str,
        spec: &QueueSpec,
    ) -> Result<(QueueInfo, Option<String>), EventError> {
        let (p, spec) = (own(project), spec.clone());
        self.run(move |db| db.create_queue(&p, &spec)).await
    }

    async fn rotate_queue_key(&self, project: &str, queue: &str) -> Result<String, EventError> {
        let (p, q) = (own(project), own(queue));
        self.run(move |db| db.rotate_queue_key(&p, &q)).await
    }

    async fn check_queue_key(
        &self,
        project: &str,
        queue: &str,
        key: &str,
    ) -> Result<Option<KeyRole>, EventError> {
        let (p, q, k) = (own(project), own(queue), own(key));
        self.run(move |db| db.check_queue_key(&p, &q, &k)).await
    }

    async fn add_queue_key(
        &self,
        project: &str,
        queue: &str,
        role: KeyRole,
    ) -> Result<String, EventError> {
        let (p, q) = (own(project), own(queue));
        self.run(move |db| db.add_queue_key(&p, &q, role)).await
    }

    async fn delete_queue(&self, project: &str, queue: &str) -> Result<(), EventError> {
        let (p, q) = (own(project), own(queue));
        self.run(move |db| db.delete_queue(&p, &q)).await
    }

    async fn queue(&self, project: &str, queue: &str) -> Result<QueueInfo, EventError> {
        let (p, q) = (own(project), own(queue));
        self.run(move |db| db.queue(&p, &q)).await
    }

    async fn queues(&self, project: &str, internal: bool) -> Result<Vec<QueueInfo>, EventError> {
        let p = own(project);
        self.run(move |db| db.queues(&p, internal)).await
    }

    async fn send(
        &self,
        project: &str,
        queue: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>, EventError> {
        let (p, q) = (own(project), own(queue));
        self.run(move |db| db.send(&p, &q, messages)).await
    }

    async fn receive(
        &self,
        project: &str,
        queue: &str,
        max: u32,
        visibility: Option<Duration>,
        holder: Holder,
    ) -> Result<Vec<Message>, EventError> {
        let (p, q) = (own(project), own(queue));
        self.run(move |db| db.receive(&p, &q, max, visibility, holder))
            .await
    }

    async fn next_visible(&self, project: &str, queue: &str) -> Result<Option<i64>, EventError> {
        let (p, q) = (own(project), own(queue));
        self.run(move |db| db.next_visible(&p, &q)).await
    }

    async fn ack(
        &self,
        project: &str,
        queue: &str,
        receipts: &[String],
    ) -> Result<u64, EventError> {
        let (p, q, r) = (own(project), own(queue), receipts.to_vec());
        self.run(move |db| db.ack(&p, &q, &r)).await
    }

    async fn settle(
        &self,
        project: &str,
        receipts: &[String],
        how: &Settle,
        result: Option<&AsyncResult>,
    ) -> Result<Fate, EventError> {
        let (p, r, how, result) = (
            own(project),
            receipts.to_vec(),
            how.clone(),
            result.cloned(),
        );
        self.run(move |db| db.settle(&p, &r, &how, result.as_ref()))
            .await
    }

    async fn release_all(&self, holder: Holder) -> Result<u64, EventError> {
        self.run(move |db| db.release_all(holder)).await
    }

    async fn purge(&self, project: &str, queue: &str) -> Result<u64, EventError> {
        let (p, q) = (own(project), own(queue));
        self.run(move |db| db.purge(&p, &q)).await
    }

    async fn stats(&self) -> Result<Vec<QueueStats>, EventError> {
        self.run(db::Db::stats).await
    }

    async fn create_topic(
        &self,
        project: &str,
        topic: &str,
    ) -> Result<(TopicInfo, Option<String>), EventError> {
        let (p, t) = (own(project), own(topic));
        self.run(move |db| db.create_topic(&p, &t)).await
    }

    async fn rotate_topic_key(&self, project: &str, topic: &str) -> Result<String, EventError> {
        let (p, t) = (own(project), own(topic));
        self.run(move |db| db.rotate_topic_key(&p, &t)).await
    }

    async fn check_topic_key(
        &self,
        project: &str,
        topic: &str,
        key: &str,
    ) -> Result<bool, EventError> {
        let (p, t, k) = (own(project), own(topic), own(key));
        self.run(move |db| db.check_topic_key(&p, &t, &k)).await
    }

    async fn delete_topic(&self, project: &str, topic: &str) -> Result<(), EventError> {
        let (p, t) = (own(project), own(topic));
        self.run(move |db| db.delete_topic(&p, &t)).await
    }

    async fn topic(&self, project: &str, topic: &str) -> Result<TopicInfo, EventError> {
        let (p, t) = (own(project), own(topic));
        self.run(move |db| db.topic(&p, &t)).await
    }

    async fn topics(&self, project: &str) -> Result<Vec<TopicInfo>, EventError> {
        let p = own(project);
        self.run(move |db| db.topics(&p)).await
    }

    async fn subscribe_queue(
        &self,
        project: &str,
        topic: &str,
        queue: &str,
        filter: &Filter,
    ) -> Result<(), EventError> {
        let (p, t, q, f) = (own(project), own(topic), own(queue), filter.clone());
        self.run(move |db| db.subscribe_queue(&p, &t, &q, &f)).await
    }

    async fn unsubscribe_queue(
        &self,
        project: &str,
        topic: &str,
        queue: &str,
    ) -> Result<bool, EventError> {
        let (p, t, q) = (own(project), own(topic), own(queue));
        self.run(move |db| db.unsubscribe_queue(&p, &t, &q)).await
    }

    async fn publish(
        &self,
        project: &str,
        topic: &str,
        message: NewMessage,
    ) -> Result<(String, Vec<String>), EventError> {
        let (p, t) = (own(project), own(topic));
        self.run(move |db| db.publish(&p, &t, message)).await
    }

    async fn last_slot(
        &self,
        project: &str,
        function: &str,
        key: &str,
    ) -> Result<Option<i64>, EventError> {
        let (p, f, k) = (own(project), own(function), own(key));
        self.run(move |db| db.last_slot(&p, &f, &k)).await
    }

    async fn fire(
        &self,
        project: &str,
        function: &str,
        key: &str,
        slot_ms: i64,
        queue: &str,
        message: NewMessage,
    ) -> Result<bool, EventError> {
        let (p, f, k, q) = (own(project), own(function), own(key), own(queue));
        self.run(move |db| db.fire(&p, &f, &k, slot_ms, &q, message))
            .await
    }

    async fn feed_position(
        &self,
        project: &str,
        function: &str,
        key: &str,
    ) -> Result<Option<u64>, EventError> {
        let (p, f, k) = (own(project), own(function), own(key));
        self.run(move |db| db.feed_position(&p, &f, &k)).await
    }

    async fn forward(
        &self,
        project: &str,
        function: &str,
        key: &str,
        position: u64,
        queue: &str,
        messages: Vec<NewMessage>,
    ) -> Result<bool, EventError> {
        let (p, f, k, q) = (own(project), own(function), own(key), own(queue));
        self.run(move |db| db.forward(&p, &f, &k, position, &q, messages))
            .await
    }

    async fn submit_async(
        &self,
        project: &str,
        function: &str,
        queue: &str,
        idempotency_key: Option<&str>,
        message: NewMessage,
    ) -> Result<(AsyncInvocation, bool), EventError> {
        let (p, f, q, k) = (
            own(project),
            own(function),
            own(queue),
            idempotency_key.map(own),
        );
        self.run(move |db| db.submit_async(&p, &f, &q, k.as_deref(), message))
            .await
    }

    async fn expire_async(&self, before_ms: i64) -> Result<u64, EventError> {
        self.run(move |db| db.expire_async(before_ms)).await
    }

    async fn async_invocation(
        &self,
        project: &str,
        id: &str,
    ) -> Result<AsyncInvocation, EventError> {
        let (p, i) = (own(project), own(id));
        self.run(move |db| db.async_invocation(&p, &i)).await
    }

    async fn sync_triggers(
        &self,
        project: &str,
        functions: &[FunctionTriggers],
        forgotten: &[String],
        now_ms: i64,
    ) -> Result<(), EventError> {
        let (p, f, g) = (own(project), functions.to_vec(), forgotten.to_vec());
        self.run(move |db| db.sync_triggers(&p, &f, &g, now_ms))
            .await
    }
}

#[cfg(test)]
mod tests;
