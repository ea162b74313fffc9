//! A function that loops, sleeps past its deadline, exhausts its memory, overflows its stack or
//! traps fails that one invocation with a clear status; the host and other functions keep going.

use std::time::{Duration, Instant};

use updraft_test_guests::{HTTP_ECHO, HTTP_MISBEHAVE};

use crate::support::{TestServer, expect_error, manifest};

/// GETs `path` and asserts the JSON error; returns its message.
async fn get_error(s: &TestServer, path: &str, status: u16, code: &str) -> String {
    let body = expect_error(s.get(path).await, status, code).await;
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn misbehaving_guests_fail_only_their_invocation() {
    let s = TestServer::start().await;
    let bad = s.upload_guest(HTTP_MISBEHAVE).await;
    let good = s.upload_guest(HTTP_ECHO).await;
    let m = format!(
        "{}\n[[functions]]\nname = \"echo\"\ncomponent = \"echo.wasm\"\n[[functions.http]]\nroute = \"/echo\"\n",
        manifest(
            "app",
            "bad",
            &["/bad"],
            "timeout = \"300ms\"\nmemory = \"16MiB\""
        )
    );
    s.deploy_ok(&m, &[("bad", &bad), ("echo", &good)]).await;
    assert_eq!(s.get("/bad").await.text().await.unwrap(), "fine\n");

    // Pure compute past the deadline is interrupted (epoch deadline), not left running.
    let start = Instant::now();
    let msg = get_error(&s, "/bad?loop", 504, "function_timeout").await;
    assert!(msg.contains("300ms"), "{msg}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );

    // Waiting past the deadline in a host call is cut off too.
    get_error(&s, "/bad?sleep=10000", 504, "function_timeout").await;
    // Within the deadline it is fine.
    assert_eq!(s.get("/bad?sleep=10").await.status(), 200);

    // Allocating past the memory limit fails the invocation; within it is fine.
    get_error(&s, "/bad?alloc=67108864", 500, "function_failed").await;
    assert_eq!(s.get("/bad?alloc=1048576").await.status(), 200);

    get_error(&s, "/bad?recurse", 500, "function_failed").await;
    let msg = get_error(&s, "/bad?trap", 500, "function_failed").await;
    assert!(msg.contains("unreachable"), "{msg}");

    // The host and the other function are unaffected.
    assert_eq!(s.get("/bad").await.status(), 200);
    assert_eq!(s.get("/echo").await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn requests_past_max_concurrency_queue_then_get_429() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = format!(
        "{}\n[[functions]]\nname = \"other\"\ncomponent = \"echo.wasm\"\n[[functions.http]]\nroute = \"/other\"\n",
        manifest("app", "echo", &["/echo"], "max_concurrency = 1")
    );
    s.deploy_ok(&m, &[("echo", &digest), ("other", &digest)])
        .await;

    // Take the only slot with a slow request; its log line says it is running.
    let slow = tokio::spawn({
        let s = s.clone();
        async move { s.get("/echo?sleep=2500").await.status() }
    });
    s.logs_until("echo", "", |l| {
        l.iter()
            .any(|l| l["line"] == "echo stdout /echo?sleep=2500")
    })
    .await;

    // Two more: one waits in the (one-place) queue until it times out, the other finds the
    // queue full. Both are throttled with Retry-After.
    let (a, b) = tokio::join!(s.get("/echo?a"), s.get("/echo?b"));
    for resp in [a, b] {
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "throttled");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("concurrency limit")
        );
    }
    // Another function is not held back by this one's limit.
    assert_eq!(s.get("/other").await.status(), 200);
    assert_eq!(slow.await.unwrap(), 200);
    // The slot is free again.
    assert_eq!(s.get("/echo").await.status(), 200);
}
