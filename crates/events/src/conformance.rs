//! The conformance suite of [`EventLog`] (and [`Wakeups`]): what every backend must do, written
//! against the traits only. A backend is done when it passes all of it: the SQLite backend's
//! tests run it, and a NATS JetStream backend will run it unchanged.
//!
//! Each case is a `pub async fn` taking a fresh, empty log; [`event_log_conformance!`](crate::event_log_conformance)
//! expands to one `#[tokio::test]` per case for a [`Subject`] (a way to make fresh logs and to
//! reopen one as after a crash).
//!
//! ```ignore
//! struct Sqlite(tempfile::TempDir);
//! #[async_trait::async_trait]
//! impl updraft_events::conformance::Subject for Sqlite { /* fresh, reopen */ }
//! updraft_events::event_log_conformance!(Sqlite::new());
//! ```
//!
//! Long file: one case per behaviour every event-log backend must have, kept together so a
//! backend author reads the whole contract in one place.

#![allow(missing_docs)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use updraft_api::{AsyncStatus, AttemptError, Filter};

use crate::{
    AsyncResult, DEFAULT_VISIBILITY_TIMEOUT, EventError, EventLog, Fate, Feed, FunctionTriggers,
    Holder, KeyRole, NewMessage, QueueSpec, Settle, Wakeups, internal_queue, now_ms,
};

const P: &str = "default";

/// What the suite needs of a backend.
#[async_trait::async_trait]
pub trait Subject: Send + Sync {
    /// A new, empty log.
    async fn fresh(&self) -> Arc<dyn EventLog>;

    /// The same log as `log`, opened again as after a crash of the process that held it
    /// (`log` is dropped first).
    async fn reopen(&self, log: Arc<dyn EventLog>) -> Arc<dyn EventLog>;
}

/// One `#[tokio::test]` per case of the suite, against the [`Subject`] `$subject` makes.
#[macro_export]
macro_rules! event_log_conformance {
    ($subject:expr) => {
        $crate::event_log_conformance!(@cases $subject;
            send_receive_ack_and_visibility,
            oversized_batches_store_nothing_and_delays_hide,
            failures_retry_then_dead_letter_with_history,
            released_and_restarted_leases_do_not_count,
            publish_fans_out_through_filters,
            a_slot_fires_once,
            a_change_feed_forwards_each_position_once,
            async_invokes_dedupe_by_key_and_record_results,
            keys_check_and_rotate,
            deleting_a_consumed_queue_conflicts,
            forgetting_a_function_removes_its_triggers,
            concurrent_receivers_never_share_a_message,
            ack_and_settle_are_idempotent_under_races);
        #[tokio::test]
        async fn accepted_events_survive_a_crash() -> $crate::conformance::Outcome {
            let subject = $subject;
            $crate::conformance::accepted_events_survive_a_crash(&subject).await
        }
    };
    (@cases $subject:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() -> $crate::conformance::Outcome {
                let subject = $subject;
                let log = $crate::conformance::Subject::fresh(&subject).await;
                $crate::conformance::$case(log).await
            }
        )*
    };
}

/// What a case returns: an error (a failed call, a missing value) fails the test with it, so
/// the suite never unwraps.
pub type Outcome = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// `Some`, or an error saying a value was expected.
pub(crate) trait Found<T> {
    fn found(self) -> Result<T, &'static str>;
}

impl<T> Found<T> for Option<T> {
    fn found(self) -> Result<T, &'static str> {
        self.ok_or("expected a value, found none")
    }
}

fn msg(body: &str) -> NewMessage {
    NewMessage {
        source: "/queues/q".into(),
        kind: "dev.updraft.queue.message".into(),
        content_type: "text/plain".into(),
        data: body.as_bytes().to_vec(),
        ..NewMessage::default()
    }
}

fn fail(max_attempts: u32) -> Settle {
    Settle::Fail {
        error: AttemptError {
            attempt: 0,
            at_ms: now_ms(),
            function: "f".into(),
            status: 500,
            error: "boom".into(),
            request_id: "r".into(),
        },
        max_attempts,
        delay: Duration::ZERO,
        dead_letter: "f-dlq".into(),
    }
}

