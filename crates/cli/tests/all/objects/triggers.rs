//! `[[functions.bucket]]` end to end: committed uploads and deletes reach a real guest
//! (`event-sink`) as CloudEvents carrying AWS S3 event records, filtered by prefix and suffix;
//! refused uploads send nothing; `kill -9` between a commit and its delivery still delivers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use updraft_test_guests::EVENT_SINK;

use crate::events::{FAST_RETRIES, delivery, deploy_on, sink_env};
use crate::support::{Capture, Captured, ConfiguredServe, TestServer};

fn app(sink: &Capture, trigger: &str) -> String {
    format!(
        "[app]\nname = \"media\"\n\n[[functions]]\nname = \"sink\"\ncomponent = \"sink.wasm\"\n{}\n{trigger}",
        sink_env(sink)
    )
}

const TRIGGER: &str =
    "[[functions.bucket]]\nbucket = \"uploads\"\nprefix = \"in/\"\nsuffix = \".jpg\"\n";

fn record(c: &Captured) -> Value {
    let v: Value = serde_json::from_slice(&c.body).unwrap();
    v["Records"][0].clone()
}

fn is(kind: &'static str, key: &'static str) -> impl Fn(&Captured) -> bool {
    move |c| {
        c.header("ce-type").as_deref() == Some(kind)
            && c.header("ce-subject").as_deref() == Some(key)
    }
}

async fn put(s: &TestServer, key: &str, body: &'static [u8]) -> u16 {
    s.api(
        reqwest::Method::PUT,
        &format!("/v1/buckets/uploads/objects/{key}"),
    )
    .body(body)
    .send()
    .await
    .unwrap()
    .status()
    .as_u16()
}

#[tokio::test]
async fn committed_uploads_and_deletes_run_the_watching_function_with_s3_records() {
    let s = TestServer::start_with(&format!(
        "{FAST_RETRIES}[objects]\nmax_object_bytes = \"1KiB\"\n"
    ))
    .await;
    let sink = Capture::start().await;
    let digest = s.upload_guest(EVENT_SINK).await;
    let (status, err) = s
        .deploy(
            &app(&sink, "[[functions.bucket]]\nbucket = \"Bad_Name\"\n"),
            &[("sink", &digest)],
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("bucket name"), "{err}");
    // The bucket does not exist yet: the deploy's trigger makes it.
    s.deploy_ok(&app(&sink, TRIGGER), &[("sink", &digest)])
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = put(&s, "in/first.jpg", b"jpeg bytes").await;
        if status == 201 {
            break;
        }
        if std::time::Instant::now() > deadline {
            let logs = s.api_json("/v1/functions/sink/logs?limit=50").await;
            panic!("the bucket was never made ({status}): {logs}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = delivery(
        &sink,
        "created",
        is("dev.updraft.bucket.created", "in/first.jpg"),
    )
    .await;
    assert_eq!(c.header("ce-source").as_deref(), Some("/buckets/uploads"));
    let r = record(&c);
    assert_eq!(r["eventSource"], "aws:s3");
    assert_eq!(r["eventName"], "ObjectCreated:Put");
    assert_eq!(r["s3"]["bucket"]["name"], "uploads");
    assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::uploads");
    assert_eq!(r["s3"]["object"]["key"], "in/first.jpg");
    assert_eq!(r["s3"]["object"]["size"], 10);
    assert_eq!(
        r["s3"]["object"]["eTag"],
        "2ccd799f3a5130350478899447b6aa06"
    );
    // Keys are form-encoded in the record, as S3 sends them.
    assert_eq!(put(&s, "in/a b+c%25.jpg", b"x").await, 201);
    let c = delivery(
        &sink,
        "odd key",
        is("dev.updraft.bucket.created", "in/a b+c%.jpg"),
    )
    .await;
    assert_eq!(record(&c)["s3"]["object"]["key"], "in/a+b%2Bc%25.jpg");
    // Filters: other prefixes and suffixes run nothing; a refused upload (too large) neither.
    assert_eq!(put(&s, "out/skip.jpg", b"x").await, 201);
    assert_eq!(put(&s, "in/skip.png", b"x").await, 201);
    assert_eq!(put(&s, "in/too-big.jpg", &[0u8; 2048]).await, 413);
    let resp = s
        .api(
            reqwest::Method::DELETE,
            "/v1/buckets/uploads/objects/in/first.jpg",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let c = delivery(
        &sink,
        "removed",
        is("dev.updraft.bucket.removed", "in/first.jpg"),
    )
    .await;
    let r = record(&c);
    assert_eq!(r["eventName"], "ObjectRemoved:Delete");
    assert!(r["s3"]["object"]["size"].is_null(), "{r}");
    // The removal came after everything before it: nothing else was delivered. (An absence:
    // deliveries may run concurrently, so a stray event could still be in flight; give it a
    // moment.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let subjects: Vec<String> = sink
        .received()
        .iter()
        .filter_map(|c| c.header("ce-subject"))
        .collect();
    assert_eq!(
        subjects,
        ["in/first.jpg", "in/a b+c%.jpg", "in/first.jpg"],
        "only matching, committed changes"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_committed_before_kill_9_is_delivered_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Capture::start().await;
    // The sink fails every delivery at first, so the event is still queued at the kill.
    sink.status.store(500, Ordering::SeqCst);
    let (cfg, mut server) = ConfiguredServe::start(dir.path(), FAST_RETRIES);
    let http = reqwest::Client::new();
    deploy_on(
        &http,
        &server.control_url,
        &cfg.token,
        &app(
            &sink,
            "[[functions.bucket]]\nbucket = \"uploads\"\nmax_attempts = 100\n",
        ),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = http
            .put(format!(
                "{}/v1/buckets/uploads/objects/photo.jpg",
                server.control_url
            ))
            .bearer_auth(&cfg.token)
            .body("bytes")
            .send()
            .await
            .unwrap()
            .status();
        if status == 201 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bucket was never made"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // At least one attempt failed before the kill: the event was queued, not yet delivered.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.received().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no attempt was made");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let attempts = sink.received().len();
    sink.status.store(200, Ordering::SeqCst);
    let mut server = cfg.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while sink.received().len() == attempts {
        assert!(
            std::time::Instant::now() < deadline,
            "never delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = sink.received()[attempts].clone();
    assert_eq!(c.header("ce-subject").as_deref(), Some("photo.jpg"));
    let r: Value = serde_json::from_slice(&c.body).unwrap();
    assert_eq!(r["Records"][0]["eventName"], "ObjectCreated:Put", "{r}");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
