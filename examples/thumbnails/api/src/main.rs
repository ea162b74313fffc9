//! `api`: what the page calls.
//!
//! - `POST /api/uploads?name=<file name>`: a presigned PUT URL (signed with `aws-sigv4`, the AWS
//!   SDKs' signer, with the S3 credentials the platform gives this function) for a new key in
//!   `uploads`, valid 5 minutes: `{"key": "...", "url": "..."}`. The browser PUTs the file
//!   there itself; the bucket's CORS rules (`[[buckets]] cors_origins`) let it.
//! - `GET /api/thumbs`: the thumbnails made so far, newest last: `[{"key", "size"}]`.
//! - `GET /api/thumbs/<key>`: one thumbnail's bytes.
//!
//! `S3_PUBLIC_URL` is where browsers reach the S3 listener (`updraft up` serves it at
//! `http://127.0.0.1:3002`): the URL is signed for that host.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use wstd::http::{Body, Client, Method, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let answer = match (request.method().clone(), path.as_str()) {
        (Method::POST, "/api/uploads") => upload_url(&query),
        (Method::GET, "/api/thumbs") => list().await,
        (Method::GET, p) if p.starts_with("/api/thumbs/") => {
            thumb(&p["/api/thumbs/".len()..]).await
        }
        _ => Err((StatusCode::NOT_FOUND, "no such API\n".to_owned())),
    };
    Ok(match answer {
        Ok(r) => r,
        Err((status, msg)) => text(status, msg),
    })
}

type Answer = Result<Response<Body>, (StatusCode, String)>;

fn env(k: &str) -> Result<String, (StatusCode, String)> {
    std::env::var(k).map_err(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{k} is not set\n"),
        )
    })
}

/// A presigned PUT URL for a new object in `uploads`.
fn upload_url(query: &str) -> Answer {
    let name = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("name="))
        .unwrap_or("image");
    // Keys: a time stamp (so the list sorts by upload) and the name's safe characters.
    let safe: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(60)
        .collect();
    let now = SystemTime::now();
    let stamp = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let key = format!("{stamp}-{safe}");
    let url = format!(
        "{}/uploads/{key}",
        env("S3_PUBLIC_URL")?.trim_end_matches('/')
    );
    let identity = Credentials::new(
        env("AWS_ACCESS_KEY_ID")?,
        env("AWS_SECRET_ACCESS_KEY")?,
        None,
        None,
        "updraft",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(300));
    let region = env("AWS_REGION")?;
    let bad =
        |e: &dyn std::fmt::Display| (StatusCode::INTERNAL_SERVER_ERROR, format!("signing: {e}\n"));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| bad(&e))?
        .into();
    let signable = SignableRequest::new(
        "PUT",
        &url,
        std::iter::empty(),
        SignableBody::UnsignedPayload,
    )
    .map_err(|e| bad(&e))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| bad(&e))?.into_parts();
    let mut req = http::Request::builder()
        .method("PUT")
        .uri(&url)
        .body(())
        .map_err(|e| bad(&e))?;
    instructions.apply_to_request_http1x(&mut req);
    let body = serde_json::json!({ "key": key, "url": req.uri().to_string() });
    Ok(json(body.to_string()))
}

/// The thumbnails so far.
async fn list() -> Answer {
    let (status, bytes) = storage("/buckets/thumbs/objects?limit=1000").await?;
    if status != StatusCode::OK {
        return Err((
            StatusCode::BAD_GATEWAY,
            format!("listing thumbs: {status}\n"),
        ));
    }
    let listed: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let thumbs: Vec<serde_json::Value> = listed["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| serde_json::json!({ "key": o["key"], "size": o["size"] }))
        .collect();
    Ok(json(serde_json::Value::Array(thumbs).to_string()))
}

/// One thumbnail's bytes.
async fn thumb(key: &str) -> Answer {
    let (status, bytes) = storage(&format!("/buckets/thumbs/objects/{key}")).await?;
    if status != StatusCode::OK {
        return Err((status, format!("no thumbnail {key}\n")));
    }
    let mut r = Response::new(Body::from(bytes));
    r.headers_mut().insert(
        "content-type",
        "image/png"
            .parse()
            .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, String::new()))?,
    );
    Ok(r)
}

/// A GET of the platform's object API with the function's bearer credential.
async fn storage(path: &str) -> Result<(StatusCode, Vec<u8>), (StatusCode, String)> {
    let gateway = |e: String| (StatusCode::BAD_GATEWAY, format!("{e}\n"));
    let req = Request::builder()
        .uri(format!("{}{path}", env("UPDRAFT_STORAGE_URL")?))
        .header(
            "authorization",
            format!("Bearer {}", env("UPDRAFT_STORAGE_TOKEN")?),
        )
        .body(Body::empty())
        .map_err(|e| gateway(e.to_string()))?;
    let resp = Client::new()
        .send(req)
        .await
        .map_err(|e| gateway(format!("{e:?}")))?;
    let status = resp.status();
    let mut b = resp.into_body();
    let bytes = b
        .contents()
        .await
        .map_err(|e| gateway(format!("{e:?}")))?
        .to_vec();
    Ok((status, bytes))
}

fn json(body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        "content-type",
        wstd::http::HeaderValue::from_static("application/json"),
    );
    r
}

fn text(status: StatusCode, msg: String) -> Response<Body> {
    let mut r = Response::new(Body::from(msg));
    *r.status_mut() = status;
    r
}