fn ticks(key: &str) -> FunctionTriggers {
    FunctionTriggers {
        function: "tick".into(),
        schedules: vec![key.into()],
        ..FunctionTriggers::default()
    }
}

/// Sends, receives oldest first with a lease, acks by receipt; an expired lease comes back
/// with a new receipt and the old one is dead; unknown queues are errors.
pub async fn send_receive_ack_and_visibility(log: Arc<dyn EventLog>) -> Outcome {
    let (_, key) = log.create_queue(P, &QueueSpec::new("q")).await?;
    let key = key.found()?;
    assert_eq!(
        log.check_queue_key(P, "q", &key).await?,
        Some(KeyRole::Full)
    );
    assert_eq!(log.check_queue_key(P, "q", "nope").await?, None);
    assert!(
        log.create_queue(P, &QueueSpec::new("q")).await?.1.is_none(),
        "idempotent"
    );
    let ids = log.send(P, "q", vec![msg("a"), msg("b"), msg("c")]).await?;
    assert_eq!(ids.len(), 3);
    let got = log
        .receive(P, "q", 2, Some(Duration::from_secs(60)), Holder::Client)
        .await?;
    assert_eq!(
        got.iter().map(|m| m.data.clone()).collect::<Vec<_>>(),
        vec![b"a".to_vec(), b"b".to_vec()],
        "oldest first"
    );
    assert_eq!(got[0].id, ids[0]);
    assert_eq!(got[0].attempts, 1);
    let info = log.queue(P, "q").await?;
    assert_eq!((info.depth, info.in_flight), (3, 2));
    // Leased messages are invisible; only `c` is left.
    let rest = log
        .receive(P, "q", 10, Some(Duration::from_millis(1)), Holder::Client)
        .await?;
    assert_eq!(rest.len(), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Its 1 ms lease ran out: it comes back with a new receipt, the old one is dead.
    let again = log
        .receive(P, "q", 10, Some(Duration::from_secs(60)), Holder::Client)
        .await?;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(log.ack(P, "q", &[rest[0].receipt.clone()]).await?, 0);
    let receipts: Vec<String> = got
        .iter()
        .chain(&again)
        .map(|m| m.receipt.clone())
        .collect();
    // A receipt acks only in its own queue: one queue's key can't delete another's messages.
    log.create_queue(P, &QueueSpec::new("other")).await?;
    assert_eq!(log.ack(P, "other", &receipts).await?, 0);
    assert_eq!(log.queue(P, "q").await?.depth, 3);
    assert_eq!(log.ack(P, "q", &receipts).await?, 3);
    assert_eq!(log.queue(P, "q").await?.depth, 0);
    assert!(matches!(
        log.send(P, "nope", vec![msg("x")]).await,
        Err(EventError::QueueNotFound(_))
    ));
    Ok(())
}

/// A batch with one message over the queue's size stores nothing; a delayed message stays
/// invisible.
pub async fn oversized_batches_store_nothing_and_delays_hide(log: Arc<dyn EventLog>) -> Outcome {
    let mut spec = QueueSpec::new("q");
    spec.max_message_bytes = 4;
    log.create_queue(P, &spec).await?;
    let Err(e) = log.send(P, "q", vec![msg("ok"), msg("too long")]).await else {
        return Err("a batch with an oversized message was accepted".into());
    };
    assert!(e.to_string().contains("8 bytes"), "{e}");
    assert_eq!(log.queue(P, "q").await?.depth, 0, "all or nothing");
    let mut delayed = msg("later");
    delayed.data.truncate(4);
    delayed.delay = Duration::from_secs(60);
    log.send(P, "q", vec![delayed]).await?;
    assert!(
        log.receive(P, "q", 1, Some(DEFAULT_VISIBILITY_TIMEOUT), Holder::Client)
            .await?
            .is_empty()
    );
    assert_eq!(log.queue(P, "q").await?.delayed, 1);
    Ok(())
}

/// Failed deliveries retry, then move to the dead-letter queue with every attempt's error.
pub async fn failures_retry_then_dead_letter_with_history(log: Arc<dyn EventLog>) -> Outcome {
    log.create_queue(P, &QueueSpec::new("q")).await?;
    log.send(P, "q", vec![msg("x")]).await?;
    for attempt in 1..=3u32 {
        let m = log
            .receive(P, "q", 1, Some(Duration::from_secs(60)), Holder::Deliverer)
            .await?
            .pop()
            .found()?;
        assert_eq!(m.attempts, attempt);
        assert_eq!(m.errors.len() as u32, attempt - 1);
        let fate = log.settle(P, &[m.receipt], &fail(3), None).await?;
        if attempt < 3 {
            assert!(matches!(fate, Fate::Retrying(_)), "{fate:?}");
        } else {
            assert_eq!(fate, Fate::DeadLettered);
        }
    }
    assert_eq!(log.queue(P, "q").await?.depth, 0);
    let dead = log
        .receive(P, "f-dlq", 1, Some(Duration::from_secs(60)), Holder::Client)
        .await?
        .pop()
        .found()?;
    assert_eq!(dead.data, b"x");
    assert_eq!(
        dead.errors.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        dead.errors
            .iter()
            .all(|e| e.status == 500 && e.error == "boom")
    );
    Ok(())
}

/// A released lease is not an attempt; a deliverer's leases are released at start-up.
pub async fn released_and_restarted_leases_do_not_count(log: Arc<dyn EventLog>) -> Outcome {
    log.create_queue(P, &QueueSpec::new("q")).await?;
    log.send(P, "q", vec![msg("x")]).await?;
    let m = log
        .receive(P, "q", 1, Some(Duration::from_secs(600)), Holder::Deliverer)
        .await?
        .pop()
        .found()?;
    log.settle(
        P,
        &[m.receipt],
        &Settle::Release {
            delay: Duration::ZERO,
        },
        None,
    )
    .await?;
    let m = log
        .receive(P, "q", 1, Some(Duration::from_secs(600)), Holder::Deliverer)
        .await?
        .pop()
        .found()?;
    assert_eq!(m.attempts, 1, "a throttled try is not an attempt");
    // A crash leaves the lease; the next start releases it at once.
    assert_eq!(log.release_all(Holder::Deliverer).await?, 1);
    assert_eq!(
        log.receive(P, "q", 1, Some(Duration::from_secs(600)), Holder::Client)
            .await?
            .len(),
        1
    );
    Ok(())
}

/// A publication reaches every subscription whose filter matches, with one event id.
pub async fn publish_fans_out_through_filters(log: Arc<dyn EventLog>) -> Outcome {
    log.create_topic(P, "signups").await?;
    log.create_queue(P, &QueueSpec::new("all")).await?;
    log.create_queue(P, &QueueSpec::new("pro")).await?;
    log.subscribe_queue(P, "signups", "all", &Filter::default())
        .await?;
    let mut pro = Filter::default();
    pro.0
        .insert("plan".into(), vec!["pro".into(), "team".into()]);
    log.subscribe_queue(P, "signups", "pro", &pro).await?;
    let welcome = FunctionTriggers {
        function: "welcome".into(),
        topics: vec![("signups".into(), pro.clone())],
        ..FunctionTriggers::default()
    };
    log.sync_triggers(P, &[welcome], &[], now_ms()).await?;
    let mut m = msg("{}");
    m.attributes.insert("plan".into(), "free".into());
    assert_eq!(log.publish(P, "signups", m.clone()).await?.1.len(), 1);
    m.attributes.insert("plan".into(), "team".into());
    let (id, queues) = log.publish(P, "signups", m).await?;
    assert_eq!(queues.len(), 3);
    let fq = internal_queue("welcome", Feed::Topic("signups"));
    let got = log
        .receive(P, &fq, 10, Some(Duration::from_secs(1)), Holder::Client)
        .await?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id, "every copy keeps the event id");
    assert_eq!(log.queue(P, "all").await?.depth, 2);
    assert_eq!(log.topic(P, "signups").await?.subscriptions.len(), 3);
    assert!(matches!(
        log.delete_topic(P, "signups").await,
        Err(EventError::Conflict(_))
    ));
    assert!(matches!(
        log.publish(P, "nope", msg("x")).await,
        Err(EventError::TopicNotFound(_))
    ));
    Ok(())
}

