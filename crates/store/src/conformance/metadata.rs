//! The [`MetadataStore`] suite.

use super::{Found, Outcome};
use std::sync::Arc;

use updraft_manifest::{LIVE, Manifest};

use super::MetadataSubject;
use crate::{
    AliasRecord, ApiKeyRecord, AuditQuery, AuditRecord, Canary, DeployOptions, DeployOutcome,
    DeployedFunction, MetadataStore, ProjectRecord, StoreError,
};

const P: &str = "default";

fn digest(code: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(code))
}

fn options(keep: usize) -> DeployOptions {
    DeployOptions {
        deployer: "test".to_owned(),
        canary: None,
        keep,
    }
}

/// Deploys app `app` of `project` whose functions all run `code`, with `extra` in each table.
async fn deploy_to(
    store: &dyn MetadataStore,
    project: &str,
    app: &str,
    fns: &[(&str, &str)],
    code: &[u8],
    opts: &DeployOptions,
) -> Result<DeployOutcome, StoreError> {
    let mut text = format!("[app]\nname = \"{app}\"\n");
    for (f, extra) in fns {
        text.push_str(&format!(
            "[[functions]]\nname = \"{f}\"\ncomponent = \"{f}.wasm\"\n{extra}\n"
        ));
    }
    // The text is the suite's own: a parse failure is a bug in the suite, reported as such.
    let m = Manifest::parse("updraft.toml", &text).map_err(|e| StoreError::Backend(Box::new(e)))?;
    let fs: Vec<_> = m
        .functions
        .iter()
        .map(|f| DeployedFunction {
            spec: f.clone(),
            digest: digest(code),
        })
        .collect();
    store.deploy_app(project, app, &text, &fs, opts).await
}

async fn deploy_with(
    store: &dyn MetadataStore,
    app: &str,
    fns: &[(&str, &str)],
    code: &[u8],
    opts: &DeployOptions,
) -> Result<DeployOutcome, StoreError> {
    deploy_to(store, P, app, fns, code, opts).await
}

async fn deploy(
    store: &dyn MetadataStore,
    app: &str,
    fns: &[&str],
) -> Result<DeployOutcome, StoreError> {
    let fns: Vec<(&str, &str)> = fns.iter().map(|f| (*f, "")).collect();
    deploy_with(store, app, &fns, b"x", &options(10)).await
}

async fn live(store: &dyn MetadataStore, f: &str) -> Result<u32, super::Failure> {
    Ok(store
        .function(P, f)
        .await?
        .found()?
        .alias(LIVE)
        .found()?
        .version)
}

async fn names(store: &dyn MetadataStore) -> Result<Vec<String>, super::Failure> {
    Ok(store
        .functions(P)
        .await?
        .into_iter()
        .map(|f| f.name)
        .collect())
}

/// Admin token digests are kept, once each.
pub async fn admin_tokens_are_kept(subject: &dyn MetadataSubject) -> Outcome {
    let store = subject.fresh().await;
    store.add_admin_token("abc").await?;
    store.add_admin_token("abc").await?;
    store.add_admin_token("def").await?;
    let store = subject.reopen(store).await;
    let mut tokens = store.admin_tokens().await?;
    tokens.sort();
    assert_eq!(tokens, ["abc", "def"]);
    Ok(())
}

/// API keys survive a reopen, list by project (or all), can't share an id or a hash, and are
/// deleted once.
pub async fn api_keys_are_kept_listed_by_project_and_deleted(
    subject: &dyn MetadataSubject,
) -> Outcome {
    let key = |id: &str, project: &str, hash: &str, at: i64| crate::ApiKeyRecord {
        id: id.to_owned(),
        project: project.to_owned(),
        role: "deployer".to_owned(),
        key_sha256: hash.to_owned(),
        description: format!("{id} for ci"),
        created_at: at,
        expires_at: (at > 1).then_some(at + 1_000),
    };
    let store = subject.fresh().await;
    let a = key("key_a", "p1", "h1", 1);
    let b = key("key_b", "p2", "h2", 2);
    let c = key("key_c", "p1", "h3", 3);
    for k in [&a, &b, &c] {
        store.create_api_key(k).await?;
    }
    assert!(
        store
            .create_api_key(&key("key_a", "p1", "h9", 4))
            .await
            .is_err()
    );
    assert!(
        store
            .create_api_key(&key("key_z", "p1", "h1", 4))
            .await
            .is_err()
    );
    let store = subject.reopen(store).await;
    assert_eq!(store.api_keys(Some("p1")).await?, [a.clone(), c.clone()]);
    assert_eq!(store.api_keys(None).await?, [a.clone(), b, c.clone()]);
    assert_eq!(store.delete_api_key("key_a").await?, Some(a));
    assert_eq!(store.delete_api_key("key_a").await?, None);
    assert_eq!(store.api_keys(Some("p1")).await?, [c]);
    Ok(())
}

