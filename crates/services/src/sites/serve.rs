//! Answering one request from a site version (see the parent module for the rules).

use std::io::SeekFrom;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use updraft_dispatch::{Body, BodyError};
use updraft_store::sites::{SiteFile, SiteVersion};

use super::SiteService;

/// Largest file compressed on the fly (larger ones go uncompressed unless a `.gz`/`.br`
/// sibling was deployed).
const GZIP_MAX: u64 = 8 << 20;
/// Smallest file worth compressing.
const GZIP_MIN: u64 = 1024;

/// What the gateway passes on: the request without its body.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its method.
    pub method: Method,
    /// Its URI.
    pub uri: http::Uri,
    /// Its headers.
    pub headers: HeaderMap,
}

/// What was found for a path.
enum Found<'a> {
    File(&'a str, &'a SiteFile, StatusCode),
    Redirect(String, StatusCode),
    Missing,
}

impl SiteService {
    /// The answer of `project`'s site to `req`, or `None` if the project has no site.
    pub fn serve(
        self: &Arc<Self>,
        project: &str,
        req: Request,
    ) -> Option<impl Future<Output = Response<Body>> + Send + 'static> {
        let site = self.live(project)?;
        let this = self.clone();
        Some(async move { this.answer(&site, &req).await })
    }

    async fn answer(&self, site: &SiteVersion, req: &Request) -> Response<Body> {
        if req.method != Method::GET && req.method != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let Some(path) = decode(req.uri.path()) else {
            return text(StatusCode::BAD_REQUEST, "bad path\n");
        };
        match find(site, &path) {
            Found::Redirect(to, status) => {
                let to = match req.uri.query() {
                    Some(q) if !to.contains('?') => format!("{to}?{q}"),
                    _ => to,
                };
                let mut r = text(status, "");
                if let Ok(v) = HeaderValue::from_str(&to) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r
            }
            Found::File(name, file, status) => {
                let mut r = self.file(site, name, file, status, req).await;
                extra_headers(site, &path, r.headers_mut());
                r
            }
            Found::Missing => text(StatusCode::NOT_FOUND, "Not Found\n"),
        }
    }

    /// Answers with `file` (named `name` in the site).
    async fn file(
        &self,
        site: &SiteVersion,
        name: &str,
        file: &SiteFile,
        status: StatusCode,
        req: &Request,
    ) -> Response<Body> {
        let kind = updraft_api::media_type(name);
        let compressible = is_compressible(kind);
        let accepts = |enc: &str| accepts(&req.headers, enc);
        // A deployed sibling first (`app.js.br`, `app.js.gz`), else gzip on the fly.
        let sibling = [("br", ".br"), ("gzip", ".gz")]
            .into_iter()
            .filter(|(enc, _)| accepts(enc))
            .find_map(|(enc, ext)| {
                site.files
                    .get(&format!("{name}{ext}"))
                    .map(|f| (enc, f.clone()))
            });
        let ranged = req.headers.contains_key(header::RANGE) && status == StatusCode::OK;
        let on_the_fly = sibling.is_none()
            && compressible
            && !ranged
            && accepts("gzip")
            && (GZIP_MIN..=GZIP_MAX).contains(&file.size);
        let (encoding, body_file, etag) = match (&sibling, on_the_fly) {
            (Some((enc, f)), _) => (Some(*enc), f.clone(), etag_of(&f.digest, "")),
            (None, true) => (Some("gzip"), file.clone(), etag_of(&file.digest, "-gzip")),
            (None, false) => (None, file.clone(), etag_of(&file.digest, "")),
        };
        let mut h = HeaderMap::new();
        set(&mut h, header::CONTENT_TYPE, kind);
        set(&mut h, header::ETAG, &etag);
        set(&mut h, header::CACHE_CONTROL, cache_control(name, kind));
        set(&mut h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        if compressible || sibling.is_some() {
            set(&mut h, header::VARY, "Accept-Encoding");
        }
        if let Some(enc) = encoding {
            set(&mut h, header::CONTENT_ENCODING, enc);
        } else {
            set(&mut h, header::ACCEPT_RANGES, "bytes");
        }
        if status == StatusCode::OK && not_modified(&req.headers, &etag) {
            return respond(StatusCode::NOT_MODIFIED, h, empty());
        }
        let head = req.method == Method::HEAD;
        let path = match self.files.path(&body_file.digest) {
            Ok(p) => p,
            Err(e) => return failed(&e),
        };
        if on_the_fly {
            let key = format!("{}.gz", body_file.digest);
            let bytes = match self.cache.get(&key) {
                Some(b) => b,
                None => match tokio::fs::read(&path).await {
                    Ok(b) => self.cache.put(key, Bytes::from(gzip(&b))),
                    Err(e) => return failed(&e),
                },
            };
            set(&mut h, header::CONTENT_LENGTH, &bytes.len().to_string());
            let body = if head { empty() } else { full(bytes) };
            return respond(status, h, body);
        }
        let size = body_file.size;
        let range = match (encoding, ranged) {
            (None, true) if if_range_holds(&req.headers, &etag) => {
                match parse_range(&req.headers, size) {
                    Some(Ok(r)) => Some(r),
                    Some(Err(())) => {
                        set(&mut h, header::CONTENT_RANGE, &format!("bytes */{size}"));
                        return respond(StatusCode::RANGE_NOT_SATISFIABLE, h, empty());
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let (status, start, len) = match range {
            Some((a, b)) => {
                set(
                    &mut h,
                    header::CONTENT_RANGE,
                    &format!("bytes {a}-{b}/{size}"),
                );
                (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
            }
            None => (status, 0, size),
        };
        set(&mut h, header::CONTENT_LENGTH, &len.to_string());
        if head {
            return respond(status, h, empty());
        }
        // Small files from memory (they never change under their digest), the rest streamed.
        if size <= self.cache.max_file() {
            let bytes = match self.cache.get(&body_file.digest) {
                Some(b) => b,
                None => match tokio::fs::read(&path).await {
                    Ok(b) => self.cache.put(body_file.digest.clone(), Bytes::from(b)),
                    Err(e) => return failed(&e),
                },
            };
            let (a, b) = (
                usize::try_from(start).unwrap_or(0),
                usize::try_from(start + len).unwrap_or(0),
            );
            return match bytes.get(a..b) {
                Some(_) => respond(status, h, full(bytes.slice(a..b))),
                None => failed(&"the file is shorter than its record"),
            };
        }
        match stream_file(&path, start, len).await {
            Ok(body) => respond(status, h, body),
            Err(e) => failed(&e),
        }
    }
}

/// Finds what `path` names: redirects, then a file (or a directory's `index.html`, or
/// `<path>.html`), then rewrites, then the SPA fallback, then the 404 page.
fn find<'a>(site: &'a SiteVersion, path: &str) -> Found<'a> {
    let cfg = &site.config;
    for r in &cfg.redirects {
        if let Some(to) = r.apply(path) {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            return Found::Redirect(to, status);
        }
    }
    let lookup = |p: &str| -> Option<Found<'a>> {
        let ok = StatusCode::OK;
        if let Some((name, f)) = site.files.get_key_value(p) {
            return Some(Found::File(name, f, ok));
        }
        if p.ends_with('/') {
            let index = format!("{p}index.html");
            return site
                .files
                .get_key_value(&index)
                .map(|(n, f)| Found::File(n, f, ok));
        }
        if site.files.contains_key(&format!("{p}/index.html")) {
            return Some(Found::Redirect(
                format!("{p}/"),
                StatusCode::MOVED_PERMANENTLY,
            ));
        }
        site.files
            .get_key_value(&format!("{p}.html"))
            .map(|(n, f)| Found::File(n, f, ok))
    };
    if let Some(found) = lookup(path) {
        return found;
    }
    for r in &cfg.rewrites {
        if let Some(to) = r.apply(path)
            && let Some(found @ Found::File(..)) = lookup(&to)
        {
            return found;
        }
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    if cfg.spa
        && !last.contains('.')
        && let Some((n, f)) = site.files.get_key_value("/index.html")
    {
        return Found::File(n, f, StatusCode::OK);
    }
    let page = cfg
        .not_found
        .as_deref()
        .map_or_else(|| "/404.html".to_owned(), |p| format!("/{p}"));
    match site.files.get_key_value(&page) {
        Some((n, f)) => Found::File(n, f, StatusCode::NOT_FOUND),
        None => Found::Missing,
    }
}

/// The percent-decoded path, or `None` if it is not UTF-8 or climbs (`..`, `\`, NUL).
fn decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out).ok()?;
    let climbs = path
        .split('/')
        .any(|s| s == ".." || s == "." || s.contains('\\') || s.contains('\0'));
    (!climbs && path.starts_with('/')).then_some(path)
}

/// `[[site.headers]]` whose pattern matches `path`.
fn extra_headers(site: &SiteVersion, path: &str, h: &mut HeaderMap) {
    for rule in site.config.headers.iter().filter(|r| r.matches(path)) {
        for (k, v) in &rule.values {
            if let (Ok(k), Ok(v)) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                h.insert(k, v);
            }
        }
    }
}

