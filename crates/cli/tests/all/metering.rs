//! Metering and observability end to end: invocation records, usage and cost, quotas,
//! `logs -f`, `/metrics`, and trace propagation.
//!
//! Long file: metering's end-to-end scenarios (records, usage, quotas, logs, metrics, traces)
//! share one set of helpers here.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use updraft_test_guests::{HTTP_ECHO, HTTP_MISBEHAVE, HTTP_OUTBOUND};

use crate::support::{Capture, TestServer, expect_error, manifest};

/// Sends GET `path` and returns (status, request id).
async fn call(s: &TestServer, path: &str) -> (u16, String) {
    let resp = s.get(path).await;
    let id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let status = resp.status().as_u16();
    let _ = resp.bytes().await;
    (status, id)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}

/// Fields every record must get right, whatever its outcome.
fn check_common(r: &Value, request_id: &str, function: &str, memory_mb: u64) {
    assert_eq!(r["request_id"], request_id);
    assert_eq!(r["project"], "default");
    assert_eq!(r["function"], function);
    assert_eq!(r["version"], 1);
    assert_eq!(r["memory_mb"], memory_mb);
    let duration_us = u(&r["duration_us"]);
    let billed = u(&r["billed_ms"]);
    assert_eq!(billed, duration_us.div_ceil(1000).max(1), "{r}");
    let gbs = r["gb_seconds"].as_f64().unwrap();
    let expected = memory_mb as f64 / 1024.0 * billed as f64 / 1000.0;
    assert!((gbs - expected).abs() < 1e-12, "{r}");
    let started = r["started_ms"].as_i64().unwrap();
    let now = updraft_store_now();
    assert!(started <= now && started > now - 60_000, "{r}");
    let trace = r["trace_id"].as_str().unwrap();
    assert_eq!(trace.len(), 32);
}

fn updraft_store_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn records_for_success_error_timeout_and_cold_start() {
    let s = TestServer::serving(
        HTTP_MISBEHAVE,
        "app",
        "m",
        &["/m"],
        "timeout = \"1s\"\nmemory = \"64MiB\"\nidle_timeout = \"200ms\"",
    )
    .await;

    // Success, on the code the deploy loaded: not a cold start.
    let (status, ok_id) = call(&s, "/m").await;
    assert_eq!(status, 200);
    let ok = s.record(&ok_id).await;
    check_common(&ok, &ok_id, "m", 64);
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["trigger"], "http");
    assert_eq!(ok["cold"], false);
    assert!(ok.get("error").is_none(), "{ok}");
    let base_peak = u(&ok["peak_memory_bytes"]);
    assert!(
        base_peak > 0 && base_peak.is_multiple_of(65_536),
        "whole wasm pages: {ok}"
    );

    // A guest that allocates 8 MiB more: its peak is 8 MiB above the baseline, to a page.
    let (status, alloc_id) = call(&s, "/m?alloc=8388608").await;
    assert_eq!(status, 200);
    let alloc = s.record(&alloc_id).await;
    let grown = u(&alloc["peak_memory_bytes"]) - base_peak;
    assert!(
        (8_388_608..=8_388_608 + 65_536).contains(&grown),
        "peak grew by {grown} bytes for an 8 MiB allocation: {alloc}"
    );

    // A trap: 500 and its class.
    let (status, trap_id) = call(&s, "/m?trap").await;
    assert_eq!(status, 500);
    let trap = s.record(&trap_id).await;
    check_common(&trap, &trap_id, "m", 64);
    assert_eq!(
        (trap["status"].clone(), trap["error"].clone()),
        (500.into(), "trap".into())
    );

    // A timeout: 504, billed for the full second it ran.
    let (status, slow_id) = call(&s, "/m?sleep=5000").await;
    assert_eq!(status, 504);
    let slow = s.record(&slow_id).await;
    check_common(&slow, &slow_id, "m", 64);
    assert_eq!(slow["error"], "timeout");
    let us = u(&slow["duration_us"]);
    assert!((1_000_000..3_000_000).contains(&us), "{slow}");

    // Out of memory: its own class.
    let (status, oom_id) = call(&s, "/m?alloc=268435456").await;
    assert_eq!(status, 500);
    assert_eq!(s.record(&oom_id).await["error"], "out_of_memory");

    // Idle past idle_timeout: evicted, so the next request is a cold start.
    s.runtime_until("m", |r| r["loaded"] == false).await;
    let (status, cold_id) = call(&s, "/m").await;
    assert_eq!(status, 200);
    let cold = s.record(&cold_id).await;
    check_common(&cold, &cold_id, "m", 64);
    assert_eq!(cold["cold"], true, "{cold}");

    // A direct invoke through the control API is metered as such.
    let resp = s
        .api(reqwest::Method::POST, "/v1/functions/m/invoke")
        .send()
        .await
        .unwrap();
    let invoke_id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(resp.status(), 200);
    assert_eq!(s.record(&invoke_id).await["trigger"], "invoke");

    // The list: newest first, filterable to errors.
    let list = s.api_json("/v1/functions/m/invocations?errors=true").await;
    let errors: Vec<&str> = list["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert_eq!(errors, ["out_of_memory", "timeout", "trap"]);
    let resp = s
        .api(reqwest::Method::GET, "/v1/invocations/nope")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "bad_request").await;
    let unknown = format!("{}{}", &ok_id[..12], "0".repeat(20));
    let resp = s
        .api(reqwest::Method::GET, &format!("/v1/invocations/{unknown}"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "invocation_not_found").await;
    s.stop().await;
}

