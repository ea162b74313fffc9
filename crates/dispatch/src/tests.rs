//! The dispatcher against a fake runtime: admission across versions, error mapping, metering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::sync::Semaphore;

use super::*;

/// Answers 200 with the version's number, after a permit of `gate`; counts who runs at once.
struct Fake {
    number: u32,
    gate: Arc<Semaphore>,
    running: Arc<AtomicU32>,
    most: Arc<AtomicU32>,
    fail_with: Option<InvokeError>,
}

impl Runtime for Fake {
    fn invoke(
        &self,
        _invocation: Invocation,
        sink: Arc<dyn InvocationSink>,
    ) -> BoxFuture<'_, Result<http::Response<Body>, InvokeError>> {
        Box::pin(async move {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            self.gate.acquire().await.unwrap().forget();
            self.running.fetch_sub(1, Ordering::SeqCst);
            sink.line(Stream::Stdout, "ran");
            match &self.fail_with {
                Some(e) => Err(e.clone()),
                None => Ok(http::Response::new(full(self.number.to_string()))),
            }
        })
    }
}

#[derive(Default)]
struct Collect {
    records: Mutex<Vec<Record>>,
    lines: Mutex<Vec<String>>,
}

impl Telemetry for Collect {
    fn line(&self, _: &str, _: &str, _: Option<u32>, _: &str, _: Stream, line: &str) {
        self.lines.lock().unwrap().push(line.to_owned());
    }
    fn record(&self, invocation: Record) {
        self.records.lock().unwrap().push(invocation);
    }
}

struct Setup {
    dispatcher: Arc<Dispatcher>,
    telemetry: Arc<Collect>,
    function: Arc<Function>,
    gate: Arc<Semaphore>,
    most: Arc<AtomicU32>,
}

/// A function with versions 1 and 2 behind `live` (2 as a canary of `weight`%), sharing a limit
/// of `max_concurrency`.
fn setup(max_concurrency: u32, weight: u8, fail_with: Option<InvokeError>) -> Setup {
    let telemetry = Arc::new(Collect::default());
    let dispatcher = Arc::new(Dispatcher::new(
        telemetry.clone(),
        DispatchConfig::default(),
    ));
    let gate = Arc::new(Semaphore::new(0));
    let (running, most) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let version = |number| {
        Arc::new(Version {
            number,
            number_header: number.into(),
            runtime: Arc::new(Fake {
                number,
                gate: gate.clone(),
                running: running.clone(),
                most: most.clone(),
                fail_with: fail_with.clone(),
            }),
            max_request_body: 1 << 20,
            max_response_body: 1 << 20,
            memory_bytes: 128 << 20,
            health: Health::new(Duration::from_secs(60)),
            metrics: dispatcher.metrics().version("default", "f", number),
        })
    };
    let (v1, v2) = (version(1), version(2));
    let function = Arc::new(Function {
        project: "default".into(),
        name: "f".into(),
        name_header: header_value("f"),
        versions: BTreeMap::from([(1, v1.clone()), (2, v2.clone())]),
        aliases: HashMap::from([(
            "live".to_owned(),
            Alias {
                version: v1,
                canary: Some((v2, weight)),
            },
        )]),
        allow_pinning: false,
        quotas: Vec::new(),
        limit: Arc::new(ConcurrencyLimit::new(
            max_concurrency,
            Duration::from_millis(200),
        )),
    });
    Setup {
        dispatcher,
        telemetry,
        function,
        gate,
        most,
    }
}

async fn call(s: &Setup) -> (u16, String) {
    let version = s.function.resolve(None, "live").unwrap();
    let req = http::Request::new(full(""));
    let resp = s
        .dispatcher
        .dispatch(
            &s.function,
            &version,
            Origin::new(Trigger::Http, None),
            Input::Http(req),
        )
        .await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_concurrency_limit_across_a_canary_split() {
    // A 50/50 split with a limit of 2: were the limit per version, 4 would run at once.
    let s = Arc::new(setup(2, 50, None));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { call(&s).await })
        })
        .collect();
    // Two run, two wait in the (size 2) queue, the other four are turned away at once.
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.gate.add_permits(100);
    let mut statuses = BTreeMap::new();
    let mut versions = BTreeMap::new();
    for c in calls {
        let (status, body) = c.await.unwrap();
        *statuses.entry(status).or_insert(0) += 1;
        if status == 200 {
            *versions.entry(body).or_insert(0) += 1;
        }
    }
    assert_eq!(s.most.load(Ordering::SeqCst), 2, "at most 2 ran at once");
    assert_eq!(statuses, BTreeMap::from([(200, 4), (429, 4)]));
    assert_eq!(versions.values().sum::<i32>(), 4);
}

#[tokio::test]
async fn runtime_failures_map_to_statuses_and_error_classes() {
    let cases = [
        (InvokeError::Timeout(Duration::from_secs(1)), 504, "timeout"),
        (InvokeError::Trap("boom".into()), 500, "trap"),
        (InvokeError::Load("gone".into()), 500, "load_failed"),
        (InvokeError::BadInput("bad".into()), 400, "instantiate"),
        (InvokeError::NoResponse, 500, "no_response"),
    ];
    for (error, status, class) in cases {
        let s = setup(4, 0, Some(error.clone()));
        s.gate.add_permits(1);
        let (got, body) = call(&s).await;
        assert_eq!(got, status, "{error}");
        assert!(body.contains(&error.to_string()), "{body}");
        // The record is written when the response is done.
        let records = s.telemetry.records.lock().unwrap().clone();
        assert_eq!(records.len(), 1, "{error}");
        assert_eq!(records[0].status, status);
        assert_eq!(records[0].error.map(ErrorClass::as_str), Some(class));
        assert_eq!(records[0].trigger, Trigger::Http);
    }
}

#[tokio::test]
async fn a_declared_body_over_the_cap_is_refused_before_the_runtime_runs() {
    let s = setup(4, 0, None);
    let version = s.function.resolve(None, "live").unwrap();
    let mut req = http::Request::new(full(""));
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(2u64 << 20));
    let resp = s
        .dispatcher
        .dispatch(
            &s.function,
            &version,
            Origin::new(Trigger::Http, None),
            Input::Http(req),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(s.most.load(Ordering::SeqCst), 0, "the runtime never ran");
    assert!(resp.headers().contains_key(headers::REQUEST_ID));
    assert_eq!(
        resp.headers().get(headers::FUNCTION).unwrap(),
        HeaderValue::from_static("f")
    );
}
