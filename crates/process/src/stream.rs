//! Streamed responses (Lambda's response streaming mode): the runtime client posts its answer
//! with `Lambda-Runtime-Function-Response-Mode: streaming` and the caller gets each chunk as
//! it is written, not the whole answer at the end.
//!
//! An HTTP answer (`application/vnd.awslambda.http-integration-response`) starts with a JSON
//! prelude (`statusCode`, `headers`, `cookies`) and eight NUL bytes; the response head is
//! taken from it. The stream is held to the invocation's deadline and memory limit while it
//! flows; an error trailer, the deadline or a crash mid-stream cuts the body off (the head is
//! gone already) and fails the invocation's record. Its `END` and `REPORT` lines come when the
//! body ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::mpsc;
use updraft_dispatch::{Body, BodyError, InvokeError};

use crate::api::{HTTP_INTEGRATION, Streamed};
use crate::env::Environment;
use crate::finish::Finish;
use crate::shapes::Shape;

/// Largest metadata prelude read before the body.
const MAX_PRELUDE: usize = 64 << 10;
/// How often a streaming environment's memory is looked at.
const MEMORY_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// The response for a streamed answer: its head now, its body as the runtime writes it.
pub(crate) async fn respond(
    finish: Finish,
    mut env: Environment,
    streamed: Streamed,
    shape: &Shape,
    deadline: tokio::time::Instant,
) -> Result<Response<Body>, InvokeError> {
    let Streamed {
        content_type,
        mut chunks,
    } = streamed;
    let mut resp = Response::builder().status(StatusCode::OK);
    let mut first = Bytes::new();
    if content_type.eq_ignore_ascii_case(HTTP_INTEGRATION) {
        let mut buf = BytesMut::new();
        let split = loop {
            if let Some(at) = buf.windows(8).position(|w| w == [0u8; 8]) {
                break Some(at);
            }
            if buf.len() > MAX_PRELUDE {
                break None;
            }
            match tokio::time::timeout_at(deadline, chunks.recv()).await {
                Ok(Some(Ok(b))) => buf.extend_from_slice(&b),
                Ok(Some(Err((error_type, message)))) => {
                    let e = InvokeError::Handler {
                        error_type,
                        message,
                    };
                    env.flush().await;
                    finish.done(env, Some(&e));
                    return Err(e);
                }
                // Ended before its prelude did: all of it is the body.
                Ok(None) => break None,
                Err(_) => {
                    env.kill();
                    let e = finish.timed_out();
                    finish.done(env, Some(&e));
                    return Err(e);
                }
            }
        };
        match split {
            Some(at) => {
                let prelude: Value = serde_json::from_slice(&buf[..at]).unwrap_or_default();
                first = buf.split_off(at + 8).freeze();
                if *shape == Shape::Http {
                    resp = apply_prelude(resp, &prelude);
                }
            }
            None => first = buf.freeze(),
        }
    } else if let Ok(v) = HeaderValue::from_str(&content_type) {
        resp = resp.header(header::CONTENT_TYPE, v);
    }
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(forward(finish, env, chunks, first, tx, deadline));
    resp.body(ChannelBody(rx).boxed_unsync())
        .map_err(|e| InvokeError::Handler {
            error_type: "Runtime.InvalidResponse".into(),
            message: format!("the streamed response's head is invalid: {e}"),
        })
}

/// Status, headers and cookies from the metadata prelude.
fn apply_prelude(mut resp: http::response::Builder, prelude: &Value) -> http::response::Builder {
    if let Some(status) = prelude["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    {
        resp = resp.status(status);
    }
    for (k, v) in prelude["headers"].as_object().into_iter().flatten() {
        let value = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            resp = resp.header(k, v);
        }
    }
    for c in prelude["cookies"].as_array().into_iter().flatten() {
        if let Some(Ok(v)) = c.as_str().map(HeaderValue::from_str) {
            resp = resp.header(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Moves chunks from the runtime to the caller until the stream ends, the deadline passes,
/// the memory limit is crossed or the process dies; then closes the invocation.
async fn forward(
    finish: Finish,
    mut env: Environment,
    mut chunks: mpsc::Receiver<Result<Bytes, (String, String)>>,
    first: Bytes,
    tx: mpsc::Sender<Result<Bytes, BodyError>>,
    deadline: tokio::time::Instant,
) {
    let memory = finish.inner.settings.memory_bytes;
    if !first.is_empty() {
        let _ = tx.send(Ok(first)).await;
    }
    let mut exit = env.exited();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + MEMORY_TICK, MEMORY_TICK);
    let error = loop {
        tokio::select! {
            chunk = chunks.recv() => match chunk {
                // A caller that went away: the runtime still finishes its answer.
                Some(Ok(b)) => { let _ = tx.send(Ok(b)).await; }
                Some(Err((error_type, message))) => {
                    break Some(InvokeError::Handler { error_type, message });
                }
                None => break None,
            },
            () = tokio::time::sleep_until(deadline) => {
                env.kill();
                break Some(finish.timed_out());
            }
            _ = tick.tick() => {
                let rss = env.rss();
                if rss > memory {
                    env.kill();
                    break Some(finish.out_of_memory(rss));
                }
            }
            status = async { exit.wait_for(Option::is_some).await.ok().and_then(|s| s.clone()) } => {
                break Some(finish.exited(&status.unwrap_or_default()));
            }
        }
    };
    if let Some(e) = &error {
        let _ = tx.send(Err(BodyError::failed(e.to_string()))).await;
    }
    // A handler's error leaves its process serving, as a clean end does: what it printed
    // before asking for the next invocation (its stack trace, say) belongs to this one.
    if matches!(error, None | Some(InvokeError::Handler { .. })) {
        env.flush().await;
    }
    drop(tx);
    finish.done(env, error.as_ref());
}

/// A response body fed by a channel.
struct ChannelBody(mpsc::Receiver<Result<Bytes, BodyError>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.0.poll_recv(cx).map(|c| c.map(|r| r.map(Frame::data)))
    }
}
