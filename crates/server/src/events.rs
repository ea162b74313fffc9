//! Event delivery: turns the event log's messages into invocations.
//!
//! Every event trigger of a served function (the `live` version's `[[functions.schedule]]`,
//! `[[functions.queue]]`, `[[functions.topic]]`, plus asynchronous invokes, which every function
//! takes) becomes a *consumer*: a task that leases messages from one queue, invokes the function
//! through the gateway (same admission, limits and metering as HTTP) with each message as a
//! CloudEvents 1.0 binary-mode request (a batch as `application/cloudevents-batch+json`), and
//! settles them: a 2xx acks; a 429 (throttled, quota) puts them back without counting an
//! attempt; anything else records the error and retries with exponential backoff and jitter,
//! or moves them with their error history to the dead-letter queue after `max_attempts`.
//! A consumer leases no more messages than it can run at once, so a slow function slows
//! delivery and the rest wait in the log.
//!
//! Every schedule has a *ticker* that fires its slots into its internal queue (one transaction
//! per slot; a slot fires once). Slots missed while the server was down are coalesced: one
//! event for the latest missed slot, whose data counts the others (`missed`).
//!
//! [`reconcile`] is called whenever the served functions change; it records consumers,
//! subscriptions and schedules in the log, then starts, updates and stops tasks to match.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use tokio::sync::{Notify, Semaphore, watch};
use updraft_api::{AttemptError, Trigger, headers};
use updraft_events::{
    AsyncResult, EventLog, Fate, Feed, FunctionTriggers, Holder, Message, NewMessage, Settle,
    backoff, default_dead_letter, internal_queue, now_ms,
};
use updraft_manifest::{Retry, Schedule};
use updraft_store::DEFAULT_PROJECT;

use crate::State;
use crate::config::EventsConfig;
use crate::deploy::Entry;

/// The most slots a ticker counts one by one when it catches up.
const MAX_MISSED_COUNT: u64 = 100_000;
/// The longest a consumer with delayed or leased messages sleeps before it looks again.
const POLL: Duration = Duration::from_secs(1);

/// The event side of the server: the log, wake-ups per queue, and the running tasks.
pub(crate) struct Events {
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) config: EventsConfig,
    notify: Mutex<HashMap<String, Arc<Notify>>>,
    tasks: Mutex<HashMap<String, watch::Sender<Option<Arc<Task>>>>>,
    /// Events moved to a dead-letter queue, by source queue.
    pub(crate) dead_lettered: Mutex<BTreeMap<String, u64>>,
    /// Deliveries running now (graceful shutdown waits for them).
    in_flight: watch::Sender<usize>,
}

/// What a consumer or ticker task does; replaced in place when the function is redeployed.
#[derive(Debug, PartialEq)]
enum Task {
    Consume(Consumer),
    Tick(Ticker),
}

#[derive(Debug, PartialEq)]
struct Consumer {
    queue: String,
    function: String,
    trigger: Trigger,
    batch_size: u32,
    /// Deliveries in flight at most.
    concurrency: u32,
    lease: Duration,
    retry: Retry,
}

#[derive(Debug)]
struct Ticker {
    function: String,
    schedule: Schedule,
    key: String,
    queue: String,
}

impl PartialEq for Ticker {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.function == other.function
    }
}

impl Events {
    pub(crate) fn new(log: Arc<dyn EventLog>, config: EventsConfig) -> Self {
        Self {
            log,
            config,
            notify: Mutex::default(),
            tasks: Mutex::default(),
            dead_lettered: Mutex::default(),
            in_flight: watch::Sender::new(0),
        }
    }

    /// The wake-up of a queue's consumers.
    pub(crate) fn notifier(&self, queue: &str) -> Arc<Notify> {
        let mut map = self.notify.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(queue.to_owned()).or_default().clone()
    }

    /// Wakes everyone waiting on a queue: its consumers and long-polling receives (after a
    /// send, publish, retry or dead letter). Waiters register before they read the queue
    /// (`Notified::enable`), so no wake-up is lost.
    pub(crate) fn wake(&self, queue: &str) {
        if let Some(n) = self
            .notify
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(queue)
        {
            n.notify_waiters();
        }
    }

