//! Consumers: lease messages from one queue, deliver each batch as one invocation, settle.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::{Semaphore, watch};
use updraft_api::{AttemptError, Code, Trigger};
use updraft_dispatch::{Event, Events, Input, Origin, Rejected, error_response, with_function};
use updraft_events::{
    AsyncResult, Fate, Holder, Message, Settle, backoff, default_dead_letter, now_ms,
};
use updraft_manifest::{LIVE, Retry};

use crate::{Task, Triggers, lock};

/// The longest a consumer with delayed or leased messages sleeps before it looks again.
const POLL: Duration = Duration::from_secs(1);
/// Most messages one receive asks for.
const MAX_LEASE: u32 = 1000;

/// One consumer: which queue feeds which function, and how.
#[derive(Debug, PartialEq)]
pub(crate) struct Consumer {
    pub(crate) project: String,
    pub(crate) queue: String,
    pub(crate) function: String,
    pub(crate) trigger: Trigger,
    pub(crate) batch_size: u32,
    /// Deliveries in flight at most.
    pub(crate) concurrency: u32,
    pub(crate) lease: Duration,
    pub(crate) retry: Retry,
}

fn current_consumer(rx: &watch::Receiver<Option<Arc<Task>>>) -> Option<Arc<Task>> {
    rx.borrow()
        .clone()
        .filter(|t| matches!(**t, Task::Consume(_)))
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

impl Triggers {
    /// A consumer task: lease, deliver, settle, until stopped.
    pub(crate) async fn consume(self: Arc<Self>, mut rx: watch::Receiver<Option<Arc<Task>>>) {
        let Some(task) = current_consumer(&rx) else {
            return;
        };
        let Task::Consume(c) = &*task else { return };
        let (project, queue) = (c.project.clone(), c.queue.clone());
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
            let woken = self.wakeups.waiter(&project, &queue);
            let free = 1 + slots.available_permits() as u32;
            let want = free.saturating_mul(c.batch_size).min(MAX_LEASE);
            let got = self
                .log
                .receive(&project, &queue, want, Some(c.lease), Holder::Deliverer)
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
                let next = self.log.next_visible(&project, &queue).await.ok().flatten();
                // An empty queue sleeps until a producer wakes it (every producer wakes its
                // queue); a delayed or leased message sets an alarm for when it shows.
                let wait = next.map(|at| {
                    Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))
                        .clamp(Duration::from_millis(5), POLL)
                });
                tokio::select! {
                    () = woken => {},
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
                let this = self.clone();
                let task = task.clone();
                let batch = batch.to_vec();
                self.in_flight.send_modify(|n| *n += 1);
                tokio::spawn(async move {
                    if let Task::Consume(c) = &*task {
                        this.deliver(c, batch).await;
                    }
                    drop(p);
                    this.in_flight.send_modify(|n| *n -= 1);
                });
            }
        }
    }

    /// Delivers one batch (one invocation) and settles it.
    async fn deliver(&self, c: &Consumer, batch: Vec<Message>) {
        let receipts: Vec<String> = batch.iter().map(|m| m.receipt.clone()).collect();
        let attempt = batch.iter().map(|m| m.attempts).max().unwrap_or(1);
        let function = self.functions.function(&c.project, &c.function);
        let origin = Origin::new(c.trigger, None);
        let request_id = origin.request_id.clone();
        let mut failed_ids: Vec<String> = Vec::new();
        let (how, result) = match function {
            None => (
                Settle::Release {
                    delay: self.config.retry_base,
                },
                None,
            ),
            Some(function) => {
                let events = Events {
                    events: batch.iter().map(event).collect(),
                    batched: c.batch_size > 1,
                    attempt,
                };
                let resp = match function.resolve(None, LIVE) {
                    Ok(version) => {
                        self.dispatcher
                            .dispatch(&function, &version, origin, Input::Events(events))
                            .await
                    }
                    Err((code, msg)) => {
                        let resp = error_response(code, msg, &request_id);
                        with_function(resp, &request_id, &function, None)
                    }
                };
                let status = resp.status();
                let rejected = resp.extensions().get::<Rejected>().copied();
                if let Some(v) = resp.headers().get(updraft_api::headers::FAILED_EVENTS)
                    && let Ok(v) = v.to_str()
                {
                    failed_ids = v.split(',').map(|s| s.trim().to_owned()).collect();
                }
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
                } else if let Some(rejected) = rejected {
                    // The platform turned it away before the function ran: not an attempt.
                    // Throttled: back off a little; over a quota: pause until it resets.
                    let delay = if rejected.code == Code::QuotaExceeded {
                        rejected.retry_after
                    } else {
                        backoff(self.config.retry_base, self.config.retry_max, 1)
                    };
                    (Settle::Release { delay }, None)
                } else {
                    let error = body_error.unwrap_or_else(|| error_text(status, &body));
                    let how = self.fail(c, attempt, status.as_u16(), error.clone(), &request_id);
                    (
                        how,
                        Some(AsyncResult {
                            error: Some(error),
                            ..result
                        }),
                    )
                }
            }
        };
        // A batch answered with some items failed: ack the rest, fail only those.
        let failed: Vec<&Message> = batch
            .iter()
            .filter(|m| failed_ids.contains(&m.id))
            .collect();
        let (receipts, how, batch_failed) = if matches!(how, Settle::Ack) && !failed.is_empty() {
            let done: Vec<String> = batch
                .iter()
                .filter(|m| !failed_ids.contains(&m.id))
                .map(|m| m.receipt.clone())
                .collect();
            if !done.is_empty()
                && let Err(e) = self
                    .log
                    .settle(&c.project, &done, &Settle::Ack, result.as_ref())
                    .await
            {
                tracing::warn!(queue = c.queue, error = %e, "could not settle events");
            }
            let ids: Vec<&str> = failed.iter().map(|m| m.id.as_str()).collect();
            let error = format!(
                "the function reported {} of {} event(s) failed: {}",
                failed.len(),
                batch.len(),
                ids.join(", ")
            );
            let how = self.fail(c, attempt, 200, error, &request_id);
            let receipts: Vec<String> = failed.iter().map(|m| m.receipt.clone()).collect();
            (receipts, how, failed.len())
        } else {
            (receipts, how, batch.len())
        };
        let fate = self
            .log
            .settle(&c.project, &receipts, &how, result.as_ref())
            .await;
        match fate {
            Ok(Fate::DeadLettered) => {
                if let Settle::Fail { dead_letter, .. } = &how {
                    *lock(&self.dead_lettered)
                        .entry((c.project.clone(), c.queue.clone()))
                        .or_default() += batch_failed as u64;
                    self.platform_line(
                        &c.project,
                        &c.function,
                        &format!(
                            "{batch_failed} event(s) from `{}` failed {attempt} time(s) and moved to dead-letter queue `{dead_letter}` (first id {})",
                            c.queue,
                            receipts_first(&batch, &failed)
                        ),
                    );
                    self.wakeups.wake(&c.project, dead_letter);
                }
            }
            // Wake the consumer: it finds the event not yet visible and sleeps until its
            // backoff is over (`next_visible`).
            Ok(Fate::Retrying(_)) => self.wakeups.wake(&c.project, &c.queue),
            Ok(_) => {}
            Err(e) => tracing::warn!(queue = c.queue, error = %e, "could not settle events"),
        }
    }

    fn fail(
        &self,
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
            delay: backoff(self.config.retry_base, self.config.retry_max, attempt),
            dead_letter: c
                .retry
                .dead_letter
                .clone()
                .unwrap_or_else(|| default_dead_letter(&c.function)),
        }
    }
}

/// The id of the first failed message (of the whole batch when none was named).
fn receipts_first<'a>(batch: &'a [Message], failed: &[&'a Message]) -> &'a str {
    failed
        .first()
        .or(batch.first().as_ref())
        .map_or("", |m| m.id.as_str())
}

/// A message as the event it carries.
fn event(m: &Message) -> Event {
    Event {
        id: m.id.clone(),
        source: m.source.clone(),
        kind: m.kind.clone(),
        time_ms: m.time_ms,
        content_type: m.content_type.clone(),
        attributes: m.attributes.clone(),
        data: m.data.clone(),
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