/// A deploy replaces the app's set of functions; what is stored survives a reopen; deleting
/// a function is idempotent.
pub async fn deploy_replaces_the_apps_functions_and_survives_reopen(
    subject: &dyn MetadataSubject,
) -> Outcome {
    let store = subject.fresh().await;
    let o = deploy(&*store, "shop", &["a", "b"]).await?;
    assert!(o.removed.is_empty());
    let o = deploy(&*store, "shop", &["b", "c"]).await?;
    assert_eq!(o.removed, ["a"]);
    assert_eq!(names(&*store).await?, ["b", "c"]);
    let store = subject.reopen(store).await;
    assert_eq!(names(&*store).await?, ["b", "c"]);
    assert_eq!(store.all_functions().await?.len(), 2);
    assert!(store.delete_function(P, "b").await?.is_some());
    assert!(store.delete_function(P, "b").await?.is_none());
    assert_eq!(names(&*store).await?, ["c"]);
    let manifest = store.version_manifest(P, "c", 1).await?.found()?;
    assert!(manifest.contains("name = \"c\""), "{manifest}");
    Ok(())
}

/// A function name belongs to one app of a project.
pub async fn a_function_name_belongs_to_one_app(subject: &dyn MetadataSubject) -> Outcome {
    let store = subject.fresh().await;
    deploy(&*store, "shop", &["a"]).await?;
    let Err(err) = deploy(&*store, "blog", &["a"]).await else {
        return Err("another app's function name was taken".into());
    };
    assert!(
        matches!(err, StoreError::FunctionOwnedByOtherApp { ref app, .. } if app == "shop"),
        "{err}"
    );
    assert_eq!(names(&*store).await?, ["a"]);
    Ok(())
}

/// A change of code or settings publishes a version and moves `live`; no change, no version.
pub async fn changes_publish_versions_and_live_follows(subject: &dyn MetadataSubject) -> Outcome {
    let store = subject.fresh().await;
    let store = &*store;
    let o = deploy_with(store, "shop", &[("a", "")], b"one", &options(10)).await?;
    assert_eq!(o.published, [("a".to_owned(), 1)]);
    let o = deploy_with(store, "shop", &[("a", "")], b"one", &options(10)).await?;
    assert!(
        o.published.is_empty(),
        "same code and settings: nothing new"
    );
    assert_eq!(live(store, "a").await?, 1);
    deploy_with(store, "shop", &[("a", "")], b"two", &options(10)).await?;
    assert_eq!(live(store, "a").await?, 2);
    deploy_with(
        store,
        "shop",
        &[("a", "timeout = \"5s\"")],
        b"two",
        &options(10),
    )
    .await?;
    let f = store.function(P, "a").await?.found()?;
    assert_eq!(f.alias(LIVE).found()?.version, 3);
    assert_eq!(f.versions.len(), 3);
    assert_eq!(f.versions[1].digest, f.versions[2].digest);
    assert_eq!(f.version(3).found()?.spec.timeout_ms, Some(5_000));
    assert_eq!(f.version(3).found()?.deployer, "test");
    store.set_version_note(P, "a", 2, "rolled back").await?;
    let f = store.function(P, "a").await?.found()?;
    assert_eq!(f.version(2).found()?.note.as_deref(), Some("rolled back"));
    Ok(())
}