/// A schedule slot fires once; a redeploy keeps its last slot, a changed schedule starts afresh.
pub async fn a_slot_fires_once(log: Arc<dyn EventLog>) -> Outcome {
    log.sync_triggers(P, &[ticks("rate:1s")], &[], 1_000)
        .await?;
    let q = internal_queue("tick", Feed::Schedule("rate:1s"));
    assert!(log.fire(P, "tick", "rate:1s", 2_000, &q, msg("a")).await?);
    assert!(
        !log.fire(P, "tick", "rate:1s", 2_000, &q, msg("a")).await?,
        "same slot"
    );
    assert!(
        !log.fire(P, "tick", "rate:1s", 1_500, &q, msg("a")).await?,
        "older slot"
    );
    assert_eq!(log.last_slot(P, "tick", "rate:1s").await?, Some(2_000));
    // A redeploy with the same schedule keeps its slot; a changed one starts afresh.
    log.sync_triggers(P, &[ticks("rate:1s")], &[], 9_000)
        .await?;
    assert_eq!(log.last_slot(P, "tick", "rate:1s").await?, Some(2_000));
    log.sync_triggers(P, &[ticks("rate:2s")], &[], 9_000)
        .await?;
    assert_eq!(log.last_slot(P, "tick", "rate:1s").await?, None);
    assert_eq!(log.queue(P, &q).await?.depth, 1);
    Ok(())
}

