//! Queue keys on the data plane: a key does only what its role allows and only on its own
//! queue, receipts ack only in their queue, and a missing queue looks exactly like a wrong key.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestServer;

async fn create(s: &TestServer, name: &str) -> String {
    let resp = s
        .api(Method::POST, "/v1/queues")
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    v["access_key"].as_str().unwrap().to_owned()
}

async fn scoped_key(s: &TestServer, queue: &str, role: &str) -> String {
    let resp = s
        .api(
            Method::POST,
            &format!("/v1/queues/{queue}/keys?role={role}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["role"], role, "{v}");
    v["access_key"].as_str().unwrap().to_owned()
}

/// Calls the data plane's queue API; returns the status and the JSON body.
async fn call(s: &TestServer, method: Method, path: &str, key: &str, body: Value) -> (u16, Value) {
    let resp = s
        .http
        .request(method, s.url(&format!("/_updraft/queues/{path}")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn depth(s: &TestServer, queue: &str) -> u64 {
    s.api_json(&format!("/v1/queues/{queue}")).await["depth"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn queue_keys_do_only_what_their_role_allows_on_their_own_queue() {
    let s = TestServer::start().await;
    let jobs = create(&s, "jobs").await;
    let other = create(&s, "other").await;
    let send = scoped_key(&s, "jobs", "send").await;
    let consume = scoped_key(&s, "jobs", "consume").await;
    let msg = json!({"body": "x"});
    let none = json!({});

    // A missing queue answers exactly like a wrong key: names can't be probed.
    let missing = call(&s, Method::POST, "ghost/messages", &jobs, msg.clone()).await;
    let wrong = call(&s, Method::POST, "jobs/messages", &other, msg.clone()).await;
    assert_eq!(missing.0, 401);
    assert_eq!(missing, wrong);

    // Send-only: sends, never receives, acks or purges.
    assert_eq!(
        call(&s, Method::POST, "jobs/messages", &send, msg.clone())
            .await
            .0,
        201
    );
    let batch = json!({"messages": [{"body": "y"}]});
    assert_eq!(
        call(&s, Method::POST, "jobs/messages/batch", &send, batch)
            .await
            .0,
        201
    );
    for (method, path) in [
        (Method::POST, "jobs/messages/receive"),
        (Method::POST, "jobs/messages/ack"),
        (Method::DELETE, "jobs/messages/r1"),
        (Method::POST, "jobs/purge"),
    ] {
        let (status, body) = call(&s, method.clone(), path, &send, json!({"receipts": []})).await;
        assert_eq!(status, 401, "{method} {path} with a send-only key: {body}");
    }
    assert_eq!(
        call(&s, Method::GET, "jobs", &send, none.clone()).await.0,
        200
    );

    // Consume-only: receives and acks, never sends or purges.
    assert_eq!(
        call(&s, Method::POST, "jobs/messages", &consume, msg.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        call(&s, Method::POST, "jobs/purge", &consume, none.clone())
            .await
            .0,
        401
    );
    let (status, got) = call(
        &s,
        Method::POST,
        "jobs/messages/receive",
        &consume,
        json!({"max": 10}),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    let receipts: Vec<String> = got["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["receipt"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(receipts.len(), 2);

    // Another queue's key can't ack these receipts through its own queue's path.
    let (status, deleted) = call(
        &s,
        Method::POST,
        "other/messages/ack",
        &other,
        json!({"receipts": receipts}),
    )
    .await;
    assert_eq!((status, deleted["deleted"].as_u64()), (200, Some(0)));
    assert_eq!(depth(&s, "jobs").await, 2);
    let (status, deleted) = call(
        &s,
        Method::POST,
        "jobs/messages/ack",
        &consume,
        json!({"receipts": receipts}),
    )
    .await;
    assert_eq!((status, deleted["deleted"].as_u64()), (200, Some(2)));
    assert_eq!(depth(&s, "jobs").await, 0);

    // Rotating the queue's key revokes the scoped ones.
    let rotated = s
        .api(Method::POST, "/v1/queues/jobs/keys")
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    assert_eq!(
        call(&s, Method::POST, "jobs/messages", &send, msg.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        call(&s, Method::POST, "jobs/messages", &jobs, msg).await.0,
        401
    );

    // A bad role is a clear 400.
    let resp = s
        .api(Method::POST, "/v1/queues/jobs/keys?role=admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    s.stop().await;
}

#[tokio::test]
async fn a_full_queue_refuses_sends_with_429_until_consumers_catch_up() {
    let s = TestServer::start_with("[events]\nmax_queue_depth = 3\n").await;
    let key = create(&s, "jobs").await;
    for _ in 0..3 {
        let (status, body) = call(
            &s,
            Method::POST,
            "jobs/messages",
            &key,
            json!({"body": "x"}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = call(
        &s,
        Method::POST,
        "jobs/messages",
        &key,
        json!({"body": "x"}),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "queue_full", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_queue_depth"),
        "{body}"
    );
    // A batch that would pass the limit stores nothing.
    let batch = json!({"messages": [{"body": "a"}, {"body": "b"}]});
    assert_eq!(
        call(&s, Method::POST, "jobs/messages/batch", &key, batch)
            .await
            .0,
        429
    );
    assert_eq!(depth(&s, "jobs").await, 3);
    // Once a consumer deletes one, there is room again.
    let (_, got) = call(
        &s,
        Method::POST,
        "jobs/messages/receive",
        &key,
        json!({"max": 1}),
    )
    .await;
    let receipt = got["messages"][0]["receipt"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &s,
        Method::POST,
        "jobs/messages/ack",
        &key,
        json!({"receipts": [receipt]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        call(
            &s,
            Method::POST,
            "jobs/messages",
            &key,
            json!({"body": "y"})
        )
        .await
        .0,
        201
    );
    s.stop().await;
}