/// A canary deploy leaves `live` where it is; routes create their aliases once.
pub async fn canary_deploys_leave_live_and_routes_create_their_aliases(
    subject: &dyn MetadataSubject,
) -> Outcome {
    let store = subject.fresh().await;
    let store = &*store;
    let routed = "[[functions.http]]\nroute = \"/a\"\nalias = \"beta\"";
    deploy_with(store, "shop", &[("a", routed)], b"one", &options(10)).await?;
    let mut opts = options(10);
    opts.canary = Some(Canary {
        version: 0,
        weight: 10,
        auto_rollback: true,
        promote_after_ms: Some(60_000),
        started_at: 0,
    });
    deploy_with(store, "shop", &[("a", routed)], b"two", &opts).await?;
    let f = store.function(P, "a").await?.found()?;
    let live = f.alias(LIVE).found()?;
    assert_eq!(live.version, 1);
    let canary = live.canary.as_ref().found()?;
    assert_eq!((canary.version, canary.weight), (2, 10));
    assert!(canary.auto_rollback && canary.started_at > 0);
    assert_eq!(canary.promote_after_ms, Some(60_000));
    // `beta` was made at version 1 by the first deploy and is not moved by later ones.
    assert_eq!(f.alias("beta").found()?.version, 1);
    assert!(store.delete_alias(P, "a", "beta").await?);
    assert!(!store.delete_alias(P, "a", "beta").await?);
    Ok(())
}

/// Retention keeps the newest versions and aliased ones, and reports artifacts no version uses
/// any more; aliases cannot point at deleted or unknown versions.
pub async fn retention_keeps_aliased_versions_and_orphans_unused_artifacts(
    subject: &dyn MetadataSubject,
) -> Outcome {
    let store = subject.fresh().await;
    let store = &*store;
    let code: Vec<Vec<u8>> = (0..5).map(|i| format!("code {i}").into_bytes()).collect();
    let digests: Vec<String> = code.iter().map(|c| digest(c)).collect();
    deploy_with(store, "shop", &[("a", "")], &code[0], &options(2)).await?;
    // Pin version 1 with an alias: retention must keep it.
    let pin = AliasRecord {
        name: "pinned".to_owned(),
        version: 1,
        canary: None,
        updated_at: 0,
    };
    store.set_alias(P, "a", &pin, 2).await?;
    let mut pruned = Vec::new();
    let mut orphaned = Vec::new();
    for c in &code[1..] {
        let o = deploy_with(store, "shop", &[("a", "")], c, &options(2)).await?;
        pruned.extend(o.pruned);
        orphaned.extend(o.orphaned);
    }
    // Kept: 5 and 4 (newest two) and 1 (aliased). Deleted: 2, 3.
    assert_eq!(pruned, [("a".to_owned(), 2), ("a".to_owned(), 3)]);
    assert_eq!(orphaned, [digests[1].clone(), digests[2].clone()]);
    // What versions still use is referenced; what retention orphaned is not.
    let mut referenced = store.referenced_artifacts().await?;
    referenced.sort();
    let mut expected = vec![digests[0].clone(), digests[3].clone(), digests[4].clone()];
    expected.sort();
    assert_eq!(referenced, expected);
    let f = store.function(P, "a").await?.found()?;
    let alive: Vec<u32> = f
        .versions
        .iter()
        .filter(|v| v.deleted_at.is_none())
        .map(|v| v.version)
        .collect();
    assert_eq!(alive, [1, 4, 5]);
    let mut to_deleted = pin.clone();
    to_deleted.version = 2;
    assert!(matches!(
        store.set_alias(P, "a", &to_deleted, 2).await,
        Err(StoreError::VersionDeleted { version: 2, .. })
    ));
    to_deleted.version = 9;
    assert!(matches!(
        store.set_alias(P, "a", &to_deleted, 2).await,
        Err(StoreError::NoSuchVersion { version: 9, .. })
    ));
    assert!(matches!(
        store.set_alias(P, "nope", &pin, 2).await,
        Err(StoreError::NoSuchFunction { .. })
    ));
    // Moving the pin away lets retention take version 1 and its artifact.
    let mut moved = pin;
    moved.version = 5;
    let (record, p) = store.set_alias(P, "a", &moved, 2).await?;
    assert_eq!(record.alias("pinned").found()?.version, 5);
    assert_eq!(p.versions, [("a".to_owned(), 1)]);
    assert_eq!(p.orphaned, [digests[0].clone()]);
    // Deleting the function orphans the artifacts only it used.
    let p = store.delete_function(P, "a").await?.found()?;
    let mut left = p.orphaned;
    left.sort();
    let mut expected = vec![digests[3].clone(), digests[4].clone()];
    expected.sort();
    assert_eq!(left, expected);
    Ok(())
}