/// A change feed starts where it is created, forwards each position once (with its messages,
/// in one transaction), keeps its position across a redeploy, and is gone when dropped.
pub async fn a_change_feed_forwards_each_position_once(log: Arc<dyn EventLog>) -> Outcome {
    let feeds = |feeds: Vec<(String, u64)>| FunctionTriggers {
        function: "watch".into(),
        feeds,
        ..FunctionTriggers::default()
    };
    log.sync_triggers(P, &[feeds(vec![("db.orders".into(), 10)])], &[], 1_000)
        .await?;
    let q = internal_queue("watch", Feed::Change("db.orders"));
    assert_eq!(log.feed_position(P, "watch", "db.orders").await?, Some(10));
    assert!(
        !log.forward(P, "watch", "db.orders", 10, &q, vec![msg("old")])
            .await?,
        "a position at the start is not forwarded"
    );
    let batch = vec![msg("a"), msg("b")];
    assert!(
        log.forward(P, "watch", "db.orders", 12, &q, batch.clone())
            .await?
    );
    assert!(
        !log.forward(P, "watch", "db.orders", 12, &q, batch).await?,
        "the same position again (a second forwarder, or a retry after a lost answer)"
    );
    // Changes filtered out still move the feed on.
    assert!(log.forward(P, "watch", "db.orders", 15, &q, vec![]).await?);
    assert_eq!(log.feed_position(P, "watch", "db.orders").await?, Some(15));
    assert_eq!(log.queue(P, &q).await?.depth, 2);
    // A redeploy keeps the position (its start is for new feeds only).
    log.sync_triggers(P, &[feeds(vec![("db.orders".into(), 99)])], &[], 2_000)
        .await?;
    assert_eq!(log.feed_position(P, "watch", "db.orders").await?, Some(15));
    // A feed no longer declared is gone, and forwards nothing.
    log.sync_triggers(P, &[feeds(vec![("db.users".into(), 99)])], &[], 3_000)
        .await?;
    assert_eq!(log.feed_position(P, "watch", "db.orders").await?, None);
    assert!(
        !log.forward(P, "watch", "db.orders", 20, &q, vec![msg("c")])
            .await?
    );
    assert_eq!(log.feed_position(P, "watch", "db.users").await?, Some(99));
    Ok(())
}