    /// Stops every task (at shutdown): nothing new is leased or fired.
    pub(crate) fn stop_all(&self) {
        for (_, tx) in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            let _ = tx.send(None);
        }
    }

    /// Waits until the deliveries in flight have settled (at shutdown, after [`stop_all`]).
    /// Ones still running when the caller gives up are delivered again after the restart.
    ///
    /// [`stop_all`]: Events::stop_all
    pub(crate) async fn drained(&self) {
        let mut rx = self.in_flight.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// Runs a blocking event-log call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    log: &Arc<dyn EventLog>,
    f: impl FnOnce(&dyn EventLog) -> T + Send + 'static,
) -> T {
    let log = log.clone();
    match tokio::task::spawn_blocking(move || f(log.as_ref())).await {
        Ok(t) => t,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Brings the log and the running tasks in line with the served functions: records each
/// function's consumed queues, topic subscriptions and schedules (creating queues and topics
/// named in manifests), then starts, updates or stops consumer and ticker tasks. Functions no
/// longer served have their event state deleted when `deleted` names them.
pub(crate) async fn reconcile(
    state: &Arc<State>,
    entries: &HashMap<String, Entry>,
    deleted: &[String],
) {
    let mut wanted: HashMap<String, Task> = HashMap::new();
    let mut writes = Vec::new();
    for (name, entry) in entries {
        let Some(live) = entry.record.live() else {
            continue;
        };
        let spec = &live.spec;
        let e = state.limits.resolve(spec);
        let lease = e.timeout + Duration::from_secs(30);
        let concurrency = e
            .max_concurrency
            .min(state.events.config.max_inflight)
            .max(1);
        let consumer = |queue: String, trigger, batch_size, retry: &Retry| Consumer {
            queue,
            function: name.clone(),
            trigger,
            batch_size,
            concurrency,
            lease,
            retry: retry.clone(),
        };
        let default_retry = Retry {
            max_attempts: updraft_manifest::DEFAULT_MAX_ATTEMPTS,
            dead_letter: None,
        };
        let q = internal_queue(name, Feed::Async);
        wanted.insert(
            format!("consume:{q}:{name}"),
            Task::Consume(consumer(q, Trigger::Async, 1, &default_retry)),
        );
        for t in &spec.queue {
            wanted.insert(
                format!("consume:{}:{name}", t.queue),
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
                format!("consume:{q}:{name}"),
                Task::Consume(consumer(q, Trigger::Topic, 1, &t.retry)),
            );
        }
        let mut keys = Vec::new();
        for t in &spec.schedule {
            let schedule = match t.schedule() {
                Ok(s) => s,
                Err(e) => {
                    crate::deploy::event(state, name, &format!("schedule not started: {e}"));
                    continue;
                }
            };
            let key = schedule.key();
            let q = internal_queue(name, Feed::Schedule(&key));
            wanted.insert(
                format!("consume:{q}:{name}"),
                Task::Consume(consumer(q.clone(), Trigger::Schedule, 1, &t.retry)),
            );
            wanted.insert(
                format!("tick:{name}:{key}"),
                Task::Tick(Ticker {
                    function: name.clone(),
                    schedule,
                    key: key.clone(),
                    queue: q,
                }),
            );
            keys.push(key);
        }
        writes.push(FunctionTriggers {
            function: name.clone(),
            queues: spec.queue.iter().map(|t| t.queue.clone()).collect(),
            topics: spec
                .topic
                .iter()
                .map(|t| (t.topic.clone(), t.filter.clone()))
                .collect(),
            schedules: keys,
        });
    }
    let deleted = deleted.to_vec();
    let result = blocking(&state.events.log, move |log| {
        log.sync_triggers(DEFAULT_PROJECT, &writes, &deleted, now_ms())
    })
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not record event triggers");
    }
    let mut tasks = state.events.tasks.lock().unwrap_or_else(|e| e.into_inner());
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
                let state = state.clone();
                tokio::spawn(run_task(state, rx));
                tasks.insert(k, tx);
            }
        }
    }
}

async fn run_task(state: Arc<State>, rx: watch::Receiver<Option<Arc<Task>>>) {
    let first = rx.borrow().clone();
    match first.as_deref() {
        Some(Task::Consume(_)) => consume(state, rx).await,
        Some(Task::Tick(_)) => tick(state, rx).await,
        None => {}
    }
}

fn current_consumer(rx: &watch::Receiver<Option<Arc<Task>>>) -> Option<Arc<Task>> {
    rx.borrow()
        .clone()
        .filter(|t| matches!(**t, Task::Consume(_)))
}

