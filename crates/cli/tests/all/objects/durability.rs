//! Objects and real processes: what was acknowledged survives `kill -9` whole, and a 1 GiB
//! object goes in and out through the S3 API in constant memory.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use updraft_test_guests::PY_CLIENTS;

use crate::support::{ConfiguredServe, ServeProcess};

/// The bytes of object `i`: distinct per object, 64 KiB and a little.
fn content(i: usize) -> Vec<u8> {
    (0..(64 << 10) + i)
        .map(|j| ((j * 31 + i) % 251) as u8)
        .collect()
}

fn object_url(server: &ServeProcess, key: &str) -> String {
    format!("{}/v1/buckets/durable/objects/{key}", server.control_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_acknowledged_before_kill_9_survive_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, mut server) = ConfiguredServe::start(dir.path(), "");
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/v1/buckets", server.control_url))
        .bearer_auth(&cfg.token)
        .json(&json!({"name": "durable"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (http, token, acked) = (http.clone(), cfg.token.clone(), acked.clone());
        let url = object_url(&server, "");
        tokio::spawn(async move {
            for i in 0..2000 {
                let sent = http
                    .put(format!("{url}k{i}"))
                    .bearer_auth(&token)
                    .body(content(i))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => acked.lock().unwrap().push(i),
                    _ => return,
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "the writer never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    writer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() < 2000, "the kill came after every write");
    let server = cfg.restart();
    for &i in &acked {
        let resp = http
            .get(object_url(&server, &format!("k{i}")))
            .bearer_auth(&cfg.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "acknowledged object k{i} is gone");
        assert!(resp.bytes().await.unwrap() == content(i), "k{i} changed");
    }
    // The write in flight at the kill is all there or not there at all.
    let next = acked.len();
    let resp = http
        .get(object_url(&server, &format!("k{next}")))
        .bearer_auth(&cfg.token)
        .send()
        .await
        .unwrap();
    match resp.status().as_u16() {
        404 => {}
        200 => assert!(
            resp.bytes().await.unwrap() == content(next),
            "a partial object"
        ),
        other => panic!("k{next}: {other}"),
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A 1 GiB object through boto3 (a single signed PutObject streamed from a file, then a
/// streamed GetObject): the server's peak memory grows by less than 64 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_object_goes_in_and_out_in_constant_memory() {
    let Some(python) = PY_CLIENTS else {
        eprintln!("skipped: no python3 to run boto3");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cfg, mut server) = ConfiguredServe::start(dir.path(), "");
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/v1/s3-keys", server.control_url))
        .bearer_auth(&cfg.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let key: serde_json::Value = resp.json().await.unwrap();
    let script = r#"
import hashlib, sys, boto3
from botocore.config import Config
endpoint, key_id, secret, path = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key_id,
                  aws_secret_access_key=secret, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="big")
block = bytes(range(256)) * 4096
written = hashlib.md5()
with open(path, "wb") as f:
    for i in range(1024):
        b = block[i % 256:] + block[:i % 256]
        written.update(b)
        f.write(b)
print("ready", flush=True)
sys.stdin.readline()
with open(path, "rb") as f:
    s3.put_object(Bucket="big", Key="gib.bin", Body=f)
h = hashlib.md5()
n = 0
for chunk in s3.get_object(Bucket="big", Key="gib.bin")["Body"].iter_chunks(1 << 20):
    h.update(chunk)
    n += len(chunk)
print("done", n, h.hexdigest() == written.hexdigest(), flush=True)
"#;
    let file = dir.path().join("gib.bin");
    let mut child = tokio::process::Command::new(python)
        .args(["-c", script, &server.s3_url])
        .arg(key["access_key_id"].as_str().unwrap())
        .arg(key["secret_access_key"].as_str().unwrap())
        .arg(&file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
    let before = peak_rss_kib(server.child.id());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    let done = lines.next_line().await.unwrap().unwrap_or_default();
    assert!(
        child.wait().await.unwrap().success(),
        "boto3 failed: {done}"
    );
    let after = peak_rss_kib(server.child.id());
    assert_eq!(done, "done 1073741824 True", "the object came back whole");
    let growth = after.saturating_sub(before);
    eprintln!("peak RSS {before} KiB before, {after} KiB after: {growth} KiB more");
    assert!(
        growth < 64 << 10,
        "the server's peak memory grew by {growth} KiB"
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