/// Version numbers grow and are never reused, even after retention deletes versions.
pub async fn version_numbers_are_never_reused(subject: &dyn MetadataSubject) -> Outcome {
    let store = subject.fresh().await;
    for i in 0..4u8 {
        deploy_with(&*store, "shop", &[("a", "")], &[i], &options(1)).await?;
    }
    let f = store.function(P, "a").await?.found()?;
    assert_eq!(f.latest().found()?.version, 4);
    assert_eq!(
        f.versions.iter().filter(|v| v.deleted_at.is_some()).count(),
        3
    );
    Ok(())
}

/// Projects are separate namespaces: the same app and function names in two projects are
/// different functions.
pub async fn projects_do_not_see_each_other(subject: &dyn MetadataSubject) -> Outcome {
    let store = subject.fresh().await;
    let store = &*store;
    for p in ["alpha", "beta"] {
        assert!(store.create_project(&project(p)).await?);
    }
    deploy_to(store, "alpha", "shop", &[("a", "")], b"one", &options(10)).await?;
    deploy_to(store, "beta", "shop", &[("a", "")], b"two", &options(10)).await?;
    let a = store.function("alpha", "a").await?.found()?;
    let b = store.function("beta", "a").await?.found()?;
    assert_ne!(a.versions[0].digest, b.versions[0].digest);
    assert!(store.functions(P).await?.is_empty());
    assert!(store.delete_function("alpha", "a").await?.is_some());
    assert!(store.function("beta", "a").await?.is_some());
    Ok(())
}

fn project(id: &str) -> ProjectRecord {
    ProjectRecord {
        id: id.to_owned(),
        domains: Vec::new(),
        cors_origins: Vec::new(),
        created_at: 1,
    }
}

/// Projects are created once, listed with their domains, and deleted (with their keys) only
/// once they have no functions; nothing deploys into a project that does not exist.
pub async fn projects_are_created_listed_and_deleted(subject: &dyn MetadataSubject) -> Outcome {
    let store = subject.fresh().await;
    let store = &*store;
    // `default` always exists.
    let ids = |ps: Vec<ProjectRecord>| ps.into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(store.projects().await?), [P]);
    let Err(StoreError::NoSuchProject { project: missing }) =
        deploy_to(store, "shop", "app", &[("a", "")], b"x", &options(10)).await
    else {
        return Err("a deploy into a missing project must fail with NoSuchProject".into());
    };
    assert_eq!(missing, "shop");
    assert!(
        store
            .create_project(&project_record("shop", &["api.example.com"]))
            .await?
    );
    assert!(!store.create_project(&project_record("shop", &[])).await?);
    let listed = store.projects().await?;
    assert_eq!(ids(listed.clone()), ["default", "shop"]);
    assert_eq!(listed[1].domains, ["api.example.com"]);
    assert!(
        store
            .set_project_domains("shop", &["a.test".to_owned()])
            .await?
    );
    assert!(!store.set_project_domains("nope", &[]).await?);
    assert_eq!(store.projects().await?[1].domains, ["a.test"]);
    assert!(
        store
            .set_project_cors("shop", &["https://app.test".to_owned()])
            .await?
    );
    assert!(!store.set_project_cors("nope", &[]).await?);
    let shop = &store.projects().await?[1];
    assert_eq!(shop.cors_origins, ["https://app.test"]);
    assert_eq!(shop.domains, ["a.test"]);

    deploy_to(store, "shop", "app", &[("a", "")], b"x", &options(10)).await?;
    let key = ApiKeyRecord {
        id: "key_shop".to_owned(),
        project: "shop".to_owned(),
        role: "owner".to_owned(),
        key_sha256: "f".repeat(64),
        description: String::new(),
        created_at: 1,
        expires_at: None,
    };
    store.create_api_key(&key).await?;
    // Secrets are per project, replaced in place, and go with their project.
    assert!(store.put_secret("shop", "K", b"sealed-1").await?);
    assert!(!store.put_secret("shop", "K", b"sealed-2").await?);
    assert!(store.put_secret(P, "K", b"other").await?);
    let shop = store.secrets("shop").await?;
    assert_eq!(shop.len(), 1);
    assert_eq!(shop[0].sealed, b"sealed-2");
    assert!(shop[0].updated_at >= shop[0].created_at);
    assert!(store.delete_secret(P, "K").await?);
    assert!(!store.delete_secret(P, "K").await?);
    assert_eq!(store.secrets("shop").await?.len(), 1);
    let Err(StoreError::ProjectNotEmpty { functions, .. }) = store.delete_project("shop").await
    else {
        return Err("a project with functions must not be deleted".into());
    };
    assert_eq!(functions, 1);
    assert_eq!(store.projects().await?.len(), 2);
    store.delete_function("shop", "a").await?.found()?;
    assert!(store.delete_project("shop").await?);
    assert!(!store.delete_project("shop").await?);
    assert!(store.api_keys(Some("shop")).await?.is_empty());
    assert!(store.secrets("shop").await?.is_empty());
    assert_eq!(ids(store.projects().await?), [P]);
    // Artifacts are granted per project, and forgotten for all of them at once.
    let d = "a".repeat(64);
    store.grant_artifact(P, &d).await?;
    store.grant_artifact(P, &d).await?;
    assert!(store.has_artifact(P, &d).await?);
    assert!(!store.has_artifact("shop", &d).await?);
    store.forget_artifact(&d).await?;
    assert!(!store.has_artifact(P, &d).await?);
    // Created again under the same name, it starts empty.
    assert!(store.create_project(&project("shop")).await?);
    assert!(store.functions("shop").await?.is_empty());
    Ok(())
}