#[tokio::test]
async fn usage_and_cost_match_the_records() {
    let s = TestServer::start_with(
        "[pricing]\nper_million_requests = 2.5\nper_gb_second = 0.5\nfree_requests = 1\ncurrency = \"EUR\"\n",
    )
    .await;
    s.deploy_guest(HTTP_ECHO, "app", "echo", &["/echo"], "memory = \"256MiB\"")
        .await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(call(&s, &format!("/echo?{i}")).await.1);
    }
    let mut records = Vec::new();
    for id in &ids {
        records.push(s.record(id).await);
    }
    // Hand-computed from the records.
    let billed: u64 = records.iter().map(|r| u(&r["billed_ms"])).sum();
    let gbs = 256.0 / 1024.0 * billed as f64 / 1000.0;
    let cost = (6.0 - 1.0) / 1e6 * 2.5 + gbs * 0.5;

    let report = s.api_json("/v1/usage?since=1h&by=hour").await;
    let totals = &report["totals"];
    assert_eq!(totals["invocations"], 6, "{report}");
    assert_eq!(totals["errors"], 0);
    assert_eq!(u(&totals["billed_ms"]), billed);
    assert!(
        (totals["gb_seconds"].as_f64().unwrap() - gbs).abs() < 1e-9,
        "{report}"
    );
    assert!(
        (totals["estimated_cost"].as_f64().unwrap() - cost).abs() < 1e-12,
        "{report}"
    );
    assert_eq!(report["prices"]["currency"], "EUR");
    assert_eq!(report["functions"][0]["function"], "echo");
    assert_eq!(report["functions"][0]["invocations"], 6);
    // Buckets add up to the totals (they are priced without the free tier).
    let buckets = report["buckets"].as_array().unwrap();
    assert!(!buckets.is_empty() && buckets.len() <= 2, "{report}");
    let in_buckets: u64 = buckets.iter().map(|b| u(&b["invocations"])).sum();
    assert_eq!(in_buckets, 6);
    for b in buckets {
        assert_eq!(b["start_ms"].as_i64().unwrap() % 3_600_000, 0);
    }
    // The per-function filter and bad input.
    let only = s.api_json("/v1/usage?function=echo").await;
    assert_eq!(only["totals"]["invocations"], 6);
    for (q, code, status) in [
        ("by=week", "bad_request", 400),
        ("since=yesterday", "bad_request", 400),
        ("function=nope", "function_not_found", 404),
        ("colour=red", "bad_request", 400),
    ] {
        let resp = s
            .api(reqwest::Method::GET, &format!("/v1/usage?{q}"))
            .send()
            .await
            .unwrap();
        let body = expect_error(resp, status, code).await;
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    s.stop().await;
}

#[tokio::test]
async fn quotas_trip_at_the_right_count_and_survive_a_restart() {
    let config = "[quotas.default]\ninvocations_per_month = 5\n";
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_at_with(dir.path(), config).await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    let m = format!(
        "{}\n{}",
        manifest("app", "a", &["/a"], "quota = { invocations_per_day = 3 }"),
        manifest("ignored", "b", &["/b"], "").replace("[app]\nname = \"ignored\"\n", "")
    );
    s.deploy_ok(&m, &[("a", &digest), ("b", &digest)]).await;
    for _ in 0..3 {
        assert_eq!(call(&s, "/a").await.0, 200);
    }
    let resp = s.get("/a").await;
    let body = expect_error(resp, 429, "quota_exceeded").await;
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("function `a` may use 3 invocations per day (UTC); 3 used"),
        "{msg}"
    );
    // The project's quota counts both functions: 3 of `a` + 2 of `b` = 5.
    assert_eq!(call(&s, "/b").await.0, 200);
    assert_eq!(call(&s, "/b").await.0, 200);
    let resp = s.get("/b").await;
    let body = expect_error(resp, 429, "quota_exceeded").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("project `default` may use 5 invocations per month"),
        "{body}"
    );
    // The usage API shows them, used up; refusals are not invocations.
    let report = s.api_json("/v1/usage").await;
    assert_eq!(report["totals"]["invocations"], 5, "{report}");
    let quotas: BTreeMap<String, (f64, f64, bool)> = report["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                format!(
                    "{} {} {}",
                    q["scope"].as_str().unwrap(),
                    q["name"].as_str().unwrap(),
                    q["period"].as_str().unwrap()
                ),
                (
                    q["used"].as_f64().unwrap(),
                    q["limit"].as_f64().unwrap(),
                    q["exceeded"].as_bool().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(quotas["function a day"], (3.0, 3.0, true));
    assert_eq!(quotas["project default month"], (5.0, 5.0, true));
    // A refusal leaves a platform line.
    s.platform_line("a", "", |l| l.starts_with("quota exceeded: function `a`"))
        .await;
    s.stop().await;

    // After a restart the counts come back from the records.
    let s = TestServer::start_at_with(dir.path(), config).await;
    expect_error(s.get("/b").await, 429, "quota_exceeded").await;
    s.stop().await;
}

