//! A small HTTP(S) client for talking to identity providers: one request per connection,
//! HTTP/1.1, TLS through rustls (ring) with the Web PKI's roots, answers up to 1 MiB, 15 s
//! per request. (The product's other HTTP clients are for plain HTTP on loopback; this one
//! alone needs TLS, so it is built here rather than by turning TLS on for all of them.)

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

/// Largest answer read.
const MAX_ANSWER: usize = 1 << 20;
/// Longest a request may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(15);

static TLS: LazyLock<Option<TlsConnector>> = LazyLock::new(|| {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(TlsConnector::from(Arc::new(config)))
});

/// An answer: its status and body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// `GET url`.
pub(crate) async fn get(url: &str) -> Result<Answer, String> {
    send(Method::GET, url, None, None).await
}

/// `GET url` with `Authorization: Bearer <token>`.
pub(crate) async fn get_bearer(url: &str, token: &str) -> Result<Answer, String> {
    send(Method::GET, url, None, Some(token)).await
}

/// `POST url` with a form body.
pub(crate) async fn post_form(url: &str, form: String) -> Result<Answer, String> {
    send(Method::POST, url, Some(form), None).await
}

async fn send(
    method: Method,
    url: &str,
    form: Option<String>,
    bearer: Option<&str>,
) -> Result<Answer, String> {
    tokio::time::timeout(TIMEOUT, exchange(method, url, form, bearer))
        .await
        .map_err(|_| format!("{url}: no answer within {TIMEOUT:?}"))?
}

async fn exchange(
    method: Method,
    url: &str,
    form: Option<String>,
    bearer: Option<&str>,
) -> Result<Answer, String> {
    let uri: Uri = url.parse().map_err(|e| format!("`{url}`: {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("`{url}` is not an http(s) URL")),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("`{url}` has no host"))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("{host}:{port}: {e}"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let authority = uri
        .authority()
        .map_or(host.clone(), |a| a.as_str().to_owned());
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, "updraft");
    if let Some(t) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if form.is_some() {
        req = req.header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    }
    let req = req
        .body(Full::new(Bytes::from(form.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    if https {
        let tls = TLS.as_ref().ok_or("TLS could not be set up")?;
        let name = ServerName::try_from(host.clone()).map_err(|e| format!("{host}: {e}"))?;
        let stream = tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{host}: TLS: {e}"))?;
        roundtrip(TokioIo::new(stream), req).await
    } else {
        roundtrip(TokioIo::new(tcp), req).await
    }
}

async fn roundtrip<T>(io: T, req: Request<Full<Bytes>>) -> Result<Answer, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    Ok(Answer { status, body })
}
