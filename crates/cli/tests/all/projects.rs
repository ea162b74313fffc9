//! Projects: the cross-project matrix (a key of one project walks every control endpoint
//! against another project's resources: each answers like a missing one, lists show nothing
//! of it), the data plane picking the project by host (two projects on the same routes,
//! custom domains, unknown projects), queues and pinning confined to their project, and
//! `updraft project` / `--project` from the CLI.

use reqwest::Method;
use reqwest::header::HOST;
use serde_json::{Value, json};
use updraft_test_guests::HTTP_ECHO;

use crate::keys::control_endpoints;
use crate::support::{TestServer, echo_fields, expect_error};

/// Creates project `name` with the admin key.
pub(crate) async fn create_project(s: &TestServer, name: &str, domains: &[&str]) -> Value {
    let resp = s
        .api(Method::POST, "/v1/projects")
        .json(&json!({"name": name, "domains": domains}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// A key of `project` with `role`, made by the admin key.
pub(crate) async fn key_of(s: &TestServer, project: &str, role: &str) -> String {
    let resp = s
        .api(Method::POST, "/v1/keys")
        .json(&json!({"role": role, "project": project}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["project"], project);
    v["key"].as_str().unwrap().to_owned()
}

/// Deploys `echo` at `/echo` into the project `key` acts in, greeting with `greeting`.
async fn deploy_echo(s: &TestServer, key: &str, digest: &str, greeting: &str) -> Value {
    let manifest = crate::support::manifest(
        "app",
        "echo",
        &["/echo"],
        &format!("env = {{ GREETING = \"{greeting}\" }}"),
    );
    let resp = s
        .http
        .post(format!("{}/v1/apps", s.control_url))
        .bearer_auth(key)
        .json(&json!({"manifest": manifest, "artifacts": {"echo": digest}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Uploads the echo guest with `key` (into its project).
async fn upload_as(s: &TestServer, key: &str) -> String {
    let bytes = std::fs::read(HTTP_ECHO).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let resp = s
        .http
        .put(format!("{}/v1/artifacts/{digest}", s.control_url))
        .bearer_auth(key)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    digest
}

/// `GET path` on the data plane with `Host: host`.
async fn get_at(s: &TestServer, host: &str, path: &str) -> reqwest::Response {
    s.http
        .get(s.url(path))
        .header(HOST, host)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_of_another_project_sees_nothing_of_this_one() {
    let s = TestServer::start().await;
    // Everything the default project has: a function with versions, logs and an invocation
    // record, a queue, a topic, an asynchronous invoke, a key.
    let digest = s
        .deploy_guest(HTTP_ECHO, "app", "echo", &["/echo"], "")
        .await;
    let manifest = crate::support::manifest("app", "echo", &["/echo"], "");
    let resp = s.get("/echo").await;
    let request_id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    for (path, name) in [("/v1/queues", "orders"), ("/v1/topics", "news")] {
        let r = s
            .api(Method::POST, path)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    let accepted: Value = s
        .api(Method::POST, "/v1/functions/echo/invocations?async=true")
        .body("hi")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let async_id = accepted["id"].as_str().unwrap().to_owned();
    let default_key: Value = s
        .api(Method::POST, "/v1/keys")
        .json(&json!({"role": "viewer", "description": "default's"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = default_key["id"].as_str().unwrap().to_owned();
    let secret = s
        .api(Method::PUT, "/v1/secrets/DEFAULTS_SECRET")
        .json(&json!({"value": "v"}))
        .send()
        .await
        .unwrap();
    assert_eq!(secret.status(), 201);
    let signup = s
        .http
        .post(s.url("/_updraft/auth/v1/signup"))
        .json(&json!({"email": "defaults-user@example.com", "password": "long enough pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 200);

    create_project(&s, "shop", &[]).await;
    let owner = key_of(&s, "shop", "owner").await;
    let send = |method: Method, path: String, body: Option<Value>, key: &str| {
        let mut req = s
            .http
            .request(method, format!("{}{path}", s.control_url))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { req.send().await.unwrap() }
    };

    // Before it probes anything (its own attempts are its own audit entries), the audit log
    // it reads holds nothing of default's.
    let text = send(Method::GET, "/v1/audit".into(), None, &owner)
        .await
        .text()
        .await
        .unwrap();
    for leak in ["echo", "orders", "news", key_id.as_str(), "DEFAULTS_SECRET"] {
        assert!(!text.contains(leak), "/v1/audit shows `{leak}`: {text}");
    }
    // Every endpoint that names one of default's resources answers 404, as for a missing one.
    let mut named: Vec<(Method, String, Option<Value>)> = control_endpoints(&digest, &manifest)
        .into_iter()
        .filter(|(_, path, _, needed)| {
            *needed != "admin"
                && (path.contains("/echo")
                    || path.contains("/orders")
                    || path.contains("/projects/default"))
        })
        .map(|(m, p, b, _)| (m, p, b))
        .collect();
    named.extend([
        (Method::GET, format!("/v1/invocations/{request_id}"), None),
        (Method::GET, format!("/v1/async/{async_id}"), None),
        (Method::GET, "/v1/topics/news".into(), None),
        (Method::DELETE, "/v1/topics/news".into(), None),
        (Method::GET, "/v1/queues/orders".into(), None),
        (
            Method::POST,
            "/v1/queues/orders/messages".into(),
            Some(json!({"body": "x"})),
        ),
        (
            Method::POST,
            "/v1/queues/orders/messages/receive".into(),
            Some(json!({})),
        ),
        (Method::POST, "/v1/queues/orders/purge".into(), None),
        (
            Method::POST,
            "/v1/topics/news/publish".into(),
            Some(json!({"body": "x"})),
        ),
        (
            Method::POST,
            "/v1/queues/orders/keys?role=send".into(),
            None,
        ),
        (Method::DELETE, format!("/v1/keys/{key_id}"), None),
        (
            Method::POST,
            "/v1/functions/echo/invocations?async=true".into(),
            None,
        ),
        (Method::GET, "/v1/usage?function=echo".into(), None),
        (Method::DELETE, "/v1/secrets/DEFAULTS_SECRET".into(), None),
        (
            Method::GET,
            "/v1/users/defaults-user@example.com".into(),
            None,
        ),
        (
            Method::POST,
            "/v1/users/defaults-user@example.com/disable".into(),
            None,
        ),
        (
            Method::DELETE,
            "/v1/users/defaults-user@example.com".into(),
            None,
        ),
    ]);
    named.push((Method::HEAD, format!("/v1/artifacts/{digest}"), None));
    named.push((Method::GET, format!("/v1/artifacts/{digest}"), None));
    assert!(named.len() >= 20, "{}", named.len());
    for (method, path, body) in &named {
        let resp = send(method.clone(), path.clone(), body.clone(), &owner).await;
        assert_eq!(
            resp.status(),
            404,
            "{method} {path} with another project's key"
        );
    }
    // Knowing default's artifact digest is not enough to deploy it elsewhere.
    let resp = send(
        Method::POST,
        "/v1/apps".into(),
        Some(json!({"manifest": manifest, "artifacts": {"echo": digest}})),
        &owner,
    )
    .await;
    expect_error(resp, 400, "unknown_artifact").await;
    // Lists show none of it.
    for path in [
        "/v1/functions",
        "/v1/queues",
        "/v1/topics",
        "/v1/keys",
        "/v1/secrets",
        "/v1/users",
        "/v1/usage",
        "/v1/projects",
        "/v1/status",
        "/metrics",
    ] {
        let resp = send(Method::GET, path.into(), None, &owner).await;
        assert_eq!(resp.status(), 200, "{path}");
        let text = resp.text().await.unwrap();
        for leak in [
            "echo",
            "orders",
            "news",
            key_id.as_str(),
            "\"default\"",
            "DEFAULTS_SECRET",
            "defaults-user",
        ] {
            assert!(!text.contains(leak), "{path} shows `{leak}`: {text}");
        }
    }
    // Naming the other project outright is the same as naming a missing one.
    for (method, path, body, _) in control_endpoints(&digest, &manifest) {
        let req = s
            .http
            .request(method.clone(), format!("{}{path}", s.control_url))
            .bearer_auth(&owner)
            .header("x-updraft-project", "default");
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        if path.starts_with("/v1/projects") {
            // Those name their project in the path (and creating one is the admin's).
            assert!(status == 404 || status == 403, "{method} {path}: {status}");
        } else if method == Method::HEAD {
            assert_eq!(status, 404, "{method} {path}");
        } else {
            let body = expect_error(resp, 404, "project_not_found").await;
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("no project named `default`"),
                "{body}"
            );
        }
    }
    let missing = send(Method::GET, "/v1/functions".into(), None, &s.token).await;
    assert_eq!(missing.status(), 200);
    let resp = s
        .api(Method::GET, "/v1/functions")
        .header("x-updraft-project", "nope")
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "project_not_found").await;
    // A header that is not text, or names a path, is no project either.
    let binary = reqwest::header::HeaderValue::from_bytes(b"def\xffault").unwrap();
    let resp = s
        .api(Method::GET, "/v1/functions")
        .header("x-updraft-project", binary)
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "bad_request").await;
    let resp = s
        .api(Method::GET, "/v1/functions")
        .header("x-updraft-project", "../default")
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "project_not_found").await;
    // Default's things are all still there.
    let list = s.api_json("/v1/functions").await;
    assert_eq!(list["functions"][0]["name"], "echo");
    let queue = s
        .api(Method::GET, "/v1/queues/orders")
        .send()
        .await
        .unwrap();
    assert_eq!(queue.status(), 200);
    let key = s.api(Method::GET, "/v1/keys").send().await.unwrap();
    assert!(key.text().await.unwrap().contains(&key_id));
    s.stop().await;
}

#[tokio::test]
async fn the_host_picks_the_project_and_two_projects_share_routes() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    deploy_echo(&s, &s.token, &digest, "from-default").await;
    create_project(&s, "shop", &["Shop.Example.TEST"]).await;
    let shop_deployer = key_of(&s, "shop", "deployer").await;
    // Before shop deploys, its host has no route; default's host is unaffected.
    let port = s.data_url.rsplit(':').next().unwrap().to_owned();
    let resp = get_at(&s, &format!("shop.localhost:{port}"), "/echo").await;
    expect_error(resp, 404, "route_not_found").await;
    // Shop uploads the same bytes itself (stored once) before it can deploy them.
    assert_eq!(upload_as(&s, &shop_deployer).await, digest);
    let deployed = deploy_echo(&s, &shop_deployer, &digest, "from-shop").await;
    assert_eq!(deployed["functions"][0]["name"], "echo");
    for (host, greeting) in [
        (format!("localhost:{port}"), "from-default"),
        (format!("127.0.0.1:{port}"), "from-default"),
        ("default.localhost".to_owned(), "from-default"),
        ("anything.example.org".to_owned(), "from-default"),
        (format!("shop.localhost:{port}"), "from-shop"),
        ("SHOP.LOCALHOST".to_owned(), "from-shop"),
        ("shop.example.test".to_owned(), "from-shop"),
    ] {
        let resp = get_at(&s, &host, "/echo").await;
        assert_eq!(resp.status(), 200, "{host}");
        let fields = echo_fields(&resp.text().await.unwrap());
        assert_eq!(fields["greeting"], greeting, "{host}");
    }
    // A project that does not exist, by host.
    let resp = get_at(&s, "nope.localhost", "/echo").await;
    let body = expect_error(resp, 404, "project_not_found").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));
    // Each project's logs hold only its own requests: shop was asked from three hosts, default
    // from four (lines are written in batches, so wait for them).
    let stdout_lines = |key: String| {
        let req = s
            .http
            .get(format!(
                "{}/v1/functions/echo/logs?limit=1000",
                s.control_url
            ))
            .bearer_auth(key);
        async move {
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["stream"] == "stdout")
                .count()
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while stdout_lines(s.token.clone()).await < 4 || stdout_lines(shop_deployer.clone()).await < 3 {
        assert!(std::time::Instant::now() < deadline, "log lines never came");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stdout_lines(s.token.clone()).await, 4);
    assert_eq!(stdout_lines(shop_deployer.clone()).await, 3);
    // Domains can be replaced by the owner; another project can't take them.
    let resp = s
        .api(Method::PUT, "/v1/projects/shop/domains")
        .json(&json!({"domains": ["api.shop.test"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The old domain is any other host now: default's.
    let old = get_at(&s, "shop.example.test", "/echo").await;
    assert_eq!(
        echo_fields(&old.text().await.unwrap())["greeting"],
        "from-default"
    );
    let new = get_at(&s, "api.shop.test", "/echo").await;
    assert_eq!(
        echo_fields(&new.text().await.unwrap())["greeting"],
        "from-shop"
    );
    create_project(&s, "rival", &[]).await;
    let resp = s
        .api(Method::PUT, "/v1/projects/rival/domains")
        .json(&json!({"domains": ["API.shop.test"]}))
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 409, "conflict").await;
    assert!(!body.to_string().contains("`shop`"), "{body}");
    for bad in ["shop.test:80", "*.shop.test", "http://x", "a..b"] {
        let resp = s
            .api(Method::PUT, "/v1/projects/rival/domains")
            .json(&json!({ "domains": [bad] }))
            .send()
            .await
            .unwrap();
        expect_error(resp, 400, "bad_request").await;
    }
    s.stop().await;
}

#[tokio::test]
async fn queues_keys_and_pinning_stay_inside_their_project() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    deploy_echo(&s, &s.token, &digest, "from-default").await;
    let created: Value = s
        .api(Method::POST, "/v1/queues")
        .json(&json!({"name": "orders"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let queue_key = created["access_key"].as_str().unwrap().to_owned();
    create_project(&s, "shop", &[]).await;
    let shop_deployer = key_of(&s, "shop", "deployer").await;
    let send_to = |host: &str, key: &str| {
        s.http
            .post(s.url("/_updraft/queues/orders/messages"))
            .header(HOST, host)
            .bearer_auth(key)
            .json(&json!({"body": "x"}))
            .send()
    };
    // The queue's own key works on default's host only; shop's deployer key nowhere.
    assert_eq!(
        send_to("localhost", &queue_key).await.unwrap().status(),
        201
    );
    for (host, key) in [
        ("shop.localhost", queue_key.as_str()),
        ("localhost", shop_deployer.as_str()),
    ] {
        let resp = send_to(host, key).await.unwrap();
        let status = resp.status();
        assert_eq!(status, 401, "{host}: {}", resp.text().await.unwrap());
    }
    // On its own host, shop's deployer finds no such queue in shop.
    let resp = send_to("shop.localhost", &shop_deployer).await.unwrap();
    expect_error(resp, 404, "queue_not_found").await;
    let resp = send_to("nope.localhost", &queue_key).await.unwrap();
    expect_error(resp, 404, "project_not_found").await;
    // A deployer key of shop can't pin a version of default's function, and is not passed on.
    let resp = s
        .http
        .get(s.url("/echo"))
        .bearer_auth(&shop_deployer)
        .header("x-updraft-version", "1")
        .send()
        .await
        .unwrap();
    expect_error(resp, 403, "forbidden").await;
    let own = s
        .http
        .get(s.url("/echo"))
        .bearer_auth(&s.token)
        .header("x-updraft-version", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    // Deleting a project that still has functions is refused; once empty it goes, with its
    // keys (which stop working at once).
    upload_as(&s, &shop_deployer).await;
    deploy_echo(&s, &shop_deployer, &digest, "from-shop").await;
    let resp = s
        .api(Method::DELETE, "/v1/projects/shop")
        .send()
        .await
        .unwrap();
    expect_error(resp, 409, "conflict").await;
    let resp = s
        .http
        .delete(format!("{}/v1/functions/echo", s.control_url))
        .bearer_auth(&shop_deployer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = s
        .api(Method::DELETE, "/v1/projects/shop")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = s
        .http
        .get(format!("{}/v1/functions", s.control_url))
        .bearer_auth(&shop_deployer)
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "unauthorized").await;
    let resp = s
        .api(Method::DELETE, "/v1/projects/default")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "bad_request").await;
    // Default's function never moved.
    let body = s.get("/echo").await.text().await.unwrap();
    assert_eq!(echo_fields(&body)["greeting"], "from-default");
    s.stop().await;
}

mod process;
