//! The registry against a real store (SQLite in a temporary directory) and a fake runtime
//! provider: persist-then-publish, subscriptions, one limit per function across versions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use updraft_api::{CanaryPolicy, DeployRequest};
use updraft_dispatch::{
    Body, BoxFuture, DispatchConfig, Invocation, InvocationSink, InvokeError, LoadError, Runtime,
    Settings, Telemetry,
};

use super::*;

/// Runs nothing; counts what the registry asks of it.
#[derive(Default)]
struct Provider {
    prepared: AtomicUsize,
}

struct Idle;

impl Runtime for Idle {
    fn invoke(
        &self,
        _: Invocation,
        _: Arc<dyn InvocationSink>,
    ) -> BoxFuture<'_, Result<http::Response<Body>, InvokeError>> {
        Box::pin(async { Err(InvokeError::NoResponse) })
    }
}

impl RuntimeProvider for Provider {
    fn prepare(&self, _: &str, _: Settings) -> Arc<dyn Runtime> {
        self.prepared.fetch_add(1, Ordering::Relaxed);
        Arc::new(Idle)
    }
    fn ensure_prepared(&self, _: &str) -> BoxFuture<'_, Result<(), LoadError>> {
        Box::pin(async { Ok(()) })
    }
    fn forget(&self, _: &str) {}
}

struct Quiet;

impl Telemetry for Quiet {
    fn line(&self, _: &str, _: &str, _: Option<u32>, _: &str, _: Stream, _: &str) {}
    fn record(&self, _: updraft_api::Invocation) {}
}

struct Env {
    _dir: tempfile::TempDir,
    registry: Arc<Registry>,
    digest: String,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = updraft_store::Store::open(dir.path()).unwrap();
    let artifacts = updraft_store::FsArtifacts::open(dir.path().join("artifacts")).unwrap();
    let bytes = b"not really a component".to_vec();
    let digest = updraft_store_digest(&bytes);
    let mut w = artifacts.writer(&digest).await.unwrap();
    w.write(&bytes).await.unwrap();
    w.commit().await.unwrap();
    let dispatcher = Arc::new(Dispatcher::new(Arc::new(Quiet), DispatchConfig::default()));
    let registry = Registry::new(
        Stores {
            metadata: Arc::new(store.clone()),
            artifacts: Arc::new(artifacts),
            telemetry: Arc::new(store),
        },
        Arc::new(Provider::default()),
        dispatcher,
        RegistryConfig::default(),
    );
    Env {
        _dir: dir,
        registry,
        digest,
    }
}

fn updraft_store_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn request(env: &Env, functions: &[(&str, &str)], canary: Option<u8>) -> DeployRequest {
    let mut manifest = "[app]\nname = \"app\"\n".to_owned();
    let mut artifacts = BTreeMap::new();
    for (name, extra) in functions {
        manifest.push_str(&format!(
            "[[functions]]\nname = \"{name}\"\ncomponent = \"x.wasm\"\n{extra}\n"
        ));
        artifacts.insert((*name).to_owned(), env.digest.clone());
    }
    DeployRequest {
        manifest,
        manifest_file: None,
        artifacts,
        canary: canary.map(|weight| CanaryPolicy {
            weight,
            auto_rollback: false,
            promote_after_ms: None,
        }),
        deployer: None,
    }
}

#[tokio::test]
async fn subscribers_see_every_change_in_order_and_a_change_waits_for_them() {
    let env = env().await;
    let mut sub = env.registry.subscribe();
    // The current snapshot first.
    let first = sub.next().await.unwrap();
    assert_eq!(first.generation, 0);
    sub.applied(0);
    let registry = env.registry.clone();
    let req = request(&env, &[("a", "[[functions.http]]\nroute = \"/a\"")], None);
    let deploy = tokio::spawn(async move { registry.deploy(req, "me".into()).await });
    let snapshot = sub.next().await.unwrap();
    assert_eq!(snapshot.generation, 1);
    assert!(snapshot.functions.contains_key("a"));
    // Published (the gateway serves it) but not acknowledged until the subscriber applied it.
    assert_eq!(env.registry.snapshot().generation, 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !deploy.is_finished(),
        "the deploy waits for its subscribers"
    );
    sub.applied(snapshot.generation);
    deploy.await.unwrap().unwrap();

    // Deleting it tells subscribers to forget it; a dropped subscription blocks nothing.
    let registry = env.registry.clone();
    let delete = tokio::spawn(async move { registry.delete("a").await });
    let snapshot = sub.next().await.unwrap();
    assert_eq!(snapshot.generation, 2);
    assert_eq!(
        snapshot.forgotten,
        vec![(DEFAULT_PROJECT.to_owned(), "a".to_owned())]
    );
    drop(sub);
    assert!(delete.await.unwrap().unwrap());
    assert!(env.registry.snapshot().functions.is_empty());
}

#[tokio::test]
async fn a_failed_change_publishes_nothing() {
    let env = env().await;
    env.registry
        .deploy(
            request(&env, &[("a", "[[functions.http]]\nroute = \"/x\"")], None),
            "me".into(),
        )
        .await
        .unwrap();
    let before = env.registry.snapshot().generation;
    // Another app's function on the same route conflicts: 409, nothing stored or published.
    let mut req = request(&env, &[("b", "[[functions.http]]\nroute = \"/x\"")], None);
    req.manifest = req.manifest.replace("name = \"app\"", "name = \"other\"");
    let e = env.registry.deploy(req, "me".into()).await.unwrap_err();
    assert_eq!(e.code, Code::Conflict, "{e}");
    assert_eq!(env.registry.snapshot().generation, before);
    assert!(!env.registry.snapshot().functions.contains_key("b"));
    assert!(env.registry.function("b").await.is_err());
}

#[tokio::test]
async fn one_limit_per_function_kept_across_versions_and_resized_by_live() {
    let env = env().await;
    env.registry
        .deploy(
            request(&env, &[("a", "max_concurrency = 4")], None),
            "me".into(),
        )
        .await
        .unwrap();
    let v1 = env.registry.snapshot().functions["a"].clone();
    assert_eq!(v1.limit.max(), 4);
    // Version 2 as a canary: one function, one limit, still live's (version 1's) value.
    env.registry
        .deploy(
            request(&env, &[("a", "max_concurrency = 9")], Some(10)),
            "me".into(),
        )
        .await
        .unwrap();
    let split = env.registry.snapshot().functions["a"].clone();
    assert_eq!(split.versions.len(), 2);
    assert!(
        Arc::ptr_eq(&v1.limit, &split.limit),
        "the same limit object"
    );
    assert_eq!(split.limit.max(), 4);
    // Promoting version 2 resizes it.
    env.registry
        .set_alias(
            "a",
            "live",
            updraft_api::SetAlias {
                version: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let promoted = env.registry.snapshot().functions["a"].clone();
    assert!(Arc::ptr_eq(&v1.limit, &promoted.limit));
    assert_eq!(promoted.limit.max(), 9);
}
