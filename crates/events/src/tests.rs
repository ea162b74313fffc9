#![allow(clippy::unwrap_used)]

use super::*;

const P: &str = "default";

fn log() -> (tempfile::TempDir, SqliteLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteLog::open(&dir.path().join("events.db")).unwrap();
    (dir, log)
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

#[test]
fn send_receive_ack_and_visibility() {
    let (_d, log) = log();
    let (_, key) = log.create_queue(P, &QueueSpec::new("q")).unwrap();
    let key = key.unwrap();
    assert!(log.check_queue_key(P, "q", &key).unwrap());
    assert!(!log.check_queue_key(P, "q", "nope").unwrap());
    assert!(
        log.create_queue(P, &QueueSpec::new("q"))
            .unwrap()
            .1
            .is_none(),
        "idempotent"
    );
    let ids = log
        .send(P, "q", vec![msg("a"), msg("b"), msg("c")])
        .unwrap();
    assert_eq!(ids.len(), 3);
    let got = log
        .receive(P, "q", 2, Some(Duration::from_secs(60)), Holder::Client)
        .unwrap();
    assert_eq!(
        got.iter().map(|m| m.data.clone()).collect::<Vec<_>>(),
        vec![b"a".to_vec(), b"b".to_vec()],
        "oldest first"
    );
    assert_eq!(got[0].id, ids[0]);
    assert_eq!(got[0].attempts, 1);
    let info = log.queue(P, "q").unwrap();
    assert_eq!((info.depth, info.in_flight), (3, 2));
    // Leased messages are invisible; only `c` is left.
    let rest = log
        .receive(P, "q", 10, Some(Duration::from_millis(1)), Holder::Client)
        .unwrap();
    assert_eq!(rest.len(), 1);
    std::thread::sleep(Duration::from_millis(5));
    // Its 1 ms lease ran out: it comes back with a new receipt, the old one is dead.
    let again = log
        .receive(P, "q", 10, Some(Duration::from_secs(60)), Holder::Client)
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(log.ack(P, &[rest[0].receipt.clone()]).unwrap(), 0);
    let receipts: Vec<String> = got
        .iter()
        .chain(&again)
        .map(|m| m.receipt.clone())
        .collect();
    assert_eq!(log.ack(P, &receipts).unwrap(), 3);
    assert_eq!(log.queue(P, "q").unwrap().depth, 0);
    assert!(matches!(
        log.send(P, "nope", vec![msg("x")]),
        Err(EventError::QueueNotFound(_))
    ));
}

#[test]
fn oversized_batches_store_nothing_and_delays_hide() {
    let (_d, log) = log();
    let mut spec = QueueSpec::new("q");
    spec.max_message_bytes = 4;
    log.create_queue(P, &spec).unwrap();
    let e = log
        .send(P, "q", vec![msg("ok"), msg("too long")])
        .unwrap_err();
    assert!(e.to_string().contains("8 bytes"), "{e}");
    assert_eq!(log.queue(P, "q").unwrap().depth, 0, "all or nothing");
    let mut delayed = msg("later");
    delayed.data.truncate(4);
    delayed.delay = Duration::from_secs(60);
    log.send(P, "q", vec![delayed]).unwrap();
    assert!(
        log.receive(P, "q", 1, Some(DEFAULT_VISIBILITY_TIMEOUT), Holder::Client)
            .unwrap()
            .is_empty()
    );
    assert_eq!(log.queue(P, "q").unwrap().delayed, 1);
}

#[test]
fn failures_retry_then_dead_letter_with_history() {
    let (_d, log) = log();
    log.create_queue(P, &QueueSpec::new("q")).unwrap();
    log.send(P, "q", vec![msg("x")]).unwrap();
    for attempt in 1..=3u32 {
        let m = log
            .receive(P, "q", 1, Some(Duration::from_secs(60)), Holder::Deliverer)
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(m.attempts, attempt);
        assert_eq!(m.errors.len() as u32, attempt - 1);
        let fate = log.settle(P, &[m.receipt], &fail(3), None).unwrap();
        if attempt < 3 {
            assert!(matches!(fate, Fate::Retrying(_)), "{fate:?}");
        } else {
            assert_eq!(fate, Fate::DeadLettered);
        }
    }
    assert_eq!(log.queue(P, "q").unwrap().depth, 0);
    let dead = log
        .receive(P, "f-dlq", 1, Some(Duration::from_secs(60)), Holder::Client)
        .unwrap()
        .pop()
        .unwrap();
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
}

#[test]
fn released_and_restarted_leases_do_not_count() {
    let (_d, log) = log();
    log.create_queue(P, &QueueSpec::new("q")).unwrap();
    log.send(P, "q", vec![msg("x")]).unwrap();
    let m = log
        .receive(P, "q", 1, Some(Duration::from_secs(600)), Holder::Deliverer)
        .unwrap()
        .pop()
        .unwrap();
    log.settle(
        P,
        &[m.receipt],
        &Settle::Release {
            delay: Duration::ZERO,
        },
        None,
    )
    .unwrap();
    let m = log
        .receive(P, "q", 1, Some(Duration::from_secs(600)), Holder::Deliverer)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(m.attempts, 1, "a throttled try is not an attempt");
    // A crash leaves the lease; the next start releases it at once.
    assert_eq!(log.release_all(Holder::Deliverer).unwrap(), 1);
    assert_eq!(
        log.receive(P, "q", 1, Some(Duration::from_secs(600)), Holder::Client)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn publish_fans_out_through_filters() {
    let (_d, log) = log();
    log.create_topic(P, "signups").unwrap();
    log.create_queue(P, &QueueSpec::new("all")).unwrap();
    log.create_queue(P, &QueueSpec::new("pro")).unwrap();
    log.subscribe_queue(P, "signups", "all", &Filter::default())
        .unwrap();
    let mut pro = Filter::default();
    pro.0
        .insert("plan".into(), vec!["pro".into(), "team".into()]);
    log.subscribe_queue(P, "signups", "pro", &pro).unwrap();
    let welcome = FunctionTriggers {
        function: "welcome".into(),
        topics: vec![("signups".into(), pro.clone())],
        ..FunctionTriggers::default()
    };
    log.sync_triggers(P, &[welcome], &[], now_ms()).unwrap();
    let mut m = msg("{}");
    m.attributes.insert("plan".into(), "free".into());
    assert_eq!(log.publish(P, "signups", m.clone()).unwrap().1.len(), 1);
    m.attributes.insert("plan".into(), "team".into());
    let (id, queues) = log.publish(P, "signups", m).unwrap();
    assert_eq!(queues.len(), 3);
    let fq = internal_queue("welcome", Feed::Topic("signups"));
    let got = log
        .receive(P, &fq, 10, Some(Duration::from_secs(1)), Holder::Client)
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id, "every copy keeps the event id");
    assert_eq!(log.queue(P, "all").unwrap().depth, 2);
    assert_eq!(log.topic(P, "signups").unwrap().subscriptions.len(), 3);
    assert!(matches!(
        log.delete_topic(P, "signups"),
        Err(EventError::Conflict(_))
    ));
    assert!(matches!(
        log.publish(P, "nope", msg("x")),
        Err(EventError::TopicNotFound(_))
    ));
}

fn ticks(key: &str) -> FunctionTriggers {
    FunctionTriggers {
        function: "tick".into(),
        schedules: vec![key.into()],
        ..FunctionTriggers::default()
    }
}

#[test]
fn a_slot_fires_once() {
    let (_d, log) = log();
    log.sync_triggers(P, &[ticks("rate:1s")], &[], 1_000)
        .unwrap();
    let q = internal_queue("tick", Feed::Schedule("rate:1s"));
    assert!(log.fire(P, "tick", "rate:1s", 2_000, &q, msg("a")).unwrap());
    assert!(
        !log.fire(P, "tick", "rate:1s", 2_000, &q, msg("a")).unwrap(),
        "same slot"
    );
    assert!(
        !log.fire(P, "tick", "rate:1s", 1_500, &q, msg("a")).unwrap(),
        "older slot"
    );
    assert_eq!(log.last_slot(P, "tick", "rate:1s").unwrap(), Some(2_000));
    // A redeploy with the same schedule keeps its slot; a changed one starts afresh.
    log.sync_triggers(P, &[ticks("rate:1s")], &[], 9_000)
        .unwrap();
    assert_eq!(log.last_slot(P, "tick", "rate:1s").unwrap(), Some(2_000));
    log.sync_triggers(P, &[ticks("rate:2s")], &[], 9_000)
        .unwrap();
    assert_eq!(log.last_slot(P, "tick", "rate:1s").unwrap(), None);
    assert_eq!(log.queue(P, &q).unwrap().depth, 1);
}

#[test]
fn async_invokes_dedupe_by_key_and_record_results() {
    let (_d, log) = log();
    let q = internal_queue("f", Feed::Async);
    log.create_queue(P, &QueueSpec::new(q.clone())).unwrap();
    let (a, created) = log.submit_async(P, "f", &q, Some("k1"), msg("x")).unwrap();
    assert!(created);
    assert_eq!(a.status, AsyncStatus::Queued);
    let (b, created) = log.submit_async(P, "f", &q, Some("k1"), msg("x")).unwrap();
    assert!(!created);
    assert_eq!(a.id, b.id);
    let (c, _) = log.submit_async(P, "f", &q, None, msg("y")).unwrap();
    assert_ne!(c.id, a.id);
    assert_eq!(log.queue(P, &q).unwrap().depth, 2);
    let m = log
        .receive(P, &q, 1, Some(Duration::from_secs(60)), Holder::Deliverer)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(m.id, a.id);
    let result = AsyncResult {
        request_id: "req".into(),
        status: 200,
        body: Some(b"done".to_vec()),
        error: None,
    };
    log.settle(P, &[m.receipt], &Settle::Ack, Some(&result))
        .unwrap();
    let a = log.async_invocation(P, &a.id).unwrap();
    assert_eq!(a.status, AsyncStatus::Succeeded);
    assert_eq!(a.response_body.as_deref(), Some("done"));
    assert_eq!((a.attempts, a.response_status), (1, Some(200)));
    assert!(matches!(
        log.async_invocation(P, "nope"),
        Err(EventError::AsyncNotFound(_))
    ));
}

#[test]
fn backoff_grows_with_jitter_and_caps() {
    let base = Duration::from_millis(100);
    let max = Duration::from_secs(1);
    for _ in 0..100 {
        let d1 = backoff(base, max, 1);
        assert!((Duration::from_millis(50)..=base).contains(&d1), "{d1:?}");
        let d3 = backoff(base, max, 3);
        assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&d3));
        assert!(backoff(base, max, 30) <= max);
    }
}
