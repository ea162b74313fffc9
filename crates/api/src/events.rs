//! Wire types of queues, topics and asynchronous invokes (control API under `/v1/queues`,
//! `/v1/topics`, `/v1/async`, and the data-plane API under `/_updraft/`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest queue or topic name.
pub const MAX_RESOURCE_NAME: usize = 80;

/// Checks a queue or topic name: 1 to 80 lower-case letters, digits, `-` and `_`, starting with
/// a letter.
///
/// # Errors
/// A message naming the rule the name breaks.
pub fn check_resource_name(kind: &str, s: &str) -> Result<(), String> {
    let ok = (1..=MAX_RESOURCE_NAME).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid {kind} name: use 1 to {MAX_RESOURCE_NAME} lower-case letters, \
             digits, '-' and '_', starting with a letter"
        ))
    }
}

/// An attribute filter of a topic subscription: every named attribute must be present with
/// one of the listed values. In TOML and JSON each value is a string or a list of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Filter(pub BTreeMap<String, Vec<String>>);

impl Filter {
    /// Whether a message with `attributes` passes.
    pub fn matches(&self, attributes: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, allowed)| {
            attributes
                .get(k)
                .is_some_and(|v| allowed.iter().any(|a| a == v))
        })
    }

    /// Whether it lets everything through.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let raw = BTreeMap::<String, OneOrMany>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (k, v) in raw {
            let values = match v {
                OneOrMany::One(s) => vec![s],
                OneOrMany::Many(v) if v.is_empty() => {
                    return Err(serde::de::Error::custom(format!(
                        "filter `{k}` lists no values"
                    )));
                }
                OneOrMany::Many(v) => v,
            };
            out.insert(k, values);
        }
        Ok(Filter(out))
    }
}

/// `POST /v1/queues`: create a queue (idempotent: an existing queue keeps its messages and key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateQueue {
    /// Its name.
    pub name: String,
    /// How long a received message stays invisible before it can be received again (`30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout: Option<String>,
    /// Largest message body accepted (`256KiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<String>,
}

/// Response to `POST /v1/queues` and `POST /v1/queues/{q}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCreated {
    /// The queue.
    pub queue: QueueInfo,
    /// Whether this call created it.
    pub created: bool,
    /// Its data-plane access key, shown only when it is made (on creation and on rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// What the key may do: `full` (the queue's key), `send` or `consume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// A queue and its depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueInfo {
    /// Its name.
    pub name: String,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
    /// Default visibility timeout of a receive, in ms.
    pub visibility_timeout_ms: u64,
    /// Largest message body accepted, in bytes.
    pub max_message_bytes: u64,
    /// Messages in it (visible, delayed and in flight).
    pub depth: u64,
    /// Messages received and not yet deleted whose lease is still running.
    pub in_flight: u64,
    /// Messages sent with a delay that has not passed, or waiting for a retry.
    pub delayed: u64,
    /// Age of its oldest message in ms (0 when empty).
    pub oldest_age_ms: u64,
    /// Functions consuming it (`[[functions.queue]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<String>,
}

/// Response to `GET /v1/queues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueList {
    /// Queues by name.
    pub queues: Vec<QueueInfo>,
}

/// One message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// The body (UTF-8 text; JSON is sent as a string).
    pub body: String,
    /// Its media type (default `text/plain; charset=utf-8`, or `application/json` when the
    /// body parses as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// String attributes (topic filters match on them; delivered as CloudEvents extensions).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// How long it stays invisible after it is sent (`10s`, at most 15 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
}

/// `POST .../messages/batch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBatch {
    /// The messages, stored in one transaction (all or none).
    pub messages: Vec<SendMessage>,
}

/// Response to a send: the ids of the messages stored, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Message ids (the `ce-id` they are delivered with).
    pub ids: Vec<String>,
}

/// `POST .../messages/receive`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    /// Most messages to return (1 to 100, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// How long they stay invisible (default: the queue's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout: Option<String>,
    /// How long to wait for a message when there is none (long polling, at most `20s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
}

/// A failed delivery attempt, kept with the message (and in the dead-letter queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// When it ended (ms since the epoch).
    pub at_ms: i64,
    /// The function that was called.
    pub function: String,
    /// The HTTP status it answered with (0 when there was no response).
    pub status: u16,
    /// What went wrong.
    pub error: String,
    /// The invocation's request id (its logs and record).
    pub request_id: String,
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    /// Its id.
    pub id: String,
    /// The handle that deletes it (valid until its lease runs out).
    pub receipt: String,
    /// Its body.
    pub body: String,
    /// Its media type.
    pub content_type: String,
    /// Its attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// When it was first sent (ms since the epoch).
    pub sent_ms: i64,
    /// How many times it has been received (this one included).
    pub receive_count: u32,
    /// Where it came from (`/queues/orders`, `/topics/signups`, `/functions/f/schedules/0`).
    pub source: String,
    /// Its CloudEvents type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Failed deliveries to functions (a dead-lettered message's history).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<AttemptError>,
}

/// Response to a receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// The messages, oldest first (empty when none became visible in time).
    pub messages: Vec<ReceivedMessage>,
}

/// `POST .../messages/ack`: delete received messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Their receipts.
    pub receipts: Vec<String>,
}

