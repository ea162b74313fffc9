use std::collections::BTreeMap;

use http_body_util::BodyExt;

use super::*;

fn body_of(bytes: &'static [u8]) -> Body {
    full(Bytes::from_static(bytes))
}

#[tokio::test]
async fn an_http_request_becomes_an_api_gateway_v2_event() {
    let req = http::Request::builder()
        .method("POST")
        .uri("/users/42?b=2&a=1&a=x%20y")
        .header("host", "shop.localhost:3000")
        .header("content-type", "application/json")
        .header("cookie", "s=1; t=2")
        .header("x-custom", "one")
        .header("x-updraft-route", "/users/:id")
        .header("x-updraft-param-id", "42")
        .header(
            "x-updraft-claims",
            r#"{"sub":"u1","role":"admin","exp":1700000000}"#,
        )
        .header("x-updraft-user-id", "u1")
        .body(body_of(br#"{"n":1}"#))
        .unwrap();
    let event: Value = serde_json::from_slice(&http_event(req, "req-1").await.unwrap()).unwrap();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "POST /users/:id");
    assert_eq!(event["rawPath"], "/users/42");
    assert_eq!(event["rawQueryString"], "b=2&a=1&a=x%20y");
    assert_eq!(event["queryStringParameters"]["a"], "1,x y");
    assert_eq!(event["pathParameters"]["id"], "42");
    assert_eq!(event["cookies"], json!(["s=1", "t=2"]));
    assert_eq!(event["headers"]["x-custom"], "one");
    assert!(
        event["headers"].get("x-updraft-claims").is_none(),
        "{event}"
    );
    assert!(event["headers"].get("cookie").is_none());
    assert_eq!(event["body"], r#"{"n":1}"#);
    assert_eq!(event["isBase64Encoded"], false);
    let ctx = &event["requestContext"];
    assert_eq!(ctx["http"]["method"], "POST");
    assert_eq!(ctx["requestId"], "req-1");
    assert_eq!(ctx["domainName"], "shop.localhost:3000");
    assert_eq!(ctx["authorizer"]["jwt"]["claims"]["role"], "admin");
    assert_eq!(ctx["authorizer"]["jwt"]["claims"]["exp"], "1700000000");

    // Binary bodies are base64.
    let req = http::Request::builder()
        .method("PUT")
        .uri("/blob")
        .header("content-type", "application/octet-stream")
        .body(body_of(&[0xff, 0x00, 0x01]))
        .unwrap();
    let event: Value = serde_json::from_slice(&http_event(req, "r").await.unwrap()).unwrap();
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], STANDARD.encode([0xff, 0x00, 0x01]));
    assert_eq!(event["routeKey"], "$default");
    assert!(event["requestContext"].get("authorizer").is_none());
}

async fn read(resp: Response<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test]
async fn results_map_back_as_api_gateway_does() {
    let r = json!({
        "statusCode": 201,
        "headers": {"content-type": "text/plain", "x-n": 5},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": "made",
    });
    let (status, headers, body) = read(response(&Shape::Http, Bytes::from(r.to_string()))).await;
    assert_eq!(status, 201);
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["x-n"], "5");
    assert_eq!(headers.get_all("set-cookie").iter().count(), 2);
    assert_eq!(body, "made");

    let r =
        json!({"statusCode": 200, "body": STANDARD.encode(b"\x00\x01"), "isBase64Encoded": true});
    let (_, _, body) = read(response(&Shape::Http, Bytes::from(r.to_string()))).await;
    assert_eq!(&body[..], b"\x00\x01");

    // A plain JSON result is a 200 application/json body.
    let (status, headers, body) = read(response(
        &Shape::Http,
        Bytes::from_static(br#"{"hello":"world"}"#),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body, r#"{"hello":"world"}"#);
}

fn event(id: &str, source: &str, data: &str) -> Event {
    Event {
        id: id.into(),
        source: source.into(),
        kind: "updraft.queue.message".into(),
        time_ms: 1_700_000_000_000,
        content_type: "application/json".into(),
        attributes: BTreeMap::new(),
        data: data.as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn queue_batches_are_sqs_events_with_partial_failures() {
    let events = Events {
        events: vec![
            event("m1", "/queues/orders", "one"),
            event("m2", "/queues/orders", "two"),
        ],
        batched: true,
        attempt: 1,
    };
    let (payload, shape) = events_payload(Trigger::Queue, &events);
    assert_eq!(shape, Shape::Queue);
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(v["Records"][1]["messageId"], "m2");
    assert_eq!(v["Records"][1]["body"], "two");
    assert_eq!(v["Records"][0]["eventSource"], "aws:sqs");
    assert!(
        v["Records"][0]["eventSourceARN"]
            .as_str()
            .unwrap()
            .ends_with(":orders")
    );

    let result = json!({"batchItemFailures": [{"itemIdentifier": "m2"}]});
    let (status, headers, _) = read(response(&shape, Bytes::from(result.to_string()))).await;
    assert_eq!(status, 200);
    assert_eq!(headers[FAILED_EVENTS], "m2");
}

#[test]
fn other_triggers_get_their_lambda_shapes() {
    let one = |e: Event| Events {
        events: vec![e],
        batched: false,
        attempt: 1,
    };
    let (p, _) = events_payload(Trigger::Schedule, &one(event("s1", "/schedules/f/0", "")));
    let v: Value = serde_json::from_slice(&p).unwrap();
    assert_eq!(v["detail-type"], "Scheduled Event");
    assert_eq!(v["source"], "aws.events");
    assert_eq!(v["time"], "2023-11-14T22:13:20Z");

    let (p, _) = events_payload(Trigger::Topic, &one(event("t1", "/topics/news", "hello")));
    let v: Value = serde_json::from_slice(&p).unwrap();
    assert_eq!(v["Records"][0]["Sns"]["Message"], "hello");
    assert_eq!(
        v["Records"][0]["Sns"]["TopicArn"],
        "arn:aws:sns:us-east-1:000000000000:news"
    );

    let (p, shape) = events_payload(Trigger::Async, &one(event("a1", "/invoke", r#"{"x":1}"#)));
    assert_eq!((p.as_slice(), shape), (&br#"{"x":1}"#[..], Shape::Raw));

    let s3 = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"a.png"}}}]}"#;
    let (p, _) = events_payload(Trigger::Bucket, &one(event("b1", "/buckets/up", s3)));
    let v: Value = serde_json::from_slice(&p).unwrap();
    assert_eq!(v["Records"][0]["s3"]["object"]["key"], "a.png");
}
