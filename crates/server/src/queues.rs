//! The queue, topic and asynchronous-invoke APIs.
//!
//! One set of handlers serves two mounts: the control API (`/v1/queues/...`, `/v1/topics/...`,
//! admin token) and the data plane (`/_updraft/queues/{q}/...`, `/_updraft/topics/{t}/publish`),
//! where a client presents the queue's or topic's own access key (or the admin token) and can
//! only use messages, not manage queues.
//!
//! | method | path (after `/v1` or `/_updraft`) | what |
//! | --- | --- | --- |
//! | GET/POST | `/queues` | list / create ([`CreateQueue`]) (control only) |
//! | GET/DELETE | `/queues/{q}` | depth / delete (delete: control only) |
//! | POST | `/queues/{q}/keys` | new access key (control only) |
//! | POST | `/queues/{q}/messages` | send one ([`SendMessage`]) |
//! | POST | `/queues/{q}/messages/batch` | send up to 100 in one transaction ([`SendBatch`]) |
//! | POST | `/queues/{q}/messages/receive` | lease messages ([`ReceiveRequest`]) |
//! | POST | `/queues/{q}/messages/ack` | delete by receipts ([`AckRequest`]) |
//! | DELETE | `/queues/{q}/messages/{receipt}` | delete one |
//! | POST | `/queues/{q}/purge` | delete every message |
//! | GET/POST | `/topics` | list / create (control only) |
//! | GET/DELETE | `/topics/{t}` | one / delete (control only) |
//! | POST | `/topics/{t}/keys` | new publish key (control only) |
//! | POST | `/topics/{t}/publish` | publish ([`SendMessage`]) |
//! | PUT/DELETE | `/topics/{t}/subscriptions/{queue}` | subscribe a queue ([`Subscribe`]) / remove (control only) |

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;
use updraft_api::{
    AckRequest, AsyncInvocation, Code, CreateQueue, CreateTopic, Deleted, Published, QueueCreated,
    QueueList, ReceiveRequest, Received, ReceivedMessage, SendBatch, SendMessage, Sent, Subscribe,
    TopicCreated, TopicList, check_resource_name, headers,
};
use updraft_events::{
    DEFAULT_VISIBILITY_TIMEOUT, Feed, Holder, MAX_DELAY, MAX_MESSAGE_BYTES, MAX_VISIBILITY_TIMEOUT,
    NewMessage, QueueSpec, internal_queue,
};
use updraft_manifest::{format_duration, parse_duration, parse_size};
use updraft_store::DEFAULT_PROJECT;

use crate::State as AppState;
use crate::error::ApiError;

type Shared = State<Arc<AppState>>;

/// Most messages in one batch send or one receive.
const MAX_BATCH: usize = 100;
/// Longest long-poll of a receive.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// Largest request body of these APIs (a batch of 100 messages with JSON escaping).
const MAX_BODY: usize = 4 << 20;
/// Longest idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 255;

fn json<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(t)| t)
        .map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))
}

fn bounded(
    what: &str,
    s: Option<&str>,
    default: Duration,
    max: Duration,
) -> Result<Duration, ApiError> {
    let Some(s) = s else { return Ok(default) };
    let d =
        parse_duration(s).map_err(|e| ApiError::new(Code::BadRequest, format!("{what}: {e}")))?;
    if d > max {
        return Err(ApiError::new(
            Code::BadRequest,
            format!("{what}: at most {}", format_duration(max)),
        ));
    }
    Ok(d)
}

/// 201 for a resource this call created, 200 for one that existed.
fn created_status(created: bool) -> (bool, StatusCode) {
    (
        created,
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
    )
}

fn name(kind: &str, s: &str) -> Result<(), ApiError> {
    check_resource_name(kind, s).map_err(|e| ApiError::new(Code::BadRequest, e))
}