/// Asynchronous invokes dedupe by idempotency key and keep their result.
pub async fn async_invokes_dedupe_by_key_and_record_results(log: Arc<dyn EventLog>) -> Outcome {
    let q = internal_queue("f", Feed::Async);
    log.create_queue(P, &QueueSpec::new(q.clone())).await?;
    let (a, created) = log.submit_async(P, "f", &q, Some("k1"), msg("x")).await?;
    assert!(created);
    assert_eq!(a.status, AsyncStatus::Queued);
    let (b, created) = log.submit_async(P, "f", &q, Some("k1"), msg("x")).await?;
    assert!(!created);
    assert_eq!(a.id, b.id);
    let (c, _) = log.submit_async(P, "f", &q, None, msg("y")).await?;
    assert_ne!(c.id, a.id);
    assert_eq!(log.queue(P, &q).await?.depth, 2);
    let m = log
        .receive(P, &q, 1, Some(Duration::from_secs(60)), Holder::Deliverer)
        .await?
        .pop()
        .found()?;
    assert_eq!(m.id, a.id);
    let result = AsyncResult {
        request_id: "req".into(),
        status: 200,
        body: Some(b"done".to_vec()),
        error: None,
    };
    log.settle(P, &[m.receipt], &Settle::Ack, Some(&result))
        .await?;
    let a = log.async_invocation(P, &a.id).await?;
    assert_eq!(a.status, AsyncStatus::Succeeded);
    assert_eq!(a.response_body.as_deref(), Some("done"));
    assert_eq!((a.attempts, a.response_status), (1, Some(200)));
    assert!(matches!(
        log.async_invocation(P, "nope").await,
        Err(EventError::AsyncNotFound(_))
    ));
    // Expiry removes finished ones only, and only those finished before the cutoff.
    assert_eq!(log.expire_async(now_ms() - 60_000).await?, 0);
    assert_eq!(log.expire_async(now_ms() + 1).await?, 1);
    assert!(matches!(
        log.async_invocation(P, &a.id).await,
        Err(EventError::AsyncNotFound(_))
    ));
    assert_eq!(
        log.async_invocation(P, &c.id).await?.status,
        AsyncStatus::Queued
    );
    Ok(())
}

/// Access keys: shown once at creation, checked by hash, replaced by rotation (which revokes
/// the queue's send-only and consume-only keys too); unknown queues and topics are errors, not
/// `false`.
pub async fn keys_check_and_rotate(log: Arc<dyn EventLog>) -> Outcome {
    let (_, key) = log.create_queue(P, &QueueSpec::new("q")).await?;
    let old = key.found()?;
    let send = log.add_queue_key(P, "q", KeyRole::Send).await?;
    let consume = log.add_queue_key(P, "q", KeyRole::Consume).await?;
    assert_eq!(
        log.check_queue_key(P, "q", &send).await?,
        Some(KeyRole::Send)
    );
    assert_eq!(
        log.check_queue_key(P, "q", &consume).await?,
        Some(KeyRole::Consume)
    );
    log.create_queue(P, &QueueSpec::new("q2")).await?;
    assert_eq!(
        log.check_queue_key(P, "q2", &send).await?,
        None,
        "a scoped key opens only its own queue"
    );
    assert!(matches!(
        log.add_queue_key(P, "nope", KeyRole::Send).await,
        Err(EventError::QueueNotFound(_))
    ));
    let new = log.rotate_queue_key(P, "q").await?;
    assert_ne!(old, new);
    assert_eq!(log.check_queue_key(P, "q", &old).await?, None);
    assert_eq!(
        log.check_queue_key(P, "q", &new).await?,
        Some(KeyRole::Full)
    );
    for revoked in [&send, &consume] {
        assert_eq!(log.check_queue_key(P, "q", revoked).await?, None);
    }
    assert!(matches!(
        log.check_queue_key(P, "nope", &new).await,
        Err(EventError::QueueNotFound(_))
    ));
    let (_, key) = log.create_topic(P, "t").await?;
    let old = key.found()?;
    assert!(log.check_topic_key(P, "t", &old).await?);
    let new = log.rotate_topic_key(P, "t").await?;
    assert!(!log.check_topic_key(P, "t", &old).await?);
    assert!(log.check_topic_key(P, "t", &new).await?);
    assert!(matches!(
        log.rotate_topic_key(P, "nope").await,
        Err(EventError::TopicNotFound(_))
    ));
    // Another project's queue of the same name is another queue.
    assert!(matches!(
        log.check_queue_key("other", "q", &new).await,
        Err(EventError::QueueNotFound(_))
    ));
    Ok(())
}