// Multi-threaded: the test thread blocks reading the CLI's output while the server runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_gets_a_line_within_a_second_of_the_guest_printing_it() {
    let s = TestServer::serving(HTTP_ECHO, "app", "echo", &["/echo"], "").await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_updraft"))
        .args([
            "logs",
            "echo",
            "-f",
            "--server",
            &s.control_url,
            "--token",
            &s.token,
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    // The backlog (the deploy event) shows the stream is open.
    let recv = |wait: Duration| tokio::task::block_in_place(|| rx.recv_timeout(wait));
    let (_, first) = recv(Duration::from_secs(10)).unwrap();
    assert!(first.contains("deployed version 1"), "{first}");
    for i in 0..3 {
        let marker = format!("/echo?follow-{i}");
        let (status, id) = call(&s, &marker).await;
        let answered = Instant::now();
        assert_eq!(status, 200);
        let expected = format!("echo stdout {marker}");
        let deadline = answered + Duration::from_secs(5);
        let got = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) = recv(left).expect("the line never came");
            if line.ends_with(&expected) {
                break (at, line);
            }
        };
        let lag = got.0.saturating_duration_since(answered);
        assert!(
            lag < Duration::from_secs(1),
            "line came {lag:?} after the response"
        );
        assert!(got.1.contains(&id[..12]), "{}", got.1);
        assert!(got.1.contains(" v1 stdout "), "{}", got.1);
    }
    child.kill().unwrap();
    let _ = child.wait();

    // Over the API: Server-Sent Events with ids; Last-Event-ID resumes from the store.
    let resp = s
        .api(
            reqwest::Method::GET,
            "/v1/functions/echo/logs?follow=true&limit=2",
        )
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    use futures::StreamExt;
    let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.starts_with("id: "), "{text}");
    assert!(text.contains("\ndata: {"), "{text}");
    s.stop().await;
}

