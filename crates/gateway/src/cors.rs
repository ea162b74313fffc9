//! CORS for a project's routes and its platform APIs: browsers may call them from the origins
//! the project lists (`updraft project cors`). A preflight from such an origin is answered here
//! (the function never sees it); other answers get `Access-Control-Allow-Origin` for it unless
//! the function set its own. Requests from other origins pass through untouched (and the
//! browser blocks what it must).

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use updraft_dispatch::Body;

/// Methods a preflight allows.
const METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// Request headers a preflight allows when it asks for none in particular.
const HEADERS: &str = "authorization, content-type, apikey, x-client-info";
/// Response headers scripts may read.
const EXPOSE: &str = "x-updraft-request-id, x-updraft-version, x-updraft-function, retry-after";
/// How long browsers may cache a preflight's answer.
const MAX_AGE: &str = "600";

/// Whether `req` is a CORS preflight.
pub(crate) fn is_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight from `origin` (an allowed one).
pub(crate) fn preflight(origin: &HeaderValue, headers: &HeaderMap) -> Response<Body> {
    let mut resp = Response::new(updraft_dispatch::full(bytes::Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(HEADERS));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static(
            "origin, access-control-request-method, access-control-request-headers",
        ),
    );
    resp
}

/// Lets `origin` read an answer (unless the function answered with its own CORS headers).
pub(crate) fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    if headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        return;
    }
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE),
    );
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}