/// A queue a function consumes cannot be deleted; once nothing consumes it, it can, with its
/// messages.
pub async fn deleting_a_consumed_queue_conflicts(log: Arc<dyn EventLog>) -> Outcome {
    let f = FunctionTriggers {
        function: "worker".into(),
        queues: vec!["jobs".into()],
        ..FunctionTriggers::default()
    };
    log.sync_triggers(P, std::slice::from_ref(&f), &[], now_ms())
        .await?;
    log.send(P, "jobs", vec![msg("x")]).await?;
    assert!(matches!(
        log.delete_queue(P, "jobs").await,
        Err(EventError::Conflict(_))
    ));
    let idle = FunctionTriggers {
        queues: Vec::new(),
        ..f
    };
    log.sync_triggers(P, &[idle], &[], now_ms()).await?;
    log.delete_queue(P, "jobs").await?;
    assert!(matches!(
        log.queue(P, "jobs").await,
        Err(EventError::QueueNotFound(_))
    ));
    assert!(matches!(
        log.delete_queue(P, "jobs").await,
        Err(EventError::QueueNotFound(_))
    ));
    Ok(())
}

/// Forgetting a function deletes its schedules, subscriptions, internal queues and async
/// records, and leaves user queues alone.
pub async fn forgetting_a_function_removes_its_triggers(log: Arc<dyn EventLog>) -> Outcome {
    log.create_topic(P, "t").await?;
    let f = FunctionTriggers {
        function: "f".into(),
        queues: vec!["jobs".into()],
        topics: vec![("t".into(), Filter::default())],
        schedules: vec!["rate:1s".into()],
        feeds: vec![("db.orders".into(), 0)],
    };
    log.sync_triggers(P, &[f], &[], 1_000).await?;
    let cq = internal_queue("f", Feed::Change("db.orders"));
    assert!(
        log.forward(P, "f", "db.orders", 3, &cq, vec![msg("c")])
            .await?
    );
    let aq = internal_queue("f", Feed::Async);
    let (inv, _) = log.submit_async(P, "f", &aq, None, msg("x")).await?;
    assert!(log.last_slot(P, "f", "rate:1s").await?.is_some());
    assert_eq!(log.topic(P, "t").await?.subscriptions.len(), 1);
    log.sync_triggers(P, &[], &["f".to_owned()], 2_000).await?;
    assert_eq!(log.last_slot(P, "f", "rate:1s").await?, None);
    assert_eq!(log.feed_position(P, "f", "db.orders").await?, None);
    assert!(matches!(
        log.queue(P, &cq).await,
        Err(EventError::QueueNotFound(_))
    ));
    assert!(log.topic(P, "t").await?.subscriptions.is_empty());
    assert!(matches!(
        log.queue(P, &aq).await,
        Err(EventError::QueueNotFound(_))
    ));
    assert!(matches!(
        log.async_invocation(P, &inv.id).await,
        Err(EventError::AsyncNotFound(_))
    ));
    // The user queue it consumed stays, and can now be deleted.
    log.delete_queue(P, "jobs").await?;
    Ok(())
}

/// Receivers racing on one queue never get the same message, and get every one.
pub async fn concurrent_receivers_never_share_a_message(log: Arc<dyn EventLog>) -> Outcome {
    log.create_queue(P, &QueueSpec::new("q")).await?;
    let sent: Vec<String> = log
        .send(P, "q", (0..200).map(|i| msg(&i.to_string())).collect())
        .await?;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = log
                        .receive(P, "q", 7, Some(Duration::from_secs(600)), Holder::Client)
                        .await?;
                    if batch.is_empty() {
                        return Ok::<_, EventError>(got);
                    }
                    got.extend(batch.into_iter().map(|m| m.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), unique.len(), "a message was leased twice");
    assert_eq!(unique, sent.iter().collect(), "every message was received");
    Ok(())
}

