//! Capturing guest stdout/stderr per invocation.

use updraft_test_guests::HTTP_ECHO;

use crate::support::TestServer;

#[tokio::test]
async fn stdout_and_stderr_are_captured_with_the_request_id() {
    let s = TestServer::serving(HTTP_ECHO, "app", "echo", &["/echo"], "").await;
    let mut ids = Vec::new();
    for path in ["/echo?first", "/echo?second"] {
        let resp = s.get(path).await;
        assert_eq!(resp.status(), 200);
        ids.push(
            resp.headers()["x-updraft-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let lines = s
        .logs_until("echo", &format!("request_id={}", ids[1]), |l| l.len() >= 2)
        .await;
    let got: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["request_id"].as_str().unwrap(),
                l["stream"].as_str().unwrap(),
                l["line"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (ids[1].as_str(), "stdout", "echo stdout /echo?second"),
            (ids[1].as_str(), "stderr", "echo stderr /echo?second"),
        ]
    );
    // Without a filter, both invocations' lines, oldest first.
    // (The deploy's platform event comes first; it belongs to no request.)
    let all = s.logs_until("echo", "", |l| l.len() >= 5).await;
    assert_eq!(all[0]["stream"], "platform");
    assert_eq!(all[0]["line"], "deployed version 1; live now serves it");
    assert_eq!(all[1]["request_id"], ids[0].as_str());
    assert_eq!(all[0]["function"], "echo");
    // Bad query parameters are a 400.
    let resp = s
        .api(
            reqwest::Method::GET,
            "/v1/functions/echo/logs?since=yesterday",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    s.stop().await;
}
