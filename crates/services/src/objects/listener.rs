//! The S3 listener's service: `s3s`'s, plus bucket CORS (preflights answered, allowed
//! origins marked on answers: [`super::cors`]), and refused requests' bodies drained before
//! the refusal goes out ([`updraft_dispatch::held`]).

use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use updraft_dispatch::held::Held;

use super::ObjectService;

/// `s3s`'s service with bucket CORS, draining refused requests' bodies (see the module docs).
#[derive(Clone)]
pub struct S3Listener {
    pub(crate) inner: s3s::service::S3Service,
    pub(crate) svc: Arc<ObjectService>,
}

impl hyper::service::Service<http::Request<Incoming>> for S3Listener {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        let (inner, svc) = (self.inner.clone(), self.svc.clone());
        Box::pin(async move {
            let origin = header(&req, http::header::ORIGIN);
            let cors = match &origin {
                Some(_) => Some(bucket_rules(&svc, &req).await),
                None => None,
            };
            if req.method() == http::Method::OPTIONS {
                return Ok(preflight(&req, origin.as_deref(), cors.flatten()));
            }
            let method = req.method().as_str().to_owned();
            let (parts, body) = req.into_parts();
            let (held, leftover) = Held::new(body);
            let req = http::Request::from_parts(parts, s3s::Body::http_body(held));
            let mut resp = inner.call(req).await;
            if let (Some(origin), Some(Some(stored)), Ok(r)) = (&origin, &cors, &mut resp)
                && let Some(rule) = super::cors::find(Some(stored), origin, &method, &[])
            {
                mark(r.headers_mut(), &rule, origin);
            }
            if !resp.as_ref().is_ok_and(|r| r.status().is_success()) {
                leftover.drain().await;
            }
            resp
        })
    }
}

/// A request header as text.
fn header<B>(req: &http::Request<B>, name: http::header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The CORS rules (as stored) of the bucket a request names: `None` if it names no bucket or
/// one without rules.
async fn bucket_rules<B>(svc: &ObjectService, req: &http::Request<B>) -> Option<String> {
    use s3s::host::S3Host as _;
    let host = header(req, http::header::HOST).unwrap_or_default();
    let hosts = svc.hosts();
    let virtual_bucket = hosts
        .parse_host_header(&host)
        .ok()
        .and_then(|v| v.bucket().map(str::to_owned));
    let name = match virtual_bucket {
        Some(b) => b,
        None => req
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()?
            .to_owned(),
    };
    svc.store.bucket(&name).await.ok()??.cors
}

/// Answers a preflight from the bucket's rules (S3's 403 when none allows it).
fn preflight<B>(
    req: &http::Request<B>,
    origin: Option<&str>,
    rules: Option<String>,
) -> s3s::HttpResponse {
    let method = header(req, http::header::ACCESS_CONTROL_REQUEST_METHOD);
    let requested = header(req, http::header::ACCESS_CONTROL_REQUEST_HEADERS).unwrap_or_default();
    let headers: Vec<&str> = requested
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let rule = match (origin, &method, &rules) {
        (Some(o), Some(m), Some(stored)) => super::cors::find(Some(stored), o, m, &headers),
        _ => None,
    };
    let (Some(origin), Some(rule)) = (origin, rule) else {
        let why = if origin.is_none() || method.is_none() {
            "a preflight needs Origin and Access-Control-Request-Method"
        } else {
            "CORSResponse: this CORS request is not allowed by the bucket's CORS rules"
        };
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessForbidden</Code>\
             <Message>{why}</Message></Error>"
        );
        let mut r = http::Response::new(s3s::Body::from(body));
        *r.status_mut() = if origin.is_none() || method.is_none() {
            http::StatusCode::BAD_REQUEST
        } else {
            http::StatusCode::FORBIDDEN
        };
        return r;
    };
    let mut r = http::Response::new(s3s::Body::from(String::new()));
    let h = r.headers_mut();
    mark(h, &rule, origin);
    let set = |h: &mut http::HeaderMap, k: http::header::HeaderName, v: &str| {
        if let Ok(v) = http::HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    set(
        h,
        http::header::ACCESS_CONTROL_ALLOW_METHODS,
        &rule.methods(),
    );
    if !requested.is_empty() {
        set(h, http::header::ACCESS_CONTROL_ALLOW_HEADERS, &requested);
    }
    if let Some(age) = rule.max_age() {
        set(h, http::header::ACCESS_CONTROL_MAX_AGE, &age.to_string());
    }
    r
}

/// Marks an answer as allowed for `origin` by `rule`.
fn mark(h: &mut http::HeaderMap, rule: &super::cors::Rule, origin: &str) {
    let allow = rule.allow_origin(origin);
    if let Ok(v) = http::HeaderValue::from_str(allow) {
        h.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if allow != "*" {
        h.insert(
            http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            http::HeaderValue::from_static("true"),
        );
    }
    let expose = rule.expose();
    if !expose.is_empty()
        && let Ok(v) = http::HeaderValue::from_str(&expose)
    {
        h.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
    h.append(http::header::VARY, http::HeaderValue::from_static("Origin"));
}