/// The routes every mount shares: using messages.
fn message_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/queues/{q}", get(queue_info))
        .route("/queues/{q}/messages", post(send))
        .route("/queues/{q}/messages/batch", post(send_batch))
        .route("/queues/{q}/messages/receive", post(receive))
        .route("/queues/{q}/messages/ack", post(ack))
        .route("/queues/{q}/messages/{receipt}", delete(ack_one))
        .route("/queues/{q}/purge", post(purge))
        .route("/topics/{t}/publish", post(publish))
}

/// The control API's routes (nested under `/v1`; the caller adds the admin check).
pub(crate) fn control_routes() -> Router<Arc<AppState>> {
    message_routes()
        .route("/queues", get(list_queues).post(create_queue))
        .route("/queues/{q}", delete(delete_queue))
        .route("/queues/{q}/keys", post(rotate_queue_key))
        .route("/topics", get(list_topics).post(create_topic))
        .route("/topics/{t}", get(topic_info).delete(delete_topic))
        .route("/topics/{t}/keys", post(rotate_topic_key))
        .route(
            "/topics/{t}/subscriptions/{queue}",
            put(subscribe).delete(unsubscribe),
        )
        .route("/async/{id}", get(async_status))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The data plane's `/_updraft/` service: message routes behind per-queue and per-topic keys.
#[derive(Default)]
pub(crate) struct DataPlane {
    router: OnceLock<Router>,
}

impl DataPlane {
    /// Builds the router once the state exists.
    pub(crate) fn attach(&self, state: &Arc<AppState>) {
        let router = Router::new()
            .nest("/_updraft", message_routes())
            .layer(middleware::from_fn_with_state(state.clone(), require_key))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .fallback(|| async {
                ApiError::new(
                    Code::RouteNotFound,
                    "no such platform API; see docs/queues.md",
                )
            })
            .method_not_allowed_fallback(|| async {
                ApiError::new(
                    Code::MethodNotAllowed,
                    "method not allowed here (queues and topics are managed on the control API)",
                )
            })
            .with_state(state.clone());
        let _ = self.router.set(router);
    }
}

impl updraft_gateway::Mounted for DataPlane {
    fn call(
        &self,
        req: http::Request<hyper::body::Incoming>,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = http::Response<updraft_dispatch::Body>> + Send + 'static>,
    > {
        let router = self.router.get().cloned();
        Box::pin(async move {
            let Some(router) = router else {
                return to_gateway(ApiError::new(Code::Internal, "starting up").into_response())
                    .await;
            };
            let resp = match router.oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            to_gateway(resp).await
        })
    }
}

async fn to_gateway(resp: Response) -> http::Response<updraft_dispatch::Body> {
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    http::Response::from_parts(parts, updraft_dispatch::full(bytes))
}

/// Data-plane auth: `Authorization: Bearer <key>` with the key of the queue or topic in the
/// path, or the admin token.
async fn require_key(State(state): Shared, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let mut segments = req.uri().path().trim_start_matches('/').split('/').skip(1);
    let (kind, target) = (
        segments.next().unwrap_or("").to_owned(),
        segments.next().unwrap_or("").to_owned(),
    );
    let Some(token) = token else {
        return ApiError::new(
            Code::Unauthorized,
            "missing `Authorization: Bearer <access key>` header (the queue's or topic's key)",
        )
        .into_response();
    };
    if state.auth.is_valid(&token) {
        return next.run(req).await;
    }
    let checked = match kind.as_str() {
        "queues" => {
            state
                .log
                .check_queue_key(DEFAULT_PROJECT, &target, &token)
                .await
        }
        "topics" => {
            state
                .log
                .check_topic_key(DEFAULT_PROJECT, &target, &token)
                .await
        }
        _ => Ok(false),
    };
    match checked {
        Ok(true) => next.run(req).await,
        Ok(false) => ApiError::new(
            Code::Unauthorized,
            "the access key is not valid for this queue or topic",
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn list_queues(State(state): Shared) -> Result<Json<QueueList>, ApiError> {
    let queues = state.log.queues(DEFAULT_PROJECT, false).await?;
    Ok(Json(QueueList { queues }))
}

async fn create_queue(
    State(state): Shared,
    body: Result<Json<CreateQueue>, JsonRejection>,
) -> Result<(StatusCode, Json<QueueCreated>), ApiError> {
    let req = json(body)?;
    name("queue", &req.name)?;
    let mut spec = QueueSpec::new(req.name);
    spec.visibility_timeout = bounded(
        "visibility_timeout",
        req.visibility_timeout.as_deref(),
        DEFAULT_VISIBILITY_TIMEOUT,
        MAX_VISIBILITY_TIMEOUT,
    )?;
    if let Some(s) = &req.max_message_size {
        let n = parse_size(s)
            .map_err(|e| ApiError::new(Code::BadRequest, format!("max_message_size: {e}")))?;
        if !(1..=MAX_MESSAGE_BYTES).contains(&n) {
            return Err(ApiError::new(
                Code::BadRequest,
                format!("max_message_size: must be between 1 byte and {MAX_MESSAGE_BYTES} bytes"),
            ));
        }
        spec.max_message_bytes = n;
    }
    let (queue, key) = state.log.create_queue(DEFAULT_PROJECT, &spec).await?;
    let (created, status) = created_status(key.is_some());
    Ok((
        status,
        Json(QueueCreated {
            queue,
            created,
            access_key: key,
        }),
    ))
}

async fn queue_info(State(state): Shared, Path(q): Path<String>) -> Result<Response, ApiError> {
    let info = state.log.queue(DEFAULT_PROJECT, &q).await?;
    Ok(Json(info).into_response())
}

async fn delete_queue(State(state): Shared, Path(q): Path<String>) -> Result<StatusCode, ApiError> {
    state.log.delete_queue(DEFAULT_PROJECT, &q).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_queue_key(
    State(state): Shared,
    Path(q): Path<String>,
) -> Result<Json<QueueCreated>, ApiError> {
    let key = state.log.rotate_queue_key(DEFAULT_PROJECT, &q).await?;
    let queue = state.log.queue(DEFAULT_PROJECT, &q).await?;
    Ok(Json(QueueCreated {
        queue,
        created: false,
        access_key: Some(key),
    }))
}

/// Checks one message to send and turns it into a log message.
fn message(
    m: SendMessage,
    source: String,
    kind: &str,
    i: Option<usize>,
) -> Result<NewMessage, ApiError> {
    let at = i.map_or(String::new(), |i| format!("messages[{i}]: "));
    let delay = bounded(
        &format!("{at}delay"),
        m.delay.as_deref(),
        Duration::ZERO,
        MAX_DELAY,
    )?;
    for k in m.attributes.keys() {
        if k.is_empty() || k.len() > 128 {
            return Err(ApiError::new(
                Code::BadRequest,
                format!("{at}attribute names must be 1 to 128 characters"),
            ));
        }
    }
    let content_type = match m.content_type {
        Some(ct) if ct.trim().is_empty() => {
            return Err(ApiError::new(
                Code::BadRequest,
                format!("{at}content_type is empty"),
            ));
        }
        Some(ct) => ct,
        None if serde_json::from_str::<serde::de::IgnoredAny>(&m.body).is_ok() => {
            "application/json".to_owned()
        }
        None => "text/plain; charset=utf-8".to_owned(),
    };
    Ok(NewMessage {
        source,
        kind: kind.to_owned(),
        content_type,
        attributes: m.attributes,
        data: m.body.into_bytes(),
        delay,
        ..NewMessage::default()
    })
}

async fn send_messages(
    state: &Arc<AppState>,
    q: String,
    messages: Vec<NewMessage>,
) -> Result<Sent, ApiError> {
    let queue = q.clone();
    let ids = state.log.send(DEFAULT_PROJECT, &queue, messages).await?;
    state.wakeups.wake(DEFAULT_PROJECT, &q);
    Ok(Sent { ids })
}

async fn send(
    State(state): Shared,
    Path(q): Path<String>,
    body: Result<Json<SendMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let m = message(
        json(body)?,
        format!("/queues/{q}"),
        "dev.updraft.queue.message",
        None,
    )?;
    Ok((
        StatusCode::CREATED,
        Json(send_messages(&state, q, vec![m]).await?),
    ))
}

async fn send_batch(
    State(state): Shared,
    Path(q): Path<String>,
    body: Result<Json<SendBatch>, JsonRejection>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let batch = json(body)?;
    if batch.messages.is_empty() || batch.messages.len() > MAX_BATCH {
        return Err(ApiError::new(
            Code::BadRequest,
            format!(
                "a batch has 1 to {MAX_BATCH} messages (this one has {})",
                batch.messages.len()
            ),
        ));
    }
    let messages = batch
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            message(
                m,
                format!("/queues/{q}"),
                "dev.updraft.queue.message",
                Some(i),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        StatusCode::CREATED,
        Json(send_messages(&state, q, messages).await?),
    ))
}

async fn receive(
    State(state): Shared,
    Path(q): Path<String>,
    body: Result<Json<ReceiveRequest>, JsonRejection>,
) -> Result<Json<Received>, ApiError> {
    let req = json(body)?;
    let max = req.max.unwrap_or(1);
    if !(1..=MAX_BATCH as u32).contains(&max) {
        return Err(ApiError::new(
            Code::BadRequest,
            format!("max: must be between 1 and {MAX_BATCH}"),
        ));
    }
    let wait = bounded("wait", req.wait.as_deref(), Duration::ZERO, MAX_WAIT)?;
    let visibility = match req.visibility_timeout.as_deref() {
        None => None,
        v => Some(bounded(
            "visibility_timeout",
            v,
            DEFAULT_VISIBILITY_TIMEOUT,
            MAX_VISIBILITY_TIMEOUT,
        )?),
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Registered before the queue is read, so a send committed after the read wakes it.
        let woken = state.wakeups.waiter(DEFAULT_PROJECT, &q);
        let got = state
            .log
            .receive(DEFAULT_PROJECT, &q, max, visibility, Holder::Client)
            .await?;
        let now = tokio::time::Instant::now();
        if !got.is_empty() || now >= deadline {
            let messages = got
                .into_iter()
                .map(|m| ReceivedMessage {
                    id: m.id,
                    receipt: m.receipt,
                    body: String::from_utf8_lossy(&m.data).into_owned(),
                    content_type: m.content_type,
                    attributes: m.attributes,
                    sent_ms: m.time_ms,
                    receive_count: m.attempts,
                    source: m.source,
                    kind: m.kind,
                    errors: m.errors,
                })
                .collect();
            return Ok(Json(Received { messages }));
        }
        tokio::select! {
            () = woken => {},
            () = tokio::time::sleep((deadline - now).min(Duration::from_millis(250))) => {},
        }
    }
}

async fn ack(
    State(state): Shared,
    Path(_q): Path<String>,
    body: Result<Json<AckRequest>, JsonRejection>,
) -> Result<Json<Deleted>, ApiError> {
    let req = json(body)?;
    if req.receipts.len() > MAX_BATCH {
        return Err(ApiError::new(
            Code::BadRequest,
            format!("at most {MAX_BATCH} receipts"),
        ));
    }
    let deleted = state.log.ack(DEFAULT_PROJECT, &req.receipts).await?;
    Ok(Json(Deleted { deleted }))
}

async fn ack_one(
    State(state): Shared,
    Path((q, receipt)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let r = vec![receipt.clone()];
    let n = state.log.ack(DEFAULT_PROJECT, &r).await?;
    if n == 0 {
        return Err(ApiError::new(
            Code::MessageNotFound,
            format!(
                "no message in queue `{q}` has receipt `{receipt}` (deleted, or its lease ran out)"
            ),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn purge(State(state): Shared, Path(q): Path<String>) -> Result<Json<Deleted>, ApiError> {
    let deleted = state.log.purge(DEFAULT_PROJECT, &q).await?;
    Ok(Json(Deleted { deleted }))
}

async fn list_topics(State(state): Shared) -> Result<Json<TopicList>, ApiError> {
    let topics = state.log.topics(DEFAULT_PROJECT).await?;
    Ok(Json(TopicList { topics }))
}

async fn create_topic(
    State(state): Shared,
    body: Result<Json<CreateTopic>, JsonRejection>,
) -> Result<(StatusCode, Json<TopicCreated>), ApiError> {
    let req = json(body)?;
    name("topic", &req.name)?;
    let (topic, key) = state.log.create_topic(DEFAULT_PROJECT, &req.name).await?;
    let (created, status) = created_status(key.is_some());
    Ok((
        status,
        Json(TopicCreated {
            topic,
            created,
            access_key: key,
        }),
    ))
}

async fn topic_info(State(state): Shared, Path(t): Path<String>) -> Result<Response, ApiError> {
    let info = state.log.topic(DEFAULT_PROJECT, &t).await?;
    Ok(Json(info).into_response())
}

async fn delete_topic(State(state): Shared, Path(t): Path<String>) -> Result<StatusCode, ApiError> {
    state.log.delete_topic(DEFAULT_PROJECT, &t).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_topic_key(
    State(state): Shared,
    Path(t): Path<String>,
) -> Result<Json<TopicCreated>, ApiError> {
    let key = state.log.rotate_topic_key(DEFAULT_PROJECT, &t).await?;
    let topic = state.log.topic(DEFAULT_PROJECT, &t).await?;
    Ok(Json(TopicCreated {
        topic,
        created: false,
        access_key: Some(key),
    }))
}

async fn publish(
    State(state): Shared,
    Path(t): Path<String>,
    body: Result<Json<SendMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let m = message(
        json(body)?,
        format!("/topics/{t}"),
        "dev.updraft.topic.published",
        None,
    )?;
    let (id, queues) = state.log.publish(DEFAULT_PROJECT, &t, m).await?;
    for q in &queues {
        state.wakeups.wake(DEFAULT_PROJECT, q);
    }
    Ok((
        StatusCode::CREATED,
        Json(Published {
            id,
            delivered_to: queues.len() as u64,
        }),
    ))
}

async fn subscribe(
    State(state): Shared,
    Path((t, q)): Path<(String, String)>,
    body: Result<Json<Subscribe>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = json(body)?;
    let topic = t.clone();
    state
        .log
        .subscribe_queue(DEFAULT_PROJECT, &topic, &q, &req.filter)
        .await?;
    let info = state.log.topic(DEFAULT_PROJECT, &topic).await?;
    Ok(Json(info).into_response())
}

async fn unsubscribe(
    State(state): Shared,
    Path((t, q)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (topic, queue) = (t.clone(), q.clone());
    let removed = state
        .log
        .unsubscribe_queue(DEFAULT_PROJECT, &topic, &queue)
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            Code::QueueNotFound,
            format!("queue `{q}` is not subscribed to topic `{t}`"),
        ))
    }
}

#[derive(Deserialize)]
pub(crate) struct InvokeQuery {
    #[serde(rename = "async")]
    asynchronous: Option<bool>,
}

/// `POST /v1/functions/{f}/invocations?async=true`: accepts the body as an event for the
/// function and answers 202 with the invoke's id; `Idempotency-Key` makes a retry of the
/// same submission return the first one.
pub(crate) async fn invoke_async(
    State(state): Shared,
    Path(function): Path<String>,
    query: Result<Query<InvokeQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    if query.asynchronous != Some(true) {
        return Err(ApiError::new(
            Code::BadRequest,
            "POST here needs `?async=true`; invoke synchronously with POST /v1/functions/{name}/invoke",
        ));
    }
    if !state.gateway.snapshot().functions.contains_key(&function) {
        return Err(ApiError::new(
            Code::FunctionNotFound,
            format!("function `{function}` does not exist"),
        ));
    }
    let key = match req.headers().get(headers::IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => Some(k.to_owned()),
            _ => {
                return Err(ApiError::new(
                    Code::BadRequest,
                    format!(
                        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                    ),
                ));
            }
        },
    };
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|e| ApiError::new(Code::PayloadTooLarge, format!("request body: {e}")))?;
    let message = NewMessage {
        source: format!("/functions/{function}"),
        kind: "dev.updraft.function.invoked".into(),
        content_type,
        data: body.to_vec(),
        ..NewMessage::default()
    };
    let queue = internal_queue(&function, Feed::Async);
    let q = queue.clone();
    let (inv, created): (AsyncInvocation, bool) = state
        .log
        .submit_async(DEFAULT_PROJECT, &function, &q, key.as_deref(), message)
        .await?;
    if created {
        state.wakeups.wake(DEFAULT_PROJECT, &queue);
    }
    let mut resp = (StatusCode::ACCEPTED, Json(&inv)).into_response();
    if let Ok(v) = http::HeaderValue::from_str(&format!("/v1/async/{}", inv.id)) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    if !created {
        resp.headers_mut().insert(
            "idempotent-replayed",
            http::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

async fn async_status(
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<Json<AsyncInvocation>, ApiError> {
    let inv = state.log.async_invocation(DEFAULT_PROJECT, &id).await?;
    Ok(Json(inv))
}

/// Queue depth and age for `/metrics`.
pub(crate) async fn metrics(state: &Arc<AppState>) -> String {
    use std::fmt::Write as _;
    let stats = state.log.stats().await.unwrap_or_default();
    let dead: BTreeMap<String, u64> = state
        .triggers
        .dead_lettered()
        .into_iter()
        .map(|((_, queue), n)| (queue, n))
        .collect();
    let mut out = String::new();
    let families: [(&str, &str, &str); 3] = [
        (
            "updraft_queue_depth",
            "gauge",
            "Messages in the queue (visible, delayed and in flight).",
        ),
        (
            "updraft_queue_in_flight",
            "gauge",
            "Messages received and leased, not yet deleted.",
        ),
        (
            "updraft_queue_oldest_age_seconds",
            "gauge",
            "Age of the oldest message in the queue.",
        ),
    ];
    for (i, (name, kind, help)) in families.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in &stats {
            let value = match i {
                0 => s.depth as f64,
                1 => s.in_flight as f64,
                _ => s.oldest_age_ms as f64 / 1000.0,
            };
            let _ = writeln!(
                out,
                "{name}{{project=\"{}\",queue=\"{}\"}} {value}",
                s.project, s.queue
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP updraft_events_dead_lettered_total Events moved to a dead-letter queue since start, by the queue they failed from.\n# TYPE updraft_events_dead_lettered_total counter"
    );
    for (q, n) in dead {
        let _ = writeln!(
            out,
            "updraft_events_dead_lettered_total{{queue=\"{q}\"}} {n}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_get_a_content_type_and_bounded_delay() {
        let m = message(
            SendMessage {
                body: "{\"a\":1}".into(),
                ..SendMessage::default()
            },
            "/q".into(),
            "t",
            None,
        )
        .unwrap();
        assert_eq!(m.content_type, "application/json");
        let m = message(
            SendMessage {
                body: "hi".into(),
                ..SendMessage::default()
            },
            "/q".into(),
            "t",
            None,
        )
        .unwrap();
        assert_eq!(m.content_type, "text/plain; charset=utf-8");
        let e = message(
            SendMessage {
                body: "hi".into(),
                delay: Some("16m".into()),
                ..SendMessage::default()
            },
            "/q".into(),
            "t",
            Some(3),
        )
        .unwrap_err();
        assert_eq!(e.message, "messages[3]: delay: at most 15m");
    }
}
