//! Trigger delivery against a fake runtime: a real event log (SQLite in a temporary
//! directory) and the real dispatcher, with a [`Runtime`] that records what it is handed and
//! answers as each test scripts it. No Wasmtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Response;
use tokio::sync::Semaphore;
use updraft_api::{Invocation as Record, Trigger};
use updraft_dispatch::{
    Alias, Body, BoxFuture, ConcurrencyLimit, DispatchConfig, Dispatcher, Events, Function, Health,
    Input, Invocation, InvocationSink, InvokeError, Quota, QuotaScope, Runtime, Stream, Telemetry,
    Version, full,
};
use updraft_events::{EventLog, Holder, LocalWakeups, QueueSpec, SqliteLog, Wakeups};
use updraft_manifest::{QuotaMetric, QuotaPeriod};

use super::*;

mod feeds;

const P: &str = "default";

/// What the fake runtime answers: a status, after waiting for a permit of `gate` if set.
struct Script {
    statuses: Mutex<VecDeque<u16>>,
    otherwise: u16,
    gate: Option<Arc<Semaphore>>,
}

/// A runtime that records the events it is handed and answers from its script.
struct Fake {
    script: Script,
    seen: Mutex<Vec<Events>>,
    running: AtomicU32,
    most_running: AtomicU32,
}

impl Fake {
    fn new(statuses: &[u16], otherwise: u16) -> Arc<Self> {
        Self::gated(statuses, otherwise, None)
    }

    fn gated(statuses: &[u16], otherwise: u16, gate: Option<Arc<Semaphore>>) -> Arc<Self> {
        Arc::new(Self {
            script: Script {
                statuses: Mutex::new(statuses.iter().copied().collect()),
                otherwise,
                gate,
            },
            seen: Mutex::default(),
            running: AtomicU32::new(0),
            most_running: AtomicU32::new(0),
        })
    }

    fn seen(&self) -> Vec<Events> {
        self.seen.lock().unwrap().clone()
    }
}

struct Shared(Arc<Fake>);

impl Runtime for Shared {
    fn invoke(
        &self,
        invocation: Invocation,
        _sink: Arc<dyn InvocationSink>,
    ) -> BoxFuture<'_, Result<Response<Body>, InvokeError>> {
        let fake = self.0.clone();
        Box::pin(async move {
            let Input::Events(events) = invocation.input else {
                panic!("trigger delivery hands the runtime events");
            };
            let now = fake.running.fetch_add(1, Ordering::SeqCst) + 1;
            fake.most_running.fetch_max(now, Ordering::SeqCst);
            fake.seen.lock().unwrap().push(events);
            if let Some(gate) = &fake.script.gate {
                gate.acquire().await.unwrap().forget();
            }
            fake.running.fetch_sub(1, Ordering::SeqCst);
            let status = fake
                .script
                .statuses
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(fake.script.otherwise);
            let mut resp = Response::new(full(format!("status {status}")));
            *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Ok(resp)
        })
    }
}

/// Collects log lines and invocation records.
#[derive(Default)]
struct Collect {
    lines: Mutex<Vec<String>>,
    records: Mutex<Vec<Record>>,
}

impl Telemetry for Collect {
    fn line(&self, _: &str, _: &str, _: Option<u32>, _: &str, _: Stream, line: &str) {
        self.lines.lock().unwrap().push(line.to_owned());
    }
    fn record(&self, invocation: Record) {
        self.records.lock().unwrap().push(invocation);
    }
}

#[derive(Default)]
struct Map(Mutex<HashMap<String, Arc<Function>>>);

impl Functions for Map {
    fn function(&self, _: &str, name: &str) -> Option<Arc<Function>> {
        self.0.lock().unwrap().get(name).cloned()
    }
}

struct Env {
    _dir: tempfile::TempDir,
    log: Arc<dyn EventLog>,
    wakeups: Arc<dyn Wakeups>,
    telemetry: Arc<Collect>,
    triggers: Arc<Triggers>,
    functions: Arc<Map>,
    dispatcher: Arc<Dispatcher>,
}