fn etag_of(digest: &str, suffix: &str) -> String {
    format!("\"{}{suffix}\"", digest.get(..32).unwrap_or(digest))
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn not_modified(h: &HeaderMap, etag: &str) -> bool {
    h.get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// Whether a range may be served: no `If-Range`, or one naming the current ETag.
fn if_range_holds(h: &HeaderMap, etag: &str) -> bool {
    h.get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag)
}

/// One range of `Range: bytes=...` as inclusive offsets; `Some(Err)` if unsatisfiable, `None`
/// if absent, malformed or several (the whole file is served then, as RFC 9110 allows).
fn parse_range(h: &HeaderMap, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = h
        .get(header::RANGE)?
        .to_str()
        .ok()?
        .strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.trim().split_once('-')?;
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(a), Some(b)) if a <= b => (a, b.min(size.saturating_sub(1))),
        (Some(a), None) if b.is_empty() => (a, size.saturating_sub(1)),
        (None, Some(n)) if a.is_empty() && n > 0 => {
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        _ => return None,
    };
    Some(if size == 0 || range.0 >= size {
        Err(())
    } else {
        Ok(range)
    })
}

/// Whether `Accept-Encoding` allows `enc` (`q=0` refuses it).
fn accepts(h: &HeaderMap, enc: &str) -> bool {
    h.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case(enc) && !refused
        })
}

