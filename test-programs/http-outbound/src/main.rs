//! `http_outbound`: makes one outbound HTTP GET to the URL in the `x-target` request header and
//! reports what happened, so tests can check the `allowed_outbound_hosts` policy.
//!
//! - The outbound call succeeded: 200, body `upstream <status>: <upstream body>`.
//! - The outbound call failed (for example denied by policy): 502, body `error: <error>`.
//! - No `x-target` header: 400.
//!
//! With `x-count: N`, makes N GETs to the target at once and answers 200 with
//! `ok <succeeded> failed <failed>` and every error, `; `-separated. With `x-header-bytes: N`, the
//! outbound request carries an `x-big` header of N bytes.

use wstd::http::{Body, Client, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let Some(target) = request
        .headers()
        .get("x-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return Ok(reply(StatusCode::BAD_REQUEST, "missing x-target header\n".into()));
    };
    let count = request
        .headers()
        .get("x-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = count {
        let client = Client::new();
        let calls = (0..n).map(|_| {
            let client = &client;
            let target = target.clone();
            async move {
                let req = Request::get(target.as_str())
                    .body(Body::empty())
                    .map_err(|e| format!("{e}"))?;
                let resp = client.send(req).await.map_err(|e| format!("{e:?}"))?;
                let mut body = resp.into_body();
                body.str_contents().await.map_err(|e| format!("{e:?}"))?;
                Ok::<(), String>(())
            }
        });
        let results = join_all(calls.collect()).await;
        let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        return Ok(reply(
            StatusCode::OK,
            format!(
                "ok {} failed {}{}\n",
                n - failed.len(),
                failed.len(),
                if failed.is_empty() {
                    String::new()
                } else {
                    let all: Vec<&str> = failed.iter().map(|e| e.as_str()).collect();
                    format!(": {}", all.join("; "))
                }
            ),
        ));
    }
    let big = request
        .headers()
        .get("x-header-bytes")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut builder = Request::get(target.as_str());
    if let Some(n) = big {
        builder = builder.header("x-big", "b".repeat(n));
    }
    let outbound = match builder.body(Body::empty()) {
        Ok(req) => req,
        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, format!("bad target: {e}\n"))),
    };
    match Client::new().send(outbound).await {
        Ok(resp) => {
            let status = resp.status();
            let mut body = resp.into_body();
            let text = body.str_contents().await?.to_owned();
            Ok(reply(StatusCode::OK, format!("upstream {}: {text}", status.as_u16())))
        }
        Err(e) => {
            eprintln!("outbound request to {target} failed: {e:?}");
            Ok(reply(StatusCode::BAD_GATEWAY, format!("error: {e:?}\n")))
        }
    }
}

fn reply(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

/// Runs every future to completion, concurrently on this task.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::pin::Pin;
    use std::task::Poll;
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    out.into_iter().flatten().collect()
}