impl Env {
    fn new() -> Self {
        Self::with_changes(None)
    }

    fn with_changes(changes: Option<Arc<dyn ChangeSource>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(&dir.path().join("e.db")).unwrap());
        let wakeups: Arc<dyn Wakeups> = Arc::new(LocalWakeups::default());
        let telemetry = Arc::new(Collect::default());
        let dispatcher = Arc::new(Dispatcher::new(
            telemetry.clone(),
            DispatchConfig::default(),
        ));
        let functions = Arc::new(Map::default());
        let config = DeliveryConfig {
            retry_base: Duration::from_millis(10),
            retry_max: Duration::from_millis(40),
            max_inflight: 64,
        };
        let triggers = Triggers::new(
            log.clone(),
            wakeups.clone(),
            dispatcher.clone(),
            functions.clone(),
            changes,
            config,
        );
        Self {
            _dir: dir,
            log,
            wakeups,
            telemetry,
            triggers,
            functions,
            dispatcher,
        }
    }

    /// Serves function `name` (its `[[functions]]` table's other keys in `extra`) on `fake`.
    async fn serve(&self, name: &str, extra: &str, fake: &Arc<Fake>) {
        self.serve_with_quotas(name, extra, fake, Vec::new()).await;
    }

    /// [`Env::serve`], with quotas.
    async fn serve_with_quotas(
        &self,
        name: &str,
        extra: &str,
        fake: &Arc<Fake>,
        quotas: Vec<Arc<Quota>>,
    ) {
        let text = format!(
            "[app]\nname = \"t\"\n[[functions]]\nname = \"{name}\"\ncomponent = \"x.wasm\"\n{extra}\n"
        );
        let manifest = updraft_manifest::Manifest::parse("updraft.toml", &text).unwrap();
        let spec = manifest.functions[0].clone();
        let max_concurrency = spec.max_concurrency.unwrap_or(100);
        let version = Arc::new(Version {
            number: 1,
            number_header: 1.into(),
            runtime: Arc::new(Shared(fake.clone())),
            max_request_body: 1 << 20,
            max_response_body: 1 << 20,
            memory_bytes: 128 << 20,
            health: Health::new(Duration::from_secs(60)),
            metrics: self.dispatcher.metrics().version(P, name, 1),
        });
        let function = Arc::new(Function {
            project: P.to_owned(),
            name: name.to_owned(),
            name_header: updraft_dispatch::header_value(name),
            versions: BTreeMap::from([(1, version.clone())]),
            aliases: HashMap::from([(
                "live".to_owned(),
                Alias {
                    version,
                    canary: None,
                },
            )]),
            allow_pinning: false,
            quotas,
            limit: Arc::new(ConcurrencyLimit::new(
                max_concurrency,
                Duration::from_secs(1),
            )),
        });
        self.functions
            .0
            .lock()
            .unwrap()
            .insert(name.to_owned(), function);
        let served = Served {
            project: P.to_owned(),
            name: name.to_owned(),
            spec,
            timeout: Duration::from_secs(5),
            max_concurrency,
        };
        self.triggers.reconcile(&[served], &[]).await;
    }

    async fn send(&self, queue: &str, bodies: &[&str]) {
        let messages = bodies
            .iter()
            .map(|b| updraft_events::NewMessage {
                source: format!("/queues/{queue}"),
                kind: "dev.updraft.queue.message".into(),
                content_type: "text/plain".into(),
                data: b.as_bytes().to_vec(),
                ..Default::default()
            })
            .collect();
        self.log.send(P, queue, messages).await.unwrap();
        self.wakeups.wake(P, queue);
    }

    async fn depth(&self, queue: &str) -> u64 {
        self.log.queue(P, queue).await.unwrap().depth
    }
}