fn is_compressible(kind: &str) -> bool {
    kind.starts_with("text/")
        || kind.starts_with("application/json")
        || kind.starts_with("application/manifest")
        || kind == "application/xml"
        || kind == "application/wasm"
        || kind == "image/svg+xml"
}

/// HTML revalidates every time; a fingerprinted asset (`app.3f9a1c2b.js`,
/// `index-BxK3k9aZ.js`: a run of 8 or more letters and digits with at least one digit,
/// after `.` or `-`, before the extension) never changes under its name; the rest revalidate.
pub(crate) fn cache_control(name: &str, kind: &str) -> &'static str {
    if kind.starts_with("text/html") {
        return "no-cache";
    }
    let file = name.rsplit('/').next().unwrap_or_default();
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let fingerprint = stem
        .rsplit(['.', '-'])
        .next()
        .filter(|_| stem.contains(['.', '-']))
        .is_some_and(|t| {
            t.len() >= 8
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && t.bytes().any(|b| b.is_ascii_digit())
        });
    if fingerprint {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=0, must-revalidate"
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

/// `len` bytes of the file at `path` from `start`, read as the body is sent.
async fn stream_file(path: &std::path::Path, start: u64, len: u64) -> Result<Body, std::io::Error> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(SeekFrom::Start(start)).await?;
    let stream = crate::chunks::ReadStream::new(file.take(len)).map(|chunk| {
        chunk
            .map(hyper::body::Frame::data)
            .map_err(BodyError::failed)
    });
    Ok(http_body_util::StreamBody::new(stream).boxed_unsync())
}

fn set(h: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn empty() -> Body {
    full(Vec::new())
}

fn respond(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

fn text(status: StatusCode, msg: &'static str) -> Response<Body> {
    let mut h = HeaderMap::new();
    set(&mut h, header::CONTENT_TYPE, "text/plain; charset=utf-8");
    respond(status, h, full(msg.as_bytes().to_vec()))
}

fn failed(e: &dyn std::fmt::Display) -> Response<Body> {
    tracing::error!(error = %e, "reading a site file failed");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the file could not be read\n",
    )
}

#[cfg(test)]
pub(crate) fn decode_for_tests(raw: &str) -> Option<String> {
    decode(raw)
}

#[cfg(test)]
pub(crate) fn range_for_tests(range: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let mut h = HeaderMap::new();
    set(&mut h, header::RANGE, range);
    parse_range(&h, size)
}
