//! Lambda's event shapes: what a handler receives for each trigger, and how its result becomes
//! a response.
//!
//! | trigger | event |
//! | --- | --- |
//! | HTTP route | API Gateway HTTP API payload **2.0** (result mapped back: `statusCode`, `headers`, `cookies`, `body`, `isBase64Encoded`) |
//! | `updraft invoke`, async invoke | the raw JSON payload |
//! | queue | an SQS event (`Records[]`), `batchItemFailures` honoured |
//! | topic | an SNS event |
//! | schedule | an EventBridge "Scheduled Event" |
//! | bucket | the S3 event notification the trigger already carries |
//! | db, kv | the CloudEvents as JSON (`specversion`, `id`, `type`, `source`, `data`) |
//!
//! The shapes are written here with `serde_json` rather than taken from `aws_lambda_events`:
//! the tests check them from the other side, through the official runtime clients and the
//! Rust `aws_lambda_events` types a `lambda_runtime` bootstrap deserialises them into.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};
use updraft_api::Trigger;
use updraft_dispatch::{Body, BodyError, Event, Events};

/// The region the platform reports (`AWS_REGION`, ARNs, event records).
pub(crate) const REGION: &str = "us-east-1";
/// The account id in ARNs.
pub(crate) const ACCOUNT: &str = "000000000000";

/// How to read a handler's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// An API Gateway v2.0 result.
    Http,
    /// The bytes as they are (`application/json`).
    Raw,
    /// An SQS batch: `batchItemFailures` name the message ids that failed.
    Queue,
}

pub use updraft_api::headers::FAILED_EVENTS;

/// An HTTP request as the API Gateway v2.0 event.
pub(crate) async fn http_event(
    req: http::Request<Body>,
    request_id: &str,
) -> Result<Vec<u8>, BodyError> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let now = jiff::Timestamp::now();
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    let mut params = Map::new();
    let (mut route, mut claims, mut user) = (None, None, None);
    for (name, value) in &parts.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let n = name.as_str();
        if let Some(p) = n.strip_prefix("x-updraft-param-") {
            params.insert(p.to_owned(), Value::String(v));
        } else if n == "x-updraft-route" {
            route = Some(v);
        } else if n == "x-updraft-claims" {
            claims = serde_json::from_str::<Value>(&v).ok();
        } else if n == "x-updraft-user-id" {
            user = Some(v);
        } else if n == "cookie" {
            cookies.extend(v.split(';').map(|c| Value::String(c.trim().to_owned())));
        } else if n.starts_with("x-updraft-") {
            continue;
        } else {
            // Repeated headers are joined with commas, as API Gateway does.
            match headers.get_mut(n) {
                Some(Value::String(prev)) => {
                    prev.push(',');
                    prev.push_str(&v);
                }
                _ => {
                    headers.insert(n.to_owned(), Value::String(v));
                }
            }
        }
    }
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let mut query_params = Map::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match query_params.get_mut(k.as_ref()) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                query_params.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    let route_key = route.map_or_else(|| "$default".to_owned(), |r| format!("{method} {r}"));
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let source_ip = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(',').next())
        .unwrap_or("127.0.0.1")
        .trim()
        .to_owned();
    let text = std::str::from_utf8(&body)
        .ok()
        .filter(|_| is_text(&parts.headers));
    let (body, encoded) = match text {
        _ if body.is_empty() => (Value::Null, false),
        Some(t) => (Value::String(t.to_owned()), false),
        None => (Value::String(STANDARD.encode(&body)), true),
    };
    let mut context = json!({
        "accountId": ACCOUNT,
        "apiId": "updraft",
        "domainName": host,
        "domainPrefix": host.split('.').next().unwrap_or(""),
        "http": {
            "method": method,
            "path": path,
            "protocol": format!("{:?}", parts.version),
            "sourceIp": source_ip,
            "userAgent": parts.headers.get(header::USER_AGENT).and_then(|h| h.to_str().ok()).unwrap_or(""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        "timeEpoch": now.as_millisecond(),
    });
    if claims.is_some() || user.is_some() {
        // API Gateway hands claims over as strings (numbers and lists as their text).
        let mut strings: Map<String, Value> = claims
            .as_ref()
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), Value::String(text))
            })
            .collect();
        if let Some(u) = user {
            strings.entry("sub").or_insert(Value::String(u));
        }
        context["authorizer"] = json!({"jwt": {"claims": strings, "scopes": null}});
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": encoded,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query_params.is_empty() {
        event["queryStringParameters"] = Value::Object(query_params);
    }
    if !params.is_empty() {
        event["pathParameters"] = Value::Object(params);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    Ok(event.to_string().into_bytes())
}

/// Whether a body with these headers is text (sent as is) rather than binary (base64).
fn is_text(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let ct = ct.to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.starts_with("application/x-www-form-urlencoded")
}

