//! A small client for the control API: base URL, admin token, and errors decoded from the API's
//! JSON error body.

use anyhow::{Context, anyhow};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use updraft_api::ErrorBody;

use crate::Remote;

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    project: Option<String>,
}

impl Client {
    /// Connects using `--server`/`--token`, falling back to the local data dir's token file.
    pub(crate) fn new(remote: &Remote) -> anyhow::Result<Self> {
        let token = match &remote.token {
            Some(t) => t.clone(),
            None => {
                let path = remote.data_dir.join("admin-token");
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "no admin token: pass --token or UPDRAFT_TOKEN, or run where {} exists",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_owned()
            }
        };
        let mut client = Self::with_token(&remote.server, token);
        client.project = remote.project.clone();
        Ok(client)
    }

    pub(crate) fn with_token(base: &str, token: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token,
            project: None,
        }
    }

    /// A request to the control API, acting in `--project` if one was given.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        match &self.project {
            Some(p) => req.header(updraft_api::PROJECT_HEADER, p),
            None => req,
        }
    }

    /// Sends, and turns a non-2xx answer into an error carrying the API's message.
    pub(crate) async fn send(&self, req: RequestBuilder) -> anyhow::Result<Response> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the Updraft control API at {}", self.base))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(api_error(resp).await)
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self.send(self.request(Method::GET, path)).await?;
        resp.json().await.context("decoding the server's answer")
    }
}

/// The error of a failed API response: its JSON message, or the status and raw body.
pub(crate) async fn api_error(resp: Response) -> anyhow::Error {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => anyhow!("{} ({})", body.error.message, status),
        Err(_) if text.is_empty() => anyhow!("the server answered {status}"),
        Err(_) => anyhow!("the server answered {status}: {text}"),
    }
}

/// A file as a request body read in 256 KiB chunks, advancing `bar` as each is sent (so the
/// bar follows the upload, not the read).
pub(crate) fn file_body(file: tokio::fs::File, bar: indicatif::ProgressBar) -> reqwest::Body {
    use tokio::io::AsyncReadExt as _;
    let stream = futures::stream::unfold((file, bar), |(mut f, bar)| async move {
        let mut buf = vec![0u8; 256 << 10];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                bar.inc(n as u64);
                Some((Ok::<_, std::io::Error>(buf), (f, bar)))
            }
            Err(e) => Some((Err(e), (f, bar))),
        }
    });
    reqwest::Body::wrap_stream(stream)
}
