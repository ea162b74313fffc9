//! `allowed_outbound_hosts`: guests reach only the hosts they list.

use std::sync::atomic::Ordering;

use updraft_test_guests::HTTP_OUTBOUND;

use crate::support::{TestServer, Upstream, manifest, outbound_call};

#[tokio::test]
async fn outbound_requests_reach_only_allowed_hosts() {
    let allowed = Upstream::start().await;
    let denied = Upstream::start().await;
    let s = TestServer::start().await;
    s.deploy_guest(
        HTTP_OUTBOUND,
        "app",
        "out",
        &["/out"],
        &format!("allowed_outbound_hosts = [\"http://{}\"]", allowed.addr),
    )
    .await;

    let call = |target: String| outbound_call(&s, target, None);

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

/// A guest allowed a name that resolves to a loopback address (DNS rebinding, or a wildcard
/// entry) must not reach the server's own control API, its data plane, or anything else on
/// loopback; listing the address literally allows it. IPv6 literal entries match.
#[tokio::test]
async fn outbound_is_vetted_by_address_after_resolution() {
    let upstream = Upstream::start().await;
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_OUTBOUND).await;
    let control_port = s.control_url.rsplit(':').next().unwrap().to_owned();
    let m = manifest(
        "app",
        "out",
        &["/out"],
        // Only the name: a literal `[::1]` entry here would (rightly) let `localhost` reach
        // ::1 wherever the name resolves to it too. Literal entries are tested below, each
        // with its own manifest.
        "allowed_outbound_hosts = [\"http://localhost:*\"]",
    );
    s.deploy_ok(&m, &[("out", &digest)]).await;
    let call = |target: String| outbound_call(&s, target, None);
    for (target, why) in [
        (
            format!("http://localhost:{control_port}/v1/health"),
            "one of this server's own listen addresses",
        ),
        (
            format!("http://localhost:{}/", upstream.addr.port()),
            "a loopback address",
        ),
    ] {
        let (status, body, id) = call(target.clone()).await;
        assert_eq!(status, 502, "{target}: {body}");
        assert!(body.contains("DestinationIpProhibited"), "{body}");
        let lines = s
            .logs_until("out", &format!("request_id={id}"), |l| {
                l.iter().any(|l| l["stream"] == "platform")
            })
            .await;
        let line = lines.iter().find(|l| l["stream"] == "platform").unwrap()["line"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(line.contains(why), "{line}");
        assert!(line.contains("list that address literally"), "{line}");
    }
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 0);

    // Listed literally, the address is allowed.
    let m = manifest(
        "app",
        "out",
        &["/out"],
        &format!("allowed_outbound_hosts = [\"http://{}\"]", upstream.addr),
    );
    s.deploy_ok(&m, &[("out", &digest)]).await;
    let (status, body, _) = call(format!("http://{}/", upstream.addr)).await;
    assert_eq!((status, body.as_str()), (200, "upstream 200: ok"));

    // An IPv6 literal entry matches its URL (where the machine has IPv6 loopback).
    if let Ok(v6) = tokio::net::TcpListener::bind("[::1]:0").await {
        let port = v6.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut c, _)) = v6.accept().await {
                // The whole head, then the answer, then close only after the client: closing
                // with request bytes unread (a head in two segments) resets the connection,
                // which the guest saw as `connection reset` now and then.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = c
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nv6",
                    )
                    .await;
                crate::support::close_after_client(c).await;
            }
        });
        let m = manifest(
            "app",
            "out",
            &["/out"],
            &format!("allowed_outbound_hosts = [\"http://[::1]:{port}\"]"),
        );
        s.deploy_ok(&m, &[("out", &digest)]).await;
        let (status, body, _) = call(format!("http://[::1]:{port}/")).await;
        assert_eq!((status, body.as_str()), (200, "upstream 200: v6"));
    }
    s.stop().await;
}
