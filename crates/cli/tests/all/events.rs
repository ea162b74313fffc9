//! Event triggers end to end: queue, topic, schedule and async deliveries as CloudEvents to a
//! real guest (`event-sink`, which forwards each delivery to a [`Capture`] server the test
//! reads), retries into a dead-letter queue, the queue data plane with access keys, bad input,
//! a rate schedule across a restart, and `kill -9` with 10,000 queued events.
//!
//! Long file: every event trigger's end-to-end scenarios (schedules, queues, topics, async
//! invokes, retries and dead letters, crash recovery, the CLI) share one set of helpers here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use updraft_test_guests::EVENT_SINK;

use crate::support::{Capture, Captured, TestServer, expect_error};

/// Fast retries, so that a retry → dead-letter test takes a second.
pub(crate) const FAST_RETRIES: &str = "[events]\nretry_base = \"50ms\"\nretry_max = \"200ms\"\n";

/// The function table lines that point the sink guest at `sink`.
pub(crate) fn sink_env(sink: &Capture) -> String {
    format!(
        "env = {{ SINK_URL = \"http://{0}\" }}\nallowed_outbound_hosts = [\"http://{0}\"]\n",
        sink.addr
    )
}

fn app(sink: &Capture, triggers: &str) -> String {
    format!(
        "[app]\nname = \"events\"\n\n[[functions]]\nname = \"sink\"\ncomponent = \"sink.wasm\"\n{}\n{triggers}",
        sink_env(sink)
    )
}

async fn deploy_sink(s: &TestServer, sink: &Capture, triggers: &str) {
    let digest = s.upload_guest(EVENT_SINK).await;
    s.deploy_ok(&app(sink, triggers), &[("sink", &digest)])
        .await;
}

/// Waits (bounded) until the sink has a delivery for which `pick` holds, and returns it.
pub(crate) async fn delivery(
    sink: &Capture,
    what: &str,
    pick: impl Fn(&Captured) -> bool,
) -> Captured {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(c) = sink.received().into_iter().find(|c| pick(c)) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} delivery came; got {:?}",
            sink.received()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn source_is(source: &str) -> impl Fn(&Captured) -> bool + '_ {
    move |c| c.header("ce-source").as_deref() == Some(source)
}

/// The CloudEvents 1.0 binary-mode attributes every delivery must carry.
fn assert_cloudevent(c: &Captured, kind: &str) {
    assert_eq!(
        c.header("ce-specversion").as_deref(),
        Some("1.0"),
        "{}",
        c.head
    );
    assert_eq!(c.header("ce-type").as_deref(), Some(kind), "{}", c.head);
    assert!(
        c.header("ce-id").is_some_and(|id| !id.is_empty()),
        "{}",
        c.head
    );
    let time = c.header("ce-time").unwrap();
    assert!(
        time.len() >= 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "ce-time is not RFC 3339: {time}"
    );
    assert!(c.header("content-type").is_some(), "{}", c.head);
    assert!(c.header("x-updraft-request-id").is_some(), "{}", c.head);
}

async fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let resp = s.api(Method::POST, path).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn depth(s: &TestServer, queue: &str) -> u64 {
    s.api_json(&format!("/v1/queues/{queue}")).await["depth"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

async fn depth_until(s: &TestServer, queue: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while depth(s, queue).await != want {
        assert!(
            Instant::now() < deadline,
            "queue {queue} never had {want} messages"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trigger_delivers_a_cloudevent() {
    let sink = Capture::start().await;
    let s = TestServer::start_with(FAST_RETRIES).await;
    deploy_sink(
        &s,
        &sink,
        "[[functions.queue]]\nqueue = \"orders\"\n\n\
         [[functions.topic]]\ntopic = \"signups\"\nfilter = { plan = [\"pro\", \"team\"] }\n\n\
         [[functions.schedule]]\nrate = \"1s\"\n",
    )
    .await;

    // Queue: created on deploy; a send is delivered once and acked.
    let (status, sent) = post(
        &s,
        "/v1/queues/orders/messages",
        json!({"body": "{\"order\":7}", "attributes": {"tenant": "acme"}}),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let id = sent["ids"][0].as_str().unwrap().to_owned();
    let c = delivery(&sink, "queue", source_is("/queues/orders")).await;
    assert_cloudevent(&c, "dev.updraft.queue.message");
    assert_eq!(c.header("ce-id").as_deref(), Some(id.as_str()));
    assert_eq!(
        c.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        c.header("ce-tenant").as_deref(),
        Some("acme"),
        "attributes are extensions"
    );
    assert_eq!(c.header("x-updraft-attempt").as_deref(), Some("1"));
    assert_eq!(c.body, b"{\"order\":7}");
    depth_until(&s, "orders", 0).await;

    // Topic: only publications the function's filter lets through reach it.
    let (status, p) = post(
        &s,
        "/v1/topics/signups/publish",
        json!({"body": "free user", "attributes": {"plan": "free"}}),
    )
    .await;
    assert_eq!((status, p["delivered_to"].as_u64()), (201, Some(0)), "{p}");
    let (_, p) = post(
        &s,
        "/v1/topics/signups/publish",
        json!({"body": "team user", "attributes": {"plan": "team"}}),
    )
    .await;
    assert_eq!(p["delivered_to"], 1, "{p}");
    let c = delivery(&sink, "topic", source_is("/topics/signups")).await;
    assert_cloudevent(&c, "dev.updraft.topic.published");
    assert_eq!(c.header("ce-id").as_deref(), p["id"].as_str());
    assert_eq!(c.header("ce-plan").as_deref(), Some("team"));
    assert_eq!(
        c.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(c.body, b"team user");

    // Schedule: the slot is the event time.
    let c = delivery(&sink, "schedule", source_is("/functions/sink/schedules")).await;
    assert_cloudevent(&c, "dev.updraft.schedule.fired");
    let data: Value = serde_json::from_slice(&c.body).unwrap();
    assert_eq!(data["schedule"], "rate 1s");
    assert_eq!(data["missed"], 0);
    assert_eq!(c.header("ce-time").as_deref(), data["slot"].as_str());
    assert_eq!(
        rfc3339_ms(data["slot"].as_str().unwrap()) % 1000,
        0,
        "{data}"
    );

    // Async invoke: 202 + id; the same idempotency key gives the same invoke, run once.
    let submit = || {
        s.api(Method::POST, "/v1/functions/sink/invocations?async=true")
            .header("idempotency-key", "order-7")
            .header("content-type", "text/plain")
            .body("do it")
            .send()
    };
    let first = submit().await.unwrap();
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = submit().await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let aid = first["id"].as_str().unwrap().to_owned();
    let c = delivery(&sink, "async", source_is("/functions/sink")).await;
    assert_cloudevent(&c, "dev.updraft.function.invoked");
    assert_eq!(c.header("ce-id").as_deref(), Some(aid.as_str()));
    assert_eq!(c.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(c.body, b"do it");
    let deadline = Instant::now() + Duration::from_secs(10);
    let done = loop {
        let a = s.api_json(&format!("/v1/async/{aid}")).await;
        if a["status"] == "succeeded" {
            break a;
        }
        assert!(Instant::now() < deadline, "{a}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["response_status"], 200, "{done}");
    assert_eq!(done["response_body"], "ok", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(done["idempotency_key"], "order-7");
    // A third submission after it ran is still deduped, and nothing ran twice.
    let third: Value = submit().await.unwrap().json().await.unwrap();
    assert_eq!(third["status"], "succeeded");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = sink
        .received()
        .iter()
        .filter(|c| c.header("ce-id").as_deref() == Some(aid.as_str()))
        .count();
    assert_eq!(runs, 1, "the idempotency key must dedupe");

    // Every delivery went through the dispatcher: each has an invocation record with its
    // trigger.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = s.api_json("/v1/functions/sink/invocations?limit=500").await;
        let triggers: BTreeSet<String> = list["invocations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["trigger"].as_str().unwrap().to_owned())
            .collect();
        if ["async", "queue", "schedule", "topic"]
            .iter()
            .all(|t| triggers.contains(*t))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{triggers:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_retry_then_dead_letter_with_their_history() {
    let sink = Capture::start().await;
    sink.status.store(500, Ordering::SeqCst);
    let s = TestServer::start_with(FAST_RETRIES).await;
    deploy_sink(
        &s,
        &sink,
        "[[functions.queue]]\nqueue = \"orders\"\nmax_attempts = 3\n",
    )
    .await;
    let (_, sent) = post(&s, "/v1/queues/orders/messages", json!({"body": "doomed"})).await;
    let id = sent["ids"][0].as_str().unwrap().to_owned();
    // The function's own dead-letter queue, made when the first event lands in it.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = s
            .api(Method::GET, "/v1/queues/sink-dlq")
            .send()
            .await
            .unwrap();
        if r.status() == 200 && r.json::<Value>().await.unwrap()["depth"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing was dead-lettered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(depth(&s, "orders").await, 0);
    let attempts: Vec<String> = sink
        .received()
        .iter()
        .filter(|c| c.header("ce-id").as_deref() == Some(id.as_str()))
        .map(|c| c.header("x-updraft-attempt").unwrap())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"], "three attempts, then no more");

    let (status, got) = post(
        &s,
        "/v1/queues/sink-dlq/messages/receive",
        json!({"max": 10}),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    let m = &got["messages"][0];
    assert_eq!(m["id"], id.as_str(), "the event keeps its id");
    assert_eq!(m["body"], "doomed");
    assert_eq!(m["source"], "/queues/orders");
    let errors = m["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{m}");
    for (i, e) in errors.iter().enumerate() {
        assert_eq!(e["attempt"], i + 1);
        assert_eq!(e["status"], 500);
        assert_eq!(e["function"], "sink");
        assert_eq!(e["error"], "500: no", "{e}");
        assert!(
            e["request_id"].as_str().is_some_and(|r| r.len() == 32),
            "{e}"
        );
    }
    // Backoff: each retry waited (base 50 ms, with jitter at least half of it, doubling).
    let at: Vec<i64> = errors
        .iter()
        .map(|e| e["at_ms"].as_i64().unwrap())
        .collect();
    assert!(at[1] - at[0] >= 25 && at[2] - at[1] >= 50, "{at:?}");
    s.platform_line("sink", "", |l| {
        l.contains("moved to dead-letter queue `sink-dlq`")
    })
    .await;

    // The failures, dead letter and depth are in /metrics.
    let metrics = s
        .api(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains("updraft_events_dead_lettered_total{project=\"default\",queue=\"orders\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("updraft_queue_depth{project=\"default\",queue=\"sink-dlq\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("updraft_queue_oldest_age_seconds{project=\"default\",queue=\"sink-dlq\"}")
    );
    assert!(
        metrics.contains(
            "updraft_invocations_total{project=\"default\",function=\"sink\",version=\"1\",status=\"500\"} 3"
        ),
        "{metrics}"
    );

    // An async invoke that keeps failing ends `failed`, with its last error.
    let a: Value = s
        .api(Method::POST, "/v1/functions/sink/invocations?async=true")
        .body("x")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = s
            .api_json(&format!("/v1/async/{}", a["id"].as_str().unwrap()))
            .await;
        if got["status"] == "failed" {
            assert_eq!(got["attempts"], 3, "{got}");
            assert_eq!(got["response_status"], 500, "{got}");
            assert_eq!(got["error"], "500: no", "{got}");
            break;
        }
        assert!(Instant::now() < deadline, "{got}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_serve_clients_on_the_data_plane_with_access_keys() {
    let s = TestServer::start().await;
    let (status, created) = post(
        &s,
        "/v1/queues",
        json!({"name": "jobs", "visibility_timeout": "300ms"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["access_key"].as_str().unwrap().to_owned();
    let (status, again) = post(&s, "/v1/queues", json!({"name": "jobs"})).await;
    assert_eq!((status, again["created"].as_bool()), (200, Some(false)));
    assert!(
        again.get("access_key").is_none(),
        "a key is shown only once"
    );
    let (_, other) = post(&s, "/v1/queues", json!({"name": "other"})).await;
    let other_key = other["access_key"].as_str().unwrap().to_owned();

    let dp = |method: Method, path: &str, key: &str| {
        s.http
            .request(method, s.url(&format!("/_updraft/queues/jobs{path}")))
            .bearer_auth(key)
    };
    let batch = json!({"messages": [{"body": "a"}, {"body": "b", "delay": "10m"}, {"body": "c"}]});
    let r = dp(Method::POST, "/messages/batch", &key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    expect_error(
        dp(Method::POST, "/messages", &other_key)
            .json(&json!({"body": "x"}))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    expect_error(
        s.http
            .post(s.url("/_updraft/queues/jobs/messages"))
            .json(&json!({"body": "x"}))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    // Management is control-plane only.
    expect_error(
        dp(Method::DELETE, "", &key).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;

    let info: Value = dp(Method::GET, "", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["depth"].as_u64(), info["delayed"].as_u64()),
        (Some(3), Some(1)),
        "{info}"
    );
    let got: Value = dp(Method::POST, "/messages/receive", &key)
        .json(&json!({"max": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let msgs = got["messages"].as_array().unwrap();
    let bodies: Vec<&str> = msgs.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["a", "c"], "the delayed one is hidden");
    // `a` is acked; `c`'s 300 ms lease runs out and it comes back with a new receipt.
    let r = dp(
        Method::DELETE,
        &format!("/messages/{}", msgs[0]["receipt"].as_str().unwrap()),
        &key,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let started = Instant::now();
    let back: Value = dp(Method::POST, "/messages/receive", &key)
        .json(&json!({"wait": "5s"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "long poll returned when it came back"
    );
    assert_eq!(back["messages"][0]["body"], "c");
    assert_eq!(back["messages"][0]["receive_count"], 2);
    let stale = msgs[1]["receipt"].as_str().unwrap();
    expect_error(
        dp(Method::DELETE, &format!("/messages/{stale}"), &key)
            .send()
            .await
            .unwrap(),
        404,
        "message_not_found",
    )
    .await;
    let acked: Value = dp(Method::POST, "/messages/ack", &key)
        .json(&json!({"receipts": [back["messages"][0]["receipt"]]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(acked["deleted"], 1);
    // Purge takes the delayed one; a rotated key locks the old one out.
    let purged: Value = dp(Method::POST, "/purge", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(purged["deleted"], 1);
    let (_, rotated) = post(&s, "/v1/queues/jobs/keys", json!({})).await;
    let new_key = rotated["access_key"].as_str().unwrap();
    expect_error(
        dp(Method::GET, "", &key).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(
        dp(Method::GET, "", new_key).send().await.unwrap().status(),
        200
    );

    // A topic fans out to subscribed queues through their filters.
    let (_, t) = post(&s, "/v1/topics", json!({"name": "news"})).await;
    let topic_key = t["access_key"].as_str().unwrap().to_owned();
    let r = s
        .api(Method::PUT, "/v1/topics/news/subscriptions/jobs")
        .json(&json!({"filter": {"lang": "en"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.api(Method::PUT, "/v1/topics/news/subscriptions/other")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let publish = |lang: &'static str| {
        s.http
            .post(s.url("/_updraft/topics/news/publish"))
            .bearer_auth(&topic_key)
            .json(&json!({"body": "hello", "attributes": {"lang": lang}}))
            .send()
    };
    let p: Value = publish("de").await.unwrap().json().await.unwrap();
    assert_eq!(p["delivered_to"], 1);
    let p: Value = publish("en").await.unwrap().json().await.unwrap();
    assert_eq!(p["delivered_to"], 2);
    assert_eq!(depth(&s, "jobs").await, 1);
    assert_eq!(depth(&s, "other").await, 2);
    s.stop().await;
}

/// One bad request: method, path, body (JSON; a string is sent raw as invalid JSON), the
/// expected status and code, and text the error message must contain.
type BadCase<'a> = (Method, &'a str, Option<Value>, (u16, &'a str), &'a str);

/// Asserts that the request of `case` is answered with its status, code and message.
async fn rejects(s: &TestServer, (method, path, body, (status, code), needle): BadCase<'_>) {
    let mut req = s.api(method, path);
    req = match body {
        Some(Value::String(raw)) => req.header("content-type", "application/json").body(raw),
        Some(json) => req.json(&json),
        None => req,
    };
    let e = expect_error(req.send().await.unwrap(), status, code).await;
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{path}: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_event_input_gets_clear_errors() {
    let sink = Capture::start().await;
    let s = TestServer::start().await;
    let digest = s.upload_guest(EVENT_SINK).await;
    for (triggers, needle) in [
        (
            "[[functions.schedule]]\ncron = \"*/5 * * *\"\n",
            "functions[0].schedule[0].cron: `*/5 * * *` is not a cron expression",
        ),
        (
            "[[functions.schedule]]\ncron = \"0 3 * * *\"\ntimezone = \"Mars/Base\"\n",
            "functions[0].schedule[0].timezone: `Mars/Base` is not an IANA time zone",
        ),
        (
            "[[functions.queue]]\nqueue = \"orders\"\nbatch_size = 1000\n",
            "functions[0].queue[0].batch_size: must be between 1 and 100",
        ),
    ] {
        let (status, body) = s.deploy(&app(&sink, triggers), &[("sink", &digest)]).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_manifest")),
            "{body}"
        );
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
    }

    post(
        &s,
        "/v1/queues",
        json!({"name": "small", "max_message_size": "1KiB"}),
    )
    .await;
    const SEND: &str = "/v1/queues/small/messages";
    let bad = (400, "bad_request");
    let many: Vec<Value> = (0..101).map(|_| json!({"body": "x"})).collect();
    let cases: Vec<BadCase<'_>> = vec![
        (
            Method::POST,
            "/v1/queues/nope/messages",
            Some(json!({"body": "x"})),
            (404, "queue_not_found"),
            "queue `nope` does not exist",
        ),
        (
            Method::POST,
            SEND,
            Some(json!({"body": "x".repeat(2048)})),
            (413, "payload_too_large"),
            "2048 bytes",
        ),
        (
            Method::POST,
            SEND,
            Some(json!({"bdy": "x"})),
            bad,
            "unknown field `bdy`",
        ),
        (
            Method::POST,
            SEND,
            Some(json!({"body": "x", "delay": "1h"})),
            bad,
            "delay: at most 15m",
        ),
        (
            Method::POST,
            SEND,
            Some(Value::String("{not json".into())),
            bad,
            "",
        ),
        (
            Method::POST,
            "/v1/queues/small/messages/batch",
            Some(json!({"messages": many})),
            bad,
            "1 to 100 messages",
        ),
        (
            Method::POST,
            "/v1/queues/small/messages/receive",
            Some(json!({"max": 0})),
            bad,
            "max: must be between 1 and 100",
        ),
        (
            Method::POST,
            "/v1/queues",
            Some(json!({"name": "Bad Name"})),
            bad,
            "not a valid queue name",
        ),
        (
            Method::POST,
            "/v1/topics/nope/publish",
            Some(json!({"body": "x"})),
            (404, "topic_not_found"),
            "topic `nope` does not exist",
        ),
        (
            Method::POST,
            "/v1/functions/nope/invocations?async=true",
            None,
            (404, "function_not_found"),
            "`nope`",
        ),
        (
            Method::GET,
            "/v1/async/nope",
            None,
            (404, "invocation_not_found"),
            "`nope`",
        ),
    ];
    for case in cases {
        rejects(&s, case).await;
    }
    // A queue a function consumes cannot be deleted from under it.
    deploy_sink(&s, &sink, "[[functions.queue]]\nqueue = \"orders\"\n").await;
    rejects(
        &s,
        (
            Method::POST,
            "/v1/functions/sink/invocations",
            None,
            bad,
            "needs `?async=true`",
        ),
    )
    .await;
    rejects(
        &s,
        (
            Method::DELETE,
            "/v1/queues/orders",
            None,
            (409, "conflict"),
            "consumed by function `sink`",
        ),
    )
    .await;
    s.stop().await;
}

/// `(ce-id, slot ms, missed)` of every schedule delivery, deduplicated by id.
fn fires(sink: &Capture) -> Vec<(String, i64, u64)> {
    let mut seen = BTreeMap::new();
    for c in sink.received() {
        if c.header("ce-type").as_deref() != Some("dev.updraft.schedule.fired") {
            continue;
        }
        let data: Value = serde_json::from_slice(&c.body).unwrap();
        let slot = data["slot"].as_str().unwrap().to_owned();
        seen.insert(
            c.header("ce-id").unwrap(),
            (slot, data["missed"].as_u64().unwrap()),
        );
    }
    let mut out: Vec<(String, i64, u64)> = seen
        .into_iter()
        .map(|(id, (slot, missed))| (id, rfc3339_ms(&slot), missed))
        .collect();
    out.sort_by_key(|f| f.1);
    out
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
fn rfc3339_ms(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = if s.len() >= 24 { n(20, 23) } else { 0 };
    ((days * 24 + n(11, 13)) * 60 + n(14, 16)) * 60_000 + n(17, 19) * 1000 + ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_schedule_fires_every_slot_once_across_a_restart() {
    let sink = Capture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_at_with(dir.path(), "").await;
    deploy_sink(&s, &sink, "[[functions.schedule]]\nrate = \"1s\"\n").await;
    tokio::time::sleep(Duration::from_millis(3300)).await;
    s.stop().await;
    let before = fires(&sink);
    assert!(before.len() >= 2, "{before:?}");
    // Down for more than two slots.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let s = TestServer::start_at_with(dir.path(), "").await;
    tokio::time::sleep(Duration::from_millis(3300)).await;
    s.stop().await;
    let all = fires(&sink);
    let slots: Vec<i64> = all.iter().map(|f| f.1).collect();
    assert!(
        slots.iter().all(|s| s % 1000 == 0),
        "slots are whole seconds: {slots:?}"
    );
    let distinct: BTreeSet<i64> = slots.iter().copied().collect();
    assert_eq!(distinct.len(), slots.len(), "a slot fired twice: {all:?}");
    // Every second from the first slot to the last is accounted for exactly once: fired
    // itself, or counted as `missed` by the catch-up fire after the restart.
    let accounted: u64 = all.iter().map(|f| 1 + f.2).sum();
    let span = (slots[slots.len() - 1] - slots[0]) / 1000 + 1;
    assert_eq!(accounted, span as u64, "{all:?}");
    let catch_up: Vec<_> = all.iter().filter(|f| f.2 > 0).collect();
    assert_eq!(catch_up.len(), 1, "one coalesced catch-up fire: {all:?}");
    assert!(catch_up[0].2 >= 1, "{all:?}");
    assert!(all.len() >= before.len() + 3, "{all:?}");
}

/// Deploys the sink guest on a server process.
pub(crate) async fn deploy_on(http: &reqwest::Client, control: &str, token: &str, manifest: &str) {
    crate::support::deploy_to(http, control, token, manifest, &[("sink", EVENT_SINK)]).await;
}

/// Ids of every event the sink got, from batched (`application/cloudevents-batch+json`)
/// deliveries.
fn delivered_ids(sink: &Capture) -> (BTreeSet<String>, usize) {
    let mut ids = BTreeSet::new();
    let mut deliveries = 0;
    for c in sink.received() {
        if let Ok(Value::Array(events)) = serde_json::from_slice::<Value>(&c.body) {
            for e in events {
                ids.insert(e["id"].as_str().unwrap().to_owned());
                deliveries += 1;
            }
        }
    }
    (ids, deliveries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_10000_queued_events_loses_none() {
    const EVENTS: usize = 10_000;
    let sink = Capture::start().await;
    // A slow function (50 ms per batch of 10, 4 at a time: ~800 events/s), so the kill lands
    // mid-way.
    sink.delay_ms.store(50, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let (serve, mut server) = crate::support::ConfiguredServe::start(dir.path(), FAST_RETRIES);
    let token = serve.token.clone();
    let http = reqwest::Client::new();
    let manifest = app(
        &sink,
        "max_concurrency = 4\n\n[[functions.queue]]\nqueue = \"bulk\"\nbatch_size = 10\n",
    );
    deploy_on(&http, &server.control_url, &token, &manifest).await;

    // 10,000 events, acknowledged 100 at a time.
    let mut sent = BTreeSet::new();
    for batch in 0..EVENTS / 100 {
        let messages: Vec<Value> = (0..100)
            .map(|i| json!({"body": format!("{{\"n\":{}}}", batch * 100 + i)}))
            .collect();
        let r = http
            .post(format!(
                "{}/v1/queues/bulk/messages/batch",
                server.control_url
            ))
            .bearer_auth(&token)
            .json(&json!({"messages": messages}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        for id in body["ids"].as_array().unwrap() {
            sent.insert(id.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(sent.len(), EVENTS);
    // Kill it mid-delivery.
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered_ids(&sink).0.len() < 1_000 {
        assert!(Instant::now() < deadline, "delivery never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let at_kill = delivered_ids(&sink).0.len();
    assert!(at_kill < EVENTS, "the kill came too late to test anything");

    let mut server = serve.restart();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (ids, _) = delivered_ids(&sink);
        if ids.len() == EVENTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {EVENTS} events delivered after the restart",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ids, deliveries) = delivered_ids(&sink);
    assert_eq!(ids, sent, "every acknowledged event was delivered");
    // At least once: the ones in flight at the kill may come twice, nothing else.
    assert!(deliveries - EVENTS <= 1_000, "{deliveries} deliveries");
    // And all were acked.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q: Value = http
            .get(format!("{}/v1/queues/bulk", server.control_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if q["depth"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{q}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("kill -9 after {at_kill} of {EVENTS} events; {deliveries} deliveries in all");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// Runs the `updraft` binary against `s`; returns (success, stdout and stderr).
fn cli(s: &TestServer, args: &[&str]) -> (bool, String) {
    let (ok, out, err) = crate::support::run_cli(s, args, None);
    (ok, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_queues_topics_and_async_invokes() {
    let sink = Capture::start().await;
    let s = TestServer::start().await;
    deploy_sink(&s, &sink, "").await;
    let (ok, out) = cli(&s, &["queue", "create", "work"]);
    assert!(ok && out.contains("access key (shown once): uqk_"), "{out}");
    let (ok, out) = cli(&s, &["queue", "send", "work", "hello", "--attr", "k=v"]);
    assert!(ok && out.starts_with("sent "), "{out}");
    let (ok, out) = cli(&s, &["queue", "list"]);
    assert!(ok && out.contains("NAME") && out.contains("work"), "{out}");
    let (ok, out) = cli(&s, &["queue", "receive", "work", "--ack", "--json"]);
    assert!(ok, "{out}");
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["messages"][0]["body"], "hello");
    assert_eq!(got["messages"][0]["attributes"]["k"], "v");
    let (_, out) = cli(&s, &["queue", "info", "work", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["depth"],
        0,
        "--ack deleted it"
    );
    let (ok, out) = cli(&s, &["queue", "send", "nope", "x"]);
    assert!(!ok && out.contains("queue `nope` does not exist"), "{out}");

    let (ok, _) = cli(&s, &["topic", "create", "news"]);
    assert!(ok);
    let (ok, out) = cli(
        &s,
        &[
            "topic",
            "subscribe",
            "news",
            "work",
            "--filter",
            "lang=en,de",
        ],
    );
    assert!(ok && out.contains("queue:work [lang=en,de]"), "{out}");
    let (ok, out) = cli(&s, &["topic", "publish", "news", "hi", "--attr", "lang=de"]);
    assert!(ok && out.contains("to 1 subscription(s)"), "{out}");

    let (ok, id) = cli(
        &s,
        &[
            "invoke",
            "sink",
            "--async",
            "-d",
            "payload",
            "--idempotency-key",
            "once",
        ],
    );
    assert!(ok, "{id}");
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 32, "{id}");
    let (_, again) = cli(
        &s,
        &[
            "invoke",
            "sink",
            "--async",
            "-d",
            "payload",
            "--idempotency-key",
            "once",
        ],
    );
    assert!(
        again.starts_with(&id) && again.contains("already submitted"),
        "{again}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, out) = cli(&s, &["async", &id]);
        assert!(ok, "{out}");
        if out.contains("succeeded") {
            assert!(out.contains("status    200"), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "{out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.stop().await;
}
