//! `db_proxy`: calls the document API with the credential the platform gave it, the way any
//! function would with a plain HTTP client: `METHOD /<path>?<query>` becomes the same request
//! to `$UPDRAFT_DB_URL/<path>?<query>` with `Authorization: Bearer $UPDRAFT_DB_TOKEN`, the
//! request's body and its `content-type`, `if-match` and `if-none-match` headers.
//!
//! - The call was answered: that status and body (and `etag`).
//! - The call failed (denied by policy, say): 502, body `error: <error>`.
//! - `UPDRAFT_DB_URL` unset (no grant): 500, body `no UPDRAFT_DB_URL`.
//! - With `x-url: <url>` the call goes there instead, and with `x-token: <token>` that token is
//!   sent instead (`x-token: none`: no `Authorization` header), for tests of the refusals.
//! - With `x-echo-token: 1` it calls nothing and answers its `UPDRAFT_DB_TOKEN` (so a test can
//!   check the credential stops working once the function is gone).

use wstd::http::{Body, Client, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if header("x-echo-token").is_some() {
        let token = std::env::var("UPDRAFT_DB_TOKEN").unwrap_or_default();
        return Ok(reply(StatusCode::OK, token, None));
    }
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let url = match (header("x-url"), std::env::var("UPDRAFT_DB_URL")) {
        (Some(url), _) => url,
        (None, Ok(base)) => format!("{base}{path_and_query}"),
        (None, Err(_)) => return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, "no UPDRAFT_DB_URL\n".into(), None)),
    };
    let token = match header("x-token") {
        Some(t) if t == "none" => None,
        Some(t) => Some(t),
        None => std::env::var("UPDRAFT_DB_TOKEN").ok(),
    };
    let mut forward = Request::builder().method(request.method().clone()).uri(url);
    if let Some(t) = token {
        forward = forward.header("authorization", format!("Bearer {t}"));
    }
    for name in ["content-type", "if-match", "if-none-match"] {
        if let Some(v) = header(name) {
            forward = forward.header(name, v);
        }
    }
    let mut body = request.into_body();
    let data = body.contents().await?.to_vec();
    forward = forward.header("content-length", data.len());
    let outbound = match forward.body(Body::from(data)) {
        Ok(req) => req,
        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, format!("bad request: {e}\n"), None)),
    };
    match Client::new().send(outbound).await {
        Ok(resp) => {
            let status = resp.status();
            let etag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = resp.into_body();
            let text = body.str_contents().await?.to_owned();
            Ok(reply(status, text, etag))
        }
        Err(e) => Ok(reply(StatusCode::BAD_GATEWAY, format!("error: {e:?}\n"), None)),
    }
}

fn reply(status: StatusCode, body: String, etag: Option<String>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Some(etag) = etag.and_then(|e| wstd::http::HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert("etag", etag);
    }
    response
}