/// Settling twice, or after the lease ran out and the message was received again, changes
/// nothing the second time.
pub async fn ack_and_settle_are_idempotent_under_races(log: Arc<dyn EventLog>) -> Outcome {
    log.create_queue(P, &QueueSpec::new("q")).await?;
    log.send(P, "q", vec![msg("x")]).await?;
    let first = log
        .receive(P, "q", 1, Some(Duration::from_millis(1)), Holder::Deliverer)
        .await?
        .pop()
        .found()?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = log
        .receive(P, "q", 1, Some(Duration::from_secs(600)), Holder::Deliverer)
        .await?
        .pop()
        .found()?;
    assert_eq!(first.id, second.id);
    // The stale receipt settles nothing, and does not disturb the live lease.
    let fate = log
        .settle(P, std::slice::from_ref(&first.receipt), &Settle::Ack, None)
        .await?;
    assert_eq!(fate, Fate::Gone);
    assert_eq!(log.queue(P, "q").await?.in_flight, 1);
    assert_eq!(
        log.settle(P, std::slice::from_ref(&second.receipt), &Settle::Ack, None)
            .await?,
        Fate::Acked
    );
    assert_eq!(
        log.settle(P, &[second.receipt], &Settle::Ack, None).await?,
        Fate::Gone
    );
    assert_eq!(log.queue(P, "q").await?.depth, 0);
    Ok(())
}

/// What was acknowledged survives a crash: sent messages, fired slots, forwarded changes,
/// async records; leases
/// the deliverer held are released at the next start; acked messages stay gone.
pub async fn accepted_events_survive_a_crash(subject: &dyn Subject) -> Outcome {
    let log = subject.fresh().await;
    log.create_queue(P, &QueueSpec::new("q")).await?;
    log.send(P, "q", (0..10).map(|i| msg(&i.to_string())).collect())
        .await?;
    let leased = log
        .receive(P, "q", 4, Some(Duration::from_secs(600)), Holder::Deliverer)
        .await?;
    log.ack(P, "q", &[leased[0].receipt.clone()]).await?;
    let mut tick = ticks("rate:1s");
    tick.feeds = vec![("db.orders".into(), 0)];
    log.sync_triggers(P, &[tick], &[], 1_000).await?;
    let q = internal_queue("tick", Feed::Schedule("rate:1s"));
    assert!(
        log.fire(P, "tick", "rate:1s", 5_000, &q, msg("slot"))
            .await?
    );
    let cq = internal_queue("tick", Feed::Change("db.orders"));
    assert!(
        log.forward(P, "tick", "db.orders", 7, &cq, vec![msg("change")])
            .await?
    );
    let aq = internal_queue("tick", Feed::Async);
    let (inv, _) = log
        .submit_async(P, "tick", &aq, Some("k"), msg("a"))
        .await?;

    let log = subject.reopen(log).await;
    assert_eq!(log.release_all(Holder::Deliverer).await?, 3);
    let info = log.queue(P, "q").await?;
    assert_eq!((info.depth, info.in_flight), (9, 0));
    assert_eq!(log.last_slot(P, "tick", "rate:1s").await?, Some(5_000));
    assert_eq!(log.queue(P, &q).await?.depth, 1);
    assert_eq!(log.feed_position(P, "tick", "db.orders").await?, Some(7));
    assert_eq!(log.queue(P, &cq).await?.depth, 1);
    let again = log.async_invocation(P, &inv.id).await?;
    assert_eq!(again.status, AsyncStatus::Queued);
    let (dup, created) = log
        .submit_async(P, "tick", &aq, Some("k"), msg("a"))
        .await?;
    assert!(!created, "the idempotency key survived");
    assert_eq!(dup.id, inv.id);
    Ok(())
}

/// A waiter registered before a wake is woken, even if it starts waiting after the wake; one
/// registered after it is not; other queues' wakes do not reach it.
pub async fn wakeups_reach_registered_waiters(w: Arc<dyn Wakeups>) -> Outcome {
    let early = w.waiter(P, "q");
    let other = w.waiter(P, "other");
    w.wake(P, "q");
    let late = w.waiter(P, "q");
    tokio::time::timeout(Duration::from_secs(5), early)
        .await
        .map_err(|_| "a registered waiter was not woken within 5 s")?;
    assert!(
        tokio::time::timeout(Duration::from_millis(50), late)
            .await
            .is_err(),
        "a waiter registered after the wake is not woken by it"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), other)
            .await
            .is_err(),
        "another queue's wake does not reach it"
    );
    let proj = w.waiter("another-project", "q");
    w.wake(P, "q");
    assert!(
        tokio::time::timeout(Duration::from_millis(50), proj)
            .await
            .is_err(),
        "another project's queue of the same name is another queue"
    );
    Ok(())
}