fn project_record(id: &str, domains: &[&str]) -> ProjectRecord {
    ProjectRecord {
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        ..project(id)
    }
}

/// The audit log keeps entries per project, lists them newest first within a time and a
/// limit, survives a reopen, and forgets those past their age.
pub async fn audit_entries_are_kept_listed_and_expired(subject: &dyn MetadataSubject) -> Outcome {
    let store = subject.fresh().await;
    for (i, project) in ["default", "shop", "default"].iter().enumerate() {
        let ts = i64::try_from(i).unwrap_or(0) * 1_000 + 1_000;
        let id = store
            .append_audit(&AuditRecord {
                project: (*project).to_owned(),
                ts_ms: ts,
                actor: "admin".to_owned(),
                action: "deploy".to_owned(),
                target: format!("apps/{i}"),
                outcome: "ok".to_owned(),
                status: 200,
                detail: String::new(),
                id: 0,
            })
            .await?;
        assert!(id > 0);
    }
    let all = store
        .audit(&AuditQuery {
            project: None,
            since_ms: 0,
            limit: 10,
        })
        .await?;
    assert_eq!(
        all.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
        ["apps/2", "apps/1", "apps/0"]
    );
    let mine = store
        .audit(&AuditQuery {
            project: Some(P.to_owned()),
            since_ms: 0,
            limit: 1,
        })
        .await?;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].target, "apps/2");
    let recent = store
        .audit(&AuditQuery {
            project: None,
            since_ms: 2_000,
            limit: 10,
        })
        .await?;
    assert_eq!(recent.len(), 2);
    let store = subject.reopen(store).await;
    assert_eq!(store.expire_audit(2_000).await?, 1);
    let left = store
        .audit(&AuditQuery {
            project: None,
            since_ms: 0,
            limit: 10,
        })
        .await?;
    assert_eq!(left.len(), 2);
    Ok(())
}

/// Concurrent deploys of one function all land, each as its own version.
pub async fn concurrent_deploys_get_distinct_versions(subject: &dyn MetadataSubject) -> Outcome {
    let store: Arc<dyn MetadataStore> = subject.fresh().await;
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                deploy_with(&*store, "shop", &[("a", "")], &[i], &options(100))
                    .await
                    .map(|o| o.published)
            })
        })
        .collect();
    let mut versions = Vec::new();
    for t in tasks {
        versions.extend(t.await??.into_iter().map(|(_, v)| v));
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<u32>>());
    Ok(())
}
