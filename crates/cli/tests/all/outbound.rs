//! `allowed_outbound_hosts`: guests reach only the hosts they list.

use std::sync::atomic::Ordering;

use updraft_test_guests::HTTP_OUTBOUND;

use crate::support::{TestServer, Upstream, manifest};

#[tokio::test]
async fn outbound_requests_reach_only_allowed_hosts() {
    let allowed = Upstream::start().await;
    let denied = Upstream::start().await;
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_OUTBOUND).await;
    let m = manifest(
        "app",
        "out",
        &["/out"],
        &format!("allowed_outbound_hosts = [\"http://{}\"]", allowed.addr),
    );
    s.deploy_ok(&m, &[("out", &digest)]).await;

    let call = |target: String| {
        let s = &s;
        async move {
            let resp = s
                .http
                .get(s.url("/out"))
                .header("x-target", target)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let id = resp.headers()["x-updraft-request-id"]
                .to_str()
                .unwrap()
                .to_owned();
            (status, resp.text().await.unwrap(), id)
        }
    };

    let (status, body, _) = call(format!("http://{}/", allowed.addr)).await;
    assert_eq!((status, body.as_str()), (200, "upstream 200: ok"));
    assert_eq!(allowed.hits.load(Ordering::SeqCst), 1);

    // Same host, other port: denied inside the guest, and the server never connects.
    let (status, body, id) = call(format!("http://{}/", denied.addr)).await;
    assert_eq!(status, 502, "status {status}: {body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert_eq!(denied.hits.load(Ordering::SeqCst), 0);
    let lines = s
        .logs_until("out", &format!("request_id={id}"), |l| {
            l.iter().any(|l| l["stream"] == "platform")
        })
        .await;
    let platform = lines.iter().find(|l| l["stream"] == "platform").unwrap();
    assert_eq!(
        platform["line"],
        format!(
            "outbound request to http://{}/ denied: its host is not in allowed_outbound_hosts",
            denied.addr
        )
    );

    // An https URL to a public name is denied the same way (no network needed to check).
    let (status, body, _) = call("https://example.com/".into()).await;
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
    s.stop().await;
}
