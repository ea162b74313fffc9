//! The data plane: routing, errors, streaming bodies, redeploys under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use updraft_test_guests::HTTP_ECHO;

use crate::support::{TestServer, echo_fields, manifest};

#[tokio::test]
async fn route_params_wildcards_and_specificity() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = format!(
        "{}\n[[functions]]\nname = \"me\"\ncomponent = \"me.wasm\"\nenv = {{ GREETING = \"me\" }}\n\
         [[functions.http]]\nroute = \"/users/me\"\n",
        manifest(
            "app",
            "echo",
            &["/users/:id", "/users/:id/posts/:post", "/files/...", "/"],
            ""
        )
    );
    s.deploy_ok(&m, &[("echo", &digest), ("me", &digest)]).await;

    let f = echo_fields(&s.get("/users/42").await.text().await.unwrap());
    assert_eq!(f["x-updraft-route"], "/users/:id");
    assert_eq!(f["x-updraft-param-id"], "42");
    assert_eq!(f["greeting"], "-");

    let f = echo_fields(
        &s.get("/users/7/posts/hello-world?draft=1")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(f["x-updraft-param-id"], "7");
    assert_eq!(f["x-updraft-param-post"], "hello-world");
    assert_eq!(f["path"], "/users/7/posts/hello-world?draft=1");

    // A literal segment beats a parameter.
    let f = echo_fields(&s.get("/users/me").await.text().await.unwrap());
    assert_eq!(f["greeting"], "me");
    assert_eq!(f["x-updraft-route"], "/users/me");

    let f = echo_fields(&s.get("/files/css/site.css").await.text().await.unwrap());
    assert_eq!(f["x-updraft-route"], "/files/...");
    assert_eq!(f["x-updraft-path-info"], "/css/site.css");
    let f = echo_fields(&s.get("/files").await.text().await.unwrap());
    assert_eq!(f["x-updraft-path-info"], "");

    let f = echo_fields(&s.get("/").await.text().await.unwrap());
    assert_eq!(f["x-updraft-route"], "/");

    // Clients cannot forge Updraft's headers.
    let resp = s
        .http
        .get(s.url("/users/1"))
        .header("x-updraft-param-id", "forged")
        .header("x-updraft-request-id", "forged")
        .send()
        .await
        .unwrap();
    let f = echo_fields(&resp.text().await.unwrap());
    assert_eq!(f["x-updraft-param-id"], "1");
    assert_ne!(f["x-updraft-request-id"], "forged");
    s.stop().await;
}

#[tokio::test]
async fn unknown_route_is_a_json_404_and_wrong_method_a_405() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = manifest("app", "echo", &[], "")
        + "\n[[functions.http]]\nroute = \"/only-get\"\nmethods = [\"GET\"]\n";
    s.deploy_ok(&m, &[("echo", &digest)]).await;

    let resp = s.get("/nothing/here").await;
    assert_eq!(resp.status(), 404);
    let request_id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "route_not_found");
    assert_eq!(
        body["error"]["message"],
        "no function is routed at /nothing/here"
    );
    assert_eq!(body["error"]["request_id"], request_id.as_str());

    let resp = s.http.delete(s.url("/only-get")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    s.stop().await;
}

#[tokio::test]
async fn a_panicking_guest_fails_only_its_invocation() {
    let s = TestServer::serving(HTTP_ECHO, "app", "echo", &["/echo"], "").await;
    let resp = s.get("/echo?panic").await;
    assert_eq!(resp.status(), 500);
    let request_id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "function_failed");
    assert_eq!(body["error"]["request_id"], request_id.as_str());
    // The guest's panic message is in its log, tied to the request.
    s.logs_until("echo", &format!("request_id={request_id}"), |lines| {
        lines.iter().any(|l| {
            l["line"]
                .as_str()
                .unwrap_or("")
                .contains("echo was asked to panic")
        })
    })
    .await;
    // The server and the function keep serving.
    assert_eq!(s.get("/echo").await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn large_bodies_stream_through() {
    let s = TestServer::serving(HTTP_ECHO, "app", "echo", &["/echo"], "").await;
    let payload = "x".repeat(3 << 20);
    let body = futures::stream::iter(
        payload
            .as_bytes()
            .chunks(64 << 10)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let resp = s
        .http
        .post(s.url("/echo"))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let f = echo_fields(&resp.text().await.unwrap());
    assert_eq!(f["body"].len(), payload.len());
    s.stop().await;
}

#[tokio::test]
async fn redeploy_under_load_fails_no_request() {
    let s = Arc::new(TestServer::start().await);
    let digest = s.upload_guest(HTTP_ECHO).await;
    let v1 = manifest("app", "echo", &["/echo"], "env = { VERSION = \"1\" }");
    let v2 = manifest("app", "echo", &["/echo"], "env = { VERSION = \"2\" }");
    s.deploy_ok(&v1, &[("echo", &digest)]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let deployed_v2 = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (s, stop, deployed_v2, ok) = (s.clone(), stop.clone(), deployed_v2.clone(), ok.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // Read the flag before sending: if v2 was acknowledged by then, v2 must serve.
                let after_v2 = deployed_v2.load(Ordering::SeqCst);
                let resp = s.get("/echo").await;
                assert_eq!(resp.status(), 200, "a request failed during the redeploy");
                let version = echo_fields(&resp.text().await.unwrap())["version"].clone();
                if after_v2 {
                    assert_eq!(
                        version, "2",
                        "a request sent after the deploy returned got the old version"
                    );
                }
                seen.push(version);
                ok.fetch_add(1, Ordering::Relaxed);
            }
            seen
        }));
    }
    // Let traffic build up, redeploy, keep traffic going a little longer.
    while ok.load(Ordering::Relaxed) < 200 {
        tokio::task::yield_now().await;
    }
    s.deploy_ok(&v2, &[("echo", &digest)]).await;
    deployed_v2.store(true, Ordering::SeqCst);
    let at_deploy = ok.load(Ordering::Relaxed);
    while ok.load(Ordering::Relaxed) < at_deploy + 200 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut versions = Vec::new();
    for w in workers {
        versions.extend(w.await.unwrap());
    }
    assert!(versions.iter().any(|v| v == "1"));
    assert!(versions.iter().any(|v| v == "2"));
    assert!(versions.iter().all(|v| v == "1" || v == "2"));
    assert!(versions.len() >= 400);
}

#[tokio::test]
async fn in_flight_requests_finish_on_the_code_they_started_on() {
    let s = Arc::new(
        TestServer::serving(
            HTTP_ECHO,
            "app",
            "echo",
            &["/echo"],
            "env = { VERSION = \"1\" }",
        )
        .await,
    );
    let digest = s.upload_guest(HTTP_ECHO).await;
    let slow = tokio::spawn({
        let s = s.clone();
        async move { s.get("/echo?sleep=1500").await.text().await.unwrap() }
    });
    // The guest logs before it sleeps: once that line is stored, the request is running v1.
    s.logs_until("echo", "", |l| {
        l.iter()
            .any(|l| l["line"] == "echo stdout /echo?sleep=1500")
    })
    .await;
    s.deploy_ok(
        &manifest("app", "echo", &["/echo"], "env = { VERSION = \"2\" }"),
        &[("echo", &digest)],
    )
    .await;
    let fresh = echo_fields(&s.get("/echo").await.text().await.unwrap());
    assert_eq!(fresh["version"], "2");
    let in_flight = echo_fields(&slow.await.unwrap());
    assert_eq!(
        in_flight["version"], "1",
        "the in-flight request finished on the old version"
    );
}
