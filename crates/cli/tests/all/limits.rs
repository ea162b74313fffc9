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

    // Allocating past the memory limit fails the invocation, naming the limit; within it is
    // fine.
    let msg = get_error(&s, "/bad?alloc=67108864", 500, "function_failed").await;
    assert!(msg.contains("exceeded its memory limit of 16MiB"), "{msg}");
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

#[tokio::test]
async fn body_and_header_caps() {
    let s = TestServer::start().await;
    let bad = s.upload_guest(HTTP_MISBEHAVE).await;
    let echo = s.upload_guest(HTTP_ECHO).await;
    let m = format!(
        "{}\n[[functions]]\nname = \"echo\"\ncomponent = \"echo.wasm\"\nmax_request_body = \"1KiB\"\n[[functions.http]]\nroute = \"/echo\"\n",
        manifest(
            "app",
            "bad",
            &["/bad"],
            "timeout = \"700ms\"\nmax_response_body = \"1MiB\""
        )
    );
    s.deploy_ok(&m, &[("bad", &bad), ("echo", &echo)]).await;

    // A response whose declared size is over the cap never reaches the client: 502.
    assert_eq!(
        s.get("/bad?huge=1000").await.text().await.unwrap().len(),
        1000
    );
    let msg = get_error(&s, "/bad?huge=2000000", 502, "response_too_large").await;
    assert!(msg.contains("max_response_body of 1MiB"), "{msg}");
    // A streamed one is cut off at the cap (the head is already sent): the client sees a
    // broken body, not a complete one.
    let resp = s.get("/bad?stream=3000000").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.bytes().await.is_err(),
        "a cut-off body must not look complete"
    );
    assert_eq!(
        s.get("/bad?stream=500000")
            .await
            .bytes()
            .await
            .unwrap()
            .len(),
        500_000
    );

    // A body that keeps streaming past the deadline is ended at the deadline.
    let start = Instant::now();
    let resp = s.get("/bad?slowbody").await;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "slow body not ended: {:?}",
        start.elapsed()
    );

    // Request bodies over the cap: refused up front when the length is declared...
    let post =
        async |body: reqwest::Body| s.http.post(s.url("/echo")).body(body).send().await.unwrap();
    let resp = post(vec![b'x'; 2048].into()).await;
    let body = expect_error(resp, 413, "payload_too_large").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_request_body of 1KiB"),
        "{body}"
    );
    // ...and when it streams in without a length, once it passes the cap.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b'x'; 800]), Ok(vec![b'x'; 800])];
    let resp = post(reqwest::Body::wrap_stream(futures::stream::iter(chunks))).await;
    expect_error(resp, 413, "payload_too_large").await;
    assert_eq!(post(vec![b'x'; 1000].into()).await.status(), 200);

    // Too many request headers: 431 from the HTTP layer.
    let mut req = s.http.get(s.url("/echo"));
    for i in 0..150 {
        req = req.header(format!("x-h-{i}"), "v");
    }
    assert_eq!(req.send().await.unwrap().status(), 431);

    // Through all of it, the server kept serving.
    assert_eq!(s.get("/echo").await.status(), 200);
    assert_eq!(s.get("/bad").await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn the_global_cap_throttles_every_function() {
    let s = std::sync::Arc::new(
        TestServer::start_with("[concurrency]\nglobal_max = 1\nqueue_timeout = \"200ms\"\n").await,
    );
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = format!(
        "{}\n[[functions]]\nname = \"other\"\ncomponent = \"echo.wasm\"\n[[functions.http]]\nroute = \"/other\"\n",
        manifest("app", "echo", &["/echo"], "")
    );
    s.deploy_ok(&m, &[("echo", &digest), ("other", &digest)])
        .await;
    let slow = tokio::spawn({
        let s = s.clone();
        async move { s.get("/echo?sleep=1500").await.status() }
    });
    s.logs_until("echo", "", |l| {
        l.iter()
            .any(|l| l["line"] == "echo stdout /echo?sleep=1500")
    })
    .await;
    let resp = s.get("/other").await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let body = expect_error(resp, 429, "throttled").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("global concurrency limit"),
        "{body}"
    );
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(s.get("/other").await.status(), 200);
}

#[tokio::test]
async fn a_flooded_function_does_not_slow_down_another() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = format!(
        "{}\n[[functions]]\nname = \"quiet\"\ncomponent = \"echo.wasm\"\n[[functions.http]]\nroute = \"/quiet\"\n",
        manifest("app", "noisy", &["/noisy"], "max_concurrency = 4")
    );
    s.deploy_ok(&m, &[("noisy", &digest), ("quiet", &digest)])
        .await;
    // Flood `noisy` with 64 concurrent requests that each take a second: 4 run, 4 queue, the
    // rest are throttled.
    let flood: Vec<_> = (0..64)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.get("/noisy?sleep=1000").await.status().as_u16() })
        })
        .collect();
    // Once all four of noisy's slots are taken (each running request has logged its line)...
    s.logs_until("noisy", "", |l| {
        l.iter()
            .filter(|l| l["line"] == "echo stdout /noisy?sleep=1000")
            .count()
            >= 4
    })
    .await;
    // ...`quiet` answers every request without waiting behind `noisy`: each well under
    // the second a noisy request takes.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let start = Instant::now();
        assert_eq!(s.get("/quiet").await.status(), 200);
        slowest = slowest.max(start.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(700),
        "quiet took {slowest:?}"
    );
    let mut statuses = Vec::new();
    for f in flood {
        statuses.push(f.await.unwrap());
    }
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );
}
