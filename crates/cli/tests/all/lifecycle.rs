//! Scale to zero, warm instances and instance reuse: an idle function's code leaves memory and
//! comes back from the disk cache without recompiling; `min_instances` keeps it warm;
//! `instance_reuse = "warm"` serves sequential requests on one instance, and a guest that breaks
//! when reused is switched back to fresh instances.

use std::time::Duration;

use updraft_test_guests::HTTP_ECHO;

use crate::support::{TestServer, echo_fields};

async fn instance_requests(s: &TestServer, path: &str) -> String {
    let resp = s.get(path).await;
    assert_eq!(resp.status(), 200);
    echo_fields(&resp.text().await.unwrap())["instance-requests"].clone()
}

#[tokio::test]
async fn an_idle_function_is_evicted_and_reloaded_from_the_cache_without_compiling() {
    let s = TestServer::serving(
        HTTP_ECHO,
        "app",
        "echo",
        &["/echo"],
        "idle_timeout = \"300ms\"",
    )
    .await;
    // Loaded by the deploy; the first request is warm.
    assert_eq!(s.get("/echo").await.status(), 200);
    let before = s.status().await;
    assert_eq!(before["compilations"], 1);

    let rt = s.runtime_until("echo", |r| r["loaded"] == false).await;
    assert_eq!(rt["evictions"], 1);
    assert_eq!(rt["cold_starts"], 0);
    s.platform_line("echo", "", |l| l.starts_with("evicted: version 1 was idle"))
        .await;

    // The next request loads it from the compiled cache: a cold start, no compilation.
    let resp = s.get("/echo").await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let after = s.status().await;
    assert_eq!(after["compilations"], 1, "no recompilation: {after}");
    assert_eq!(
        after["cache_loads"].as_u64().unwrap(),
        before["cache_loads"].as_u64().unwrap() + 1
    );
    let rt = s.api_json("/v1/functions/echo").await["runtime"].clone();
    assert_eq!(rt["cold_starts"], 1, "{rt}");
    assert_eq!(rt["loaded"], true);
    // The cold start is in that invocation's log.
    s.platform_line("echo", &format!("request_id={request_id}"), |l| {
        l.starts_with("cold start: version 1 loaded from the compiled-code cache in")
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn min_instances_keeps_a_function_warm_and_pre_instantiated() {
    let s = TestServer::serving(
        HTTP_ECHO,
        "app",
        "echo",
        &["/echo"],
        "idle_timeout = \"100ms\"\nmin_instances = 2",
    )
    .await;
    let rt = s.runtime_until("echo", |r| r["ready_instances"] == 2).await;
    assert_eq!(rt["loaded"], true);
    // Well past the idle timeout it is still loaded, with its ready instances.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rt = s.api_json("/v1/functions/echo").await["runtime"].clone();
    assert_eq!(rt["loaded"], true, "{rt}");
    assert_eq!(rt["evictions"], 0, "{rt}");
    assert_eq!(rt["ready_instances"], 2, "{rt}");
    // A request uses a pre-instantiated instance (fresh: it served nothing before) and the
    // ready set is topped back up.
    assert_eq!(instance_requests(&s, "/echo").await, "1");
    s.runtime_until("echo", |r| r["ready_instances"] == 2).await;
    let rt = s.api_json("/v1/functions/echo").await["runtime"].clone();
    assert_eq!(rt["cold_starts"], 0, "{rt}");
    s.stop().await;
}

#[tokio::test]
async fn min_instances_are_warmed_at_start_up_and_others_stay_scaled_to_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(tmp.path()).await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = "[app]\nname = \"app\"\n\
             [[functions]]\nname = \"warm\"\ncomponent = \"w.wasm\"\nmin_instances = 1\n\
             [[functions]]\nname = \"cold\"\ncomponent = \"c.wasm\"\n";
    s.deploy_ok(m, &[("warm", &digest), ("cold", &digest)])
        .await;
    s.stop().await;

    let s = TestServer::start_at(tmp.path()).await;
    s.runtime_until("warm", |r| r["ready_instances"] == 1).await;
    let cold = s.api_json("/v1/functions/cold").await["runtime"].clone();
    assert_eq!(cold["loaded"], false, "{cold}");
    s.stop().await;
}

#[tokio::test]
async fn fresh_instances_share_nothing_and_warm_ones_serve_in_sequence() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = "[app]\nname = \"app\"\n\
             [[functions]]\nname = \"fresh\"\ncomponent = \"f.wasm\"\n\
             [[functions.http]]\nroute = \"/fresh\"\n\
             [[functions]]\nname = \"warm\"\ncomponent = \"w.wasm\"\ninstance_reuse = \"warm\"\nmax_reuse = 3\n\
             [[functions.http]]\nroute = \"/warm\"\n";
    s.deploy_ok(m, &[("fresh", &digest), ("warm", &digest)])
        .await;
    for _ in 0..3 {
        assert_eq!(instance_requests(&s, "/fresh").await, "1");
    }
    // One instance serves three requests in a row, then is replaced.
    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(instance_requests(&s, "/warm").await);
    }
    assert_eq!(seen, ["1", "2", "3", "1", "2", "3", "1"]);
    let info = s.api_json("/v1/functions/warm").await;
    assert_eq!(info["instance_reuse"], "warm");
    assert_eq!(info["max_reuse"], 3);
    s.stop().await;
}

#[tokio::test]
async fn a_guest_that_fails_when_reused_falls_back_to_fresh_instances() {
    let s = TestServer::serving(
        HTTP_ECHO,
        "app",
        "echo",
        &["/echo"],
        "instance_reuse = \"warm\"",
    )
    .await;
    // The first request is the instance's first: fine. The second lands on the reused
    // instance, which panics; Updraft retries it on a fresh instance (it has no body), which
    // works, so reuse is turned off for this function and the client sees no failure.
    assert_eq!(instance_requests(&s, "/echo?fail-if-reused").await, "1");
    assert_eq!(instance_requests(&s, "/echo?fail-if-reused").await, "1");
    let rt = s.api_json("/v1/functions/echo").await["runtime"].clone();
    assert_eq!(rt["reuse_disabled"], true, "{rt}");
    for _ in 0..3 {
        assert_eq!(instance_requests(&s, "/echo?fail-if-reused").await, "1");
    }
    s.platform_line("echo", "", |l| {
        l.starts_with("instance reuse turned off for this function")
    })
    .await;
    s.stop().await;
}