/// A consumer task: lease, deliver, settle, until stopped.
async fn consume(state: Arc<State>, mut rx: watch::Receiver<Option<Arc<Task>>>) {
    let Some(task) = current_consumer(&rx) else {
        return;
    };
    let Task::Consume(c) = &*task else { return };
    let queue = c.queue.clone();
    let notify = state.events.notifier(&queue);
    let mut limit = c.concurrency;
    let slots = Arc::new(Semaphore::new(limit as usize));
    loop {
        let Some(task) = current_consumer(&rx) else {
            return;
        };
        let Task::Consume(c) = &*task else { return };
        if c.concurrency != limit {
            // Follow a redeploy's concurrency: add permits, or retire some.
            if c.concurrency > limit {
                slots.add_permits((c.concurrency - limit) as usize);
            } else if let Ok(p) = slots
                .clone()
                .acquire_many_owned(limit - c.concurrency)
                .await
            {
                p.forget();
            }
            limit = c.concurrency;
        }
        // Wait for a free slot before leasing, so nothing is leased that cannot run.
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            r = rx.changed() => if r.is_err() { return } else { continue },
        };
        // Registered before the queue is read, so a send committed after the read wakes it.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let free = 1 + slots.available_permits() as u32;
        let want = free.saturating_mul(c.batch_size).min(1000);
        let (q, lease) = (queue.clone(), c.lease);
        let got = blocking(&state.events.log, move |log| {
            log.receive(DEFAULT_PROJECT, &q, want, Some(lease), Holder::Deliverer)
        })
        .await;
        let messages = match got {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(queue, error = %e, "could not receive events");
                drop(first);
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {},
                    r = rx.changed() => if r.is_err() { return },
                }
                continue;
            }
        };
        if messages.is_empty() {
            drop(first);
            let q = queue.clone();
            let next = blocking(&state.events.log, move |log| {
                log.next_visible(DEFAULT_PROJECT, &q)
            })
            .await
            .ok()
            .flatten();
            // An empty queue sleeps until a producer wakes it (every producer is in this
            // process and does); a delayed or leased message sets an alarm for when it shows.
            let wait = next.map(|at| {
                Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))
                    .clamp(Duration::from_millis(5), POLL)
            });
            tokio::select! {
                () = notified => {},
                () = sleep_or_forever(wait) => {},
                r = rx.changed() => if r.is_err() { return },
            }
            continue;
        }
        let mut permit = Some(first);
        for batch in messages.chunks(c.batch_size.max(1) as usize) {
            let p = match permit.take() {
                Some(p) => p,
                None => match slots.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let state = state.clone();
            let task = task.clone();
            let batch = batch.to_vec();
            state.events.in_flight.send_modify(|n| *n += 1);
            tokio::spawn(async move {
                if let Task::Consume(c) = &*task {
                    deliver(&state, c, batch).await;
                }
                drop(p);
                state.events.in_flight.send_modify(|n| *n -= 1);
            });
        }
    }
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Delivers one batch (one invocation) and settles it.
async fn deliver(state: &Arc<State>, c: &Consumer, batch: Vec<Message>) {
    let receipts: Vec<String> = batch.iter().map(|m| m.receipt.clone()).collect();
    let attempt = batch.iter().map(|m| m.attempts).max().unwrap_or(1);
    let request_id = updraft_gateway::new_request_id();
    let function = state.gateway.snapshot().functions.get(&c.function).cloned();
    let (how, result) = match function {
        None => (
            Settle::Release {
                delay: state.events.config.retry_base,
            },
            None,
        ),
        Some(function) => {
            let req = if c.batch_size > 1 {
                batch_request(&batch)
            } else {
                binary_request(&batch[0])
            };
            let req = req.map(|mut r| {
                r.headers_mut()
                    .insert(headers::ATTEMPT, HeaderValue::from(attempt));
                r
            });
            match req {
                Err(e) => (
                    fail(state, c, attempt, 0, format!("bad event: {e}"), &request_id),
                    None,
                ),
                Ok(req) => {
                    let resp = state
                        .gateway
                        .invoke_as(&function, None, c.trigger, req, request_id.clone())
                        .await;
                    let status = resp.status();
                    let body = resp.into_body().collect().await.map(|b| b.to_bytes());
                    let (body, body_error) = match body {
                        Ok(b) => (b, None),
                        Err(e) => (Bytes::new(), Some(e.to_string())),
                    };
                    let result = AsyncResult {
                        request_id: request_id.clone(),
                        status: status.as_u16(),
                        body: None,
                        error: None,
                    };
                    if status.is_success() && body_error.is_none() {
                        let result = AsyncResult {
                            body: Some(body.to_vec()),
                            ..result
                        };
                        (Settle::Ack, Some(result))
                    } else if status == http::StatusCode::TOO_MANY_REQUESTS {
                        let delay = backoff(
                            state.events.config.retry_base,
                            state.events.config.retry_max,
                            1,
                        );
                        (Settle::Release { delay }, None)
                    } else {
                        let error = body_error.unwrap_or_else(|| error_text(status, &body));
                        let how = fail(
                            state,
                            c,
                            attempt,
                            status.as_u16(),
                            error.clone(),
                            &request_id,
                        );
                        (
                            how,
                            Some(AsyncResult {
                                error: Some(error),
                                ..result
                            }),
                        )
                    }
                }
            }
        }
    };
    let log = state.events.log.clone();
    let settle_how = how.clone();
    let fate = blocking(&log, move |log| {
        log.settle(DEFAULT_PROJECT, &receipts, &settle_how, result.as_ref())
    })
    .await;
    match fate {
        Ok(Fate::DeadLettered) => {
            if let Settle::Fail { dead_letter, .. } = &how {
                *state
                    .events
                    .dead_lettered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(c.queue.clone())
                    .or_default() += batch.len() as u64;
                crate::deploy::event(
                    state,
                    &c.function,
                    &format!(
                        "{} event(s) from `{}` failed {attempt} time(s) and moved to dead-letter queue `{dead_letter}` (first id {})",
                        batch.len(),
                        c.queue,
                        batch[0].id
                    ),
                );
                state.events.wake(dead_letter);
            }
        }
        // Wake the consumer: it finds the event not yet visible and sleeps until its backoff
        // is over (`next_visible`).
        Ok(Fate::Retrying(_)) => state.events.wake(&c.queue),
        Ok(_) => {}
        Err(e) => tracing::warn!(queue = c.queue, error = %e, "could not settle events"),
    }
}

