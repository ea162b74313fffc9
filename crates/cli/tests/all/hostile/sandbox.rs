//! Host resources of a guest are bounded: a guest that hoards handles or fires a flood of
//! outbound requests fails (or is refused) in its own invocation, with a clear error and a
//! platform log line; the next invocation is fine.

use updraft_test_guests::{HTTP_MISBEHAVE, HTTP_OUTBOUND};

use crate::support::{Capture, TestServer, expect_error, outbound_call, outbound_call_with};

#[tokio::test]
async fn a_guest_holding_too_many_host_resources_fails_only_its_invocation() {
    let s = TestServer::start_with("[sandbox]\nmax_resources = 200\n").await;
    s.deploy_guest(
        HTTP_MISBEHAVE,
        "app",
        "bad",
        &["/bad"],
        "instance_reuse = \"warm\"",
    )
    .await;
    assert_eq!(
        s.get("/bad?resources=50").await.text().await.unwrap(),
        "held 50\n"
    );
    let body = expect_error(s.get("/bad?resources=1000").await, 500, "function_failed").await;
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("more than 200 host resources"), "{msg}");
    assert!(msg.contains("[sandbox] max_resources"), "{msg}");
    assert_eq!(
        s.get("/bad?resources=50").await.text().await.unwrap(),
        "held 50\n"
    );
    s.stop().await;
}

#[tokio::test]
async fn outbound_requests_in_flight_per_invocation_are_capped() {
    let upstream = Capture::start().await;
    upstream
        .delay_ms
        .store(300, std::sync::atomic::Ordering::SeqCst);
    let s = TestServer::start_with("[sandbox]\nmax_outbound_requests = 4\n").await;
    s.deploy_guest(
        HTTP_OUTBOUND,
        "app",
        "out",
        &["/out"],
        &format!("allowed_outbound_hosts = [\"http://{}\"]", upstream.addr),
    )
    .await;
    let target = format!("http://{}/", upstream.addr);
    let call = |n: usize| outbound_call(&s, target.clone(), Some(n));
    let (_, body, id) = call(10).await;
    // Six of ten are refused by the cap; the other four reach the upstream (which, on a loaded
    // machine, may still drop one now and then: that is not what this checks).
    assert_eq!(body.matches("ConnectionLimitReached").count(), 6, "{body}");
    let lines = s
        .logs_until("out", &format!("request_id={id}"), |l| {
            l.iter().any(|l| l["stream"] == "platform")
        })
        .await;
    let line = lines.iter().find(|l| l["stream"] == "platform").unwrap()["line"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(line.contains("[sandbox] max_outbound_requests"), "{line}");
    // Within the cap none is refused by it (the upstream itself may still drop one now and
    // then on a loaded machine; that is not what this checks).
    let (_, body, _) = call(4).await;
    assert!(body.starts_with("ok "), "{body}");
    assert!(!body.contains("ConnectionLimitReached"), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn headers_a_guest_builds_are_capped_by_the_field_size_limit() {
    let upstream = Capture::start().await;
    let s = TestServer::start_with("[sandbox]\nmax_field_bytes = \"4KiB\"\n").await;
    s.deploy_guest(
        HTTP_OUTBOUND,
        "app",
        "out",
        &["/out"],
        &format!("allowed_outbound_hosts = [\"http://{}\"]", upstream.addr),
    )
    .await;
    let target = format!("http://{}/", upstream.addr);
    let (status, body, _) =
        outbound_call_with(&s, target.clone(), Some(("x-header-bytes", 1024))).await;
    assert_eq!((status, body.as_str()), (200, "upstream 200: ok"));
    let (status, body, _) =
        outbound_call_with(&s, target, Some(("x-header-bytes", 64 << 10))).await;
    // Wasmtime traps the guest: the invocation fails, naming the limit.
    assert_eq!(
        status, 500,
        "a 64 KiB header passed a 4 KiB field limit: {body}"
    );
    assert!(body.contains("[sandbox] max_field_bytes"), "{body}");
    assert_eq!(
        upstream.received().len(),
        1,
        "the oversized request was never sent"
    );
    // The next invocation is fine.
    assert_eq!(
        s.get("/out").await.status(),
        400,
        "missing x-target: the guest still runs"
    );
    s.stop().await;
}