/// Response to an ack or a purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// How many messages were deleted.
    pub deleted: u64,
}

/// `POST /v1/topics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    /// Its name.
    pub name: String,
}

/// A topic and its subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// Its name.
    pub name: String,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
    /// Who receives its publications.
    pub subscriptions: Vec<Subscription>,
}

/// Response to `POST /v1/topics` and `POST /v1/topics/{t}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicCreated {
    /// The topic.
    pub topic: TopicInfo,
    /// Whether this call created it.
    pub created: bool,
    /// Its data-plane publish key, shown only when it is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
}

/// Response to `GET /v1/topics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicList {
    /// Topics by name.
    pub topics: Vec<TopicInfo>,
}

/// A subscription: a queue (`PUT /v1/topics/{t}/subscriptions/{queue}`) or a function
/// (`[[functions.topic]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// `queue` or `function`.
    pub kind: String,
    /// The queue or function name.
    pub target: String,
    /// Its attribute filter.
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub filter: Filter,
}

/// Body of `PUT /v1/topics/{t}/subscriptions/{queue}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// Its attribute filter.
    #[serde(default)]
    pub filter: Filter,
}

/// Response to a publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The event id.
    pub id: String,
    /// How many subscriptions matched (each got a copy).
    pub delivered_to: u64,
}

/// What became of an asynchronous invoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsyncStatus {
    /// Waiting for its first attempt.
    Queued,
    /// An attempt failed; it will be retried.
    Retrying,
    /// An attempt returned 2xx.
    Succeeded,
    /// Every attempt failed; the event is in the function's dead-letter queue.
    Failed,
}

impl AsyncStatus {
    /// Its snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AsyncStatus::Queued => "queued",
            AsyncStatus::Retrying => "retrying",
            AsyncStatus::Succeeded => "succeeded",
            AsyncStatus::Failed => "failed",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            AsyncStatus::Queued,
            AsyncStatus::Retrying,
            AsyncStatus::Succeeded,
            AsyncStatus::Failed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// An asynchronous invoke (`POST /v1/functions/{f}/invocations?async=true` answers 202 with
/// it; `GET /v1/async/{id}` reads it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncInvocation {
    /// Its id (also the event's `ce-id`).
    pub id: String,
    /// The function.
    pub function: String,
    /// Its state.
    pub status: AsyncStatus,
    /// The idempotency key it was submitted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// When it was accepted (ms since the epoch).
    pub created_ms: i64,
    /// When it last changed.
    pub updated_ms: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// The request id of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The HTTP status of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// The body of a successful response (up to 256 KiB, as text; lossy for binary bodies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// The last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Checks a bucket name against S3's rules (3 to 63 characters of lower-case letters, digits,
/// `-` and `.`, starting and ending with a letter or digit, not an IP address, no `..`).
///
/// # Errors
/// What is wrong with it.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("bucket name `{name}` {why}"));
    if !(3..=63).contains(&name.len()) {
        return bad("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return bad("may hold only lower-case letters, digits, `-` and `.`");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !name.bytes().next().is_some_and(edge) || !name.bytes().last().is_some_and(edge) {
        return bad("must start and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("must not hold `..`, `.-` or `-.`");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be an IP address");
    }
    Ok(())
}

/// One bucket of a grant (`uploads`, `uploads:read`, `thumbs:write`): what an S3 access key or
/// a function may do there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketAccess {
    /// The bucket.
    pub bucket: String,
    /// May read its objects and list them.
    pub read: bool,
    /// May write and delete its objects.
    pub write: bool,
}

/// Parses grants written `bucket` (read and write), `bucket:read` or `bucket:write`, merging
/// those of one bucket, in the order first named.
///
/// # Errors
/// The first grant that is not one of these, or names an invalid bucket.
pub fn parse_bucket_grants(specs: &[String]) -> Result<Vec<BucketAccess>, String> {
    let mut out: Vec<BucketAccess> = Vec::new();
    for spec in specs {
        let (bucket, read, write) = match spec.split_once(':') {
            None => (spec.as_str(), true, true),
            Some((b, "read")) => (b, true, false),
            Some((b, "write")) => (b, false, true),
            Some((_, other)) => {
                return Err(format!(
                    "grant `{spec}`: `{other}` is not `read` or `write` (write `bucket`, \
                     `bucket:read` or `bucket:write`)"
                ));
            }
        };
        check_bucket_name(bucket).map_err(|e| format!("grant `{spec}`: {e}"))?;
        match out.iter_mut().find(|g| g.bucket == bucket) {
            Some(g) => {
                g.read |= read;
                g.write |= write;
            }
            None => out.push(BucketAccess {
                bucket: bucket.to_owned(),
                read,
                write,
            }),
        }
    }
    Ok(out)
}

/// The media type of a file by its name's extension (`application/octet-stream` if unknown):
/// what static sites serve and `updraft cp` uploads with.
pub fn media_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs" | "cjs") => "text/javascript; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("wasm") => "application/wasm",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/x-icon",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("ttf") => "font/ttf",
        Some("otf") => "font/otf",
        Some("pdf") => "application/pdf",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mp3") => "audio/mpeg",
        Some("csv") => "text/csv; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        _ => "application/octet-stream",
    }
}
