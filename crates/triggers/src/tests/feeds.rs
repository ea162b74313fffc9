//! `[[functions.db]]` feeds against a scripted change source.

use serde_json::{Value, json};
use tokio::sync::watch;

use super::*;

/// A change source whose changes the test appends.
struct Scripted {
    changes: Mutex<Vec<(Source, Change)>>,
    followed: Mutex<Vec<Source>>,
    tx: watch::Sender<u64>,
}

impl Scripted {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            changes: Mutex::default(),
            followed: Mutex::default(),
            tx: watch::Sender::new(0),
        })
    }

    fn commit(&self, collection: &str, op: &str, id: &str, after: Option<Value>) {
        let mut all = self.changes.lock().unwrap();
        let position = all.len() as u64 + 1;
        let before = (op != "created").then(|| json!({ "was": position - 1 }));
        all.push((
            Source::Collection(collection.to_owned()),
            Change {
                position,
                op: op.to_owned(),
                id: id.to_owned(),
                at: 1_700_000_000_000 + position as i64,
                body: json!({
                    "collection": collection, "op": op, "id": id, "revision": position,
                    "at": 1_700_000_000_000 + position as i64, "data": after, "before": before,
                }),
                writer: None,
            },
        ));
        drop(all);
        self.tx.send_replace(position);
    }
}

#[async_trait::async_trait]
impl ChangeSource for Scripted {
    async fn position(&self) -> Result<u64, String> {
        Ok(self.changes.lock().unwrap().len() as u64)
    }

    async fn follow(&self, _project: &str, source: &Source) -> Result<(), String> {
        if *source == Source::Store("missing".into()) {
            return Err("no key-value store named `missing`".into());
        }
        self.followed.lock().unwrap().push(source.clone());
        Ok(())
    }

    async fn changes(
        &self,
        _project: &str,
        source: &Source,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, String> {
        Ok(self
            .changes
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, ch)| c == source && ch.position > after)
            .take(limit)
            .map(|(_, ch)| ch.clone())
            .collect())
    }

    fn watch(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

const WATCH_ORDERS: &str = "[[functions.db]]\ncollection = \"orders\"\nevents = [\"created\", \"deleted\"]\n[[collections]]\nname = \"orders\"\n[[collections]]\nname = \"users\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_forwards_its_collections_wanted_changes_in_order_from_where_it_started() {
    let source = Scripted::new();
    // Before the trigger exists: not replayed.
    source.commit("orders", "created", "old", Some(json!({ "n": 0 })));
    let env = Env::with_changes(Some(source.clone()));
    let fake = Fake::new(&[], 200);
    env.serve("watcher", WATCH_ORDERS, &fake).await;
    source.commit("orders", "created", "a", Some(json!({ "n": 1 })));
    source.commit("users", "created", "u", Some(json!({})));
    source.commit("orders", "updated", "a", Some(json!({ "n": 2 })));
    source.commit("orders", "deleted", "a", None);
    until("two deliveries", || async { fake.seen().len() == 2 }).await;
    // Deliveries run concurrently (up to max_concurrency): in revision order to compare.
    let mut events: Vec<updraft_dispatch::Event> =
        fake.seen().into_iter().flat_map(|e| e.events).collect();
    events.sort_by_key(|e| e.id.clone());
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["dev.updraft.db.created", "dev.updraft.db.deleted"]);
    let first: Value = serde_json::from_slice(&events[0].data).unwrap();
    assert_eq!(
        first,
        json!({
            "collection": "orders", "op": "created", "id": "a", "revision": 2,
            "at": 1_700_000_000_002_i64, "data": { "n": 1 }, "before": null,
        })
    );
    assert_eq!(events[0].source, "/collections/orders");
    assert_eq!(events[0].attributes["subject"], "a");
    let last: Value = serde_json::from_slice(&events[1].data).unwrap();
    assert_eq!(last["before"], json!({ "was": 4 }));
    assert_eq!(last["data"], Value::Null);
    // The feed moved past the skipped update and the other collection's change.
    let key = Source::Collection("orders".into()).key();
    until("the position", || async {
        env.log.feed_position(P, "watcher", &key).await.unwrap() == Some(5)
    })
    .await;
    let q = internal_queue("watcher", Feed::Change(&key));
    until("the acks", || async { env.depth(&q).await == 0 }).await;
    until("the record", || async {
        !env.telemetry.records.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        env.telemetry.records.lock().unwrap()[0].trigger,
        Trigger::Db
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_db_trigger_retries_then_dead_letters_and_a_redeploy_resumes_the_feed() {
    let source = Scripted::new();
    let env = Env::with_changes(Some(source.clone()));
    let failing = Fake::new(&[], 500);
    env.serve(
        "watcher",
        &format!("{WATCH_ORDERS}\n")
            .replace("events = [\"created\", \"deleted\"]", "max_attempts = 2"),
        &failing,
    )
    .await;
    source.commit("orders", "created", "a", Some(json!({})));
    until("the dead letter", || async {
        env.log
            .queue(P, "watcher-dlq")
            .await
            .is_ok_and(|q| q.depth == 1)
    })
    .await;
    assert_eq!(failing.seen().len(), 2);
    // A redeploy keeps the feed's position: what was forwarded is not forwarded again.
    let fixed = Fake::new(&[], 200);
    env.serve("watcher", WATCH_ORDERS, &fixed).await;
    source.commit("orders", "created", "b", Some(json!({})));
    until("the next change", || async { fixed.seen().len() == 1 }).await;
    let e = &fixed.seen()[0].events[0];
    assert_eq!(e.attributes["subject"], "b");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fixed.seen().len(), 1, "nothing delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kv_trigger_follows_its_store_and_a_missing_store_is_reported() {
    let source = Scripted::new();
    let env = Env::with_changes(Some(source.clone()));
    let fake = Fake::new(&[], 200);
    env.serve(
        "watcher",
        "[[functions.kv]]\nstore = \"sessions\"\nevents = [\"deleted\"]\n[[functions.kv]]\nstore = \"missing\"",
        &fake,
    )
    .await;
    assert_eq!(
        *source.followed.lock().unwrap(),
        [Source::Store("sessions".into())]
    );
    {
        let mut all = source.changes.lock().unwrap();
        for (i, op) in ["set", "deleted"].into_iter().enumerate() {
            let position = i as u64 + 1;
            all.push((
                Source::Store("sessions".into()),
                Change {
                    position,
                    op: op.into(),
                    id: "k".into(),
                    at: 1,
                    body: json!({"store": "sessions", "op": op, "key": "k", "value": "x".repeat(300_000)}),
                    writer: None,
                },
            ));
        }
    }
    source.tx.send_replace(2);
    until("the delete", || async { fake.seen().len() == 1 }).await;
    let e = &fake.seen()[0].events[0];
    assert_eq!(
        (e.kind.as_str(), e.source.as_str()),
        ("dev.updraft.kv.deleted", "/stores/sessions")
    );
    let body: Value = serde_json::from_slice(&e.data).unwrap();
    // Too large for one message: sent without the value, marked.
    assert_eq!(
        (body["value"].clone(), body["truncated"].clone()),
        (Value::Null, json!(true))
    );
    until("the platform line", || async {
        env.telemetry
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("kv trigger on `missing` not started: no key-value store"))
    })
    .await;
}
