//! Test harness: an in-process server on `127.0.0.1:0` with its own data directory, and helpers
//! for uploading guests and deploying manifests over the real control API.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use updraft_server::{FileConfig, Server, ServerConfig};

/// The `updraft` binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_updraft");

mod process;
pub(crate) use process::{
    ConfiguredServe, ServeProcess, deploy_to, run_cli, serve, serve_with, updraft,
};

pub(crate) struct TestServer {
    pub(crate) data_url: String,
    pub(crate) control_url: String,
    /// The S3 listener.
    pub(crate) s3_url: String,
    pub(crate) token: String,
    pub(crate) http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server on a fresh data directory.
    pub(crate) async fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Self::start_at(tmp.path()).await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on a fresh data directory with a server configuration file's `text`.
    pub(crate) async fn start_with(text: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(tmp.path());
        config.file = FileConfig::parse("server.toml", text).unwrap();
        let mut s = Self::start_with_config(config).await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on `dir` (which may hold an earlier server's state) with a configuration
    /// file's `text`.
    pub(crate) async fn start_at_with(dir: &Path, text: &str) -> Self {
        let mut config = ServerConfig::new(dir);
        config.file = FileConfig::parse("server.toml", text).unwrap();
        Self::start_with_config(config).await
    }

    /// A server on `dir` (which may hold an earlier server's state).
    pub(crate) async fn start_at(dir: &Path) -> Self {
        Self::start_with_config(ServerConfig::new(dir)).await
    }

    async fn start_with_config(mut config: ServerConfig) -> Self {
        // Process functions run through the real binary's sandbox helper.
        config.file.process.helper = Some(BIN.into());
        // A server restarted on the same directory in this process: the stopped one released
        // the lock, but a child another test forked meanwhile may hold a copy of its
        // descriptor until it execs (flock follows the open file). Wait that out.
        let deadline = Instant::now() + Duration::from_secs(5);
        let server = loop {
            match Server::open(config.clone()).await {
                Ok(s) => break s,
                Err(e)
                    if e.to_string()
                        .contains(&format!("(pid {})", std::process::id()))
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        let data = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let data_url = format!("http://{}", data.local_addr().unwrap());
        let control_url = format!("http://{}", control.local_addr().unwrap());
        let s3 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s3_url = format!("http://{}", s3.local_addr().unwrap());
        let server = server.with_s3(s3);
        let token = std::fs::read_to_string(server.admin_token_file())
            .unwrap()
            .trim()
            .to_owned();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(data, control, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            data_url,
            control_url,
            s3_url,
            token,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            _tmp: None,
        }
    }

    /// A fresh server with one app `app` holding one function `name` that runs `guest`
    /// (a path from `updraft_test_guests`), routed at `routes`.
    pub(crate) async fn serving(
        guest: &str,
        app: &str,
        name: &str,
        routes: &[&str],
        extra: &str,
    ) -> Self {
        let s = Self::start().await;
        s.deploy_guest(guest, app, name, routes, extra).await;
        s
    }

    /// Uploads `guest` and deploys it as app `app` with one function `name` routed at `routes`
    /// (`extra` goes into the function table). Returns the guest's digest.
    pub(crate) async fn deploy_guest(
        &self,
        guest: &str,
        app: &str,
        name: &str,
        routes: &[&str],
        extra: &str,
    ) -> String {
        let digest = self.upload_guest(guest).await;
        self.deploy_ok(&manifest(app, name, routes, extra), &[(name, &digest)])
            .await;
        digest
    }

    /// Graceful shutdown; waits until the server has stopped.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.data_url)
    }

    pub(crate) fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.control_url))
            .bearer_auth(&self.token)
    }