fn fail(
    state: &State,
    c: &Consumer,
    attempt: u32,
    status: u16,
    error: String,
    request_id: &str,
) -> Settle {
    Settle::Fail {
        error: AttemptError {
            attempt,
            at_ms: now_ms(),
            function: c.function.clone(),
            status,
            error,
            request_id: request_id.to_owned(),
        },
        max_attempts: c.retry.max_attempts,
        delay: backoff(
            state.events.config.retry_base,
            state.events.config.retry_max,
            attempt,
        ),
        dead_letter: c
            .retry
            .dead_letter
            .clone()
            .unwrap_or_else(|| default_dead_letter(&c.function)),
    }
}

/// What a failed response said: the `message` of an Updraft JSON error, else the start of the
/// body, else the status.
fn error_text(status: http::StatusCode, body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<updraft_api::ErrorBody>(body) {
        return format!("{}: {}", status.as_u16(), e.error.message);
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(500)]);
    let text = text.trim();
    if text.is_empty() {
        format!("the function answered {status}")
    } else {
        format!("{}: {text}", status.as_u16())
    }
}

/// Names of CloudEvents extension attributes: lower-case letters and digits, at most 20.
fn is_extension_name(k: &str) -> bool {
    (1..=20).contains(&k.len())
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !matches!(
            k,
            "id" | "source"
                | "type"
                | "time"
                | "specversion"
                | "subject"
                | "dataschema"
                | "datacontenttype"
                | "data"
        )
}

/// One event as a CloudEvents 1.0 binary-mode request: attributes in `ce-` headers, the body
/// is the data.
fn binary_request(m: &Message) -> Result<Request<Full<Bytes>>, http::Error> {
    let mut req = Request::post("/")
        .header("ce-specversion", "1.0")
        .header("ce-id", &m.id)
        .header("ce-source", &m.source)
        .header("ce-type", &m.kind)
        .header("ce-time", updraft_gateway::rfc3339(m.time_ms))
        .header(http::header::CONTENT_TYPE, &m.content_type);
    for (k, v) in &m.attributes {
        if is_extension_name(k) {
            req = req.header(format!("ce-{k}"), v);
        }
    }
    req.body(Full::new(Bytes::from(m.data.clone())))
}

