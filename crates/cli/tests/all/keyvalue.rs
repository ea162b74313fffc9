//! Key-value stores: guests of four toolchains (wasi:keyvalue draft2 and draft from Rust, a
//! componentize-py guest, a Spin SDK component) on one durable store, grants per function,
//! concurrency (atomic increments and CAS loops from 8 clients), durability across versions,
//! restarts and `kill -9`, and the HTTP API's answers to careless and hostile callers.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use updraft_test_guests::{HTTP_ECHO, KV_DRAFT, KV_DRAFT2, PY_KV, SPIN_KV};

use crate::support::{TestServer, manifest};

mod api;

/// One app with a function per toolchain, each granted `default` (draft2 also `sessions`).
async fn deploy_all(s: &TestServer) {
    let mut text = String::from("[app]\nname = \"kv\"\n");
    let mut artifacts = Vec::new();
    let mut guests = vec![
        (
            "d2",
            KV_DRAFT2,
            "key_value_stores = [\"default\", \"sessions\"]",
        ),
        ("d1", KV_DRAFT, "key_value_stores = [\"default\"]"),
        (
            "spin",
            SPIN_KV,
            "key_value_stores = [\"default\"]\nvariables = { greeting = \"hi\" }",
        ),
    ];
    let py = PY_KV.expect("componentize-py guest (python3 is required)");
    guests.push(("py", py, "key_value_stores = [\"default\"]"));
    for (name, guest, extra) in guests {
        let digest = s.upload_guest(guest).await;
        text.push_str(&format!(
            "[[functions]]\nname = \"{name}\"\ncomponent = \"{name}.wasm\"\n{extra}\n\
             [[functions.http]]\nroute = \"/{name}/...\"\n"
        ));
        artifacts.push((name, digest));
    }
    let refs: Vec<(&str, &str)> = artifacts.iter().map(|(n, d)| (*n, d.as_str())).collect();
    s.deploy_ok(&text, &refs).await;
}