/// Parses Prometheus text format strictly: every line a comment (`# HELP`/`# TYPE`) or
/// `name{labels} value`; returns samples by `name{labels}`.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut samples = BTreeMap::new();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().unwrap_or_default();
            assert!(kind == "HELP" || kind == "TYPE", "bad comment: {line}");
            assert!(name_ok(name), "bad metric name: {line}");
            if kind == "TYPE" {
                let t = parts.next().unwrap_or_default();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "bad type: {line}"
                );
                assert!(typed.insert(name.to_owned()), "TYPE twice: {line}");
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name), "bad sample name: {line}");
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("bad labels: {line}"));
            for pair in inner.split("\",") {
                let (k, v) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(name_ok(k), "bad label name: {line}");
                assert!(
                    !v.trim_end_matches('"').contains('"'),
                    "unescaped quote: {line}"
                );
            }
        }
        let family = typed.iter().any(|t| name.starts_with(t.as_str()));
        assert!(family, "sample before its TYPE: {line}");
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "duplicate: {line}"
        );
    }
    samples
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_the_requests() {
    let s = TestServer::serving(HTTP_ECHO, "app", "echo", &["/echo"], "").await;
    s.deploy_guest(HTTP_MISBEHAVE, "app2", "bad", &["/bad"], "")
        .await;
    for _ in 0..7 {
        assert_eq!(call(&s, "/echo").await.0, 200);
    }
    for _ in 0..2 {
        assert_eq!(call(&s, "/bad?trap").await.0, 500);
    }
    let resp = s
        .http
        .get(format!("{}/metrics", s.control_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "metrics need the admin token");
    let ok =
        r#"updraft_invocations_total{project="default",function="echo",version="1",status="200"}"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    let samples = loop {
        let resp = s
            .api(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let samples = parse_prometheus(&resp.text().await.unwrap());
        let trapped = samples
            .get(r#"updraft_invocation_errors_total{project="default",function="bad",version="1",class="trap"}"#);
        if samples.get(ok) == Some(&7.0) && trapped == Some(&2.0) {
            break samples;
        }
        assert!(
            Instant::now() < deadline,
            "counts never matched: {samples:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        samples[r#"updraft_invocations_total{project="default",function="bad",version="1",status="500"}"#],
        2.0
    );
    assert_eq!(
        samples[r#"updraft_invocation_duration_seconds_count{project="default",function="echo",version="1"}"#],
        7.0
    );
    assert_eq!(
        samples[r#"updraft_invocation_duration_seconds_bucket{project="default",function="echo",version="1",le="+Inf"}"#],
        7.0
    );
    assert_eq!(
        samples[r#"updraft_memory_peak_bytes_count{project="default",function="echo",version="1"}"#],
        7.0
    );
    assert_eq!(
        samples[r#"updraft_concurrency_in_use{project="default",function="echo",version="1"}"#],
        0.0
    );
    assert_eq!(samples["updraft_functions"], 2.0);
    s.stop().await;
}

#[tokio::test]
async fn traceparent_is_continued_into_outbound_requests_and_spans_are_exported() {
    let upstream = Capture::start().await;
    let collector = Capture::start().await;
    let s = TestServer::start_with(&format!(
        "[tracing]\notlp_endpoint = \"http://{}/v1/traces\"\nservice_name = \"updraft-test\"\n",
        collector.addr
    ))
    .await;
    s.deploy_guest(
        HTTP_OUTBOUND,
        "app",
        "out",
        &["/out"],
        &format!("allowed_outbound_hosts = [\"http://{}\"]", upstream.addr),
    )
    .await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let resp = s
        .http
        .get(s.url("/out"))
        .header("x-target", format!("http://{}/hello", upstream.addr))
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let request_id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, "upstream 200: ok");
    let got = upstream.received();
    assert_eq!(got.len(), 1);
    let outbound = got[0].header("traceparent").expect("outbound traceparent");
    let parts: Vec<&str> = outbound.split('-').collect();
    assert_eq!(parts.len(), 4, "{outbound}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", trace, "01"),
        "{outbound}"
    );
    assert_ne!(
        parts[2], caller_span,
        "the guest's span is the parent, not the caller's"
    );
    let execute_span = parts[2].to_owned();
    assert_eq!(s.record(&request_id).await["trace_id"], trace);

    // Without a traceparent, a new trace is started and still propagated.
    let resp = s
        .http
        .get(s.url("/out"))
        .header("x-target", format!("http://{}/again", upstream.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let again = upstream.received()[1].header("traceparent").unwrap();
    assert_eq!(again.len(), 55);
    assert!(!again.contains(trace));

    // The collector gets the first request's spans, linked: gateway under the caller's span,
    // the rest under gateway, execute the span the outbound request named.
    let deadline = Instant::now() + Duration::from_secs(10);
    let spans: Vec<Value> = loop {
        let spans: Vec<Value> = collector
            .received()
            .iter()
            .flat_map(|c| {
                assert!(c.head.starts_with("POST /v1/traces "), "{}", c.head);
                let body: Value = serde_json::from_slice(&c.body).unwrap();
                let rs = &body["resourceSpans"][0];
                assert_eq!(
                    rs["resource"]["attributes"][0]["value"]["stringValue"],
                    "updraft-test"
                );
                rs["scopeSpans"][0]["spans"].as_array().unwrap().clone()
            })
            .filter(|s| s["traceId"] == trace)
            .collect();
        if spans.len() >= 4 {
            break spans;
        }
        assert!(Instant::now() < deadline, "spans never arrived: {spans:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let by_name: BTreeMap<&str, &Value> = spans
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s))
        .collect();
    let names: Vec<&&str> = by_name.keys().collect();
    assert_eq!(names, [&"dispatch", &"execute", &"gateway", &"instantiate"]);
    let gateway = by_name["gateway"];
    assert_eq!(gateway["parentSpanId"], caller_span);
    assert_eq!(gateway["kind"], 2);
    for child in ["dispatch", "instantiate", "execute"] {
        assert_eq!(by_name[child]["parentSpanId"], gateway["spanId"], "{child}");
    }
    assert_eq!(by_name["execute"]["spanId"], execute_span.as_str());
    let t = |s: &Value, k: &str| s[k].as_str().unwrap().parse::<u64>().unwrap();
    assert!(t(gateway, "startTimeUnixNano") <= t(by_name["execute"], "startTimeUnixNano"));
    assert!(t(by_name["execute"], "endTimeUnixNano") <= t(gateway, "endTimeUnixNano"));
    s.stop().await;
}