/// Events as the payload a Lambda handler expects for `trigger`, and how to read its result.
pub(crate) fn events_payload(trigger: Trigger, events: &Events) -> (Vec<u8>, Shape) {
    let value = match trigger {
        Trigger::Queue => {
            let records: Vec<Value> = events.events.iter().map(sqs_record).collect();
            return (
                json!({"Records": records}).to_string().into_bytes(),
                Shape::Queue,
            );
        }
        Trigger::Topic => {
            json!({"Records": events.events.iter().map(sns_record).collect::<Vec<_>>()})
        }
        Trigger::Schedule => match events.events.as_slice() {
            [one] => scheduled(one),
            many => Value::Array(many.iter().map(scheduled).collect()),
        },
        Trigger::Bucket => {
            // Each event's data is an S3 notification; merge their records.
            let records: Vec<Value> = events
                .events
                .iter()
                .flat_map(|e| {
                    serde_json::from_slice::<Value>(&e.data)
                        .ok()
                        .and_then(|v| v.get("Records").cloned())
                        .and_then(|r| r.as_array().cloned())
                        .unwrap_or_default()
                })
                .collect();
            json!({"Records": records})
        }
        Trigger::Async | Trigger::Invoke => match events.events.as_slice() {
            [one] if !events.batched => return (one.data.clone(), Shape::Raw),
            many => Value::Array(many.iter().map(data_value).collect()),
        },
        _ => match events.events.as_slice() {
            [one] if !events.batched => cloudevent(one),
            many => Value::Array(many.iter().map(cloudevent).collect()),
        },
    };
    (value.to_string().into_bytes(), Shape::Raw)
}

/// An event's data as JSON, or as a string when it is not JSON.
fn data_value(e: &Event) -> Value {
    serde_json::from_slice(&e.data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&e.data).into_owned()))
}

fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn sqs_record(e: &Event) -> Value {
    let queue = e.source.rsplit('/').next().unwrap_or("");
    let body = String::from_utf8_lossy(&e.data).into_owned();
    let attributes: Map<String, Value> = e
        .attributes
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!({"stringValue": v, "dataType": "String", "stringListValues": [], "binaryListValues": []}),
            )
        })
        .collect();
    json!({
        "messageId": e.id,
        "receiptHandle": e.id,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": e.time_ms.to_string(),
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": e.time_ms.to_string(),
        },
        "messageAttributes": attributes,
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"),
        "awsRegion": REGION,
    })
}

fn sns_record(e: &Event) -> Value {
    let topic = e.source.rsplit('/').next().unwrap_or("");
    let arn = format!("arn:aws:sns:{REGION}:{ACCOUNT}:{topic}");
    json!({
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{arn}:updraft"),
        "Sns": {
            "Type": "Notification",
            "MessageId": e.id,
            "TopicArn": arn,
            "Subject": e.attributes.get("subject"),
            "Message": String::from_utf8_lossy(&e.data),
            "Timestamp": time(e.time_ms),
            "SignatureVersion": "1",
            "Signature": "",
            "SigningCertUrl": "",
            "UnsubscribeUrl": "",
            "MessageAttributes": {},
        }
    })
}

fn scheduled(e: &Event) -> Value {
    json!({
        "version": "0",
        "id": e.id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time(e.time_ms),
        "region": REGION,
        "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT}:rule{}", e.source)],
        "detail": {},
    })
}

fn cloudevent(e: &Event) -> Value {
    let mut v = json!({
        "specversion": "1.0",
        "id": e.id,
        "source": e.source,
        "type": e.kind,
        "time": time(e.time_ms),
        "datacontenttype": e.content_type,
        "data": data_value(e),
    });
    if let Some(obj) = v.as_object_mut() {
        for (k, val) in &e.attributes {
            obj.entry(k.clone()).or_insert(Value::String(val.clone()));
        }
    }
    v
}

/// A handler's result as the response the caller gets.
pub(crate) fn response(shape: &Shape, result: Bytes) -> Response<Body> {
    match shape {
        Shape::Http => http_response(&result),
        Shape::Raw => json_response(StatusCode::OK, result),
        Shape::Queue => {
            let failed: Vec<String> = serde_json::from_slice::<Value>(&result)
                .ok()
                .and_then(|v| v.get("batchItemFailures").cloned())
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                .collect();
            let mut resp = json_response(StatusCode::OK, result);
            if !failed.is_empty()
                && let Ok(v) = HeaderValue::from_str(&failed.join(","))
            {
                resp.headers_mut().insert(FAILED_EVENTS, v);
            }
            resp
        }
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed_unsync()
}

/// API Gateway v2.0's response mapping: an object with `statusCode` is a response; any other
/// JSON (or a non-JSON result) is a 200 `application/json` body.
fn http_response(result: &Bytes) -> Response<Body> {
    let parsed: Option<Value> = serde_json::from_slice(result).ok();
    let Some(Value::Object(obj)) = parsed.as_ref().filter(|v| v.get("statusCode").is_some()) else {
        return json_response(StatusCode::OK, result.clone());
    };
    let status = obj
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match obj.get("body") {
        Some(Value::String(s)) if obj.get("isBase64Encoded") == Some(&Value::Bool(true)) => {
            Bytes::from(STANDARD.decode(s).unwrap_or_default())
        }
        Some(Value::String(s)) => Bytes::from(s.clone()),
        None | Some(Value::Null) => Bytes::new(),
        Some(other) => Bytes::from(other.to_string()),
    };
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    for (k, v) in obj
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let value = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            h.insert(k, v);
        }
    }
    for c in obj
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(Ok(v)) = c.as_str().map(HeaderValue::from_str) {
            h.append(header::SET_COOKIE, v);
        }
    }
    if !h.contains_key(header::CONTENT_TYPE) {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    resp
}

#[cfg(test)]
mod tests;
