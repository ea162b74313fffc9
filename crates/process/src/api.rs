//! The Lambda Runtime API, served to one execution environment on its own loopback port
//! (`AWS_LAMBDA_RUNTIME_API`): the runtime client in the process long-polls
//! `GET /2018-06-01/runtime/invocation/next`, answers with `.../{id}/response` or
//! `.../{id}/error`, and reports a failed start with `/runtime/init/error`.
//!
//! One port per environment, and every connection checked to come from the environment's own
//! process (its socket looked up in `/proc`), so a process can only ever see its own
//! invocations: another function's process that finds the port is turned away. The
//! environment hands this side a [`Job`] and gets an [`Outcome`] back through a [`Mailbox`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// The API's version prefix.
const PREFIX: &str = "/2018-06-01/runtime/";

/// One invocation, as `invocation/next` hands it out.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) request_id: String,
    pub(crate) deadline_ms: u64,
    pub(crate) function_arn: String,
    pub(crate) trace_id: String,
    pub(crate) client_context: Option<String>,
    pub(crate) cognito_identity: Option<String>,
    pub(crate) payload: Bytes,
}

/// How an invocation ended, as the runtime client reported it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `.../{id}/response`: the handler's result (its bytes as sent).
    Response(Bytes),
    /// `.../{id}/error`, or an error trailer on a streamed response.
    Error { error_type: String, message: String },
    /// The response was larger than the payload limit (the client got 413).
    TooLarge(usize),
    /// A streamed response (`Lambda-Runtime-Function-Response-Mode: streaming`): its chunks
    /// as they arrive; an error trailer ends it with `Err((errorType, errorMessage))`.
    Stream(Streamed),
}

/// A response being streamed by the runtime.
#[derive(Debug)]
pub(crate) struct Streamed {
    /// Its `Content-Type` (`application/vnd.awslambda.http-integration-response`: a JSON
    /// prelude and eight NUL bytes come first).
    pub(crate) content_type: String,
    pub(crate) chunks: mpsc::Receiver<Result<Bytes, (String, String)>>,
}

/// The content type of a streamed HTTP response with its metadata prelude.
pub(crate) const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";

/// Why the process did not come up.
#[derive(Debug, Clone)]
pub(crate) struct InitError {
    pub(crate) error_type: String,
    pub(crate) message: String,
}

type Reply = oneshot::Sender<Outcome>;

