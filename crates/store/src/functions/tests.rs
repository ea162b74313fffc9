use super::*;
use crate::DEFAULT_PROJECT as P;
use sha2::Digest;
use updraft_manifest::Manifest;

fn manifest(app: &str, fns: &[(&str, &str)]) -> Manifest {
    let mut text = format!("[app]\nname = \"{app}\"\n");
    for (f, extra) in fns {
        text.push_str(&format!(
            "[[functions]]\nname = \"{f}\"\ncomponent = \"{f}.wasm\"\n{extra}\n"
        ));
    }
    Manifest::parse("updraft.toml", &text).unwrap()
}

fn artifact(store: &Store, bytes: &[u8]) -> String {
    let digest = hex::encode(sha2::Sha256::digest(bytes));
    store.put_artifact(&digest, bytes).unwrap();
    digest
}

fn options(keep: usize) -> DeployOptions {
    DeployOptions {
        deployer: "test".to_owned(),
        canary: None,
        keep,
    }
}

/// Deploys app `app` whose functions all run `code`, with `extra` in each function table.
fn deploy_with(
    store: &Store,
    app: &str,
    fns: &[(&str, &str)],
    code: &[u8],
    opts: &DeployOptions,
) -> Result<DeployOutcome, StoreError> {
    let digest = artifact(store, code);
    let m = manifest(app, fns);
    let fs: Vec<_> = m
        .functions
        .iter()
        .map(|f| DeployedFunction {
            spec: f.clone(),
            digest: digest.clone(),
        })
        .collect();
    store.deploy_app(P, app, "", &fs, opts)
}

fn deploy(store: &Store, app: &str, fns: &[&str]) -> Result<DeployOutcome, StoreError> {
    let fns: Vec<(&str, &str)> = fns.iter().map(|f| (*f, "")).collect();
    deploy_with(store, app, &fns, b"x", &options(10))
}

fn live(store: &Store, f: &str) -> u32 {
    store
        .function(P, f)
        .unwrap()
        .unwrap()
        .alias(LIVE)
        .unwrap()
        .version
}

#[test]
fn deploy_replaces_the_apps_functions_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(
        deploy(&store, "shop", &["a", "b"])
            .unwrap()
            .removed
            .is_empty()
    );
    assert_eq!(deploy(&store, "shop", &["b", "c"]).unwrap().removed, ["a"]);
    let names = |s: &Store| {
        s.functions(P)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&store), ["b", "c"]);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(names(&store), ["b", "c"]);
    assert!(store.delete_function(P, "b").unwrap().is_some());
    assert!(store.delete_function(P, "b").unwrap().is_none());
    assert_eq!(names(&store), ["c"]);
}

#[test]
fn a_function_name_belongs_to_one_app() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    deploy(&store, "shop", &["a"]).unwrap();
    let err = deploy(&store, "blog", &["a"]).unwrap_err();
    assert!(matches!(err, StoreError::FunctionOwnedByOtherApp { ref app, .. } if app == "shop"));
}

#[test]
fn changes_publish_versions_and_live_follows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let o = deploy_with(&store, "shop", &[("a", "")], b"one", &options(10)).unwrap();
    assert_eq!(o.published, [("a".to_owned(), 1)]);
    // Same code and settings: nothing new.
    let o = deploy_with(&store, "shop", &[("a", "")], b"one", &options(10)).unwrap();
    assert!(o.published.is_empty());
    assert_eq!(live(&store, "a"), 1);
    // New code, then new settings with the same code: each a version.
    deploy_with(&store, "shop", &[("a", "")], b"two", &options(10)).unwrap();
    assert_eq!(live(&store, "a"), 2);
    deploy_with(
        &store,
        "shop",
        &[("a", "timeout = \"5s\"")],
        b"two",
        &options(10),
    )
    .unwrap();
    let f = store.function(P, "a").unwrap().unwrap();
    assert_eq!(f.alias(LIVE).unwrap().version, 3);
    assert_eq!(f.versions.len(), 3);
    assert_eq!(f.versions[1].digest, f.versions[2].digest);
    assert_eq!(f.version(3).unwrap().spec.timeout_ms, Some(5_000));
    assert_eq!(f.version(3).unwrap().deployer, "test");
}

