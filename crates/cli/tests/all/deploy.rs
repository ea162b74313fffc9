//! Uploading components and deploying apps through the control API.

use reqwest::Method;
use updraft_test_guests::{CLI_COMMAND, HTTP_ECHO};

use crate::support::{TestServer, echo_fields, expect_error, manifest};

#[tokio::test]
async fn deploy_and_call() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = manifest("shop", "echo", &["/echo"], "env = { GREETING = \"hi\" }");
    let body = s.deploy_ok(&m, &[("echo", &digest)]).await;
    assert_eq!(body["app"], "shop");
    assert_eq!(body["functions"][0]["name"], "echo");
    assert_eq!(body["functions"][0]["digest"], digest.as_str());

    let resp = s
        .http
        .post(s.url("/echo?x=1"))
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(request_id.len(), 32);
    assert_eq!(resp.headers()["x-updraft-function"], "echo");
    let f = echo_fields(&resp.text().await.unwrap());
    assert_eq!(f["method"], "POST");
    assert_eq!(f["path"], "/echo?x=1");
    assert_eq!(f["greeting"], "hi");
    assert_eq!(f["body"], "payload");
    // The guest sees the same request id the client gets.
    assert_eq!(f["x-updraft-request-id"], request_id);
    s.stop().await;
}

#[tokio::test]
async fn upload_is_idempotent_and_compiles_once() {
    let s = TestServer::start().await;
    let bytes = std::fs::read(HTTP_ECHO).unwrap();
    let (status, body, digest) = s.upload(&bytes).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["compiled"], true);
    let (status, body, _) = s.upload(&bytes).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["compiled"], false);
    let head = s
        .api(Method::HEAD, &format!("/v1/artifacts/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(s.status().await["compilations"], 1);
    s.stop().await;
}

#[tokio::test]
async fn non_component_uploads_get_a_clear_400() {
    let s = TestServer::start().await;

    let (status, body, _) = s.upload(b"#!/bin/sh\necho not wasm\n").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_component");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("not a WebAssembly binary"),
        "{body}"
    );

    // The smallest core module: magic + version 1.
    let (status, body, _) = s.upload(b"\0asm\x01\0\0\0").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("core WebAssembly module, not a component"),
        "{body}"
    );

    // A real component, but a command rather than an HTTP handler.
    let (status, body, digest) = s.upload(&std::fs::read(CLI_COMMAND).unwrap()).await;
    assert_eq!(status, 400);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("does not export `wasi:http/incoming-handler`"),
        "{msg}"
    );
    assert!(
        msg.contains("wasi:cli/run"),
        "the message lists what it does export: {msg}"
    );
    // Nothing was kept.
    let head = s
        .api(Method::HEAD, &format!("/v1/artifacts/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404);

    // Bytes that do not match the digest in the URL.
    let resp = s
        .api(Method::PUT, &format!("/v1/artifacts/{}", "0".repeat(64)))
        .body(std::fs::read(HTTP_ECHO).unwrap())
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "digest_mismatch").await;
    s.stop().await;
}

#[tokio::test]
async fn manifest_errors_name_line_and_key() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = manifest("shop", "echo", &["echo"], "");
    let (status, body) = s.deploy(&m, &[("echo", &digest)]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_manifest");
    assert_eq!(
        body["error"]["message"],
        "updraft.toml:10: functions[0].http[0].route: must start with '/'"
    );

    let m = manifest("shop", "echo", &["/echo"], "colour = \"blue\"");
    let (status, body) = s.deploy(&m, &[("echo", &digest)]).await;
    assert_eq!(status, 400);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("updraft.toml:7: functions[0].colour: unknown field `colour`"),
        "{msg}"
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_deploy_requests_get_clear_errors() {
    let s = TestServer::start().await;
    let m = manifest("shop", "echo", &["/echo"], "");
    // Malformed JSON.
    let resp = s
        .api(Method::POST, "/v1/apps")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "bad_request").await;
    // An artifact never uploaded.
    let (status, body) = s.deploy(&m, &[("echo", &"a".repeat(64))]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "unknown_artifact");
    // No artifact for a function.
    let (status, body) = s.deploy(&m, &[]).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no artifact digest given for function `echo`")
    );
    // No token / wrong token.
    let resp = s
        .http
        .get(format!("{}/v1/functions", s.control_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = s
        .http
        .get(format!("{}/v1/functions", s.control_url))
        .bearer_auth("upd_wrong")
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "unauthorized").await;
    s.stop().await;
}

