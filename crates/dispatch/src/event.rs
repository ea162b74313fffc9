//! Events as invocations see them: CloudEvents 1.0, and their HTTP encoding.
//!
//! Event triggers (schedule, queue, topic, asynchronous invoke) hand the dispatcher [`Events`];
//! a runtime decides how its guests receive them. Runtimes whose guests speak HTTP (wasm
//! components in the `wasi:http/proxy` world) use [`Events::to_http`]: one event in CloudEvents
//! binary mode (attributes in `ce-` headers, the body is the data), a batch in batched mode
//! (`application/cloudevents-batch+json`), both with `x-updraft-attempt`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use updraft_api::headers;

use crate::body::Body;

/// One CloudEvent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// `id`.
    pub id: String,
    /// `source`: where it comes from (`/queues/orders`).
    pub source: String,
    /// `type`.
    pub kind: String,
    /// `time`, in ms since the epoch.
    pub time_ms: i64,
    /// `datacontenttype`.
    pub content_type: String,
    /// Extension attributes (only valid CloudEvents names are sent), and `subject` (the
    /// CloudEvents attribute, when present).
    pub attributes: BTreeMap<String, String>,
    /// The data.
    pub data: Vec<u8>,
}

/// The events of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events {
    /// One event, or a batch.
    pub events: Vec<Event>,
    /// Whether they are delivered as a batch (a trigger's `batch_size` > 1), even if only one
    /// is ready.
    pub batched: bool,
    /// Which delivery attempt this is (1 for the first).
    pub attempt: u32,
}

impl Events {
    /// The events as one HTTP request: a `POST /` in CloudEvents binary mode (one event) or
    /// batched mode, with `x-updraft-attempt`.
    ///
    /// # Errors
    /// A message when an event cannot be encoded (an attribute that is not a valid header
    /// value, say): a bad event, which no retry can fix.
    pub fn to_http(&self) -> Result<Request<Body>, String> {
        let req = match self.events.as_slice() {
            [one] if !self.batched => binary_request(one),
            batch => batch_request(batch),
        };
        let mut req = req.map_err(|e| e.to_string())?;
        req.headers_mut()
            .insert(headers::ATTEMPT, HeaderValue::from(self.attempt));
        Ok(req)
    }
}

/// Names of CloudEvents extension attributes: lower-case letters and digits, at most 20.
pub fn is_extension_name(k: &str) -> bool {
    (1..=20).contains(&k.len())
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !matches!(
            k,
            "id" | "source"
                | "type"
                | "time"
                | "specversion"
                | "subject"
                | "dataschema"
                | "datacontenttype"
                | "data"
        )
}

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// One event as a CloudEvents 1.0 binary-mode request: attributes in `ce-` headers, the body
/// is the data.
fn binary_request(m: &Event) -> Result<Request<Body>, http::Error> {
    let mut req = Request::post("/")
        .header("ce-specversion", "1.0")
        .header("ce-id", &m.id)
        .header("ce-source", &m.source)
        .header("ce-type", &m.kind)
        .header("ce-time", crate::rfc3339(m.time_ms))
        .header(http::header::CONTENT_TYPE, &m.content_type);
    for (k, v) in &m.attributes {
        if is_extension_name(k) || k == "subject" {
            req = req.header(format!("ce-{k}"), v);
        }
    }
    req.body(full(m.data.clone()))
}

/// A batch as one CloudEvents 1.0 batched-mode request: a JSON array of structured events.
fn batch_request(batch: &[Event]) -> Result<Request<Body>, http::Error> {
    let events: Vec<serde_json::Value> = batch
        .iter()
        .map(|m| {
            let mut e = serde_json::json!({
                "specversion": "1.0",
                "id": m.id,
                "source": m.source,
                "type": m.kind,
                "time": crate::rfc3339(m.time_ms),
                "datacontenttype": m.content_type,
            });
            for (k, v) in &m.attributes {
                if is_extension_name(k) || k == "subject" {
                    e[k] = serde_json::Value::String(v.clone());
                }
            }
            let json =
                m.content_type.starts_with("application/json") || m.content_type.ends_with("+json");
            match (json, serde_json::from_slice::<serde_json::Value>(&m.data)) {
                (true, Ok(v)) => e["data"] = v,
                _ => match std::str::from_utf8(&m.data) {
                    Ok(s) => e["data"] = serde_json::Value::String(s.to_owned()),
                    Err(_) => {
                        e["data_base64"] = serde_json::Value::String(STANDARD.encode(&m.data));
                    }
                },
            }
            e
        })
        .collect();
    let body = serde_json::to_vec(&events).unwrap_or_default();
    Request::post("/")
        .header(
            http::header::CONTENT_TYPE,
            "application/cloudevents-batch+json",
        )
        .body(full(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_names() {
        assert!(is_extension_name("plan"));
        assert!(is_extension_name("tenant42"));
        assert!(!is_extension_name("Plan"));
        assert!(!is_extension_name("my-attr"));
        assert!(!is_extension_name("id"));
        assert!(!is_extension_name("averyveryverylongattributename"));
    }
}