    /// Uploads a component; returns (status, JSON body).
    pub(crate) async fn upload(&self, bytes: &[u8]) -> (u16, Value, String) {
        let digest = updraft_engine_digest(bytes);
        let resp = self
            .api(reqwest::Method::PUT, &format!("/v1/artifacts/{digest}"))
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap(), digest)
    }

    /// Uploads a guest by path and returns its digest, asserting success.
    pub(crate) async fn upload_guest(&self, path: &str) -> String {
        let (status, body, digest) = self.upload(&std::fs::read(path).unwrap()).await;
        assert!(
            status == 201 || status == 200,
            "upload failed: {status} {body}"
        );
        digest
    }

    /// Posts a deploy; returns (status, JSON body).
    pub(crate) async fn deploy(&self, manifest: &str, artifacts: &[(&str, &str)]) -> (u16, Value) {
        let artifacts: BTreeMap<&str, &str> = artifacts.iter().copied().collect();
        let resp = self
            .api(reqwest::Method::POST, "/v1/apps")
            .json(&serde_json::json!({"manifest": manifest, "artifacts": artifacts}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// Deploys, asserting success.
    pub(crate) async fn deploy_ok(&self, manifest: &str, artifacts: &[(&str, &str)]) -> Value {
        let (status, body) = self.deploy(manifest, artifacts).await;
        assert_eq!(status, 200, "deploy failed: {body}");
        body
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// GETs a control API path and returns its JSON body.
    pub(crate) async fn api_json(&self, path: &str) -> Value {
        self.api(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub(crate) async fn status(&self) -> Value {
        self.api_json("/v1/status").await
    }

    /// Log lines of `function`, waiting (bounded) until `ready` holds for them: lines are
    /// written by a background batcher, so they appear within its flush interval.
    pub(crate) async fn logs_until(
        &self,
        function: &str,
        query: &str,
        ready: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body = self
                .api_json(&format!("/v1/functions/{function}/logs?{query}"))
                .await;
            let lines = body["lines"].as_array().cloned().unwrap_or_default();
            if ready(&lines) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "log lines never satisfied the condition: {lines:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl TestServer {
    /// The invocation record of `request_id`, waiting (bounded) for it: it is written when
    /// the response body is done, which can be a moment after the client has it.
    pub(crate) async fn record(&self, request_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let resp = self
                .api(
                    reqwest::Method::GET,
                    &format!("/v1/invocations/{request_id}"),
                )
                .send()
                .await
                .unwrap();
            if resp.status() == 200 {
                return resp.json().await.unwrap();
            }
            assert!(Instant::now() < deadline, "no record for {request_id}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls the function's API record until `ready` holds for its `runtime` (bounded).
    pub(crate) async fn runtime_until(&self, name: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = self.api_json(&format!("/v1/functions/{name}")).await;
            if ready(&info["runtime"]) {
                return info["runtime"].clone();
            }
            assert!(Instant::now() < deadline, "never reached: {info}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until `function`'s log (filtered by `query`) has a platform line for
    /// which `matches` holds.
    pub(crate) async fn platform_line(
        &self,
        function: &str,
        query: &str,
        matches: impl Fn(&str) -> bool,
    ) {
        // Every line the store keeps for the query, not only the newest 100: traffic after the
        // event (each request logs) must not push its line out of the answer.
        let query = match query {
            "" => "limit=1000".to_owned(),
            q => format!("{q}&limit=1000"),
        };
        self.logs_until(function, &query, |lines| {
            lines
                .iter()
                .any(|l| l["stream"] == "platform" && l["line"].as_str().is_some_and(&matches))
        })
        .await;
    }
}

fn updraft_engine_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A manifest with one function `name` routed at each of `routes`, plus extra lines for the
/// function table.
pub(crate) fn manifest(app: &str, name: &str, routes: &[&str], extra: &str) -> String {
    let mut m = format!(
        "[app]\nname = \"{app}\"\n\n[[functions]]\nname = \"{name}\"\ncomponent = \"{name}.wasm\"\n{extra}\n"
    );
    for r in routes {
        m.push_str(&format!("\n[[functions.http]]\nroute = \"{r}\"\n"));
    }
    m
}

/// Asserts `resp` is an Updraft JSON error with this status and code; returns the body.
pub(crate) async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    body
}

/// Parses the echo guest's `key: value` lines.
pub(crate) fn echo_fields(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A tiny upstream HTTP server on 127.0.0.1 that answers `ok` and counts requests.
pub(crate) struct Upstream {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Upstream {
    pub(crate) async fn start() -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    // Read the whole head first: answering and closing with request bytes
                    // still unread makes the kernel reset the connection, which the guest
                    // sees as `connection reset` (a flaky failure on a loaded machine).
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    close_after_client(stream).await;
                });
            }
        });
        Self { addr, hits }
    }
}

/// Ends a test server's side of a connection once it has answered: closes its half, then
/// waits (bounded) for the client to close. Closing outright with request bytes still unread
/// (a head split across segments, a chunked body's last chunk) makes the kernel reset the
/// connection, which the client sees as `connection reset`.
pub(crate) async fn close_after_client(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let mut scratch = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while matches!(stream.read(&mut scratch).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// One request a [`Capture`] server received.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    /// Request line and headers, lower-cased header names.
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Captured {
    /// The value of header `name` (lower case), if present.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_owned())
        })
    }
}

/// An HTTP/1.1 server on 127.0.0.1 that keeps every request (head and body) and answers
/// `200 ok`: an upstream for guests' outbound calls, or an OTLP collector.
pub(crate) struct Capture {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) requests: std::sync::Arc<std::sync::Mutex<Vec<Captured>>>,
    /// The status it answers with (200 unless a test changes it).
    pub(crate) status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    /// How long it waits before answering, in ms (0 unless a test changes it).
    pub(crate) delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Capture {
    pub(crate) async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let status = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(200));
        let delay_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let store = requests.clone();
        let answer = status.clone();
        let delay = delay_ms.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let store = store.clone();
                let code = answer.load(std::sync::atomic::Ordering::SeqCst);
                let wait = delay.load(std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let mut c = Captured {
                        head,
                        body: Vec::new(),
                    };
                    let len: usize = c
                        .header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = buf[head_end..].to_vec();
                    while body.len() < len {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => body.extend_from_slice(&chunk[..n]),
                        }
                    }
                    c.body = body;
                    store.lock().unwrap().push(c);
                    if wait > 0 {
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                        if code == 200 { "ok" } else { "no" }
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    close_after_client(stream).await;
                });
            }
        });
        Self {
            addr,
            requests,
            status,
            delay_ms,
        }
    }

    /// The requests so far.
    pub(crate) fn received(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }
}

/// Calls the `http-outbound` guest routed at `/out`, asking it to GET `target` (`count` times at
/// once, if given). Returns the status, the body and the request id.
pub(crate) async fn outbound_call(
    s: &TestServer,
    target: String,
    count: Option<usize>,
) -> (u16, String, String) {
    outbound_call_with(s, target, count.map(|n| ("x-count", n))).await
}

/// [`outbound_call`] with one extra instruction header for the guest (`x-count`,
/// `x-header-bytes`).
pub(crate) async fn outbound_call_with(
    s: &TestServer,
    target: String,
    extra: Option<(&str, usize)>,
) -> (u16, String, String) {
    let mut req = s.http.get(s.url("/out")).header("x-target", target);
    if let Some((name, n)) = extra {
        req = req.header(name, n.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, resp.text().await.unwrap(), id)
}