#[test]
fn canary_deploys_leave_live_and_routes_create_their_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let routed = "[[functions.http]]\nroute = \"/a\"\nalias = \"beta\"";
    deploy_with(&store, "shop", &[("a", routed)], b"one", &options(10)).unwrap();
    let mut opts = options(10);
    opts.canary = Some(Canary {
        version: 0,
        weight: 10,
        auto_rollback: true,
        promote_after_ms: Some(60_000),
        started_at: 0,
    });
    deploy_with(&store, "shop", &[("a", routed)], b"two", &opts).unwrap();
    let f = store.function(P, "a").unwrap().unwrap();
    let live = f.alias(LIVE).unwrap();
    assert_eq!(live.version, 1);
    let canary = live.canary.as_ref().unwrap();
    assert_eq!((canary.version, canary.weight), (2, 10));
    assert!(canary.auto_rollback && canary.started_at > 0);
    // `beta` was made at version 1 by the first deploy and is not moved by later ones.
    assert_eq!(f.alias("beta").unwrap().version, 1);
}

#[test]
fn retention_keeps_aliased_versions_and_drops_orphaned_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let code: Vec<Vec<u8>> = (0..5).map(|i| format!("code {i}").into_bytes()).collect();
    let digests: Vec<String> = code
        .iter()
        .map(|c| hex::encode(sha2::Sha256::digest(c)))
        .collect();
    deploy_with(&store, "shop", &[("a", "")], &code[0], &options(2)).unwrap();
    // Pin version 1 with an alias: retention must keep it.
    let pin = AliasRecord {
        name: "pinned".to_owned(),
        version: 1,
        canary: None,
        updated_at: 0,
    };
    store.set_alias(P, "a", &pin, 2).unwrap();
    let mut pruned = Vec::new();
    for c in &code[1..] {
        let o = deploy_with(&store, "shop", &[("a", "")], c, &options(2)).unwrap();
        pruned.extend(o.pruned);
        for d in &o.orphaned {
            assert!(!store.artifact_path(d).exists(), "{d} not deleted");
        }
    }
    // Kept: 5 and 4 (newest two) and 1 (aliased). Deleted: 2, 3.
    assert_eq!(pruned, [("a".to_owned(), 2), ("a".to_owned(), 3)]);
    let f = store.function(P, "a").unwrap().unwrap();
    let alive: Vec<u32> = f
        .versions
        .iter()
        .filter(|v| v.deleted_at.is_none())
        .map(|v| v.version)
        .collect();
    assert_eq!(alive, [1, 4, 5]);
    assert!(store.has_artifact(&digests[0]).unwrap());
    assert!(!store.has_artifact(&digests[1]).unwrap());
    assert!(!store.artifact_path(&digests[2]).exists());
    assert!(store.has_artifact(&digests[4]).unwrap());
    // An alias cannot point at a deleted version, nor at one that never existed.
    let mut to_deleted = pin.clone();
    to_deleted.version = 2;
    assert!(matches!(
        store.set_alias(P, "a", &to_deleted, 2),
        Err(StoreError::VersionDeleted { version: 2, .. })
    ));
    to_deleted.version = 9;
    assert!(matches!(
        store.set_alias(P, "a", &to_deleted, 2),
        Err(StoreError::NoSuchVersion { version: 9, .. })
    ));
    // Moving the pin away lets retention take version 1 and its artifact.
    let mut moved = pin;
    moved.version = 5;
    let (_, p) = store.set_alias(P, "a", &moved, 2).unwrap();
    assert_eq!(p.versions, [("a".to_owned(), 1)]);
    assert_eq!(p.orphaned, [digests[0].clone()]);
    // Deleting the function deletes the artifacts only it used.
    let p = store.delete_function(P, "a").unwrap().unwrap();
    assert_eq!(p.orphaned.len(), 2);
    assert!(!store.has_artifact(&digests[4]).unwrap());
}

#[test]
fn version_numbers_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..4u8 {
        deploy_with(&store, "shop", &[("a", "")], &[i], &options(1)).unwrap();
    }
    let f = store.function(P, "a").unwrap().unwrap();
    assert_eq!(f.latest().unwrap().version, 4);
    assert_eq!(
        f.versions.iter().filter(|v| v.deleted_at.is_some()).count(),
        3
    );
}

#[test]
fn databases_from_before_versions_are_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("updraft.db");
    let spec = serde_json::to_string(&manifest("shop", &[("a", "")]).functions[0]).unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(crate::db::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO projects VALUES ('default', 1);
             INSERT INTO artifacts VALUES ('d1', 1, 1);
             INSERT INTO apps VALUES ('default', 'shop', 'manifest text', 1);
             INSERT INTO functions VALUES ('default', 'a', 'shop', 'd1', '{spec}', 7);"
        ))
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let f = store.function(P, "a").unwrap().unwrap();
    assert_eq!(f.app, "shop");
    assert_eq!(f.versions.len(), 1);
    assert_eq!(f.versions[0].digest, "d1");
    assert_eq!(f.versions[0].created_at, 7);
    assert_eq!(f.alias(LIVE).unwrap().version, 1);
    assert_eq!(
        store.version_manifest(P, "a", 1).unwrap().as_deref(),
        Some("manifest text")
    );
}
