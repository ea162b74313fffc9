//! Projects end to end: queue triggers deliver within their project, and `updraft project`
//! with `--project` against a real server process.

use serde_json::{Value, json};

use super::{create_project, key_of};
use crate::support::{ServeProcess, TestServer, serve, updraft};

/// Two projects with the same queue name: each queue's messages reach its own project's
/// function only.
#[tokio::test]
async fn queue_triggers_deliver_within_their_project() {
    use crate::support::Capture;
    use updraft_test_guests::EVENT_SINK;
    let s = TestServer::start().await;
    create_project(&s, "shop", &[]).await;
    let shop_owner = key_of(&s, "shop", "owner").await;
    let (theirs, ours) = (Capture::start().await, Capture::start().await);
    let app = |sink: &Capture| {
        format!(
            "[app]\nname = \"events\"\n[[functions]]\nname = \"sink\"\ncomponent = \"s.wasm\"\n\
             env = {{ SINK_URL = \"http://{0}\" }}\nallowed_outbound_hosts = [\"http://{0}\"]\n\
             [[functions.queue]]\nqueue = \"jobs\"\n",
            sink.addr
        )
    };
    let bytes = std::fs::read(EVENT_SINK).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    for (key, sink) in [(&s.token, &ours), (&shop_owner, &theirs)] {
        let up = s
            .http
            .put(format!("{}/v1/artifacts/{digest}", s.control_url))
            .bearer_auth(key)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert!(up.status().is_success());
        let resp = s
            .http
            .post(format!("{}/v1/apps", s.control_url))
            .bearer_auth(key)
            .json(&json!({"manifest": app(sink), "artifacts": {"sink": digest}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let send = |key: &str, body: &str| {
        s.http
            .post(format!("{}/v1/queues/jobs/messages", s.control_url))
            .bearer_auth(key)
            .json(&json!({ "body": body }))
            .send()
    };
    assert_eq!(send(&shop_owner, "for-shop").await.unwrap().status(), 201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let has = |sink: &Capture, body: &str| {
        sink.received()
            .iter()
            .any(|c| String::from_utf8_lossy(&c.body).contains(body))
    };
    while !has(&theirs, "for-shop") {
        assert!(
            std::time::Instant::now() < deadline,
            "shop's function got nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(send(&s.token, "for-default").await.unwrap().status(), 201);
    while !has(&ours, "for-default") {
        assert!(
            std::time::Instant::now() < deadline,
            "default's function got nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        !has(&ours, "for-shop"),
        "default's function got shop's message"
    );
    assert!(
        !has(&theirs, "for-default"),
        "shop's function got default's message"
    );
    // Each event carries who produced it; a client can't claim to be someone else.
    let producer = |sink: &Capture, body: &str| {
        sink.received()
            .into_iter()
            .find(|c| String::from_utf8_lossy(&c.body).contains(body))
            .and_then(|c| c.header("ce-updraftproducer"))
    };
    let shops = producer(&theirs, "for-shop");
    assert!(
        shops.as_deref().is_some_and(|p| p.starts_with("key_")),
        "{shops:?}"
    );
    assert_eq!(producer(&ours, "for-default").as_deref(), Some("admin"));
    let forged = s
        .http
        .post(format!("{}/v1/queues/jobs/messages", s.control_url))
        .bearer_auth(&s.token)
        .json(&json!({"body": "x", "attributes": {"updraftproducer": "someone-else"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    s.stop().await;
}

/// `updraft project create|list|domains|delete` and the global `--project` flag against a
/// real server process; a project survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_projects_and_acts_in_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server: ServeProcess = serve(&data);
    let out = updraft(
        &server,
        &data,
        &[
            "project",
            "create",
            "shop",
            "--domain",
            "shop.test",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["name"], "shop");
    assert_eq!(created["domains"], json!(["shop.test"]));
    let out = updraft(
        &server,
        &data,
        &[
            "key",
            "create",
            "--project",
            "shop",
            "--role",
            "deployer",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let key: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(key["project"], "shop");
    let out = updraft(&server, &data, &["project", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NAME") && text.contains("shop") && text.contains("default"));
    // `--project` of a missing project is a clear error.
    let out = updraft(&server, &data, &["functions", "--project", "nope"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no project named `nope`"),
        "{out:?}"
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    server = serve(&data);
    let out = updraft(&server, &data, &["project", "show", "shop", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["domains"], json!(["shop.test"]));
    let out = updraft(&server, &data, &["project", "delete", "shop"]);
    assert!(out.status.success(), "{out:?}");
    let out = updraft(&server, &data, &["project", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["projects"].as_array().unwrap().len(), 1);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
