//! Components from real toolchains other than Rust: they import more of WASI than the proxy
//! world, at their own 0.2.x patch versions, and must still deploy, serve and log.

use updraft_test_guests::PY_HELLO;

use crate::support::TestServer;

#[tokio::test]
async fn componentize_py_component_deploys_serves_and_logs() {
    let Some(path) = PY_HELLO else {
        // Only when python3 is missing on a developer machine; CI requires it (see
        // UPDRAFT_REQUIRE_ALL_GUESTS in .ci/run), so this cannot pass vacuously there.
        eprintln!("skipped: py-hello was not built (no python3)");
        return;
    };
    let s = TestServer::serving(path, "py", "py-hello", &["/py/..."], "").await;
    let resp = s.get("/py/abc?x=1").await;
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        resp.text().await.unwrap(),
        "hello from python /py/abc?x=1\n"
    );
    s.logs_until("py-hello", &format!("request_id={id}"), |l| {
        l.iter().any(|l| l["line"] == "python stdout /py/abc?x=1")
    })
    .await;
    // A fresh instance per request: a second request works the same way.
    assert_eq!(
        s.get("/py/again").await.text().await.unwrap(),
        "hello from python /py/again\n"
    );
    s.stop().await;
}
