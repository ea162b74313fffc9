//! `GET /v1/functions/{name}/logs`: stored log lines, and with `follow=true` a Server-Sent
//! Events stream that sends the newest stored lines and then every new line as it is written.
//!
//! The stream subscribes to the log writer before it reads the stored lines (after a flush), so
//! no line falls between the two; a line seen in both is sent once (ids increase). Each event is
//! `id: <line id>` + `data: <LogLine JSON>`; a client that reconnects with `Last-Event-ID` gets
//! what it missed from the store. A comment line every 15 s keeps proxies from closing an idle
//! stream. The stream ends when the server shuts down.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use updraft_api::{Code, LogLine, LogList};
use updraft_store::{LogQuery, LogRecord};

use super::params::{not_found, parse_since};
use crate::State as AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// How often an idle follow stream sends a keep-alive comment.
const KEEPALIVE: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogParams {
    since: Option<String>,
    request_id: Option<String>,
    after: Option<i64>,
    limit: Option<usize>,
    #[serde(default)]
    follow: bool,
}

fn line(r: &LogRecord) -> LogLine {
    LogLine {
        id: r.id,
        function: r.function.clone(),
        version: r.version,
        request_id: r.request_id.clone(),
        ts_ms: r.ts_ms,
        stream: r.stream.clone(),
        line: r.line.clone(),
    }
}

pub(crate) async fn logs(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    params: Result<Query<LogParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    let since_ms = match p.since.as_deref() {
        None => None,
        Some(s) => Some(parse_since(s)?),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let project = caller.project;
    let known = state.gateway.snapshot().function(&project, &name).is_some();
    let query = LogQuery {
        function: Some(name.clone()),
        request_id: p.request_id,
        since_ms,
        after_id: resume.or(p.after),
        limit: p.limit.unwrap_or(100),
    };
    // Subscribe first, then make sure everything queued so far is stored: together they see
    // every line.
    let live = p.follow.then(|| state.telemetry.subscribe());
    if p.follow {
        state.telemetry.flush().await;
    }
    let records = state.telemetry.query_logs(&project, &query).await?;
    if records.is_empty() && !known {
        return Err(not_found(&name));
    }
    let Some(live) = live else {
        return Ok(Json(LogList {
            lines: records.iter().map(line).collect(),
        })
        .into_response());
    };
    let last = records.last().map(|r| r.id).or(query.after_id).unwrap_or(0);
    let backlog: String = records.iter().map(|r| line(r).to_sse()).collect();
    let follow = Follow {
        project,
        live,
        stopping: state.stopping.subscribe(),
        query: LogQuery {
            after_id: Some(last),
            ..query
        },
        backlog: Some(backlog),
    };
    let stream = futures::stream::unfold(follow, |mut f| async move {
        let chunk = f.next().await?;
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(chunk)), f))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// A follow stream's state.
struct Follow {
    /// The project whose lines it sends.
    project: String,
    live: tokio::sync::broadcast::Receiver<Arc<LogRecord>>,
    /// Ends the stream when the server shuts down (graceful shutdown waits for open responses).
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Which lines to send; `after_id` is the last one sent.
    query: LogQuery,
    /// The stored lines, not sent yet.
    backlog: Option<String>,
}

impl Follow {
    /// The next chunk of the stream; `None` ends it (the server is shutting down).
    async fn next(&mut self) -> Option<String> {
        if let Some(b) = self.backlog.take() {
            // An empty first chunk would look like the end of the body to some clients.
            return Some(if b.is_empty() {
                ": following\n\n".to_owned()
            } else {
                b
            });
        }
        loop {
            if *self.stopping.borrow() {
                return None;
            }
            let received = tokio::select! {
                r = tokio::time::timeout(KEEPALIVE, self.live.recv()) => r,
                _ = self.stopping.changed() => return None,
            };
            match received {
                Err(_) => return Some(": keep-alive\n\n".to_owned()),
                Ok(Ok(r)) => {
                    if r.project == self.project && self.query.matches(&r) {
                        self.query.after_id = Some(r.id);
                        let mut out = line(&r).to_sse();
                        // Send what else is ready in the same chunk.
                        while let Ok(r) = self.live.try_recv() {
                            if r.project == self.project && self.query.matches(&r) {
                                self.query.after_id = Some(r.id);
                                out.push_str(&line(&r).to_sse());
                            }
                        }
                        return Some(out);
                    }
                }
                Ok(Err(RecvError::Lagged(n))) => {
                    return Some(format!(
                        ": {n} lines were missed (this client fell behind); reconnect with \
                         Last-Event-ID to read them from the store\n\n"
                    ));
                }
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    }
}
