//! Trigger delivery: turns the event log's messages into invocations.
//!
//! Every event trigger of a served function (the `live` version's `[[functions.schedule]]`,
//! `[[functions.queue]]`, `[[functions.topic]]`, plus asynchronous invokes, which every function
//! takes) becomes a *consumer*: a task that leases messages from one queue, hands each batch to
//! the [`Dispatcher`] as [`Events`](updraft_dispatch::Events) (same admission, limits, metering
//! and tracing as HTTP; the runtime encodes them for its guests), and settles them: a 2xx acks;
//! a rejection by the platform (throttled: after a short backoff; over a quota: when its window
//! ends) puts them back without counting an attempt; anything else (a guest's own 429 too)
//! records the error and retries with exponential backoff and jitter, or moves them with their error
//! history to the dead-letter queue after `max_attempts`. A consumer leases no more messages
//! than it can run at once, so a slow function slows delivery and the rest wait in the log.
//! Idle consumers sleep until a producer wakes them ([`Wakeups`]).
//!
//! Every `[[functions.db]]` and `[[functions.kv]]` trigger has a *feeder*
//! ([`ChangeSource`]) that forwards the collection's (or store's) committed changes into its
//! internal queue, moving the feed's position in the same transaction; its consumer delivers
//! them like any event.
//!
//! Every schedule has a *ticker* that fires its slots into its internal queue (one transaction
//! per slot; a slot fires once). Slots missed while the server was down are coalesced: one
//! event for the latest missed slot, whose data counts the others (`missed`).
//!
//! [`Triggers::reconcile`] is called whenever the served functions change; it records
//! consumers, subscriptions and schedules in the log, then starts, updates and stops tasks to
//! match. At shutdown, [`Triggers::stop_all`] stops leasing and [`Triggers::drained`] waits for
//! deliveries in flight.
//!
//! It depends on the event log and the dispatcher through their traits only: no Wasmtime, no
//! HTTP listener, no storage of its own.

mod consumer;
mod feed;
mod ticker;

pub use feed::{Change, ChangeSource, Source};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use updraft_api::Trigger;
use updraft_dispatch::{Dispatcher, Function, Stream};
use updraft_events::{EventLog, Feed, FunctionTriggers, Wakeups, internal_queue, now_ms};
use updraft_manifest::{Retry, Schedule};

/// How events are delivered (the server config's `[events]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// The first retry's backoff (`retry_base`, default 1 s); each retry doubles it, with
    /// jitter (a random time between half and all of it).
    pub retry_base: Duration,
    /// The longest backoff (`retry_max`, default 5 min).
    pub retry_max: Duration,
    /// Most deliveries in flight per trigger (`max_inflight`, default 64; the function's
    /// `max_concurrency` also caps it).
    pub max_inflight: u32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            max_inflight: 64,
        }
    }
}

/// A served function as trigger delivery sees it: the triggers of the version `live` serves.
#[derive(Debug, Clone)]
pub struct Served {
    /// Its project.
    pub project: String,
    /// Its name.
    pub name: String,
    /// The `live` version's manifest entry (its queue, topic and schedule triggers).
    pub spec: updraft_manifest::Function,
    /// Its timeout, defaults filled in (a lease lasts this plus 30 s).
    pub timeout: Duration,
    /// Its `max_concurrency`, defaults filled in.
    pub max_concurrency: u32,
}

/// Finds the function to invoke for a delivery, as served at that moment.
pub trait Functions: Send + Sync + 'static {
    /// The function `name` of `project`, if it is served.
    fn function(&self, project: &str, name: &str) -> Option<Arc<Function>>;
}

/// The running consumer and ticker tasks, and what they share.
pub struct Triggers {
    log: Arc<dyn EventLog>,
    wakeups: Arc<dyn Wakeups>,
    dispatcher: Arc<Dispatcher>,
    functions: Arc<dyn Functions>,
    /// Where `[[functions.db]]` feeds read changes (`None`: no document database; such
    /// triggers are not started).
    changes: Option<Arc<dyn ChangeSource>>,
    config: DeliveryConfig,
    tasks: Mutex<HashMap<String, watch::Sender<Option<Arc<Task>>>>>,
    /// Events moved to a dead-letter queue, by project and source queue.
    dead_lettered: Mutex<BTreeMap<(String, String), u64>>,
    /// Deliveries running now (graceful shutdown waits for them).
    in_flight: watch::Sender<usize>,
}

/// What a consumer or ticker task does; replaced in place when the function is redeployed.
#[derive(Debug, PartialEq)]
enum Task {
    Consume(consumer::Consumer),
    Tick(ticker::Ticker),
    Feed(feed::Feeder),
}