/// Polls `check` until it holds, for at most 10 s.
async fn until<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const JOBS: &str = "[[functions.queue]]\nqueue = \"jobs\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_acks_and_the_event_reaches_the_runtime_as_sent() {
    let env = Env::new();
    let fake = Fake::new(&[], 200);
    env.serve("worker", JOBS, &fake).await;
    env.send("jobs", &["hello"]).await;
    until("the delivery", || async { fake.seen().len() == 1 }).await;
    until("the ack", || async { env.depth("jobs").await == 0 }).await;
    let events = &fake.seen()[0];
    assert_eq!(events.attempt, 1);
    assert!(!events.batched);
    assert_eq!(events.events.len(), 1);
    let e = &events.events[0];
    assert_eq!(e.data, b"hello");
    assert_eq!(e.source, "/queues/jobs");
    assert_eq!(e.kind, "dev.updraft.queue.message");
    until("the record", || async {
        !env.telemetry.records.lock().unwrap().is_empty()
    })
    .await;
    let record = env.telemetry.records.lock().unwrap()[0].clone();
    assert_eq!((record.trigger, record.status), (Trigger::Queue, 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_with_backoff_then_dead_letter_with_their_history() {
    let env = Env::new();
    let fake = Fake::new(&[], 500);
    env.serve(
        "worker",
        "[[functions.queue]]\nqueue = \"jobs\"\nmax_attempts = 3",
        &fake,
    )
    .await;
    env.send("jobs", &["doomed"]).await;
    until("the dead letter", || async {
        env.log
            .queue(P, "worker-dlq")
            .await
            .is_ok_and(|q| q.depth == 1)
    })
    .await;
    assert_eq!(env.depth("jobs").await, 0);
    let attempts: Vec<u32> = fake.seen().iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    let dead = env
        .log
        .receive(P, "worker-dlq", 1, None, Holder::Client)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(dead.data, b"doomed");
    assert_eq!(dead.errors.len(), 3);
    assert!(
        dead.errors
            .iter()
            .all(|e| e.status == 500 && e.error == "500: status 500" && e.function == "worker"),
        "{:?}",
        dead.errors
    );
    assert_eq!(
        env.triggers.dead_lettered(),
        BTreeMap::from([((P.to_owned(), "jobs".to_owned()), 1)])
    );
    until("the platform line", || async {
        env.telemetry
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("moved to dead-letter queue `worker-dlq`"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_after_failures_acks_and_counts_its_attempts() {
    let env = Env::new();
    let fake = Fake::new(&[503, 500], 200);
    env.serve("worker", JOBS, &fake).await;
    env.send("jobs", &["x"]).await;
    until("the ack", || async {
        fake.seen().len() == 3 && env.depth("jobs").await == 0
    })
    .await;
    let attempts: Vec<u32> = fake.seen().iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    assert!(
        env.log.queue(P, "worker-dlq").await.is_err(),
        "no dead letter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guests_own_429_is_a_failed_attempt() {
    let env = Env::new();
    // A guest answering 429 forever must not be retried forever.
    let fake = Fake::new(&[], 429);
    env.serve("worker", JOBS, &fake).await;
    env.send("jobs", &["x"]).await;
    until("the dead letter", || async {
        env.log
            .queue(P, "worker-dlq")
            .await
            .is_ok_and(|q| q.depth == 1)
    })
    .await;
    let attempts: Vec<u32> = fake.seen().iter().map(|e| e.attempt).collect();
    assert_eq!(
        attempts,
        vec![1, 2, 3],
        "each 429 of the guest is an attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_functions_quota_waits_for_the_window_without_an_attempt() {
    let env = Env::new();
    let fake = Fake::new(&[], 200);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let quota = Arc::new(Quota::new(
        QuotaScope::Function,
        "worker",
        QuotaMetric::Invocations,
        QuotaPeriod::Day,
        1,
        0.0,
        now,
    ));
    env.serve_with_quotas("worker", JOBS, &fake, vec![quota])
        .await;
    env.send("jobs", &["first", "second"]).await;
    until("the first delivery", || async { fake.seen().len() == 1 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The second was turned away by the platform: back in the queue, no attempt recorded,
    // not retried every backoff (it waits for the day's window to end).
    assert_eq!(fake.seen().len(), 1);
    assert_eq!(env.depth("jobs").await, 1);
    assert!(
        env.log.queue(P, "worker-dlq").await.is_err(),
        "no dead letter"
    );
    let lines = env.telemetry.lines.lock().unwrap().clone();
    let refusals = lines
        .iter()
        .filter(|l| l.contains("quota exceeded"))
        .count();
    assert_eq!(refusals, 1, "refused once, then paused: {lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_arrive_as_one_invocation_each() {
    let env = Env::new();
    env.log
        .create_queue(P, &QueueSpec::new("jobs"))
        .await
        .unwrap();
    let bodies: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    env.send("jobs", &refs).await;
    let fake = Fake::new(&[], 200);
    env.serve(
        "worker",
        "[[functions.queue]]\nqueue = \"jobs\"\nbatch_size = 10",
        &fake,
    )
    .await;
    until("every event", || async {
        fake.seen().iter().map(|e| e.events.len()).sum::<usize>() == 25
            && env.depth("jobs").await == 0
    })
    .await;
    let seen = fake.seen();
    assert!(seen.iter().all(|e| e.batched && e.events.len() <= 10));
    assert!(seen.len() >= 3, "25 events in batches of at most 10");
    let mut data: Vec<String> = seen
        .iter()
        .flat_map(|e| e.events.iter())
        .map(|e| String::from_utf8(e.data.clone()).unwrap())
        .collect();
    data.sort();
    let mut expected = bodies.clone();
    expected.sort();
    assert_eq!(data, expected, "each event exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_runs_no_more_than_the_function_s_max_concurrency() {
    let env = Env::new();
    let gate = Arc::new(Semaphore::new(0));
    let fake = Fake::gated(&[], 200, Some(gate.clone()));
    env.serve(
        "worker",
        "max_concurrency = 3\n[[functions.queue]]\nqueue = \"jobs\"",
        &fake,
    )
    .await;
    let bodies: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    env.send("jobs", &refs).await;
    until("three running", || async { fake.seen().len() == 3 }).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fake.seen().len(), 3, "the rest wait in the log");
    let info = env.log.queue(P, "jobs").await.unwrap();
    assert_eq!(info.in_flight, 3, "nothing is leased that cannot run");
    gate.add_permits(100);
    until("the rest", || async { env.depth("jobs").await == 0 }).await;
    assert_eq!(fake.most_running.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_leasing_and_waits_for_deliveries_in_flight() {
    let env = Env::new();
    let gate = Arc::new(Semaphore::new(0));
    let fake = Fake::gated(&[], 200, Some(gate.clone()));
    env.serve("worker", JOBS, &fake).await;
    env.send("jobs", &["in flight"]).await;
    until("the delivery", || async { fake.seen().len() == 1 }).await;
    env.triggers.stop_all();
    let drained = tokio::spawn({
        let triggers = env.triggers.clone();
        async move { triggers.drained().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!drained.is_finished(), "a delivery is still running");
    // Stopped: a new message is not leased.
    env.send("jobs", &["after stop"]).await;
    gate.add_permits(10);
    tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .expect("drained once the delivery settled")
        .unwrap();
    let info = env.log.queue(P, "jobs").await.unwrap();
    assert_eq!(
        (info.depth, info.in_flight),
        (1, 0),
        "the delivery in flight was acked; the later message waits for the next start"
    );
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_a_function_no_longer_served_wait_in_the_log() {
    let env = Env::new();
    let fake = Fake::new(&[], 200);
    env.serve("worker", JOBS, &fake).await;
    env.functions.0.lock().unwrap().clear();
    env.send("jobs", &["x"]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fake.seen().is_empty());
    assert_eq!(env.depth("jobs").await, 1, "released, not failed");
}
