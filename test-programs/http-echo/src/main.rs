//! `http_echo`: answers every request with a plain-text description of what it received, so
//! tests can check routing, route parameters, environment variables, request bodies and logs.
//!
//! Response body, one `key: value` per line:
//! `method`, `path` (path and query as the guest saw it), `version` (the `VERSION` env var, or
//! `-`), `greeting` (the `GREETING` env var, or `-`), `authorization` (the header, or `-`), every
//! `x-updraft-*` request header, then `body: <request body>`.
//!
//! Every request prints `echo stdout <path>` to stdout and `echo stderr <path>` to stderr, so
//! log capture can be tested. A request with `?status=N` answers with status N; a request with
//! `?panic` panics after printing (the invocation must fail with a 500, the host must not);
//! `?sleep=<ms>` waits that long after printing and before answering.
//!
//! With the `FAIL_PERCENT` env var set to P, about P% of requests answer 500 (`echo failed on
//! purpose`): the ones whose random request id starts with a byte below P% of 256, so the
//! choice is independent of everything the test controls.
//!
//! `instance-requests: N` in the body counts the requests this instance has served, this one
//! included: always 1 with a fresh instance per request, 1, 2, 3... on a reused one. With
//! `?fail-if-reused` the guest panics when it is not its instance's first request (a guest that
//! breaks when reused, like some JavaScript runtimes).

use std::sync::atomic::{AtomicU64, Ordering};

use wstd::http::{Body, Request, Response, StatusCode};

static SERVED: AtomicU64 = AtomicU64::new(0);

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let (parts, mut body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    println!("echo stdout {path}");
    eprintln!("echo stderr {path}");

    let sleep_ms = parts
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("sleep=")))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = sleep_ms {
        wstd::task::sleep(wstd::time::Duration::from_millis(ms)).await;
    }
    if parts.uri.query().is_some_and(|q| q.split('&').any(|kv| kv == "panic")) {
        panic!("echo was asked to panic");
    }
    if served > 1
        && parts
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "fail-if-reused"))
    {
        panic!("echo cannot serve a second request on one instance");
    }

    let fail_percent = std::env::var("FAIL_PERCENT")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    if let Some(p) = fail_percent {
        let first_byte = parts
            .headers
            .get("x-updraft-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|id| u32::from_str_radix(id.get(..2)?, 16).ok());
        if first_byte.is_some_and(|b| b * 100 < p * 256) {
            let mut response = Response::new(Body::from("echo failed on purpose\n"));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return Ok(response);
        }
    }

    let mut out = String::new();
    out.push_str(&format!("method: {}\n", parts.method));
    out.push_str(&format!("path: {path}\n"));
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "-".to_owned());
    out.push_str(&format!("version: {}\n", env("VERSION")));
    out.push_str(&format!("greeting: {}\n", env("GREETING")));
    out.push_str(&format!("instance-requests: {served}\n"));
    let authorization = parts
        .headers
        .get("authorization")
        .map_or("-", |v| v.to_str().unwrap_or("<binary>"));
    out.push_str(&format!("authorization: {authorization}\n"));
    let mut updraft: Vec<_> = parts
        .headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-updraft-"))
        .map(|(k, v)| format!("{}: {}\n", k, v.to_str().unwrap_or("<binary>")))
        .collect();
    updraft.sort();
    out.extend(updraft);
    let body = body.str_contents().await?.to_owned();
    out.push_str(&format!("body: {body}\n"));

    let status = parts
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("status=")))
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::from(out));
    *response.status_mut() = status;
    Ok(response)
}
