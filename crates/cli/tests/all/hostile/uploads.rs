//! Uploads stream: an artifact larger than the cap is refused with a 413 naming the cap, at
//! once when `content-length` says so and as soon as a streamed body passes it otherwise; the
//! server's memory stays flat and nothing is left on disk.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::support::TestServer;

const MIB: usize = 1 << 20;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Files under `dir` (recursively), temp files included.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(files(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

/// Sends a `PUT /v1/artifacts/<zeros digest>` head with `head_extra`, then up to `body_mib`
/// MiB of zeros (as chunked frames when `chunked`), reading the answer on another thread as
/// it comes; returns the answer.
fn put(addr: &str, token: &str, head_extra: &str, body_mib: usize, chunked: bool) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    let mut reader = conn.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let answer = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Until the server closes, or resets after its answer.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    });
    let digest = "0".repeat(64);
    write!(
        conn,
        "PUT /v1/artifacts/{digest} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n{head_extra}\r\n"
    )
    .unwrap();
    let zeros = vec![0u8; MIB];
    for _ in 0..body_mib {
        let sent = if chunked {
            write!(conn, "{:x}\r\n", zeros.len())
                .and_then(|()| conn.write_all(&zeros))
                .and_then(|()| conn.write_all(b"\r\n"))
        } else {
            conn.write_all(&zeros)
        };
        // The server answered and closed: the rest is not wanted.
        if sent.is_err() {
            break;
        }
    }
    let _ = conn.shutdown(std::net::Shutdown::Write);
    answer.join().unwrap()
}

fn assert_413(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.300}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(json["error"]["code"], "payload_too_large", "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("256 MiB"),
        "the error names the cap: {json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_artifact_upload_is_refused_with_413_in_flat_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(tmp.path()).await;
    let addr = s.control_url.trim_start_matches("http://").to_owned();
    let token = s.token.clone();
    let before = rss_bytes();
    let (a, t) = (addr.clone(), token.clone());
    let answers = tokio::task::spawn_blocking(move || {
        // Declared too large: refused before a byte of body is read.
        let declared = put(&a, &t, "content-length: 1288490188\r\n", 0, false);
        // Streamed without a length: refused once it passes the cap (300 MiB offered).
        let streamed = put(&a, &t, "transfer-encoding: chunked\r\n", 300, true);
        (declared, streamed)
    })
    .await
    .unwrap();
    assert_413(&answers.0);
    assert_413(&answers.1);
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < 64 * MIB as u64,
        "the server's memory grew by {} MiB for a refused upload",
        grown >> 20
    );
    s.stop().await;
    let left: Vec<_> = files(&tmp.path().join("artifacts"));
    assert!(
        left.is_empty(),
        "a refused upload left files behind: {left:?}"
    );
}

#[tokio::test]
async fn uploads_no_version_uses_are_deleted_after_the_grace_period() {
    use updraft_test_guests::{HTTP_ECHO, HTTP_MISBEHAVE};
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(tmp.path()).await;
    let unused = s.upload_guest(HTTP_MISBEHAVE).await;
    s.deploy_guest(HTTP_ECHO, "app", "echo", &["/echo"], "")
        .await;
    let used = s.api_json("/v1/functions/echo").await["versions"][0]["digest"]
        .as_str()
        .map(str::to_owned);
    s.stop().await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let s = TestServer::start_at_with(tmp.path(), "[versions]\nunused_artifact_grace = \"10ms\"\n")
        .await;
    let head = |digest: String| {
        let s = &s;
        async move {
            s.api(reqwest::Method::HEAD, &format!("/v1/artifacts/{digest}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while head(unused.clone()).await != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the unused upload was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What a version uses stays, and serves.
    if let Some(used) = used {
        assert_eq!(head(used).await, 200);
    }
    assert_eq!(s.get("/echo").await.status(), 200);
    let left = files(&tmp.path().join("artifacts"));
    assert_eq!(left.len(), 1, "{left:?}");
    s.stop().await;
}