impl Triggers {
    /// Delivery from `log` (and from `changes`, for `[[functions.db]]` triggers) to
    /// `dispatcher`, nothing running yet.
    pub fn new(
        log: Arc<dyn EventLog>,
        wakeups: Arc<dyn Wakeups>,
        dispatcher: Arc<Dispatcher>,
        functions: Arc<dyn Functions>,
        changes: Option<Arc<dyn ChangeSource>>,
        config: DeliveryConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            log,
            wakeups,
            dispatcher,
            functions,
            changes,
            config,
            tasks: Mutex::default(),
            dead_lettered: Mutex::default(),
            in_flight: watch::Sender::new(0),
        })
    }

    /// Events moved to a dead-letter queue since start, by project and the queue they failed
    /// from.
    pub fn dead_lettered(&self) -> BTreeMap<(String, String), u64> {
        lock(&self.dead_lettered).clone()
    }

    /// Stops every task (at shutdown): nothing new is leased or fired.
    pub fn stop_all(&self) {
        for (_, tx) in lock(&self.tasks).drain() {
            let _ = tx.send(None);
        }
    }

    /// Waits until the deliveries in flight have settled (at shutdown, after
    /// [`Triggers::stop_all`]). Ones still running when the caller gives up are delivered
    /// again after the restart.
    pub async fn drained(&self) {
        let mut rx = self.in_flight.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Brings the log and the running tasks in line with the `served` functions: records each
    /// function's consumed queues, topic subscriptions, schedules and change feeds (creating
    /// queues and topics named in manifests), then starts, updates or stops consumer, ticker
    /// and feeder tasks. Functions
    /// no longer served have their event state deleted when `deleted` names them (as
    /// `(project, name)`).
    pub async fn reconcile(self: &Arc<Self>, served: &[Served], deleted: &[(String, String)]) {
        let mut wanted: HashMap<String, Task> = HashMap::new();
        let mut writes: BTreeMap<&str, Vec<FunctionTriggers>> = BTreeMap::new();
        // Where new change feeds start: the latest change now.
        let mut feed_start = None;
        if served
            .iter()
            .any(|f| !f.spec.db.is_empty() || !f.spec.kv.is_empty() || !f.spec.bucket.is_empty())
            && let Some(source) = &self.changes
        {
            match source.position().await {
                Ok(p) => feed_start = Some(p),
                Err(e) => tracing::error!(error = %e, "could not read the change position"),
            }
        }
        for f in served {
            let name = &f.name;
            let spec = &f.spec;
            let lease = f.timeout + Duration::from_secs(30);
            let concurrency = f.max_concurrency.min(self.config.max_inflight).max(1);
            let consumer = |queue: String, trigger, batch_size, retry: &Retry| consumer::Consumer {
                project: f.project.clone(),
                queue,
                function: name.clone(),
                trigger,
                batch_size,
                concurrency,
                lease,
                retry: retry.clone(),
            };
            let key = |kind: &str, q: &str| format!("{kind}:{}:{q}:{name}", f.project);
            let default_retry = Retry {
                max_attempts: updraft_manifest::DEFAULT_MAX_ATTEMPTS,
                dead_letter: None,
            };
            let q = internal_queue(name, Feed::Async);
            wanted.insert(
                key("consume", &q),
                Task::Consume(consumer(q, Trigger::Async, 1, &default_retry)),
            );
            for t in &spec.queue {
                wanted.insert(
                    key("consume", &t.queue),
                    Task::Consume(consumer(
                        t.queue.clone(),
                        Trigger::Queue,
                        t.batch_size,
                        &t.retry,
                    )),
                );
            }
            for t in &spec.topic {
                let q = internal_queue(name, Feed::Topic(&t.topic));
                wanted.insert(
                    key("consume", &q),
                    Task::Consume(consumer(q, Trigger::Topic, 1, &t.retry)),
                );
            }
            let mut keys = Vec::new();
            for t in &spec.schedule {
                let schedule: Schedule = match t.schedule() {
                    Ok(s) => s,
                    Err(e) => {
                        self.platform_line(&f.project, name, &format!("schedule not started: {e}"));
                        continue;
                    }
                };
                let skey = schedule.key();
                let q = internal_queue(name, Feed::Schedule(&skey));
                wanted.insert(
                    key("consume", &q),
                    Task::Consume(consumer(q.clone(), Trigger::Schedule, 1, &t.retry)),
                );
                wanted.insert(
                    key("tick", &skey),
                    Task::Tick(ticker::Ticker {
                        project: f.project.clone(),
                        function: name.clone(),
                        schedule,
                        key: skey.clone(),
                        queue: q,
                    }),
                );
                keys.push(skey);
            }
            let mut feeds = Vec::new();
            let sources = spec
                .db
                .iter()
                .map(|t| {
                    (
                        Source::Collection(t.collection.clone()),
                        &t.events,
                        t.batch_size,
                        &t.retry,
                        ("", ""),
                    )
                })
                .chain(spec.kv.iter().map(|t| {
                    (
                        Source::Store(t.store.clone()),
                        &t.events,
                        t.batch_size,
                        &t.retry,
                        ("", ""),
                    )
                }))
                .chain(spec.bucket.iter().map(|t| {
                    (
                        Source::Bucket(t.bucket.clone()),
                        &t.events,
                        t.batch_size,
                        &t.retry,
                        (t.prefix.as_str(), t.suffix.as_str()),
                    )
                }));
            for (source, events, batch_size, retry, (prefix, suffix)) in sources {
                let name_of = |s: &Source| match s {
                    Source::Collection(c) => format!("db trigger on `{c}`"),
                    Source::Store(s) => format!("kv trigger on `{s}`"),
                    Source::Bucket(b) => format!("bucket trigger on `{b}`"),
                };
                let (Some(start), Some(changes)) = (feed_start, &self.changes) else {
                    let why = if self.changes.is_some() {
                        "the change log could not be read"
                    } else {
                        "no database"
                    };
                    self.platform_line(
                        &f.project,
                        name,
                        &format!("{} not started: {why}", name_of(&source)),
                    );
                    continue;
                };
                if let Err(e) = changes.follow(&f.project, &source).await {
                    self.platform_line(
                        &f.project,
                        name,
                        &format!("{} not started: {e}", name_of(&source)),
                    );
                    continue;
                }
                let fkey = source.key();
                let q = internal_queue(name, Feed::Change(&fkey));
                let trigger = match source {
                    Source::Collection(_) => Trigger::Db,
                    Source::Store(_) => Trigger::Kv,
                    Source::Bucket(_) => Trigger::Bucket,
                };
                wanted.insert(
                    key("consume", &q),
                    Task::Consume(consumer(q.clone(), trigger, batch_size, retry)),
                );
                wanted.insert(
                    key("feed", &fkey),
                    Task::Feed(feed::Feeder {
                        project: f.project.clone(),
                        function: name.clone(),
                        key: fkey.clone(),
                        source,
                        events: events.clone(),
                        prefix: prefix.to_owned(),
                        suffix: suffix.to_owned(),
                        queue: q,
                    }),
                );
                feeds.push((fkey, start));
            }
            writes
                .entry(f.project.as_str())
                .or_default()
                .push(FunctionTriggers {
                    function: name.clone(),
                    queues: spec.queue.iter().map(|t| t.queue.clone()).collect(),
                    topics: spec
                        .topic
                        .iter()
                        .map(|t| (t.topic.clone(), t.filter.clone()))
                        .collect(),
                    schedules: keys,
                    feeds,
                });
        }
        let mut forgotten: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (project, name) in deleted {
            forgotten
                .entry(project.as_str())
                .or_default()
                .push(name.clone());
        }
        let projects: std::collections::BTreeSet<&str> =
            writes.keys().chain(forgotten.keys()).copied().collect();
        for project in projects {
            let w = writes.get(project).map_or(&[][..], Vec::as_slice);
            let d = forgotten.get(project).map_or(&[][..], Vec::as_slice);
            if let Err(e) = self.log.sync_triggers(project, w, d, now_ms()).await {
                tracing::error!(project, error = %e, "could not record event triggers");
            }
        }
        let mut tasks = lock(&self.tasks);
        tasks.retain(|k, tx| {
            let keep = wanted.contains_key(k);
            if !keep {
                let _ = tx.send(None);
            }
            keep
        });
        for (k, task) in wanted {
            match tasks.get(&k) {
                Some(tx) => {
                    if tx.borrow().as_deref() != Some(&task) {
                        let _ = tx.send(Some(Arc::new(task)));
                    }
                }
                None => {
                    let (tx, rx) = watch::channel(Some(Arc::new(task)));
                    tokio::spawn(self.clone().run_task(rx));
                    tasks.insert(k, tx);
                }
            }
        }
    }

    async fn run_task(self: Arc<Self>, rx: watch::Receiver<Option<Arc<Task>>>) {
        let first = rx.borrow().clone();
        match first.as_deref() {
            Some(Task::Consume(_)) => self.consume(rx).await,
            Some(Task::Tick(_)) => self.tick(rx).await,
            Some(Task::Feed(_)) => self.feed(rx).await,
            None => {}
        }
    }

    /// Writes a platform event into a function's log (and the server's).
    fn platform_line(&self, project: &str, function: &str, message: &str) {
        tracing::info!(function, "{message}");
        self.dispatcher
            .telemetry()
            .line(project, function, None, "", Stream::Platform, message);
    }
}

/// Locks a mutex, ignoring poisoning: every critical section leaves its data consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
