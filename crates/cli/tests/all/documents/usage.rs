//! Data metering in `updraft usage`: key-value calls of a guest and document calls through a
//! function's credential count for that function; the HTTP APIs' calls count in the project's
//! totals; stored bytes are shown; counts survive a restart.

use reqwest::Method;
use serde_json::{Value, json};
use updraft_test_guests::{DB_PROXY, KV_DRAFT2};

use super::call;
use crate::support::TestServer;

const APP: &str = "[app]\nname = \"metered\"\n\n\
    [[collections]]\nname = \"orders\"\n\n\
    [[functions]]\nname = \"kv\"\ncomponent = \"kv.wasm\"\nkey_value_stores = [\"default\"]\n\
    [[functions.http]]\nroute = \"/kv/...\"\n\n\
    [[functions]]\nname = \"docs\"\ncomponent = \"docs.wasm\"\ncollections = [\"orders\"]\n\
    [[functions.http]]\nroute = \"/collections/...\"\n";

async fn usage(s: &TestServer) -> Value {
    s.api_json("/v1/usage?since=1h").await
}

fn function<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_writes_and_stored_bytes_are_metered_per_function_and_project() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(dir.path()).await;
    let kv = s.upload_guest(KV_DRAFT2).await;
    let docs = s.upload_guest(DB_PROXY).await;
    s.deploy_ok(APP, &[("kv", &kv), ("docs", &docs)]).await;
    let send = |method: Method, path: &str, body: &str| {
        s.http
            .request(method, s.url(path))
            .body(body.to_owned())
            .send()
    };
    // The kv function: 3 writes and 2 reads.
    for i in 0..3 {
        assert_eq!(
            send(Method::PUT, &format!("/kv/set/k{i}"), "v")
                .await
                .unwrap()
                .status(),
            200
        );
    }
    for i in 0..2 {
        assert_eq!(
            send(Method::GET, &format!("/kv/get/k{i}"), "")
                .await
                .unwrap()
                .status(),
            200
        );
    }
    // The docs function, with its credential: 2 writes, then a read of one document.
    for id in ["a", "b"] {
        let r = s
            .http
            .put(s.url(&format!("/collections/orders/docs/{id}")))
            .header("content-type", "application/json")
            .body(r#"{"total": 5}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    assert_eq!(
        send(Method::GET, "/collections/orders/docs/a", "")
            .await
            .unwrap()
            .status(),
        200
    );
    // The HTTP API with a key: one document read.
    let r = call(
        &s,
        Method::GET,
        "/collections/orders/docs/b",
        Some(&s.token),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);

    let report = usage(&s).await;
    let kvf = function(&report, "kv");
    assert_eq!(
        (kvf["data_reads"].as_u64(), kvf["data_writes"].as_u64()),
        (Some(2), Some(3)),
        "{kvf}"
    );
    let docf = function(&report, "docs");
    // A PUT reads the document before it writes it: 2 reads + the get.
    assert_eq!(
        (docf["data_reads"].as_u64(), docf["data_writes"].as_u64()),
        (Some(3), Some(2)),
        "{docf}"
    );
    assert_eq!(report["totals"]["data_reads"], 2 + 3 + 1);
    assert_eq!(report["totals"]["data_writes"], 3 + 2);
    let stored = report["storage"]["bytes"].as_u64().unwrap();
    assert!(stored > 0, "{report}");
    assert_eq!(report["storage"]["quota_bytes"], 1u64 << 30);

    // The CLI shows them.
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(crate::support::BIN)
            .args([
                "usage",
                "--since",
                "1h",
                "--server",
                &s.control_url,
                "--token",
                &s.token,
            ])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DATA READS") && text.contains("stored:"),
        "{text}"
    );

    // Counted, not lost, across a restart.
    s.stop().await;
    let s = TestServer::start_at(dir.path()).await;
    let again = usage(&s).await;
    assert_eq!(
        again["totals"]["data_reads"],
        report["totals"]["data_reads"]
    );
    assert_eq!(again["totals"]["data_writes"], json!(5));
}
