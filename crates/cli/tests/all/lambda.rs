//! Lambda-compatible process functions end to end, with real runtime clients: a Python handler
//! under AWS's `awslambdaric`, a Node.js handler under Updraft's client, and a Rust
//! `lambda_runtime` bootstrap (which parses every event with the `aws_lambda_events` types).
//! Each is deployed unchanged with `updraft deploy` and driven over HTTP routes, a queue
//! (with a partial batch failure), a schedule and `updraft invoke`; the handlers are in
//! `test-programs/lambda` (its README has their contract).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use updraft_test_guests::{LAMBDA_NODEJS, LAMBDA_PYTHON, LAMBDA_RUST_BOOTSTRAP};

use crate::support::{TestServer, expect_error, run_cli};

mod hostile;
mod streaming;

/// Runtime clients installed once for the whole test run, not per test server.
fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("lambda-clients")
}

/// The server config: shared runtime clients, quick retries, and `process` keys.
fn config(process: &str) -> String {
    format!(
        "[process]\nclients_dir = {:?}\n{process}[events]\nretry_base = \"50ms\"\nretry_max = \"200ms\"\n",
        clients_dir().display().to_string()
    )
}

#[derive(Clone, Copy)]
enum Kind {
    Python,
    Nodejs,
    Rust,
}

impl Kind {
    /// The `runtime` and `handler` lines of its function table.
    fn table(self) -> &'static str {
        match self {
            Kind::Python => "runtime = \"python\"\nhandler = \"app.handler\"",
            Kind::Nodejs => "runtime = \"nodejs\"\nhandler = \"index.handler\"",
            Kind::Rust => "runtime = \"provided\"",
        }
    }

    /// Puts its code in `code`.
    fn copy_code(self, code: &Path) {
        std::fs::create_dir_all(code).unwrap();
        let from = match self {
            Kind::Python => LAMBDA_PYTHON,
            Kind::Nodejs => LAMBDA_NODEJS,
            Kind::Rust => {
                std::fs::copy(LAMBDA_RUST_BOOTSTRAP, code.join("bootstrap")).unwrap();
                return;
            }
        };
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.path().is_file() {
                std::fs::copy(entry.path(), code.join(entry.file_name())).unwrap();
            }
        }
    }
}

/// An app directory with function `h` (HTTP `/r/:op`, `/me/:op` for signed-in users, queue
/// `jobs`) and `tick` (a schedule),
/// both running `kind`'s handler; `extra` goes into `h`'s table.
fn app(kind: Kind, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    kind.copy_code(&dir.path().join("code"));
    let table = kind.table();
    // 2 s unless `extra` sets its own.
    let timeout = if extra.lines().any(|l| l.starts_with("timeout =")) {
        ""
    } else {
        "timeout = \"2s\""
    };
    std::fs::write(
        dir.path().join("updraft.toml"),
        format!(
            "[app]\nname = \"lambda\"\n\n\
             [[functions]]\nname = \"h\"\n{table}\ncode = \"code\"\n{timeout}\n\
             memory = \"128MiB\"\nmax_concurrency = 2\n{extra}\n\
             [[functions.http]]\nroute = \"/r/:op\"\n\
             [[functions.http]]\nroute = \"/me/:op\"\nauth = \"user\"\n\
             [[functions.queue]]\nqueue = \"jobs\"\nbatch_size = 3\nmax_attempts = 2\n\n\
             [[functions]]\nname = \"tick\"\n{table}\ncode = \"code\"\n\
             [[functions.schedule]]\nrate = \"1s\"\n"
        ),
    )
    .unwrap();
    dir
}

async fn deployed(kind: Kind, extra: &str, server_extra: &str) -> (TestServer, tempfile::TempDir) {
    let s = TestServer::start_with(&config(server_extra)).await;
    let dir = app(kind, extra);
    let (ok, out, err) = run_cli(&s, &["deploy", dir.path().to_str().unwrap()], None);
    assert!(ok, "{out}{err}");
    (s, dir)
}

async fn info(s: &TestServer, op: &str) -> (reqwest::header::HeaderMap, Value) {
    let resp = s.get(&format!("/r/{op}")).await;
    assert_eq!(resp.status(), 200, "{op}");
    let headers = resp.headers().clone();
    (headers, resp.json().await.unwrap())
}

