//! The audit log: every change through the control API is recorded with actor, time, target
//! and outcome (refusals too), traffic is not, no entry carries a key or a secret, and each
//! project sees its own entries.

use reqwest::Method;
use serde_json::{Value, json};
use updraft_test_guests::HTTP_ECHO;

use crate::support::{ServeProcess, TestServer, expect_error, serve, updraft};

const SECRET: &str = "audit-secret-value-9f8e";

async fn audit(s: &TestServer, key: &str, query: &str) -> Vec<Value> {
    let resp = s
        .http
        .get(format!("{}/v1/audit?{query}", s.control_url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["entries"].as_array().unwrap().clone()
}

fn find<'a>(entries: &'a [Value], action: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no `{action}` entry in {entries:#?}"))
}

#[tokio::test]
async fn every_change_is_recorded_with_who_what_and_how_it_ended() {
    let s = TestServer::start().await;
    let send = |method: Method, path: &str, body: Option<Value>, key: &str| {
        let mut req = s
            .http
            .request(method, format!("{}{path}", s.control_url))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { req.send().await.unwrap() }
    };
    let admin = s.token.clone();
    s.deploy_guest(HTTP_ECHO, "app", "echo", &["/echo"], "")
        .await;
    let viewer: Value = send(
        Method::POST,
        "/v1/keys",
        Some(json!({"role": "viewer"})),
        &admin,
    )
    .await
    .json()
    .await
    .unwrap();
    let viewer_key = viewer["key"].as_str().unwrap().to_owned();
    let viewer_id = viewer["id"].as_str().unwrap().to_owned();
    let r = send(
        Method::PUT,
        "/v1/functions/echo/aliases/staging",
        Some(json!({"version": 1})),
        &admin,
    )
    .await;
    assert_eq!(r.status(), 200);
    // A failed change: nothing older to roll back to.
    let r = send(Method::POST, "/v1/functions/echo/rollback", None, &admin).await;
    assert_eq!(r.status(), 409);
    let r = send(
        Method::PUT,
        "/v1/secrets/API_TOKEN",
        Some(json!({ "value": SECRET })),
        &admin,
    )
    .await;
    assert_eq!(r.status(), 201);
    let r = send(Method::DELETE, "/v1/secrets/API_TOKEN", None, &admin).await;
    assert_eq!(r.status(), 204);
    let r = send(
        Method::POST,
        "/v1/queues",
        Some(json!({"name": "orders"})),
        &admin,
    )
    .await;
    assert_eq!(r.status(), 201);
    // A refused change: a viewer may not delete a function.
    let r = send(Method::DELETE, "/v1/functions/echo", None, &viewer_key).await;
    expect_error(r, 403, "forbidden").await;
    // Traffic is not a change.
    let r = send(Method::POST, "/v1/functions/echo/invoke", None, &admin).await;
    assert_eq!(r.status(), 200);
    let r = send(
        Method::POST,
        "/v1/queues/orders/messages",
        Some(json!({"body": "x"})),
        &admin,
    )
    .await;
    assert_eq!(r.status(), 201);

    let entries = audit(&s, &admin, "").await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "function.delete",
            "queue.create",
            "secret.delete",
            "secret.set",
            "rollback",
            "alias.set",
            "key.create",
            "deploy",
            "artifact.upload",
        ],
        "{entries:#?}"
    );
    let deploy = find(&entries, "deploy");
    assert_eq!(deploy["actor"], "admin");
    assert_eq!(deploy["outcome"], "ok");
    assert_eq!(deploy["target"], "apps/app");
    assert_eq!(deploy["detail"], "published echo v1");
    let rollback = find(&entries, "rollback");
    assert_eq!(rollback["outcome"], "failed");
    assert_eq!(rollback["status"], 409);
    assert!(
        rollback["detail"]
            .as_str()
            .unwrap()
            .contains("no older version"),
        "{rollback}"
    );
    let denied = find(&entries, "function.delete");
    assert_eq!(denied["actor"], viewer_id.as_str());
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["target"], "functions/echo");
    let key = find(&entries, "key.create");
    assert_eq!(key["target"], format!("keys/{viewer_id}"));
    assert_eq!(key["detail"], "role viewer");
    assert_eq!(find(&entries, "queue.create")["target"], "queues/orders");
    assert!(
        entries
            .iter()
            .all(|e| e["ts_ms"].as_i64().unwrap() > 1_700_000_000_000)
    );
    // No entry carries a key or a secret.
    let text = serde_json::to_string(&entries).unwrap();
    for leak in [SECRET, viewer_key.as_str(), admin.as_str(), "upq_", "upd_"] {
        assert!(!text.contains(leak), "the audit log shows `{leak}`");
    }
    // Filters: a limit, a time.
    assert_eq!(audit(&s, &admin, "limit=2").await.len(), 2);
    assert!(audit(&s, &admin, "since=1ms").await.len() < entries.len());
    // A viewer may not read it; a project's owner sees only its project's entries.
    let r = send(Method::GET, "/v1/audit", None, &viewer_key).await;
    expect_error(r, 403, "forbidden").await;
    let r = send(
        Method::POST,
        "/v1/projects",
        Some(json!({"name": "shop"})),
        &admin,
    )
    .await;
    assert_eq!(r.status(), 201);
    let owner: Value = send(
        Method::POST,
        "/v1/keys",
        Some(json!({"role": "owner", "project": "shop"})),
        &admin,
    )
    .await
    .json()
    .await
    .unwrap();
    let owner = owner["key"].as_str().unwrap().to_owned();
    let theirs = audit(&s, &owner, "").await;
    let actions: Vec<&str> = theirs
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["key.create", "project.create"], "{theirs:#?}");
    assert!(theirs.iter().all(|e| e["project"] == "shop"));
    let r = send(Method::GET, "/v1/audit?all=true", None, &owner).await;
    expect_error(r, 403, "forbidden").await;
    let everything = audit(&s, &admin, "all=true").await;
    assert_eq!(everything.len(), entries.len() + 2);
    s.stop().await;
}

/// `updraft audit` prints the table (and `--json`), against a real server process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_the_audit_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server: ServeProcess = serve(&data);
    let out = updraft(&server, &data, &["project", "create", "shop"]);
    assert!(out.status.success(), "{out:?}");
    let out = updraft(&server, &data, &["audit", "--all"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for want in [
        "WHEN",
        "PROJECT",
        "project.create",
        "projects/shop",
        "admin",
        "ok",
    ] {
        assert!(text.contains(want), "missing {want}: {text}");
    }
    let out = updraft(&server, &data, &["audit", "--json", "--project", "shop"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["entries"][0]["action"], "project.create");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