/// A batch as one CloudEvents 1.0 batched-mode request: a JSON array of structured events.
fn batch_request(batch: &[Message]) -> Result<Request<Full<Bytes>>, http::Error> {
    let events: Vec<serde_json::Value> = batch
        .iter()
        .map(|m| {
            let mut e = serde_json::json!({
                "specversion": "1.0",
                "id": m.id,
                "source": m.source,
                "type": m.kind,
                "time": updraft_gateway::rfc3339(m.time_ms),
                "datacontenttype": m.content_type,
            });
            for (k, v) in &m.attributes {
                if is_extension_name(k) {
                    e[k] = serde_json::Value::String(v.clone());
                }
            }
            let json =
                m.content_type.starts_with("application/json") || m.content_type.ends_with("+json");
            match (json, serde_json::from_slice::<serde_json::Value>(&m.data)) {
                (true, Ok(v)) => e["data"] = v,
                _ => match std::str::from_utf8(&m.data) {
                    Ok(s) => e["data"] = serde_json::Value::String(s.to_owned()),
                    Err(_) => {
                        e["data_base64"] = serde_json::Value::String(STANDARD.encode(&m.data));
                    }
                },
            }
            e
        })
        .collect();
    let body = serde_json::to_vec(&events).unwrap_or_default();
    Request::post("/")
        .header(
            http::header::CONTENT_TYPE,
            "application/cloudevents-batch+json",
        )
        .body(Full::new(Bytes::from(body)))
}

/// A schedule's ticker: fires each slot into the schedule's queue.
async fn tick(state: Arc<State>, mut rx: watch::Receiver<Option<Arc<Task>>>) {
    let Some(task) = rx.borrow().clone() else {
        return;
    };
    let Task::Tick(t) = &*task else { return };
    let (f, key) = (t.function.clone(), t.key.clone());
    let last = blocking(&state.events.log, move |log| {
        log.last_slot(DEFAULT_PROJECT, &f, &key)
    })
    .await;
    let mut last = match last {
        Ok(Some(ms)) => ms,
        Ok(None) => now_ms(),
        Err(e) => {
            tracing::error!(function = t.function, error = %e, "schedule not started");
            return;
        }
    };
    loop {
        let Some(task) = rx.borrow().clone() else {
            return;
        };
        let Task::Tick(t) = &*task else { return };
        let now = now_ms();
        let (due, latest) = t.schedule.due(last, now, MAX_MISSED_COUNT);
        if let Some(slot) = latest {
            let missed = due.saturating_sub(1);
            let data = serde_json::json!({
                "schedule": t.schedule.to_string(),
                "slot": updraft_gateway::rfc3339(slot),
                "missed": missed,
            });
            let message = NewMessage {
                id: Some(format!("{}-{slot}", t.queue.trim_start_matches('~'))),
                source: format!("/functions/{}/schedules", t.function),
                kind: "dev.updraft.schedule.fired".into(),
                content_type: "application/json".into(),
                data: serde_json::to_vec(&data).unwrap_or_default(),
                time_ms: Some(slot),
                ..NewMessage::default()
            };
            let (f, key, q) = (t.function.clone(), t.key.clone(), t.queue.clone());
            let fired = blocking(&state.events.log, move |log| {
                log.fire(DEFAULT_PROJECT, &f, &key, slot, &q, message)
            })
            .await;
            match fired {
                Ok(_) => {
                    last = slot;
                    if missed > 0 {
                        crate::deploy::event(
                            &state,
                            &t.function,
                            &format!(
                                "{}: {missed} slot(s) were missed while the server was down; fired once for the latest",
                                t.schedule
                            ),
                        );
                    }
                    state.events.wake(&t.queue);
                }
                Err(e) => {
                    tracing::warn!(function = t.function, error = %e, "could not fire a schedule")
                }
            }
        }
        let wait = t
            .schedule
            .next_after(last)
            .map_or(Duration::from_secs(3600), |next| {
                Duration::from_millis(u64::try_from(next - now_ms()).unwrap_or(0))
            });
        tokio::select! {
            () = tokio::time::sleep(wait) => {},
            r = rx.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_names() {
        assert!(is_extension_name("plan"));
        assert!(is_extension_name("tenant42"));
        assert!(!is_extension_name("Plan"));
        assert!(!is_extension_name("my-attr"));
        assert!(!is_extension_name("id"));
        assert!(!is_extension_name("averyveryverylongattributename"));
    }
}
