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

/// An app directory with function `h` (HTTP `/r/:op`, queue `jobs`) and `tick` (a schedule),
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

    // Warm reuse: the same process, its module state kept.
    let (_, second) = info(&s, "info").await;
    assert_eq!(second["pid"], first["pid"]);
    assert_eq!(second["count"], first["count"].as_u64().unwrap() + 1);
    // Past `[defaults] max_reuse`: still the same process (Lambda keeps it until it idles out).
    let (_, third) = info(&s, "info").await;
    assert_eq!(third["pid"], first["pid"], "{third}");
    assert_eq!(third["count"], first["count"].as_u64().unwrap() + 2);

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

/// A hostile handler stays in its sandbox: no data directory, no other function's code, no
/// writes outside its private `/tmp`, whose size is capped, no signals out, no system calls the
/// seccomp filter denies (the Node.js and Rust tests run under the same filter). The host's
/// enforcement is probed first; a mechanism it lacks is reported, not assumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_handler_stays_in_its_sandbox() {
    let (s, _dir) = deployed(Kind::Python, "", "tmp_size = \"16MiB\"\n").await;
    let (_, got) = info(&s, "escape").await;
    let function = s.api_json("/v1/functions/h").await;
    let sandbox = &function["sandbox"];
    assert_eq!(sandbox["helper"], true, "{function}");
    if sandbox["filesystem"] == true {
        for denied in ["list_root", "read_shadow"] {
            assert_eq!(got[denied], "PermissionError", "{denied}: {got}");
        }
        // The data directory is unreadable, or (under a private /tmp) only the empty
        // skeleton its code is mounted in; other functions' code is not there.
        assert_ne!(got["read_data_dir_db"], "ok", "{got}");
        let listing = got["list_data_dir"].to_string();
        assert!(
            !listing.contains("updraft.db") && !listing.contains("secrets.key"),
            "{got}"
        );
        if let Some(bundles) = got["list_other_bundles"].as_array() {
            assert_eq!(bundles.len(), 1, "only its own code: {got}");
        }
    }
    assert_ne!(got["write_code"], "ok", "{got}");
    assert_eq!(got["write_tmp"], "ok", "{got}");
    if sandbox["private_tmp"] == true {
        assert_eq!(got["tmpdir"], "/tmp");
        assert_ne!(got["write_tmp_past_cap"], "ok", "{got}");
    }
    if sandbox["signals"] == true {
        assert_eq!(got["signal_parent"], "PermissionError", "{got}");
    }
    // Seccomp filters are in every kernel a server runs (3.5+), so the filter must take.
    assert_eq!(
        sandbox["syscalls"],
        cfg!(any(target_arch = "x86_64", target_arch = "aarch64")),
        "{function}"
    );
    if sandbox["syscalls"] == true {
        for call in ["keyctl", "io_uring_setup", "unshare_user"] {
            assert_eq!(got["syscalls"][call], "EPERM", "{call}: {got}");
        }
    }
    // Another process (this test; another function's, as well) that finds the environment's
    // Runtime API is turned away at once: it neither waits for nor sees an invocation.
    let api = got["runtime_api"].as_str().unwrap();
    let stolen = reqwest::Client::new()
        .get(format!("http://{api}/2018-06-01/runtime/invocation/next"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    match stolen {
        Ok(r) => panic!("another process reached the Runtime API: {}", r.status()),
        Err(e) => assert!(!e.is_timeout(), "it was let in and waited: {e}"),
    }
    let (_, again) = info(&s, "info").await;
    assert_eq!(again["param"], "info", "the environment still serves");
    // Only Lambda's variables and the function's own: nothing of the server's environment.
    let keys: Vec<&str> = got["env_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(!keys.contains(&"CARGO_MANIFEST_DIR"), "{keys:?}");
    assert!(keys.contains(&"AWS_LAMBDA_RUNTIME_API"), "{keys:?}");
    s.stop().await;
}

/// Mistakes a deploy catches: a handler whose file is not in the code, a `provided` function
/// without a `bootstrap`, a bundle that is not a zip; nothing of them is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_refuses_code_that_cannot_run() {
    let s = TestServer::start_with(&config("")).await;
    let dir = app(Kind::Python, "");
    let manifest = dir.path().join("updraft.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("app.handler", "main.handler")).unwrap();
    let (ok, out, err) = run_cli(&s, &["deploy", dir.path().to_str().unwrap()], None);
    assert!(!ok, "{out}");
    assert!(
        err.contains("handler `main.handler`: the code has no main.py"),
        "{err}"
    );
    assert!(err.contains("app.py"), "it lists what is there: {err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("code")).unwrap();
    std::fs::write(dir.path().join("code/handler.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(
        dir.path().join("updraft.toml"),
        "[app]\nname = \"x\"\n[[functions]]\nname = \"b\"\nruntime = \"provided\"\ncode = \"code\"\n",
    )
    .unwrap();
    let (ok, out, err) = run_cli(&s, &["deploy", dir.path().to_str().unwrap()], None);
    assert!(!ok, "{out}");
    assert!(err.contains("executable `bootstrap`"), "{err}");

    // A zip named as code must be one.
    std::fs::write(dir.path().join("code.zip"), "not a zip").unwrap();
    std::fs::write(
        dir.path().join("updraft.toml"),
        "[app]\nname = \"x\"\n[[functions]]\nname = \"b\"\nruntime = \"provided\"\ncode = \"code.zip\"\n",
    )
    .unwrap();
    let (ok, _, err) = run_cli(&s, &["deploy", dir.path().to_str().unwrap()], None);
    assert!(!ok && err.contains("is not a zip file"), "{err}");
    // And the server checks uploads itself: a zip with an entry escaping its directory.
    let evil = {
        use std::io::Write as _;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("../../escape", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"x").unwrap();
        zip.finish().unwrap().into_inner()
    };
    let (status, body, _) = s.upload(&evil).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("outside the bundle"), "{body}");
    assert!(
        s.api_json("/v1/functions").await["functions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    s.stop().await;
}

/// Lambda's response streaming (a `lambda_runtime` streaming response): the head comes from
/// the metadata prelude, the first chunk reaches the caller before the handler has written the
/// rest, and a process dying mid-stream cuts the body off and fails the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_responses_reach_the_caller_as_they_are_written() {
    let (s, _dir) = deployed(Kind::Rust, "timeout = \"10s\"", "").await;
    let started = Instant::now();
    let mut resp = s.get("/r/stream").await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-streamed"], "yes");
    assert_eq!(resp.headers()["content-type"], "text/plain");
    let first = resp.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert_eq!(&first[..], b"one\n");
    let mut rest = Vec::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    let all_at = started.elapsed();
    assert_eq!(rest, b"two\nthree\n");
    // The handler waits 1 s between chunks: the first came before the others existed.
    assert!(all_at >= Duration::from_secs(2), "{all_at:?}");
    assert!(
        first_at + Duration::from_millis(1500) < all_at,
        "{first_at:?} vs {all_at:?}"
    );
    lines_until(&s, "h", |l| {
        l.iter().any(|l| l.starts_with("REPORT RequestId: "))
    })
    .await;

    let mut resp = s.get("/r/stream-error").await;
    assert_eq!(resp.status(), 201);
    assert_eq!(&resp.chunk().await.unwrap().unwrap()[..], b"one\n");
    let mut cut = false;
    loop {
        match resp.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "the body ends in an error, not as if complete");
    // And the next request gets a fresh process.
    let (_, after) = info(&s, "info").await;
    assert_eq!(after["count"], 1);
    s.stop().await;
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
