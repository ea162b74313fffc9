//! `[[functions.db]]` end to end: document writes through the HTTP API reach a real guest
//! (`event-sink`) as CloudEvents with the document before and after; failures retry into the
//! dead-letter queue; `kill -9` between a commit and its delivery still delivers.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use updraft_test_guests::EVENT_SINK;

use super::call;
use crate::events::{FAST_RETRIES, delivery, deploy_on, sink_env};
use crate::support::{Capture, Captured, TestServer};

fn app(sink: &Capture, trigger: &str) -> String {
    format!(
        "[app]\nname = \"shop\"\n\n[[collections]]\nname = \"orders\"\nindexes = [\"status\"]\n\n\
         [[collections]]\nname = \"users\"\n\n[[functions]]\nname = \"sink\"\ncomponent = \"sink.wasm\"\n{}\n{trigger}",
        sink_env(sink)
    )
}

fn body(c: &Captured) -> Value {
    serde_json::from_slice(&c.body).unwrap()
}

fn is(kind: &'static str, id: &'static str) -> impl Fn(&Captured) -> bool {
    move |c| {
        c.header("ce-type").as_deref() == Some(kind)
            && c.header("ce-subject").as_deref() == Some(id)
    }
}

#[tokio::test]
async fn document_writes_run_the_watching_function_with_before_and_after() {
    let s = TestServer::start_with(FAST_RETRIES).await;
    let sink = Capture::start().await;
    let digest = s.upload_guest(EVENT_SINK).await;
    // A trigger on a collection the app does not declare is refused at deploy.
    let (status, err) = s
        .deploy(
            &app(&sink, "[[functions.db]]\ncollection = \"invoices\"\n"),
            &[("sink", &digest)],
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err.to_string()
            .contains("`invoices` is not one of the app's [[collections]]"),
        "{err}"
    );
    s.deploy_ok(
        &app(
            &sink,
            "[[functions.db]]\ncollection = \"orders\"\nmax_attempts = 2\n",
        ),
        &[("sink", &digest)],
    )
    .await;
    let doc = |method, id: &str| {
        call(
            &s,
            method,
            &format!("/collections/orders/docs/{id}"),
            Some(&s.token),
        )
    };

    let r = doc(Method::PUT, "o1")
        .json(&json!({"status": "new"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let c = delivery(&sink, "created", is("dev.updraft.db.created", "o1")).await;
    assert_eq!(
        c.header("ce-source").as_deref(),
        Some("/collections/orders")
    );
    assert_eq!(
        c.header("content-type").as_deref(),
        Some("application/json")
    );
    let b = body(&c);
    assert_eq!(b["collection"], "orders");
    assert_eq!(b["op"], "created");
    assert_eq!(b["revision"], created["revision"]);
    assert_eq!(b["data"], json!({"status": "new"}));
    assert_eq!(b["before"], Value::Null);

    let r = doc(Method::PATCH, "o1")
        .json(&json!({"status": "paid"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b = body(&delivery(&sink, "updated", is("dev.updraft.db.updated", "o1")).await);
    assert_eq!(
        (b["before"]["status"].as_str(), b["data"]["status"].as_str()),
        (Some("new"), Some("paid"))
    );

    // Another collection's writes do not run it.
    let r = call(
        &s,
        Method::PUT,
        "/collections/users/docs/u1",
        Some(&s.token),
    )
    .json(&json!({"name": "ann"}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);

    let r = doc(Method::DELETE, "o1").send().await.unwrap();
    assert_eq!(r.status(), 204);
    let b = body(&delivery(&sink, "deleted", is("dev.updraft.db.deleted", "o1")).await);
    assert_eq!(
        (b["before"]["status"].as_str(), &b["data"]),
        (Some("paid"), &Value::Null)
    );
    assert!(
        sink.received()
            .iter()
            .all(|c| c.header("ce-subject").as_deref() != Some("u1")),
        "a change to `users` was delivered"
    );

    // A failing function: two attempts, then the change waits in its dead-letter queue.
    sink.status.store(500, Ordering::SeqCst);
    let r = doc(Method::PUT, "o2")
        .json(&json!({"status": "new"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let q = s
            .api(Method::GET, "/v1/queues/sink-dlq")
            .send()
            .await
            .unwrap();
        if q.status() == 200 && q.json::<Value>().await.unwrap()["depth"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed change never reached sink-dlq"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = sink
        .received()
        .iter()
        .filter(|c| c.header("ce-subject").as_deref() == Some("o2"))
        .count();
    assert_eq!(attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_commit_and_delivery_still_delivers_every_change() {
    const DOCS: usize = 300;
    let sink = Capture::start().await;
    sink.delay_ms.store(20, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let (serve, mut server) = crate::support::ConfiguredServe::start(dir.path(), FAST_RETRIES);
    let token = serve.token.clone();
    let http = reqwest::Client::new();
    let manifest = app(
        &sink,
        "max_concurrency = 2\n[[functions.db]]\ncollection = \"orders\"\nevents = [\"created\"]\n",
    );
    deploy_on(&http, &server.control_url, &token, &manifest).await;
    let base = format!("{}/_updraft/db/v1/collections/orders/docs", server.data_url);
    let mut written = BTreeSet::new();
    for i in 0..DOCS {
        let id = format!("d{i:04}");
        let r = http
            .put(format!("{base}/{id}"))
            .bearer_auth(&token)
            .json(&json!({"n": i}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        written.insert(id);
    }
    let delivered = |sink: &Capture| -> BTreeSet<String> {
        sink.received()
            .iter()
            .filter_map(|c| c.header("ce-subject"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(&sink).len() < 30 {
        assert!(Instant::now() < deadline, "delivery never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let at_kill = delivered(&sink).len();
    assert!(at_kill < DOCS, "the kill came too late to test anything");

    sink.delay_ms.store(0, Ordering::SeqCst);
    let mut server = serve.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered(&sink).len() < DOCS {
        assert!(
            Instant::now() < deadline,
            "{} of {DOCS} changes delivered after the restart",
            delivered(&sink).len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered(&sink), written);
    let deliveries = sink.received().len();
    eprintln!(
        "kill -9 after {at_kill} of {DOCS} changes delivered; {deliveries} deliveries in all"
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[tokio::test]
async fn key_value_writes_run_the_function_watching_the_store() {
    let s = TestServer::start_with(FAST_RETRIES).await;
    let sink = Capture::start().await;
    let digest = s.upload_guest(EVENT_SINK).await;
    s.deploy_ok(
        &app(&sink, "[[functions.kv]]\nstore = \"sessions\"\n"),
        &[("sink", &digest)],
    )
    .await;
    // The store was created at deploy; writes through the HTTP API are changes like any.
    let key = |method, k: &str| s.api(method, &format!("/v1/kv/stores/sessions/keys/{k}"));
    assert!(
        key(Method::PUT, "u1")
            .body("hello")
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let set = delivery(&sink, "set", |c| {
        c.header("ce-type").as_deref() == Some("dev.updraft.kv.set")
    })
    .await;
    assert_eq!(set.header("ce-source").as_deref(), Some("/stores/sessions"));
    assert_eq!(set.header("ce-subject").as_deref(), Some("u1"));
    let b = body(&set);
    assert_eq!(
        (b["store"].as_str(), b["key"].as_str(), b["value"].as_str()),
        (Some("sessions"), Some("u1"), Some("aGVsbG8="))
    );
    assert_eq!(b["size"], 5);
    assert_eq!(
        key(Method::DELETE, "u1").send().await.unwrap().status(),
        204
    );
    let b = body(
        &delivery(&sink, "deleted", |c| {
            c.header("ce-type").as_deref() == Some("dev.updraft.kv.deleted")
        })
        .await,
    );
    assert_eq!(b["key"], "u1");
    assert!(b.get("value").is_none(), "{b}");
}
