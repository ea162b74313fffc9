//! `event_sink`: forwards every request it gets to the test's sink server, so tests can count
//! and inspect event deliveries without any storage in the guest.
//!
//! POSTs to the URL in env `SINK_URL` (path kept: `SINK_URL` + the request's path) with the
//! request's `ce-*`, `content-type`, `x-updraft-attempt` and `x-updraft-request-id` headers and
//! its body, then answers with the sink's status and body. A sink that answers 500 makes the
//! delivery fail (retries); one that cannot be reached gives 502.

use wstd::http::{Body, Client, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let Ok(sink) = std::env::var("SINK_URL") else {
        return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, "SINK_URL is not set\n".into()));
    };
    let mut forward = Request::post(format!("{sink}{}", request.uri().path()));
    for (k, v) in request.headers() {
        let k = k.as_str();
        if k.starts_with("ce-")
            || k == "content-type"
            || k == "x-updraft-attempt"
            || k == "x-updraft-request-id"
        {
            forward = forward.header(k, v);
        }
    }
    let mut body = request.into_body();
    let data = body.contents().await?.to_vec();
    // A known length, so the sink gets a plain (not chunked) body.
    forward = forward.header("content-length", data.len());
    let outbound = match forward.body(Body::from(data)) {
        Ok(req) => req,
        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, format!("bad forward: {e}\n"))),
    };
    match Client::new().send(outbound).await {
        Ok(resp) => {
            let status = resp.status();
            let mut body = resp.into_body();
            let text = body.str_contents().await?.to_owned();
            Ok(reply(status, text))
        }
        Err(e) => Ok(reply(StatusCode::BAD_GATEWAY, format!("sink unreachable: {e:?}\n"))),
    }
}

fn reply(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}