async fn call(s: &TestServer, method: Method, path: &str, body: &str) -> (u16, String) {
    let resp = s
        .http
        .request(method, s.url(path))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn get(s: &TestServer, path: &str) -> (u16, String) {
    call(s, Method::GET, path, "").await
}

#[tokio::test]
async fn guests_of_four_toolchains_share_the_granted_store() {
    let s = TestServer::start_with("[key_value]\npage_size = 2\n").await;
    deploy_all(&s).await;

    // One writes, every other toolchain reads it.
    assert_eq!(
        call(&s, Method::PUT, "/d2/set/greeting", "hello").await,
        (200, "set".into())
    );
    assert_eq!(get(&s, "/d1/get/greeting").await, (200, "hello".into()));
    assert_eq!(get(&s, "/spin/kv/greeting").await, (200, "hello".into()));
    assert_eq!(get(&s, "/py/get/greeting").await, (200, "hello".into()));
    assert_eq!(get(&s, "/py/get/nothing").await, (404, "absent".into()));
    assert_eq!(
        call(&s, Method::PUT, "/spin/kv/from-spin", "s").await,
        (200, "exists=true".into())
    );
    assert_eq!(get(&s, "/d2/get/from-spin").await, (200, "s".into()));
    assert_eq!(get(&s, "/py/set/from-py?p").await, (200, "set".into()));
    assert_eq!(get(&s, "/d1/get/from-py").await, (200, "p".into()));

    // One counter encoding across interfaces (decimal ASCII).
    assert_eq!(get(&s, "/py/incr/hits").await, (200, "1".into()));
    assert_eq!(
        call(&s, Method::POST, "/d2/incr/hits?by=2", "").await,
        (200, "3".into())
    );
    assert_eq!(
        call(&s, Method::POST, "/d1/incr/hits", "").await,
        (200, "4".into())
    );
    assert_eq!(get(&s, "/spin/kv/hits").await, (200, "4".into()));
    // draft's counters are unsigned: a negative one is an error, not a wrapped number.
    call(&s, Method::POST, "/d2/incr/neg?by=-5", "").await;
    let (status, text) = call(&s, Method::POST, "/d1/incr/neg?by=0", "").await;
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("negative"), "{text}");
    // Incrementing text fails plainly.
    let (status, text) = call(&s, Method::POST, "/d2/incr/greeting", "").await;
    assert_eq!(status, 500);
    assert!(text.contains("not a decimal integer"), "{text}");

    // Batches: set many, get many (with a missing key), delete one.
    let (status, text) = call(&s, Method::POST, "/d2/batch", "b1=x\nb2=y\n").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, "b1=x\nb2=y\nmissing absent\n");
    assert_eq!(get(&s, "/d2/exists/b1").await, (200, "false".into()));
    let (_, text) = call(&s, Method::POST, "/d1/batch", "b2\nnope").await;
    assert_eq!(text, "b2=y\nnope absent\n");

    // Listing: page_size 2, so several pages with string (draft2) and numeric (draft)
    // cursors; Spin's get-keys pages internally.
    let all = "b2\nfrom-py\nfrom-spin\ngreeting\nhits\nneg";
    assert_eq!(get(&s, "/d2/list").await.1, format!("pages=3\n{all}"));
    assert_eq!(get(&s, "/d1/list").await.1, format!("pages=3\n{all}"));
    assert_eq!(get(&s, "/spin/keys").await.1, all);

    // Compare-and-swap: a write between read and swap is detected; a CAS loop succeeds.
    let (status, text) = call(&s, Method::POST, "/d2/cas-race/race", "mine").await;
    assert_eq!((status, text.as_str()), (200, "cas-failed, now interfered"));
    assert_eq!(get(&s, "/d2/get/race").await.1, "interfered");
    assert_eq!(call(&s, Method::POST, "/d2/cas-incr/casn", "").await.1, "1");

    // Grants: draft2 may open `sessions`; the others get access-denied in their own terms.
    assert_eq!(
        get(&s, "/d2/open?store=sessions").await,
        (200, "opened".into())
    );
    assert_eq!(
        get(&s, "/d1/open?store=sessions").await,
        (403, "open sessions: access-denied\n".into())
    );
    assert_eq!(
        get(&s, "/spin/kv/x?store=sessions").await,
        (403, "access-denied".into())
    );
    assert_eq!(
        get(&s, "/py/open/sessions").await,
        (403, "error: Error_AccessDenied".into())
    );
    // `sessions` is its own store: nothing of `default` is in it.
    assert_eq!(get(&s, "/d2/get/greeting?store=sessions").await.0, 404);

    // Spin's variables interface reads the manifest's variables.
    assert_eq!(get(&s, "/spin/var/greeting").await, (200, "hi".into()));
    assert_eq!(get(&s, "/spin/var/missing").await.0, 404);

    // What the guests stored is visible over HTTP too.
    let resp = s
        .http
        .get(s.url("/_updraft/kv/v1/stores/default/keys/greeting"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["etag"].to_str().unwrap().starts_with('"'));
    assert_eq!(resp.text().await.unwrap(), "hello");
    s.stop().await;
}

