//! Scoped API keys: each role reaches exactly its endpoints (the role matrix), bad, expired and
//! revoked keys get 401, keys are listed without their secret, no key reaches a guest, and on
//! the data plane only keys that may deploy pin versions or use queues.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use updraft_test_guests::HTTP_ECHO;

use crate::support::{ServeProcess, TestServer, echo_fields, expect_error, serve, updraft};

/// Creates a key with the admin key; returns (id, key).
async fn create_key(s: &TestServer, body: Value) -> (String, String) {
    let resp = s
        .api(Method::POST, "/v1/keys")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

/// A control endpoint: method, path, JSON body, and the weakest role that may call it.
pub(crate) type Endpoint = (Method, String, Option<Value>, &'static str);

/// Every control endpoint, against function `echo` (deployed from `manifest` with artifact
/// `digest`), queue `orders` and topic `news`.
pub(crate) fn control_endpoints(digest: &str, manifest: &str) -> Vec<Endpoint> {
    let artifact = format!("/v1/artifacts/{digest}");
    vec![
        (Method::GET, "/v1/status".into(), None, "viewer"),
        (Method::GET, "/v1/functions".into(), None, "viewer"),
        (Method::GET, "/v1/functions/echo".into(), None, "viewer"),
        (
            Method::GET,
            "/v1/functions/echo/versions".into(),
            None,
            "viewer",
        ),
        (
            Method::GET,
            "/v1/functions/echo/versions/1".into(),
            None,
            "viewer",
        ),
        (
            Method::GET,
            "/v1/functions/echo/invocations".into(),
            None,
            "viewer",
        ),
        (Method::GET, "/v1/usage".into(), None, "viewer"),
        (Method::GET, "/v1/queues".into(), None, "viewer"),
        (Method::GET, "/v1/topics".into(), None, "viewer"),
        (Method::HEAD, artifact.clone(), None, "viewer"),
        (Method::GET, "/metrics".into(), None, "metrics"),
        (
            Method::GET,
            "/v1/functions/echo/logs".into(),
            None,
            "deployer",
        ),
        (
            Method::POST,
            "/v1/functions/echo/invoke".into(),
            None,
            "deployer",
        ),
        (
            Method::PUT,
            "/v1/functions/echo/aliases/staging".into(),
            Some(json!({"version": 1})),
            "deployer",
        ),
        (
            Method::POST,
            "/v1/functions/echo/rollback".into(),
            Some(json!({})),
            "deployer",
        ),
        (
            Method::POST,
            "/v1/apps".into(),
            Some(json!({"manifest": manifest, "artifacts": {"echo": digest}})),
            "deployer",
        ),
        (
            Method::DELETE,
            "/v1/functions/no-such-function".into(),
            None,
            "deployer",
        ),
        (
            Method::POST,
            "/v1/queues".into(),
            Some(json!({"name": "orders"})),
            "owner",
        ),
        (Method::DELETE, "/v1/queues/orders".into(), None, "owner"),
        (
            Method::POST,
            "/v1/topics".into(),
            Some(json!({"name": "news"})),
            "owner",
        ),
        (Method::GET, "/v1/keys".into(), None, "owner"),
        (
            Method::POST,
            "/v1/keys".into(),
            Some(json!({"role": "viewer"})),
            "owner",
        ),
        (
            Method::DELETE,
            "/v1/keys/key_0000000000000000".into(),
            None,
            "owner",
        ),
        (Method::GET, "/v1/secrets".into(), None, "viewer"),
        (Method::GET, "/v1/audit".into(), None, "owner"),
        (Method::GET, "/v1/users".into(), None, "owner"),
        (
            Method::GET,
            "/v1/users/nobody@example.com".into(),
            None,
            "owner",
        ),
        (
            Method::POST,
            "/v1/users/nobody@example.com/disable".into(),
            None,
            "owner",
        ),
        (
            Method::DELETE,
            "/v1/users/nobody@example.com".into(),
            None,
            "owner",
        ),
        (Method::POST, "/v1/auth/keys/rotate".into(), None, "owner"),
        (
            Method::PUT,
            "/v1/secrets/MATRIX".into(),
            Some(json!({"value": "v"})),
            "owner",
        ),
        (Method::DELETE, "/v1/secrets/NO_SUCH".into(), None, "owner"),
        (Method::GET, "/v1/projects".into(), None, "viewer"),
        (Method::GET, "/v1/projects/default".into(), None, "viewer"),
        (
            Method::PUT,
            "/v1/projects/default/domains".into(),
            Some(json!({"domains": []})),
            "owner",
        ),
        (
            Method::PUT,
            "/v1/projects/default/cors".into(),
            Some(json!({"origins": []})),
            "owner",
        ),
        (
            Method::POST,
            "/v1/projects".into(),
            Some(json!({"name": "made-by-admin"})),
            "admin",
        ),
        (
            Method::DELETE,
            "/v1/projects/no-such-project".into(),
            None,
            "admin",
        ),
    ]
}

const ROLES: [&str; 5] = ["metrics", "viewer", "deployer", "owner", "admin"];

/// Whether `role` may call an endpoint that needs `needed`.
fn allowed(role: &str, needed: &str) -> bool {
    let rank = |r: &str| ROLES.iter().position(|x| *x == r).unwrap();
    needed == "metrics" || (role != "metrics" && rank(role) >= rank(needed))
}

#[tokio::test]
async fn every_role_reaches_exactly_its_endpoints() {
    let s = TestServer::start().await;
    let digest = s
        .deploy_guest(HTTP_ECHO, "app", "echo", &["/echo"], "")
        .await;
    let manifest = crate::support::manifest("app", "echo", &["/echo"], "");
    let bytes = std::fs::read(HTTP_ECHO).unwrap();
    let mut keys = Vec::new();
    for role in &ROLES[..4] {
        keys.push((*role, create_key(&s, json!({"role": role})).await.1));
    }
    keys.push(("admin", s.token.clone()));

    let artifact = format!("/v1/artifacts/{digest}");
    let endpoints = control_endpoints(&digest, &manifest);
    let mut checked = 0;
    for (role, key) in &keys {
        for (method, path, body, needed) in &endpoints {
            let mut req = s
                .http
                .request(method.clone(), format!("{}{path}", s.control_url))
                .bearer_auth(key);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            if allowed(role, needed) {
                assert!(
                    status != 401 && status != 403,
                    "{role} key, {method} {path}: {status} {}",
                    resp.text().await.unwrap()
                );
            } else {
                assert_eq!(status, 403, "{role} key, {method} {path}");
                if *method != Method::HEAD {
                    let body: Value = resp.json().await.unwrap();
                    assert_eq!(body["error"]["code"], "forbidden", "{body}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * endpoints.len());
    // An upload (the one raw-body endpoint) likewise.
    for (role, key) in &keys {
        let resp = s
            .http
            .put(format!("{}{artifact}", s.control_url))
            .bearer_auth(key)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            allowed(role, "deployer"),
            resp.status().is_success(),
            "{role} key uploading: {}",
            resp.status()
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn unknown_expired_and_revoked_keys_are_refused() {
    let s = TestServer::start().await;
    let get = |key: String| {
        let req = s
            .http
            .get(format!("{}/v1/functions", s.control_url))
            .bearer_auth(key);
        async move { req.send().await.unwrap() }
    };
    let bogus = format!("upd_{}", "0".repeat(64));
    expect_error(get(bogus).await, 401, "unauthorized").await;
    // A key that has expired.
    let (_, short) = create_key(&s, json!({"role": "viewer", "expires_in": "50ms"})).await;
    assert_eq!(get(short.clone()).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let body = expect_error(get(short).await, 401, "unauthorized").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // A revoked key stops working at once.
    let (id, key) = create_key(&s, json!({"role": "owner"})).await;
    assert_eq!(get(key.clone()).await.status(), 200);
    let resp = s
        .api(Method::DELETE, &format!("/v1/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    expect_error(get(key).await, 401, "unauthorized").await;
    let again = s
        .api(Method::DELETE, &format!("/v1/keys/{id}"))
        .send()
        .await
        .unwrap();
    expect_error(again, 404, "key_not_found").await;
    s.stop().await;
}

#[tokio::test]
async fn keys_are_listed_without_their_secret_and_bad_requests_are_named() {
    let s = TestServer::start().await;
    let (id, key) = create_key(
        &s,
        json!({"role": "deployer", "description": "ci\u{1b}[31m"}),
    )
    .await;
    let list = s.api(Method::GET, "/v1/keys").send().await.unwrap();
    let text = list.text().await.unwrap();
    assert!(text.contains(&id));
    assert!(!text.contains(&key), "a listing showed a key");
    assert!(
        !text.contains('\u{1b}'),
        "a control character was kept: {text}"
    );
    for (body, status, code) in [
        (json!({"role": "admin"}), 400, "bad_request"),
        (
            json!({"role": "viewer", "expires_in": "soon"}),
            400,
            "bad_request",
        ),
        (
            json!({"role": "viewer", "expires_in": "0s"}),
            400,
            "bad_request",
        ),
        (json!({"role": "viewer", "nope": 1}), 400, "bad_request"),
        (
            json!({"role": "viewer", "project": "other"}),
            404,
            "project_not_found",
        ),
    ] {
        let resp = s
            .api(Method::POST, "/v1/keys")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(resp, status, code).await;
    }
    // An owner key manages keys but can't reach another project's.
    let (_, owner) = create_key(&s, json!({"role": "owner"})).await;
    let resp = s
        .http
        .post(format!("{}/v1/keys", s.control_url))
        .bearer_auth(&owner)
        .json(&json!({"role": "viewer", "project": "other"}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "project_not_found").await;
    s.stop().await;
}

#[tokio::test]
async fn no_key_reaches_a_guest() {
    let s = TestServer::serving(HTTP_ECHO, "app", "echo", &["/echo"], "").await;
    for role in ["metrics", "viewer", "owner"] {
        let (_, key) = create_key(&s, json!({"role": role})).await;
        let body = s
            .http
            .get(s.url("/echo"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(echo_fields(&body)["authorization"], "-", "{role} key");
    }
    s.stop().await;
}

/// `updraft key create --json`, `key list`, `key revoke` against a real server process; a
/// metrics key scrapes `/metrics` as Prometheus would, with a bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_lists_and_revokes_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server: ServeProcess = serve(&data);
    let out = updraft(
        &server,
        &data,
        &[
            "key",
            "create",
            "--role",
            "metrics",
            "--expires",
            "30d",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, key) = (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(created["role"], "metrics");
    let http = reqwest::Client::new();
    let scrape = || {
        http.get(format!("{}/metrics", server.control_url))
            .bearer_auth(&key)
            .send()
    };
    let resp = scrape().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("# TYPE"));

    let out = updraft(&server, &data, &["key", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed.contains(&id) && listed.contains("metrics"),
        "{listed}"
    );
    assert!(!listed.contains(&key));

    let out = updraft(&server, &data, &["key", "revoke", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(scrape().await.unwrap().status(), 401);
    let out = updraft(&server, &data, &["key", "revoke", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("no API key `{id}`")));
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// On the data plane, a key that may deploy may also pin versions and use the project's queues;
/// a viewer key may do neither.
#[tokio::test]
async fn deployer_keys_pin_versions_and_use_queues_viewer_keys_do_not() {
    let s = TestServer::serving(HTTP_ECHO, "app", "echo", &["/echo"], "").await;
    let (_, viewer) = create_key(&s, json!({"role": "viewer"})).await;
    let (_, deployer) = create_key(&s, json!({"role": "deployer"})).await;
    let pin = |key: &str| {
        s.http
            .get(s.url("/echo"))
            .header("x-updraft-version", "1")
            .bearer_auth(key)
            .send()
    };
    expect_error(pin(&viewer).await.unwrap(), 403, "forbidden").await;
    assert_eq!(pin(&deployer).await.unwrap().status(), 200);

    let created = s
        .api(Method::POST, "/v1/queues")
        .json(&json!({"name": "jobs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let send = |key: &str| {
        s.http
            .post(s.url("/_updraft/queues/jobs/messages"))
            .bearer_auth(key)
            .json(&json!({"body": "x"}))
            .send()
    };
    expect_error(send(&viewer).await.unwrap(), 401, "unauthorized").await;
    assert_eq!(send(&deployer).await.unwrap().status(), 201);
    s.stop().await;
}