#[tokio::test]
async fn conflicts_between_apps_are_rejected() {
    let s = TestServer::start().await;
    let digest = s
        .deploy_guest(HTTP_ECHO, "shop", "echo", &["/items/:id"], "")
        .await;

    // Same route shape from another app.
    let (status, body) = s
        .deploy(
            &manifest("blog", "posts", &["/items/:slug"], ""),
            &[("posts", &digest)],
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("conflicts with `/items/:id`")
    );

    // Same function name from another app.
    let (status, body) = s
        .deploy(
            &manifest("blog", "echo", &["/blog"], ""),
            &[("echo", &digest)],
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already belongs to app `shop`")
    );

    // Nothing changed: the first app still serves.
    assert_eq!(s.get("/items/1").await.status(), 200);
    assert_eq!(s.get("/blog").await.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn list_get_and_delete_functions() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = format!(
        "{}\n[[functions]]\nname = \"second\"\ncomponent = \"x.wasm\"\ntimeout = \"5s\"\n[[functions.http]]\nroute = \"/second\"\n",
        manifest("shop", "echo", &["/echo"], "")
    );
    s.deploy_ok(&m, &[("echo", &digest), ("second", &digest)])
        .await;
    let list = s.api_json("/v1/functions").await;
    let names: Vec<&str> = list["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "second"]);
    let one = s.api_json("/v1/functions/second").await;
    assert_eq!(one["timeout_ms"], 5000);
    assert_eq!(one["routes"][0]["route"], "/second");

    let resp = s
        .api(Method::DELETE, "/v1/functions/second")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(s.get("/second").await.status(), 404);
    assert_eq!(s.get("/echo").await.status(), 200);
    let resp = s
        .api(Method::GET, "/v1/functions/second")
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "function_not_found").await;

    // Redeploying the app with only `echo` keeps it and reports nothing removed.
    let body = s
        .deploy_ok(
            &manifest("shop", "echo", &["/echo"], ""),
            &[("echo", &digest)],
        )
        .await;
    assert_eq!(body["removed"], serde_json::json!([]));
    s.stop().await;
}

#[tokio::test]
async fn invoke_through_the_control_api() {
    let s = TestServer::serving(HTTP_ECHO, "shop", "echo", &["/echo"], "").await;
    let resp = s
        .api(
            Method::POST,
            "/v1/functions/echo/invoke?method=PUT&path=/direct%3Fa%3Db",
        )
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-updraft-request-id"));
    let f = echo_fields(&resp.text().await.unwrap());
    assert_eq!(f["method"], "PUT");
    assert_eq!(f["path"], "/direct?a=b");
    assert_eq!(f["body"], "hello");
    let resp = s
        .api(Method::POST, "/v1/functions/nope/invoke")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn an_unchanged_redeploy_reuses_the_running_function() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = manifest("shop", "echo", &["/echo"], "");
    let first = s.deploy_ok(&m, &[("echo", &digest)]).await;
    let loads = s.status().await["cache_loads"].clone();
    // Same code, same settings: nothing is reloaded and the function's timestamp stays.
    let again = s.deploy_ok(&m, &[("echo", &digest)]).await;
    assert_eq!(
        again["functions"][0]["updated_at"],
        first["functions"][0]["updated_at"]
    );
    assert_eq!(s.status().await["cache_loads"], loads);
    // A settings change does reload and move the timestamp.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await; // timestamps are in ms
    let changed = s
        .deploy_ok(
            &manifest("shop", "echo", &["/echo"], "timeout = \"5s\""),
            &[("echo", &digest)],
        )
        .await;
    assert_ne!(
        changed["functions"][0]["updated_at"],
        first["functions"][0]["updated_at"]
    );
    assert_eq!(changed["functions"][0]["timeout_ms"], 5000);
    s.stop().await;
}