/// The text of `function`'s log lines once `ready` holds for them (bounded).
async fn lines_until(
    s: &TestServer,
    function: &str,
    ready: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let text = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l["line"].as_str().map(str::to_owned))
            .collect()
    };
    let lines = s
        .logs_until(function, "limit=1000", |l| ready(&text(l)))
        .await;
    text(&lines)
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// HTTP routes, context fields, warm state, handler errors, `updraft invoke`, a queue batch
/// with one failed item, and a schedule.
async fn triggers_and_context(kind: Kind) {
    // The server's instance recycling (for wasm) set low: a process must not follow it.
    let (s, _dir) = deployed(kind, "", "[defaults]\nmax_reuse = 2\n").await;

    let (headers, first) = info(&s, "info").await;
    let request_id = headers["x-updraft-request-id"].to_str().unwrap();
    assert_eq!(first["request_id"], request_id, "{first}");
    assert_eq!(
        first["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:h"
    );
    assert_eq!(first["function"], "h");
    assert_eq!(first["memory"], 128);
    assert_eq!(first["route_key"], "GET /r/:op");
    assert_eq!(first["param"], "info");
    let left = first["deadline_ms"]
        .as_u64()
        .unwrap()
        .saturating_sub(now_ms());
    assert!((500..=2_100).contains(&left), "deadline {left} ms away");
    assert_eq!(first["identity"], Value::Null, "no user, no identity");

    // Warm reuse: the same process, its module state kept.
    let (_, second) = info(&s, "info").await;
    assert_eq!(second["pid"], first["pid"]);
    assert_eq!(second["count"], first["count"].as_u64().unwrap() + 1);
    // Past `[defaults] max_reuse`: still the same process (Lambda keeps it until it idles out).
    let (_, third) = info(&s, "info").await;
    assert_eq!(third["pid"], first["pid"], "{third}");
    assert_eq!(third["count"], first["count"].as_u64().unwrap() + 2);

    // A signed-in user: the verified claims in the event, the user as `context.identity`.
    let session = crate::auth::sign_up(&s, "localhost", "lu@example.com").await;
    let user_id = session["user"]["id"].as_str().unwrap();
    let resp = s
        .http
        .get(s.url("/me/info"))
        .bearer_auth(session["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["claims"]["sub"], user_id, "{me}");
    assert_eq!(me["claims"]["email"], "lu@example.com", "{me}");
    assert_eq!(
        me["identity"],
        json!([user_id, format!("updraft:{}", updraft_api::DEFAULT_PROJECT)]),
        "{me}"
    );
    // A client cannot claim to be a user: its own `x-updraft-user-id` never reaches the
    // identity.
    let spoofed: Value = s
        .http
        .get(s.url("/r/info"))
        .header("x-updraft-user-id", "spoofed")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spoofed["identity"], Value::Null, "{spoofed}");

    // A handler error is a 502 naming it, and a failed record.
    let body = expect_error(s.get("/r/error").await, 502, "function_error").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("asked to fail"),
        "{body}"
    );
    let failed = s
        .record(body["error"]["request_id"].as_str().unwrap())
        .await;
    assert_eq!(
        (&failed["status"], &failed["error"]),
        (&json!(502), &json!("guest_error"))
    );
    // The good one is metered with the process's peak memory.
    let ok = s.record(request_id).await;
    assert_eq!(ok["status"], 200);
    assert!(ok["peak_memory_bytes"].as_u64().unwrap() > 1 << 20, "{ok}");

    // `updraft invoke` hands the raw payload over and prints the raw result.
    let (ok, out, err) = run_cli(&s, &["invoke", "h", "-d", r#"{"x":[1,2]}"#], None);
    assert!(ok, "{out}{err}");
    let echoed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(echoed["echo"], json!({"x": [1, 2]}), "{out}");
    assert_eq!(echoed["client_context"], Value::Null, "{out}");
    // With a client context (Lambda's `ClientContext`), which the handler reads from its context.
    let (ok, out, err) = run_cli(
        &s,
        &[
            "invoke",
            "h",
            "-d",
            "{}",
            "--client-context",
            r#"{"custom": {"who": "Zoë"}}"#,
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    let echoed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(echoed["client_context"], json!({"who": "Zoë"}), "{out}");
    // One that is not base64 JSON is refused before the handler runs.
    let resp = s
        .api(Method::POST, "/v1/functions/h/invoke")
        .header("x-amz-client-context", "not base64!")
        .body("{}")
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 400, "bad_request").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Client-Context is not base64"),
        "{body}"
    );

    // A queue batch of three whose middle item fails: only it is retried, then dead-lettered.
    let resp = s
        .api(Method::POST, "/v1/queues/jobs/messages/batch")
        .json(&json!({"messages": [{"body": "ok1"}, {"body": "fail"}, {"body": "ok2"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dlq = s.api(Method::GET, "/v1/queues/h-dlq").send().await.unwrap();
        if dlq.status() == 200 && dlq.json::<Value>().await.unwrap()["depth"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed item was not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.api_json("/v1/queues/jobs").await["depth"], 0);
    let lines = lines_until(&s, "h", |l| {
        l.iter().filter(|l| l.contains("sqs fail")).count() == 2
    })
    .await;
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!((count("sqs ok1"), count("sqs ok2")), (1, 1), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("REPORT RequestId: ")),
        "{lines:#?}"
    );

    // The schedule's EventBridge event.
    lines_until(&s, "tick", |l| {
        l.iter().any(|l| l.starts_with("scheduled "))
    })
    .await;
    s.stop().await;
}

/// The deadline, the memory limit and a crash each fail one invocation, and the next one runs
/// on a fresh process; two run at once with max_concurrency = 2; idle processes are reaped.
async fn limits_and_lifecycle(kind: Kind) {
    let (s, _dir) = deployed(kind, "idle_timeout = \"1s\"", "").await;
    let (_, before) = info(&s, "info").await;

    let started = Instant::now();
    expect_error(s.get("/r/sleep").await, 504, "function_timeout").await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3_500), "killed after {took:?}");
    lines_until(&s, "h", |l| {
        l.iter()
            .any(|l| l.contains("Task timed out after 2.00 seconds"))
    })
    .await;

    let body = expect_error(s.get("/r/alloc").await, 500, "function_failed").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("memory limit of 128MiB"),
        "{body}"
    );
    let exited = s.get("/r/exit").await;
    let (status, body) = (exited.status(), exited.text().await.unwrap());
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("Runtime exited with error: exit status 3"),
        "{body}"
    );
    let (_, after) = info(&s, "info").await;
    assert_ne!(after["pid"], before["pid"], "a fresh process");
    assert_eq!(after["count"], 1, "its state starts over");

    // max_concurrency = 2: two slow requests run at once, in two processes.
    let started = Instant::now();
    let (a, b) = tokio::join!(info(&s, "sleep1"), info(&s, "sleep1"));
    assert!(
        started.elapsed() < Duration::from_millis(1_900),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(a.1["pid"], b.1["pid"]);

    // Idle past idle_timeout: the processes are gone, and so is their state.
    lines_until(&s, "h", |l| {
        l.iter().any(|l| l.starts_with("evicted: version"))
    })
    .await;
    let state = s.api_json("/v1/functions/h").await;
    assert_eq!(state["runtime"]["loaded"], false, "scaled to zero: {state}");
    let (_, fresh) = info(&s, "info").await;
    assert_eq!(fresh["count"], 1, "{fresh}");
    assert_ne!(fresh["pid"], a.1["pid"]);
    assert_ne!(fresh["pid"], b.1["pid"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_handler_under_awslambdaric() {
    triggers_and_context(Kind::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodejs_handler() {
    triggers_and_context(Kind::Nodejs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_lambda_runtime_bootstrap() {
    triggers_and_context(Kind::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_limits_and_lifecycle() {
    limits_and_lifecycle(Kind::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodejs_limits_and_lifecycle() {
    limits_and_lifecycle(Kind::Nodejs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_limits_and_lifecycle() {
    limits_and_lifecycle(Kind::Rust).await;
}

/// `min_instances` keeps processes initialised: the first request is warm (no init in its
/// REPORT), and idle time does not reap them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_instances_are_started_before_the_first_request() {
    let (s, _dir) = deployed(
        Kind::Python,
        "min_instances = 1\nidle_timeout = \"1ms\"",
        "",
    )
    .await;
    s.runtime_until("h", |r| r["ready_instances"] == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (headers, first) = info(&s, "info").await;
    assert_eq!(first["count"], 1);
    let id = headers["x-updraft-request-id"].to_str().unwrap().to_owned();
    let lines = lines_until(&s, "h", |l| {
        l.iter()
            .any(|l| l.starts_with(&format!("REPORT RequestId: {id}")))
    })
    .await;
    let report = lines
        .iter()
        .find(|l| l.starts_with(&format!("REPORT RequestId: {id}")))
        .unwrap();
    assert!(!report.contains("Init Duration"), "{report}");
    assert!(
        !lines.iter().any(|l| l.starts_with("cold start")),
        "{lines:#?}"
    );
    s.stop().await;
}

/// A runtime that sends more than `max_payload` gets 413 from the Runtime API and its caller a
/// 502 naming the limit; a module that fails to import reports `init/error`, which fails the
/// invocation with that error. Neither takes the server or the next invocation down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_answers_and_init_errors_fail_their_invocation() {
    let s = TestServer::start_with(&config("max_payload = \"64KiB\"\n")).await;
    let dir = app(Kind::Python, "");
    std::fs::write(
        dir.path().join("code/broken.py"),
        "raise RuntimeError('cannot start')\n",
    )
    .unwrap();
    let manifest = dir.path().join("updraft.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(
        "\n[[functions]]\nname = \"broken\"\nruntime = \"python\"\nhandler = \"broken.handler\"\n\
         code = \"code\"\n[[functions.http]]\nroute = \"/broken\"\n",
    );
    std::fs::write(&manifest, text).unwrap();
    let (ok, out, err) = run_cli(&s, &["deploy", dir.path().to_str().unwrap()], None);
    assert!(ok, "{out}{err}");

    let body = expect_error(s.get("/r/big").await, 502, "function_error").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Function.ResponseSizeTooLarge"), "{body}");
    assert!(message.contains("65536 bytes"), "{body}");
    let (_, after) = info(&s, "info").await;
    assert_eq!(after["param"], "info");

    let body = expect_error(s.get("/broken").await, 502, "function_error").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("cannot start"), "{body}");
    lines_until(&s, "broken", |l| {
        l.iter()
            .any(|l| l.starts_with("INIT_REPORT") && l.contains("Status: error"))
    })
    .await;
    s.stop().await;
}
