//! Lambda's response streaming end to end: a Rust `lambda_runtime` streaming response, and a
//! Node.js handler wrapped in `awslambda.streamifyResponse` (with and without an
//! `HttpResponseStream` prelude). The first chunk reaches the caller before the handler has
//! written the rest; an error before the first byte is an ordinary handler error, one after it
//! cuts the body off.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Kind, config, deployed, info, lines_until};
use crate::support::{TestServer, expect_error, run_cli};

/// Lambda's response streaming (a `lambda_runtime` streaming response): the head comes from
/// the metadata prelude, the first chunk reaches the caller before the handler has written the
/// rest, and a process dying mid-stream cuts the body off and fails the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_responses_reach_the_caller_as_they_are_written() {
    let (s, _dir) = deployed(Kind::Rust, "timeout = \"10s\"", "").await;
    let started = Instant::now();
    let mut resp = s.get("/r/stream").await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-streamed"], "yes");
    assert_eq!(resp.headers()["content-type"], "text/plain");
    let first = resp.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert_eq!(&first[..], b"one\n");
    let mut rest = Vec::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    let all_at = started.elapsed();
    assert_eq!(rest, b"two\nthree\n");
    // The handler waits 1 s between chunks: the first came before the others existed.
    assert!(all_at >= Duration::from_secs(2), "{all_at:?}");
    assert!(
        first_at + Duration::from_millis(1500) < all_at,
        "{first_at:?} vs {all_at:?}"
    );
    lines_until(&s, "h", |l| {
        l.iter().any(|l| l.starts_with("REPORT RequestId: "))
    })
    .await;

    let mut resp = s.get("/r/stream-error").await;
    assert_eq!(resp.status(), 201);
    assert_eq!(&resp.chunk().await.unwrap().unwrap()[..], b"one\n");
    let mut cut = false;
    loop {
        match resp.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "the body ends in an error, not as if complete");
    // And the next request gets a fresh process.
    let (_, after) = info(&s, "info").await;
    assert_eq!(after["count"], 1);
    s.stop().await;
}

/// Reads the body to its end: the first non-empty chunk, when it came, the rest, when it
/// ended, and whether it ended in an error rather than complete.
async fn read_streamed(
    mut resp: reqwest::Response,
    started: Instant,
) -> (Vec<u8>, Duration, Vec<u8>, Duration, bool) {
    let (mut first, mut first_at, mut rest) = (Vec::new(), Duration::ZERO, Vec::new());
    let cut = loop {
        match resp.chunk().await {
            Ok(Some(c)) if first.is_empty() => {
                first = c.to_vec();
                first_at = started.elapsed();
            }
            Ok(Some(c)) => rest.extend_from_slice(&c),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    (first, first_at, rest, started.elapsed(), cut)
}

/// A Node.js handler wrapped in `awslambda.streamifyResponse`, deployed unchanged: the
/// `HttpResponseStream` prelude is the response head, chunks arrive as written; a stream
/// without a prelude is `application/octet-stream`; an error before the first byte is a 502
/// naming it, one after the first byte cuts the body off; the process serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamified_nodejs_handler_streams_as_it_writes() {
    let s = TestServer::start_with(&config("")).await;
    let dir = tempfile::tempdir().unwrap();
    Kind::Nodejs.copy_code(&dir.path().join("code"));
    std::fs::write(
        dir.path().join("updraft.toml"),
        "[app]\nname = \"lambda\"\n\n[[functions]]\nname = \"s\"\nruntime = \"nodejs\"\n\
         handler = \"index.streamer\"\ncode = \"code\"\ntimeout = \"10s\"\n\
         [[functions.http]]\nroute = \"/s/:op\"\n",
    )
    .unwrap();
    let (ok, out, err) = run_cli(&s, &["deploy", dir.path().to_str().unwrap()], None);
    assert!(ok, "{out}{err}");

    let started = Instant::now();
    let resp = s.get("/s/http").await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-streamed"], "node");
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(resp.headers()["set-cookie"], "flavour=oat");
    let (first, first_at, rest, all_at, cut) = read_streamed(resp, started).await;
    assert!(!cut, "a complete stream ends cleanly");
    assert_eq!(
        (&first[..], &rest[..]),
        (&b"one\n"[..], &b"two\nthree\n"[..])
    );
    assert!(all_at >= Duration::from_secs(2), "{all_at:?}");
    assert!(
        first_at + Duration::from_millis(1500) < all_at,
        "{first_at:?} vs {all_at:?}"
    );

    let resp = s.get("/s/raw").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(resp.text().await.unwrap(), "one\ntwo\nthree\n");

    let body = expect_error(s.get("/s/fail-early").await, 502, "function_error").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed before writing"),
        "{body}"
    );

    let resp = s.get("/s/fail-mid").await;
    assert_eq!(resp.status(), 201);
    let request_id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (first, _, rest, _, cut) = read_streamed(resp, Instant::now()).await;
    assert_eq!((&first[..], &rest[..]), (&b"one\n"[..], &b""[..]));
    assert!(cut, "the body ends in an error, not as if complete");
    // The stack trace the runtime printed is this invocation's, there before the next one.
    let failed = |l: &Value| {
        l["line"]
            .as_str()
            .is_some_and(|t| t.contains("failed mid-stream"))
    };
    let lines = s
        .logs_until("s", "limit=1000", |l| l.iter().any(failed))
        .await;
    let line = lines.iter().find(|l| failed(l)).unwrap();
    assert_eq!(line["request_id"], request_id.as_str(), "{line}");

    // The same process serves on.
    let resp = s.get("/s/raw").await;
    assert_eq!(resp.text().await.unwrap(), "one\ntwo\nthree\n");
    s.stop().await;
}
