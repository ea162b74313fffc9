//! `http_outbound`: makes one outbound HTTP GET to the URL in the `x-target` request header and
//! reports what happened, so tests can check the `allowed_outbound_hosts` policy.
//!
//! - The outbound call succeeded: 200, body `upstream <status>: <upstream body>`.
//! - The outbound call failed (for example denied by policy): 502, body `error: <error>`.
//! - No `x-target` header: 400.

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
    let outbound = match Request::get(target.as_str()).body(Body::empty()) {
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
