//! Live changes over Server-Sent Events: what each subscriber may read, in order, and resuming
//! with `Last-Event-ID` without loss or duplication.

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::{RULES, call, deploy};
use crate::auth::sign_up;
use crate::support::TestServer;

/// An open event stream.
struct Events {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

/// One event: (id, event, data).
type Event = (u64, String, Value);

impl Events {
    async fn open(s: &TestServer, path: &str, token: Option<&str>, last: Option<u64>) -> Self {
        let mut req = call(s, Method::GET, path, token);
        if let Some(l) = last {
            req = req.header("last-event-id", l.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self {
            body: resp.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped).
    async fn next(&mut self) -> Event {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (0, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().unwrap();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if event.is_empty() {
                    continue;
                }
                return (id, event, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an event within 10 s")
                .expect("the stream stays open")
                .unwrap();
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Nothing more arrives for a while.
    async fn quiet(&mut self) {
        let more = tokio::time::timeout(Duration::from_millis(300), self.next()).await;
        assert!(more.is_err(), "unexpected event {more:?}");
    }
}

async fn create(s: &TestServer, token: &str, owner: &str, n: i64) -> String {
    let r = call(s, Method::POST, "/collections/notes/docs", Some(token))
        .json(&json!({"owner": owner, "n": n}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_what_they_may_read_and_resume_without_loss_or_duplicates() {
    let s = TestServer::start().await;
    let (code, body) = deploy(&s, RULES).await;
    assert_eq!(code, 200, "{body}");
    let ann = sign_up(&s, "localhost", "ann@example.com").await;
    let bob = sign_up(&s, "localhost", "bob@example.com").await;
    let token = |v: &Value| v["access_token"].as_str().unwrap().to_owned();
    let uid = |v: &Value| v["user"]["id"].as_str().unwrap().to_owned();
    let (ann_t, ann_id, bob_t, bob_id) = (token(&ann), uid(&ann), token(&bob), uid(&bob));
    let admin = s.token.clone();

    let changes = "/collections/notes/changes";
    let mut all = Events::open(&s, changes, Some(&admin), None).await;
    let mut anns = Events::open(&s, changes, Some(&ann_t), None).await;
    let mut bobs = Events::open(&s, changes, Some(&bob_t), None).await;
    let filtered = "/collections/notes/changes?where=n%20%3E%3D%2010";
    let mut big = Events::open(&s, filtered, Some(&admin), None).await;
    for e in [&mut all, &mut anns, &mut bobs, &mut big] {
        assert_eq!(e.next().await.1, "ready");
    }
    let a1 = create(&s, &ann_t, &ann_id, 1).await;
    let b1 = create(&s, &bob_t, &bob_id, 20).await;
    let a2 = create(&s, &ann_t, &ann_id, 30).await;
    // The admin sees all three, in order; each user only their own; the filter its matches.
    let seen: Vec<Event> = vec![all.next().await, all.next().await, all.next().await];
    let ids: Vec<&str> = seen.iter().map(|e| e.2["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [a1.as_str(), b1.as_str(), a2.as_str()]);
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(seen.iter().all(|e| e.1 == "created"));
    assert_eq!(anns.next().await.2["id"], a1);
    assert_eq!(anns.next().await.2["id"], a2);
    anns.quiet().await;
    assert_eq!(bobs.next().await.2["id"], b1);
    bobs.quiet().await;
    assert_eq!(big.next().await.2["id"], b1);
    assert_eq!(big.next().await.2["id"], a2);

    // Updates and deletes carry what was there before.
    let doc = format!("/collections/notes/docs/{a1}");
    let r = call(&s, Method::PATCH, &doc, Some(&ann_t))
        .json(&json!({"n": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, op, data) = anns.next().await;
    assert_eq!(op, "updated");
    assert_eq!(
        (&data["before"]["n"], &data["data"]["n"]),
        (&json!(1), &json!(2))
    );
    let r = call(&s, Method::DELETE, &doc, Some(&ann_t))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, op, data) = anns.next().await;
    assert_eq!((op.as_str(), &data["data"]), ("deleted", &Value::Null));
    bobs.quiet().await;

    // Resume: the admin's stream has read up to a2's creation; it goes away, more happens,
    // and it comes back with Last-Event-ID: exactly what it missed, once, in order.
    let resume_at = seen[2].0;
    drop(all);
    let b2 = create(&s, &bob_t, &bob_id, 3).await;
    let mut again = Events::open(&s, changes, Some(&admin), Some(resume_at)).await;
    assert_eq!(again.next().await.1, "ready");
    let mut missed = Vec::new();
    for _ in 0..3 {
        let (id, op, data) = again.next().await;
        missed.push((op, data["id"].as_str().unwrap().to_owned(), id));
    }
    assert_eq!(
        missed
            .iter()
            .map(|m| (m.0.as_str(), m.1.as_str()))
            .collect::<Vec<_>>(),
        [
            ("updated", a1.as_str()),
            ("deleted", a1.as_str()),
            ("created", b2.as_str())
        ]
    );
    assert!(missed.iter().all(|m| m.2 > resume_at));
    again.quiet().await;
    // And it keeps following live changes after the replay.
    let b3 = create(&s, &bob_t, &bob_id, 4).await;
    assert_eq!(again.next().await.2["id"], b3);

    // An anonymous subscriber opens a stream, but the rule (which needs `auth`) lets nothing
    // through.
    let mut anon = Events::open(&s, changes, None, None).await;
    assert_eq!(anon.next().await.1, "ready");
    create(&s, &bob_t, &bob_id, 5).await;
    anon.quiet().await;
    // A bad resume point is a clear error.
    let r = call(&s, Method::GET, changes, Some(&admin))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_are_capped_per_project_and_freed_when_clients_leave() {
    let s = TestServer::start_with("[documents]\nmax_streams = 2\n").await;
    let (code, body) = deploy(&s, RULES).await;
    assert_eq!(code, 200, "{body}");
    let admin = s.token.clone();
    let changes = "/collections/open/changes";
    let mut first = Events::open(&s, changes, Some(&admin), None).await;
    let mut second = Events::open(&s, changes, Some(&admin), None).await;
    assert_eq!(first.next().await.1, "ready");
    assert_eq!(second.next().await.1, "ready");
    let r = call(&s, Method::GET, changes, Some(&admin))
        .send()
        .await
        .unwrap();
    let body = crate::support::expect_error(r, 429, "throttled").await;
    assert!(body.to_string().contains("max_streams"), "{body}");
    // A client that goes away frees its place without waiting for a change.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = call(&s, Method::GET, changes, Some(&admin))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_cannot_take_every_stream_of_the_project() {
    let s =
        TestServer::start_with("[documents]\nmax_streams = 10\nmax_streams_per_user = 2\n").await;
    assert_eq!(deploy(&s, RULES).await.0, 200);
    let token = |v: &Value| v["access_token"].as_str().unwrap().to_owned();
    let ann = token(&sign_up(&s, "localhost", "ann@example.com").await);
    let bob = token(&sign_up(&s, "localhost", "bob@example.com").await);
    let changes = "/collections/notes/changes";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut e = Events::open(&s, changes, Some(&ann), None).await;
        assert_eq!(e.next().await.1, "ready");
        held.push(e);
    }
    let r = call(&s, Method::GET, changes, Some(&ann))
        .send()
        .await
        .unwrap();
    let body = crate::support::expect_error(r, 429, "throttled").await;
    assert!(body.to_string().contains("max_streams_per_user"), "{body}");
    // Another user, and keys, still get theirs.
    let mut b = Events::open(&s, changes, Some(&bob), None).await;
    assert_eq!(b.next().await.1, "ready");
    let mut k = Events::open(&s, changes, Some(&s.token), None).await;
    assert_eq!(k.next().await.1, "ready");
    s.stop().await;
}
