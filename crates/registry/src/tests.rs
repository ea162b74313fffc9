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

const D: &str = updraft_api::DEFAULT_PROJECT;

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
    for project in [D, "shop"] {
        store.grant_artifact(project, &digest).await.unwrap();
    }
    let dispatcher = Arc::new(Dispatcher::new(Arc::new(Quiet), DispatchConfig::default()));
    let registry = Registry::new(
        Stores {
            metadata: Arc::new(store.clone()),
            artifacts: Arc::new(artifacts),
            telemetry: Arc::new(store),
            secrets: Arc::new(NoSecrets),
            key_value: None,
            collections: None,
            buckets: None,
        },
        Arc::new(Provider::default()),
        dispatcher,
        RegistryConfig::default(),
    );
    registry.load().await.unwrap();
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
        site: None,
    }
}

#[tokio::test]
async fn subscribers_see_every_change_in_order_and_a_change_waits_for_them() {
    let env = env().await;
    let mut sub = env.registry.subscribe();
    // The current snapshot first (loading the store published the first one).
    let first = sub.next().await.unwrap();
    assert_eq!(first.generation, 1);
    assert!(first.project(D).is_some());
    sub.applied(1);
    let registry = env.registry.clone();
    let req = request(&env, &[("a", "[[functions.http]]\nroute = \"/a\"")], None);
    let deploy = tokio::spawn(async move { registry.deploy(D, req, "me".into()).await });
    let snapshot = sub.next().await.unwrap();
    assert_eq!(snapshot.generation, 2);
    assert!(snapshot.function(D, "a").is_some());
    // Published (the gateway serves it) but not acknowledged until the subscriber applied it.
    assert_eq!(env.registry.snapshot().generation, 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !deploy.is_finished(),
        "the deploy waits for its subscribers"
    );
    sub.applied(snapshot.generation);
    deploy.await.unwrap().unwrap();

    // Deleting it tells subscribers to forget it; a dropped subscription blocks nothing.
    let registry = env.registry.clone();
    let delete = tokio::spawn(async move { registry.delete(D, "a").await });
    let snapshot = sub.next().await.unwrap();
    assert_eq!(snapshot.generation, 3);
    assert_eq!(snapshot.forgotten, vec![(D.to_owned(), "a".to_owned())]);
    drop(sub);
    assert!(delete.await.unwrap().unwrap());
    assert!(env.registry.snapshot().all_functions().next().is_none());
}

#[tokio::test]
async fn a_failed_change_publishes_nothing() {
    let env = env().await;
    env.registry
        .deploy(
            D,
            request(&env, &[("a", "[[functions.http]]\nroute = \"/x\"")], None),
            "me".into(),
        )
        .await
        .unwrap();
    let before = env.registry.snapshot().generation;
    // Another app's function on the same route conflicts: 409, nothing stored or published.
    let mut req = request(&env, &[("b", "[[functions.http]]\nroute = \"/x\"")], None);
    req.manifest = req.manifest.replace("name = \"app\"", "name = \"other\"");
    let e = env.registry.deploy(D, req, "me".into()).await.unwrap_err();
    assert_eq!(e.code, Code::Conflict, "{e}");
    assert_eq!(env.registry.snapshot().generation, before);
    assert!(env.registry.snapshot().function(D, "b").is_none());
    assert!(env.registry.function(D, "b").await.is_err());
}

#[tokio::test]
async fn one_limit_per_function_kept_across_versions_and_resized_by_live() {
    let env = env().await;
    env.registry
        .deploy(
            D,
            request(&env, &[("a", "max_concurrency = 4")], None),
            "me".into(),
        )
        .await
        .unwrap();
    let v1 = env.registry.snapshot().function(D, "a").unwrap().clone();
    assert_eq!(v1.limit.max(), 4);
    // Version 2 as a canary: one function, one limit, still live's (version 1's) value.
    env.registry
        .deploy(
            D,
            request(&env, &[("a", "max_concurrency = 9")], Some(10)),
            "me".into(),
        )
        .await
        .unwrap();
    let split = env.registry.snapshot().function(D, "a").unwrap().clone();
    assert_eq!(split.versions.len(), 2);
    assert!(
        Arc::ptr_eq(&v1.limit, &split.limit),
        "the same limit object"
    );
    assert_eq!(split.limit.max(), 4);
    // Promoting version 2 resizes it.
    env.registry
        .set_alias(
            D,
            "a",
            "live",
            updraft_api::SetAlias {
                version: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let promoted = env.registry.snapshot().function(D, "a").unwrap().clone();
    assert!(Arc::ptr_eq(&v1.limit, &promoted.limit));
    assert_eq!(promoted.limit.max(), 9);
}

#[tokio::test]
async fn projects_have_their_own_names_and_routes_and_are_deleted_only_when_empty() {
    let env = env().await;
    let routed = [("a", "[[functions.http]]\nroute = \"/x\"")];
    // Nobody has granted "rival" the artifact: deploying it there is an unknown artifact.
    env.registry.create_project("rival2", &[]).await.unwrap();
    let e = env
        .registry
        .deploy("rival2", request(&env, &routed, None), "me".into())
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::UnknownArtifact, "{e}");
    let e = env
        .registry
        .deploy("shop", request(&env, &routed, None), "me".into())
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::ProjectNotFound, "{e}");
    env.registry
        .create_project("shop", &["Shop.Example.com".to_owned()])
        .await
        .unwrap();
    let e = env.registry.create_project("shop", &[]).await.unwrap_err();
    assert_eq!(e.code, Code::Conflict);
    for bad in ["Shop", "../x", "a b", ""] {
        let e = env.registry.create_project(bad, &[]).await.unwrap_err();
        assert_eq!(e.code, Code::BadRequest, "{bad}");
    }
    // Another project may not take the domain; the answer does not say whose it is.
    let e = env
        .registry
        .create_project("rival", &["shop.example.com".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::Conflict);
    assert!(!e.message.contains("shop`"), "{e}");
    // The same function name and route in two projects.
    for p in [D, "shop"] {
        env.registry
            .deploy(p, request(&env, &routed, None), "me".into())
            .await
            .unwrap();
    }
    let snapshot = env.registry.snapshot();
    let (a, b) = (
        snapshot.function(D, "a").unwrap(),
        snapshot.function("shop", "a").unwrap(),
    );
    assert!(!Arc::ptr_eq(a, b));
    assert_eq!(b.project, "shop");
    assert_eq!(snapshot.domains["shop.example.com"], "shop");
    assert!(matches!(
        snapshot.project("shop").unwrap().routes.lookup("GET", "/x"),
        Lookup::Found(r, _) if r.function.project == "shop"
    ));
    // Listing and lookups stay inside a project.
    assert_eq!(env.registry.list("shop").await.unwrap().len(), 1);
    assert_eq!(
        env.registry.list("nope").await.unwrap_err().code,
        Code::ProjectNotFound
    );
    let e = env.registry.delete_project("shop").await.unwrap_err();
    assert_eq!(e.code, Code::Conflict, "{e}");
    assert!(env.registry.delete("shop", "a").await.unwrap());
    env.registry.delete_project("shop").await.unwrap();
    assert!(env.registry.snapshot().project("shop").is_none());
    assert!(env.registry.snapshot().domains.is_empty());
    assert!(env.registry.snapshot().function(D, "a").is_some());
    let e = env.registry.delete_project(D).await.unwrap_err();
    assert_eq!(e.code, Code::BadRequest);
}
