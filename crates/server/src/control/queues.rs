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
//! | POST | `/queues/{q}/keys?role=` | new access key: full (rotates), send or consume (control only) |
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
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{InProject, Producer};
use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use updraft_api::{
    AckRequest, Code, CreateQueue, Deleted, QueueCreated, QueueList, ReceiveRequest, Received,
    ReceivedMessage, SendBatch, SendMessage, Sent, check_resource_name,
};
use updraft_events::{
    DEFAULT_VISIBILITY_TIMEOUT, Holder, KeyRole, MAX_DELAY, MAX_MESSAGE_BYTES,
    MAX_VISIBILITY_TIMEOUT, NewMessage, QueueSpec,
};
use updraft_manifest::{format_duration, parse_duration, parse_size};

pub(crate) use crate::State as AppState;
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
        .route("/topics/{t}/publish", post(topics::publish))
}

/// The control API's routes (nested under `/v1`; the caller adds the admin check).
pub(crate) fn control_routes() -> Router<Arc<AppState>> {
    message_routes()
        .route("/queues", get(list_queues).post(create_queue))
        .route("/queues/{q}", delete(delete_queue))
        .route("/queues/{q}/keys", post(rotate_queue_key))
        .route(
            "/topics",
            get(topics::list_topics).post(topics::create_topic),
        )
        .route(
            "/topics/{t}",
            get(topics::topic_info).delete(topics::delete_topic),
        )
        .route("/topics/{t}/keys", post(topics::rotate_topic_key))
        .route(
            "/topics/{t}/subscriptions/{queue}",
            put(topics::subscribe).delete(topics::unsubscribe),
        )
        .route("/async/{id}", get(asynchronous::async_status))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The data plane's `/_updraft/` service: message routes behind per-queue and per-topic keys.
mod asynchronous;
mod dataplane;
mod topics;

pub(crate) use asynchronous::invoke_async;
pub(crate) use dataplane::{DataPlane, host_project};

async fn list_queues(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
) -> Result<Json<QueueList>, ApiError> {
    let queues = state.log.queues(&project, false).await?;
    Ok(Json(QueueList { queues }))
}

async fn create_queue(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
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
    let (queue, key) = state.log.create_queue(&project, &spec).await?;
    let (created, status) = created_status(key.is_some());
    Ok((
        status,
        Json(QueueCreated {
            queue,
            created,
            role: key.as_ref().map(|_| KeyRole::Full.as_str().to_owned()),
            access_key: key,
        }),
    ))
}

async fn queue_info(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path(q): Path<String>,
) -> Result<Response, ApiError> {
    let info = state.log.queue(&project, &q).await?;
    Ok(Json(info).into_response())
}

async fn delete_queue(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path(q): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.log.delete_queue(&project, &q).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/queues/{q}/keys[?role=full|send|consume]`: without a role (or `full`), replaces
/// the queue's key and revokes its scoped keys; `send` or `consume` adds a key that may only
/// send, or only receive and ack.
async fn rotate_queue_key(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path(q): Path<String>,
    params: Result<Query<KeyParams>, QueryRejection>,
) -> Result<Json<QueueCreated>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    let role = match params.role.as_deref() {
        None => KeyRole::Full,
        Some(name) => KeyRole::parse(name).ok_or_else(|| {
            ApiError::new(
                Code::BadRequest,
                format!("role must be full, send or consume, not `{name}`"),
            )
        })?,
    };
    let key = state.log.add_queue_key(&project, &q, role).await?;
    let queue = state.log.queue(&project, &q).await?;
    Ok(Json(QueueCreated {
        queue,
        created: false,
        access_key: Some(key),
        role: Some(role.as_str().to_owned()),
    }))
}

/// The query of `POST /v1/queues/{q}/keys`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyParams {
    role: Option<String>,
}

/// The attribute (a CloudEvents extension, `ce-updraftproducer`) naming who produced an event.
pub(crate) const PRODUCER_ATTRIBUTE: &str = "updraftproducer";

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
        if k == PRODUCER_ATTRIBUTE {
            return Err(ApiError::new(
                Code::BadRequest,
                format!(
                    "{at}the attribute `{PRODUCER_ATTRIBUTE}` is set by Updraft (who sent the message)"
                ),
            ));
        }
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
    project: &str,
    producer: &str,
    q: String,
    mut messages: Vec<NewMessage>,
) -> Result<Sent, ApiError> {
    for m in &mut messages {
        m.attributes
            .insert(PRODUCER_ATTRIBUTE.to_owned(), producer.to_owned());
    }
    let queue = q.clone();
    let ids = state.log.send(project, &queue, messages).await?;
    state.wakeups.wake(project, &q);
    Ok(Sent { ids })
}

async fn send(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Extension(Producer(producer)): Extension<Producer>,
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
        Json(send_messages(&state, &project, &producer, q, vec![m]).await?),
    ))
}

async fn send_batch(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Extension(Producer(producer)): Extension<Producer>,
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
        Json(send_messages(&state, &project, &producer, q, messages).await?),
    ))
}

async fn receive(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
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
        let woken = state.wakeups.waiter(&project, &q);
        let got = state
            .log
            .receive(&project, &q, max, visibility, Holder::Client)
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
    Extension(InProject(project)): Extension<InProject>,
    Path(q): Path<String>,
    body: Result<Json<AckRequest>, JsonRejection>,
) -> Result<Json<Deleted>, ApiError> {
    let req = json(body)?;
    if req.receipts.len() > MAX_BATCH {
        return Err(ApiError::new(
            Code::BadRequest,
            format!("at most {MAX_BATCH} receipts"),
        ));
    }
    let deleted = state.log.ack(&project, &q, &req.receipts).await?;
    Ok(Json(Deleted { deleted }))
}

async fn ack_one(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path((q, receipt)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let r = vec![receipt.clone()];
    let n = state.log.ack(&project, &q, &r).await?;
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

async fn purge(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path(q): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let deleted = state.log.purge(&project, &q).await?;
    Ok(Json(Deleted { deleted }))
}

/// Queue depth and age for `/metrics`.
pub(crate) async fn metrics(state: &Arc<AppState>, only: Option<&str>) -> String {
    use std::fmt::Write as _;
    let mine = |p: &str| only.is_none_or(|o| o == p);
    let mut stats = state.log.stats().await.unwrap_or_default();
    stats.retain(|s| mine(&s.project));
    let dead: BTreeMap<(String, String), u64> = state
        .triggers
        .dead_lettered()
        .into_iter()
        .filter(|((project, _), _)| mine(project))
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
    for ((project, q), n) in dead {
        let _ = writeln!(
            out,
            "updraft_events_dead_lettered_total{{project=\"{project}\",queue=\"{q}\"}} {n}"
        );
    }
    out
}

#[cfg(test)]
mod tests;