#[tokio::test]
async fn a_store_not_granted_is_refused_at_deploy_and_names_are_checked() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(KV_DRAFT2).await;
    let (status, body) = s
        .deploy(&manifest("app", "kv", &["/kv/..."], ""), &[("kv", &digest)])
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_component");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("wasi:keyvalue") && message.contains("key_value_stores"),
        "{message}"
    );
    for bad in ["\"../etc\"", "\"UPPER\"", "\"\"", "\"a\", \"a\""] {
        let (status, body) = s
            .deploy(
                &manifest(
                    "app",
                    "kv",
                    &["/kv/..."],
                    &format!("key_value_stores = [{bad}]"),
                ),
                &[("kv", &digest)],
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_manifest", "{bad}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("key_value_stores"),
            "{body}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_and_cas_loops_from_8_clients_lose_none() {
    let s = TestServer::start().await;
    s.deploy_guest(
        KV_DRAFT2,
        "app",
        "kv",
        &["/kv/..."],
        "key_value_stores = [\"default\"]\nmax_concurrency = 16",
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, base) = (s.http.clone(), s.data_url.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                for op in ["incr", "cas-incr"] {
                    let r = http
                        .post(format!("{base}/kv/{op}/{op}-counter"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(get(&s, "/kv/get/incr-counter").await.1, "200");
    assert_eq!(get(&s, "/kv/get/cas-incr-counter").await.1, "200");
    s.stop().await;
}

#[tokio::test]
async fn values_outlive_instances_versions_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(dir.path()).await;
    let digest = s.upload_guest(KV_DRAFT2).await;
    let deploy = |env: &'static str| {
        manifest(
            "app",
            "kv",
            &["/kv/..."],
            &format!("key_value_stores = [\"default\"]\nenv = {{ V = \"{env}\" }}"),
        )
    };
    s.deploy_ok(&deploy("1"), &[("kv", &digest)]).await;
    call(&s, Method::PUT, "/kv/set/kept", "across").await;
    // A new version (fresh instances) reads what the old one wrote.
    s.deploy_ok(&deploy("2"), &[("kv", &digest)]).await;
    assert_eq!(get(&s, "/kv/get/kept").await, (200, "across".into()));
    s.stop().await;
    let s = TestServer::start_at(dir.path()).await;
    assert_eq!(get(&s, "/kv/get/kept").await, (200, "across".into()));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, mut server) = crate::support::ConfiguredServe::start(dir.path(), "");
    let token = serve.token.clone();
    let http = reqwest::Client::new();
    let base = format!("{}/_updraft/kv/v1/stores", server.data_url);
    let r = http
        .put(format!("{base}/default"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Four writers; every 200 is recorded; the kill lands while they write.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (http, base, token, acked) = (http.clone(), base.clone(), token.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("w{w}-{i}");
                let r = http
                    .put(format!("{base}/default/keys/{key}"))
                    .bearer_auth(&token)
                    .body(format!("value of {key}"))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push(key),
                    _ => break,
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 500 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let mut server = serve.restart();
    let base = format!("{}/_updraft/kv/v1/stores", server.data_url);
    for key in &acked {
        let r = http
            .get(format!("{base}/default/keys/{key}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged {key} is gone");
        assert_eq!(r.text().await.unwrap(), format!("value of {key}"));
    }
    eprintln!(
        "{} acknowledged writes before kill -9, all kept",
        acked.len()
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

// Multi-threaded: the CLI runs as a blocking child process while the server serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_and_writes_stores() {
    let s = TestServer::start().await;
    // A function that uses no store deploys as before.
    s.deploy_guest(HTTP_ECHO, "app", "echo", &["/echo"], "")
        .await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(crate::support::BIN)
            .args(["kv"])
            .args(args)
            .args(["--server", &s.control_url, "--token", &s.token])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = cli(&["create", "cfg"]);
    assert!(ok && out.contains("created store cfg"), "{out}");
    let (ok, out) = cli(&["set", "cfg", "a/b c", "hello"]);
    assert!(ok && out.contains("revision"), "{out}");
    let (ok, out) = cli(&["get", "cfg", "a/b c"]);
    assert!(ok && out == "hello", "{out:?}");
    let (ok, out) = cli(&["incr", "cfg", "n", "--by", "-3"]);
    assert!(ok && out.trim() == "-3", "{out}");
    let (ok, out) = cli(&["list", "cfg"]);
    assert!(ok && out == "a/b c\nn\n", "{out:?}");
    let (ok, out) = cli(&["stores"]);
    assert!(ok && out.contains("STORE") && out.contains("cfg"), "{out}");
    let (ok, out) = cli(&["stores", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}"));
    assert!(ok && v["stores"][0]["keys"] == 2, "{out}");
    let (ok, out) = cli(&["delete", "cfg", "n"]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["get", "cfg", "n"]);
    assert!(
        !ok && out.contains("item_not_found") || out.contains("no key"),
        "{out}"
    );
    let (ok, out) = cli(&["drop", "cfg"]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["get", "cfg", "a/b c"]);
    assert!(!ok && out.contains("cfg"), "{out}");
    s.stop().await;
}