/// The environment's side of its Runtime API.
pub(crate) struct Mailbox {
    jobs: mpsc::Sender<(Job, Reply)>,
    /// How many times the process has asked for an invocation: its init is over at 1, and
    /// each invocation is over (its output flushed) when it asks again.
    pub(crate) polls: watch::Receiver<u64>,
    /// Set when the process reported `/runtime/init/error`.
    pub(crate) init_error: watch::Receiver<Option<InitError>>,
    pub(crate) addr: SocketAddr,
    /// The process allowed to connect, once it is started.
    owner: Arc<std::sync::OnceLock<u32>>,
    server: JoinHandle<()>,
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Mailbox {
    /// Starts the API on a fresh loopback port. Responses over `max_payload` bytes get 413.
    pub(crate) async fn start(max_payload: usize) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (jobs, rx) = mpsc::channel(1);
        let (polls_tx, polls) = watch::channel(0);
        let (init_tx, init_error) = watch::channel(None);
        let api = Arc::new(Api {
            jobs: tokio::sync::Mutex::new(rx),
            current: Mutex::new(None),
            polls: polls_tx,
            init_error: init_tx,
            max_payload,
        });
        let owner = Arc::new(std::sync::OnceLock::new());
        let allowed = owner.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                // Small request/response pairs on loopback: never wait to coalesce them.
                let _ = stream.set_nodelay(true);
                let api = api.clone();
                let allowed = allowed.clone();
                tokio::spawn(async move {
                    // The process may connect a moment before its pid is recorded.
                    let mut pid = allowed.get().copied();
                    for _ in 0..100 {
                        if pid.is_some() {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        pid = allowed.get().copied();
                    }
                    if !pid.is_some_and(|pid| connected_from(pid, peer, addr)) {
                        // Not the environment's process: no invocation is shown to it.
                        return;
                    }
                    let service = hyper::service::service_fn(move |req| {
                        let api = api.clone();
                        async move { Ok::<_, Infallible>(api.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            jobs,
            polls,
            init_error,
            addr,
            owner,
            server,
        })
    }

    /// Lets process `pid` (and only it) connect.
    pub(crate) fn allow(&self, pid: u32) {
        let _ = self.owner.set(pid);
    }

    /// Queues `job` for the process; the receiver gets its outcome.
    pub(crate) fn post(&self, job: Job) -> Option<oneshot::Receiver<Outcome>> {
        let (tx, rx) = oneshot::channel();
        self.jobs.try_send((job, tx)).ok()?;
        Some(rx)
    }
}

struct Api {
    jobs: tokio::sync::Mutex<mpsc::Receiver<(Job, Reply)>>,
    /// The invocation handed out and not answered yet.
    current: Mutex<Option<(String, Reply)>>,
    polls: watch::Sender<u64>,
    init_error: watch::Sender<Option<InitError>>,
    max_payload: usize,
}

type Resp = Response<Full<Bytes>>;

impl Api {
    async fn handle(&self, req: Request<Incoming>) -> Resp {
        let path = req.uri().path().to_owned();
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return error(StatusCode::NOT_FOUND, "InvalidRequest", "unknown path");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match (req.method(), parts.as_slice()) {
            (&Method::GET, ["invocation", "next"]) => self.next().await,
            (&Method::POST, ["invocation", id, "response"]) => {
                let id = (*id).to_owned();
                self.response(&id, req).await
            }
            (&Method::POST, ["invocation", id, "error"]) => {
                let id = (*id).to_owned();
                let (error_type, message) = self.error_body(req).await;
                self.settle(
                    &id,
                    Outcome::Error {
                        error_type,
                        message,
                    },
                )
            }
            (&Method::POST, ["init", "error"]) => {
                let (error_type, message) = self.error_body(req).await;
                self.init_error.send_replace(Some(InitError {
                    error_type,
                    message,
                }));
                accepted()
            }
            _ => error(
                StatusCode::NOT_FOUND,
                "InvalidRequest",
                &format!("no route for {} {path}", req.method()),
            ),
        }
    }

    /// `invocation/next`: blocks until the environment posts a job.
    async fn next(&self) -> Resp {
        self.polls.send_modify(|n| *n += 1);
        let mut jobs = self.jobs.lock().await;
        let Some((job, reply)) = jobs.recv().await else {
            return error(
                StatusCode::GONE,
                "Shutdown",
                "the environment is shutting down",
            );
        };
        drop(jobs);
        let mut resp = Response::new(Full::new(job.payload.clone()));
        let h = resp.headers_mut();
        let mut set = |k: &'static str, v: &str| {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert(k, v);
            }
        };
        set("lambda-runtime-aws-request-id", &job.request_id);
        set("lambda-runtime-deadline-ms", &job.deadline_ms.to_string());
        set("lambda-runtime-invoked-function-arn", &job.function_arn);
        set("lambda-runtime-trace-id", &job.trace_id);
        if let Some(cc) = &job.client_context {
            set("lambda-runtime-client-context", cc);
        }
        if let Some(identity) = &job.cognito_identity {
            set("lambda-runtime-cognito-identity", identity);
        }
        set("content-type", "application/json");
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((job.request_id, reply));
        resp
    }

    /// `invocation/{id}/response`, buffered or streamed (`Lambda-Runtime-Function-Response-
    /// Mode: streaming`, with the error in trailers): either way the body is read up to the
    /// payload limit.
    async fn response(&self, id: &str, req: Request<Incoming>) -> Resp {
        if !self.is_current(id) {
            return unknown(id);
        }
        let streaming = req
            .headers()
            .get("lambda-runtime-function-response-mode")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"streaming"));
        if streaming {
            return self.stream(id, req).await;
        }
        match Limited::new(req.into_body(), self.max_payload)
            .collect()
            .await
        {
            Ok(collected) => {
                let trailer_error = collected.trailers().and_then(|t| {
                    let kind = t.get("lambda-runtime-function-error-type")?;
                    let body = t
                        .get("lambda-runtime-function-error-body")
                        .and_then(|v| v.to_str().ok())
                        .map(decode_error_body)
                        .unwrap_or_default();
                    Some((kind.to_str().unwrap_or("Unhandled").to_owned(), body))
                });
                let bytes = collected.to_bytes();
                match trailer_error {
                    Some((error_type, message)) => self.settle(
                        id,
                        Outcome::Error {
                            error_type,
                            message,
                        },
                    ),
                    None => self.settle(id, Outcome::Response(bytes)),
                }
            }
            Err(_) => {
                let _ = self.settle(id, Outcome::TooLarge(self.max_payload));
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    &format!(
                        "the response is larger than the {} bytes a response may be",
                        self.max_payload
                    ),
                )
            }
        }
    }

