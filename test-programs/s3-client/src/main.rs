//! `s3_client`: reaches object storage with the credentials the platform gave it, the two ways a
//! function can: S3 requests signed with SigV4 by `aws-sigv4` (the AWS SDKs' signer) and plain
//! HTTP with the bearer credential.
//!
//! The first segment of the path is the route's (`/<route>/env`, `/<route>/s3/...`) and is
//! ignored, so one guest can serve several functions' routes.
//!
//! - `GET /env`: the platform variables it got, as JSON (`AWS_ACCESS_KEY_ID`, ...).
//! - `METHOD /s3/<path>?<query>`: the same request, signed, to `$AWS_ENDPOINT_URL_S3/<path>`
//!   (with `x-virtual: <bucket>`, to `http://<bucket>.s3.updraft.internal/<path>` instead);
//!   answers the S3 status and body.
//! - `METHOD /plain/<path>?<query>`: the same request to `$UPDRAFT_STORAGE_URL/<path>` with
//!   `Authorization: Bearer $UPDRAFT_STORAGE_TOKEN`; answers its status and body.
//! - A bucket event (`ce-type: dev.updraft.bucket.*`, data an S3 event record): for an
//!   `ObjectCreated` record, reads the object with the plain API and writes it with S3 to bucket
//!   `$COPY_TO` (default: the same bucket) under `$COPY_PREFIX` + its key. Answers 200, or 500
//!   naming the step that failed (the delivery is retried).
//! - Failures to send: 502 with the error. Without S3 credentials it signs with a made-up key for
//!   `http://s3.updraft.internal`, so a test sees an ungranted function refused.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use wstd::http::{Body, Client, Method, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let method = request.method().clone();
    let full = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let path_and_query = match full.get(1..).and_then(|p| p.find('/')) {
        Some(i) => full[i + 1..].to_owned(),
        None => "/".to_owned(),
    };
    let event = header("ce-type").filter(|t| t.starts_with("dev.updraft.bucket."));
    let virtual_bucket = header("x-virtual");
    let content_type = header("content-type");
    let mut body = request.into_body();
    let data = body.contents().await?.to_vec();
    if event.is_some() {
        return Ok(match on_event(&data).await {
            Ok(done) => reply(StatusCode::OK, done),
            Err(why) => reply(StatusCode::INTERNAL_SERVER_ERROR, why),
        });
    }
    if path_and_query == "/env" {
        let vars = [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL_S3",
            "UPDRAFT_STORAGE_URL",
            "UPDRAFT_STORAGE_TOKEN",
        ];
        let env: serde_json::Map<String, serde_json::Value> = vars
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v.into())))
            .collect();
        return Ok(reply(
            StatusCode::OK,
            serde_json::Value::Object(env).to_string(),
        ));
    }
    let sent = if let Some(rest) = path_and_query.strip_prefix("/s3") {
        s3(method, rest, virtual_bucket.as_deref(), data, content_type).await
    } else if let Some(rest) = path_and_query.strip_prefix("/plain") {
        plain(method, rest, data, content_type).await
    } else {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            "use /env, /s3/... or /plain/...\n".into(),
        ));
    };
    Ok(match sent {
        Ok((status, text)) => reply(status, text),
        Err(e) => reply(StatusCode::BAD_GATEWAY, format!("error: {e}\n")),
    })
}

/// Sends a SigV4-signed S3 request for `path` (`/bucket/key?query`, or `/key?query` with a
/// virtual-host `bucket`).
async fn s3(
    method: Method,
    path: &str,
    bucket: Option<&str>,
    data: Vec<u8>,
    content_type: Option<String>,
) -> Result<(StatusCode, String), String> {
    // Without a grant: the platform's endpoint and a made-up key, so a test sees the request
    // refused on its way out.
    let env = |k: &str| -> Result<String, String> {
        Ok(std::env::var(k).unwrap_or_else(|_| match k {
            "AWS_ENDPOINT_URL_S3" => "http://s3.updraft.internal".to_owned(),
            "AWS_REGION" => "us-east-1".to_owned(),
            _ => "AKNONE".to_owned(),
        }))
    };
    let endpoint = env("AWS_ENDPOINT_URL_S3")?;
    let url = match bucket {
        Some(b) => format!("{}{path}", endpoint.replacen("://", &format!("://{b}."), 1)),
        None => format!("{endpoint}{path}"),
    };
    let identity = Credentials::new(
        env("AWS_ACCESS_KEY_ID")?,
        env("AWS_SECRET_ACCESS_KEY")?,
        None,
        None,
        "updraft",
    )
    .into();
    let region = env("AWS_REGION")?;
    // As the S3 clients sign: the payload's SHA-256 in `x-amz-content-sha256`.
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let mut headers = vec![("host".to_owned(), host)];
    if let Some(ct) = &content_type {
        headers.push(("content-type".to_owned(), ct.clone()));
    }
    let signable = SignableRequest::new(
        method.as_str(),
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&data),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut req = Request::builder().method(method).uri(&url);
    for (k, v) in &headers {
        if k != "host" {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    for (k, v) in instructions.headers() {
        req = req.header(k, v);
    }
    req = req.header("content-length", data.len());
    send(req.body(Body::from(data)).map_err(|e| e.to_string())?).await
}

/// Sends `path` to the plain object API with the bearer credential.
async fn plain(
    method: Method,
    path: &str,
    data: Vec<u8>,
    content_type: Option<String>,
) -> Result<(StatusCode, String), String> {
    let base = std::env::var("UPDRAFT_STORAGE_URL").map_err(|_| "no UPDRAFT_STORAGE_URL")?;
    let token = std::env::var("UPDRAFT_STORAGE_TOKEN").unwrap_or_default();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-length", data.len());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    send(req.body(Body::from(data)).map_err(|e| e.to_string())?).await
}

async fn send(req: Request<Body>) -> Result<(StatusCode, String), String> {
    let resp = Client::new()
        .send(req)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status();
    let mut body = resp.into_body();
    let text = body.contents().await.map_err(|e| format!("{e:?}"))?;
    Ok((status, String::from_utf8_lossy(text).into_owned()))
}

/// Copies a created object (see the module docs).
async fn on_event(data: &[u8]) -> Result<String, String> {
    let event: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("event: {e}"))?;
    let record = &event["Records"][0];
    let name = record["eventName"].as_str().unwrap_or_default();
    if !name.starts_with("ObjectCreated") {
        return Ok(format!("ignored {name}\n"));
    }
    let bucket = record["s3"]["bucket"]["name"].as_str().unwrap_or_default();
    // Keys are form-encoded in S3 records; the tests use keys that need no decoding.
    let key = record["s3"]["object"]["key"].as_str().unwrap_or_default();
    let (status, bytes) = plain(
        Method::GET,
        &format!("/buckets/{bucket}/objects/{key}"),
        Vec::new(),
        None,
    )
    .await?;
    if !status.is_success() {
        return Err(format!("reading {bucket}/{key}: {status} {bytes}"));
    }
    let to = std::env::var("COPY_TO").unwrap_or_else(|_| bucket.to_owned());
    let prefix = std::env::var("COPY_PREFIX").unwrap_or_default();
    let (status, text) = s3(
        Method::PUT,
        &format!("/{to}/{prefix}{key}"),
        None,
        bytes.into_bytes(),
        Some("text/plain".into()),
    )
    .await?;
    if !status.is_success() {
        return Err(format!("writing {to}/{prefix}{key}: {status} {text}"));
    }
    Ok(format!("copied {bucket}/{key} to {to}/{prefix}{key}\n"))
}

fn reply(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}