    /// Hands the invocation a channel of the body's chunks, then forwards them as they come
    /// (waiting when the caller reads slowly), the error trailer last; answers 202 at the end.
    async fn stream(&self, id: &str, req: Request<Incoming>) -> Resp {
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let (tx, chunks) = mpsc::channel(16);
        let settled = self.settle(
            id,
            Outcome::Stream(Streamed {
                content_type,
                chunks,
            }),
        );
        if settled.status() != StatusCode::ACCEPTED {
            return settled;
        }
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    // The connection broke (the process died, say): not a complete answer.
                    let message = format!("the response stream broke off: {e}");
                    let _ = tx
                        .send(Err(("Runtime.StreamInterrupted".into(), message)))
                        .await;
                    break;
                }
            };
            let frame = match frame.into_data() {
                Ok(data) => {
                    // A caller that went away: keep reading so the runtime can finish.
                    let _ = tx.send(Ok(data)).await;
                    continue;
                }
                Err(frame) => frame,
            };
            if let Some(t) = frame.trailers_ref()
                && let Some(kind) = t.get("lambda-runtime-function-error-type")
            {
                let message = t
                    .get("lambda-runtime-function-error-body")
                    .and_then(|v| v.to_str().ok())
                    .map(decode_error_body)
                    .unwrap_or_default();
                let kind = kind.to_str().unwrap_or("Unhandled").to_owned();
                let _ = tx.send(Err((kind, message))).await;
            }
        }
        accepted()
    }

    fn is_current(&self, id: &str) -> bool {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(cur, _)| cur == id)
    }

    fn settle(&self, id: &str, outcome: Outcome) -> Resp {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match current.take() {
            Some((cur, reply)) if cur == id => {
                let _ = reply.send(outcome);
                accepted()
            }
            other => {
                *current = other;
                unknown(id)
            }
        }
    }

    /// The `errorType` (from the header or the body) and `errorMessage` of an error report.
    async fn error_body(&self, req: Request<Incoming>) -> (String, String) {
        let header_type = req
            .headers()
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Limited::new(req.into_body(), self.max_payload)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let error_type = parsed["errorType"]
            .as_str()
            .map(str::to_owned)
            .or(header_type)
            .unwrap_or_else(|| "Unhandled".to_owned());
        let message = parsed["errorMessage"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        (error_type, message)
    }
}

/// The `errorMessage` of a base64 error-body trailer (or the text itself).
fn decode_error_body(v: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v)
        .unwrap_or_else(|_| v.as_bytes().to_vec());
    let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    parsed["errorMessage"].as_str().map_or_else(
        || String::from_utf8_lossy(&bytes).into_owned(),
        str::to_owned,
    )
}

fn accepted() -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)));
    *r.status_mut() = StatusCode::ACCEPTED;
    r
}

fn unknown(id: &str) -> Resp {
    error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("invocation {id} is not the one in progress"),
    )
}

fn error(status: StatusCode, kind: &str, message: &str) -> Resp {
    let body = serde_json::json!({"errorType": kind, "errorMessage": message});
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Whether the TCP connection from `peer` to `local` (both on 127.0.0.1) is a socket of process
/// `pid`: its inode, found in `/proc/net/tcp`, is among the process's open descriptors.
fn connected_from(pid: u32, peer: SocketAddr, local: SocketAddr) -> bool {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => Some(format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        )),
        SocketAddr::V6(_) => None,
    };
    let (Some(from), Some(to)) = (hex(peer), hex(local)) else {
        return false;
    };
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let inode = table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 9 && f[1] == from && f[2] == to).then(|| f[9].to_owned())
    });
    let Some(inode) = inode else { return false };
    let want = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
}
