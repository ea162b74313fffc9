//! Deploying apps: validate, load, check routes, persist, then publish atomically.
//!
//! Invariant: the gateway's snapshot always equals what the store holds. Every change (deploy,
//! alias move, delete) runs under the [`Deployed`] lock, persists first, and publishes the new
//! snapshot only after the store has committed, so an acknowledged change is durable and a
//! failed one changes nothing.
//!
//! Each stored version becomes one gateway [`Version`] (code loaded on demand), kept across
//! snapshots so its loaded code, warm instances and health record survive alias moves. A
//! function's routes are those of the version `live` points at: moving `live` (a rollback)
//! brings back that version's routes with its code.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use updraft_api::{
    AliasInfo, CanaryInfo, Code, DeployRequest, DeployResponse, FunctionInfo, RouteInfo,
    RuntimeInfo,
};
use updraft_dispatch::{
    Alias, ConcurrencyLimit, Function, Health, Reuse, Runtime, RuntimeProvider, Settings, Version,
};
use updraft_gateway::{RouteTable, Snapshot};
use updraft_manifest::{Function as Spec, HttpTrigger, LIVE, Manifest};
use updraft_store::{
    AliasRecord, Canary, DEFAULT_PROJECT, DeployOptions, DeployedFunction, FunctionRecord,
    VersionRecord,
};

use crate::State;
use crate::config::{Effective, Limits};
use crate::error::ApiError;

/// The functions being served, with the records they were built from.
#[derive(Default)]
pub(crate) struct Deployed {
    // tokio Mutex: held across the awaits of a change (compile-cache loads and SQLite run on
    // blocking threads) so that changes are serialised.
    pub(crate) inner: tokio::sync::Mutex<HashMap<String, Entry>>,
}

/// One function: its stored record and what the gateway serves for it.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) record: FunctionRecord,
    pub(crate) function: Arc<Function>,
}

impl Entry {
    /// The gateway version `n`, if it can serve.
    pub(crate) fn version(&self, n: u32) -> Option<&Arc<Version>> {
        self.function.versions.get(&n)
    }
}

/// Makes the gateway's version for a stored one: settings resolved against the server's
/// defaults, code not loaded yet (unless `runtime` is code already loaded for it).
fn new_version(
    state: &State,
    (project, function): (&str, &str),
    v: &VersionRecord,
    runtime: Option<Arc<dyn Runtime>>,
) -> Version {
    let e = state.limits.resolve(&v.spec);
    let runtime = runtime.unwrap_or_else(|| managed(state, &v.digest, &v.spec, &e));
    Version {
        number: v.version,
        runtime,
        max_request_body: e.max_request_body,
        max_response_body: e.max_response_body,
        memory_bytes: e.memory,
        health: Health::new(state.canary.window),
        metrics: state
            .gateway
            .dispatcher()
            .metrics()
            .version(project, function, v.version),
    }
}

/// The code of the component `digest` run with `spec` (settings `e` resolved from it), not
/// loaded yet.
fn managed(state: &State, digest: &str, spec: &Spec, e: &Effective) -> Arc<dyn Runtime> {
    let settings = Settings {
        env: spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        allowed_outbound_hosts: spec.outbound_hosts(),
        timeout: e.timeout,
        memory_bytes: e.memory,
        reuse: match e.max_reuse {
            Some(max_reuse) => Reuse::Warm { max_reuse },
            None => Reuse::Fresh,
        },
        min_instances: spec.min_instances,
        idle_timeout: e.idle_timeout,
    };
    state.runtime.prepare(digest, settings)
}

/// Builds what the gateway serves for `record`, reusing the versions of `previous` (same
/// number, same immutable code) and `preloaded` code for a just-published version.
pub(crate) fn entry(
    state: &State,
    record: FunctionRecord,
    previous: Option<&Entry>,
    mut preloaded: Option<(u32, Arc<dyn Runtime>)>,
) -> Entry {
    let versions: BTreeMap<u32, Arc<Version>> = record
        .versions
        .iter()
        .filter(|v| v.deleted_at.is_none())
        .map(|v| {
            let reused = previous.and_then(|p| p.version(v.version)).cloned();
            let version = reused.unwrap_or_else(|| {
                let runtime = preloaded.take_if(|(n, _)| *n == v.version).map(|(_, r)| r);
                let names = (record.project.as_str(), record.name.as_str());
                Arc::new(new_version(state, names, v, runtime))
            });
            (v.version, version)
        })
        .collect();
    let mut watched = HashSet::new();
    let aliases = record
        .aliases
        .iter()
        .filter_map(|a| {
            let version = versions.get(&a.version)?.clone();
            let canary = a.canary.as_ref().and_then(|c| {
                let v = versions.get(&c.version)?.clone();
                if c.weight > 0 && c.auto_rollback {
                    watched.extend([a.version, c.version]);
                }
                Some((v, c.weight))
            });
            Some((a.name.clone(), Alias { version, canary }))
        })
        .collect();
    for (n, v) in &versions {
        v.health.watch(watched.contains(n));
    }
    let allow_pinning = record
        .latest()
        .is_some_and(|v| v.spec.allow_version_pinning);
    let quotas = record.live().map_or_else(Vec::new, |v| {
        let q = &v.spec.quota;
        state
            .quotas
            .for_function(&state.store, &record.project, &record.name, q)
    });
    // One limit per function, kept across redeploys and alias moves: the value of the version
    // `live` serves.
    let max_concurrency = record.live().map_or(state.limits.max_concurrency, |v| {
        state.limits.resolve(&v.spec).max_concurrency
    });
    let limit = match previous {
        Some(p) => {
            p.function.limit.resize(max_concurrency);
            p.function.limit.clone()
        }
        None => Arc::new(ConcurrencyLimit::new(max_concurrency, state.queue_timeout)),
    };
    let function = Arc::new(Function {
        project: record.project.clone(),
        name: record.name.clone(),
        versions,
        aliases,
        allow_pinning,
        quotas,
        limit,
    });
    Entry { record, function }
}

/// The HTTP routes of a function: those of the version `live` points at.
fn routes(record: &FunctionRecord) -> &[HttpTrigger] {
    record.live().map_or(&[], |v| v.spec.http.as_slice())
}

/// Builds the gateway snapshot for a set of entries.
pub(crate) fn snapshot(
    entries: &HashMap<String, Entry>,
) -> Result<Snapshot, updraft_gateway::RouteConflict> {
    // Sorted by name so that conflicts are reported deterministically.
    let sorted: BTreeMap<&String, &Entry> = entries.iter().collect();
    let routes = RouteTable::new(sorted.values().flat_map(|e| {
        routes(&e.record)
            .iter()
            .map(|t| (t.clone(), e.function.clone()))
    }))?;
    Ok(Snapshot {
        routes,
        functions: entries
            .iter()
            .map(|(k, e)| (k.clone(), e.function.clone()))
            .collect(),
    })
}

/// Makes `current` (the served entries) have `entry` for `name`, or none with `None`, and
/// publishes the result. Call it after the change is stored.
pub(crate) fn swap(
    state: &State,
    current: &mut HashMap<String, Entry>,
    name: &str,
    entry: Option<Entry>,
) -> Result<(), ApiError> {
    let mut next = current.clone();
    match entry {
        Some(e) => next.insert(name.to_owned(), e),
        None => next.remove(name),
    };
    let snap = snapshot(&next).map_err(|e| ApiError::internal("rebuilding routes", e))?;
    state.gateway.publish(snap);
    *current = next;
    Ok(())
}

/// Checks that routes taken from `specs` (function name → routes) together with the routes of
/// every other entry do not collide, before anything is stored.
pub(crate) fn check_routes(
    entries: &HashMap<String, Entry>,
    replaced: &BTreeMap<String, Vec<HttpTrigger>>,
) -> Result<(), ApiError> {
    let mut all: BTreeMap<&str, &[HttpTrigger]> = entries
        .iter()
        .filter(|(k, _)| !replaced.contains_key(*k))
        .map(|(k, e)| (k.as_str(), routes(&e.record)))
        .collect();
    for (k, r) in replaced {
        all.insert(k.as_str(), r.as_slice());
    }
    RouteTable::check(
        all.iter()
            .flat_map(|(name, rs)| rs.iter().map(|t| (t, *name))),
    )
    .map_err(|e| ApiError::new(Code::Conflict, e.to_string()))
}

/// Loads and pre-instantiates, in the background, the versions aliases point at whose
/// functions ask for warm instances.
pub(crate) fn warm_up<'a>(entries: impl IntoIterator<Item = &'a Entry>) {
    for e in entries {
        let targets: HashSet<u32> = e
            .record
            .aliases
            .iter()
            .flat_map(|a| std::iter::once(a.version).chain(a.canary.as_ref().map(|c| c.version)))
            .collect();
        for n in targets {
            let Some(v) = e.version(n).cloned() else {
                continue;
            };
            if v.runtime.min_instances() == 0 {
                continue;
            }
            let name = e.record.name.clone();
            tokio::spawn(async move {
                if let Err(e) = v.runtime.warm_up().await {
                    tracing::error!(function = %name, version = v.number, error = %e, "could not pre-instantiate");
                }
            });
        }
    }
}

/// Deletes the compiled code of artifacts the store just deleted.
pub(crate) fn forget(state: &State, digests: &[String]) {
    for d in digests {
        state.runtime.forget(d);
    }
}

/// Writes a platform event into a function's log.
pub(crate) fn event(state: &State, function: &str, message: &str) {
    tracing::info!(function, "{message}");
    crate::telemetry::write(
        state.store.logs(),
        DEFAULT_PROJECT,
        function,
        None,
        "",
        updraft_dispatch::Stream::Platform,
        message,
    );
}

/// Brings trigger delivery in line with the served `entries` (each function's `live`
/// version's triggers); `deleted` functions' event state is deleted.
pub(crate) async fn reconcile(state: &State, entries: &HashMap<String, Entry>, deleted: &[String]) {
    let served: Vec<updraft_triggers::Served> = entries
        .values()
        .filter_map(|e| {
            let live = e.record.live()?;
            let eff = state.limits.resolve(&live.spec);
            Some(updraft_triggers::Served {
                project: e.record.project.clone(),
                name: e.record.name.clone(),
                spec: live.spec.clone(),
                timeout: eff.timeout,
                max_concurrency: eff.max_concurrency,
            })
        })
        .collect();
    let deleted: Vec<(String, String)> = deleted
        .iter()
        .map(|n| (DEFAULT_PROJECT.to_owned(), n.clone()))
        .collect();
    state.triggers.reconcile(&served, &deleted).await;
}

/// Loads every stored function and publishes them. Returns the ones that failed, with why.
pub(crate) async fn load_all(
    state: &Arc<State>,
) -> Result<Vec<(String, String)>, crate::ServerError> {
    let mut guard = state.deployed.inner.lock().await;
    let s = state.clone();
    let records = tokio::task::spawn_blocking(move || s.store.all_functions())
        .await
        .map_err(|e| crate::ServerError::Internal(e.to_string()))??;
    let mut entries = HashMap::new();
    let mut failed = Vec::new();
    for record in records {
        let name = record.name.clone();
        // Scaled to zero: only code missing from the compiled-code cache is made now (so that
        // no request pays for compiling it), without loading it. Versions no alias points at
        // are left to compile on the first request that pins one.
        let aliased = |n: u32| record.aliases.iter().any(|a| a.references(n));
        let mut problem = None;
        for v in &record.versions {
            if v.deleted_at.is_none()
                && aliased(v.version)
                && let Err(e) = state.runtime.ensure_prepared(&v.digest).await
            {
                problem = Some(format!("version {}: {e}", v.version));
                break;
            }
        }
        match problem {
            None => {
                entries.insert(name, entry(state, record, None, None));
            }
            Some(e) => {
                tracing::error!(function = %name, error = %e, "could not load function");
                failed.push((name, e));
            }
        }
    }
    let snap = snapshot(&entries).map_err(|e| crate::ServerError::Internal(e.to_string()))?;
    state.gateway.publish(snap);
    warm_up(entries.values());
    reconcile(state, &entries, &[]).await;
    *guard = entries;
    Ok(failed)
}

/// The API view of an alias.
pub(crate) fn alias_info(a: &AliasRecord) -> AliasInfo {
    AliasInfo {
        name: a.name.clone(),
        version: a.version,
        canary: a.canary.as_ref().map(|c| CanaryInfo {
            version: c.version,
            weight: c.weight,
            auto_rollback: c.auto_rollback,
            promote_after_ms: c.promote_after_ms,
            started_at: c.started_at,
        }),
        updated_at: a.updated_at,
    }
}

/// The API view of a function: its `live` version with the server's defaults filled in, and
/// that version's runtime state.
pub(crate) fn info(limits: &Limits, e: &Entry) -> Option<FunctionInfo> {
    let record = &e.record;
    let live = record.live()?;
    let spec = &live.spec;
    let eff = limits.resolve(spec);
    let runtime = e.version(live.version).map(|v| {
        let s = v.runtime.stats();
        RuntimeInfo {
            loaded: s.loaded,
            ready_instances: s.ready_instances,
            cold_starts: s.cold_starts,
            evictions: s.evictions,
            reuse_disabled: s.reuse_disabled,
        }
    });
    Some(FunctionInfo {
        name: record.name.clone(),
        app: record.app.clone(),
        digest: live.digest.clone(),
        version: live.version,
        latest_version: record.latest().map_or(live.version, |v| v.version),
        aliases: record.aliases.iter().map(alias_info).collect(),
        routes: spec
            .http
            .iter()
            .map(|t| RouteInfo {
                route: t.route.to_string(),
                methods: t.methods.iter().map(|m| m.as_str().to_owned()).collect(),
            })
            .collect(),
        timeout_ms: u64::try_from(eff.timeout.as_millis()).unwrap_or(u64::MAX),
        memory_bytes: eff.memory,
        max_concurrency: eff.max_concurrency,
        min_instances: spec.min_instances,
        idle_timeout_ms: u64::try_from(eff.idle_timeout.as_millis()).unwrap_or(u64::MAX),
        instance_reuse: spec.instance_reuse.as_str().to_owned(),
        max_reuse: eff.max_reuse,
        max_request_body: eff.max_request_body,
        max_response_body: eff.max_response_body,
        allowed_outbound_hosts: spec.allowed_outbound_hosts.clone(),
        env: spec.env.keys().cloned().collect(),
        updated_at: live.created_at,
        runtime,
    })
}

/// Validates a canary weight and guard.
pub(crate) fn canary_template(p: &updraft_api::CanaryPolicy) -> Result<Canary, ApiError> {
    if p.weight > 100 {
        return Err(ApiError::new(
            Code::BadRequest,
            format!("canary weight {} is not a percentage (0 to 100)", p.weight),
        ));
    }
    if p.promote_after_ms == Some(0) {
        return Err(ApiError::new(
            Code::BadRequest,
            "promote_after must be longer than 0",
        ));
    }
    Ok(Canary {
        version: 0,
        weight: p.weight,
        auto_rollback: p.auto_rollback,
        promote_after_ms: p.promote_after_ms,
        started_at: 0,
    })
}

/// Deploys (or redeploys) one app.
pub(crate) async fn deploy(
    state: &Arc<State>,
    req: DeployRequest,
    deployer: String,
) -> Result<DeployResponse, ApiError> {
    let file = req.manifest_file.as_deref().unwrap_or("updraft.toml");
    let manifest = Manifest::parse(file, &req.manifest)
        .map_err(|e| ApiError::new(Code::InvalidManifest, e.to_string()))?;
    for name in req.artifacts.keys() {
        if !manifest.functions.iter().any(|f| f.name.as_str() == name) {
            return Err(ApiError::new(
                Code::BadRequest,
                format!("artifacts names `{name}`, which is not a function in {file}"),
            ));
        }
    }
    let mut functions = Vec::new();
    for f in &manifest.functions {
        let digest = req.artifacts.get(f.name.as_str()).ok_or_else(|| {
            ApiError::new(
                Code::BadRequest,
                format!("no artifact digest given for function `{}`", f.name),
            )
        })?;
        functions.push(DeployedFunction {
            spec: f.clone(),
            digest: digest.clone(),
        });
    }
    let problems: Vec<String> = manifest
        .functions
        .iter()
        .enumerate()
        .flat_map(|(i, f)| state.limits.check(i, f))
        .collect();
    if !problems.is_empty() {
        return Err(ApiError::new(
            Code::InvalidManifest,
            problems
                .iter()
                .map(|p| format!("{file}: {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    let canary = req.canary.as_ref().map(canary_template).transpose()?;
    let app = manifest.app.name.to_string();

    let mut guard = state.deployed.inner.lock().await;
    if let Some((f, owner)) = functions.iter().find_map(|f| {
        guard
            .get(f.spec.name.as_str())
            .filter(|e| e.record.app != app)
            .map(|e| (f, e.record.app.clone()))
    }) {
        return Err(ApiError::new(
            Code::Conflict,
            format!(
                "function `{}` already belongs to app `{owner}`; delete it there first",
                f.spec.name
            ),
        ));
    }
    // What changed: a function whose code or settings differ from its newest version gets a new
    // version. Its code is loaded before anything is stored, so that a deploy whose code cannot
    // run changes nothing (and the first request after it is warm).
    let changed: Vec<DeployedFunction> = functions
        .iter()
        .filter(|f| {
            guard
                .get(f.spec.name.as_str())
                .and_then(|e| e.record.latest())
                .is_none_or(|v| v.digest != f.digest || v.spec != f.spec)
        })
        .cloned()
        .collect();
    // The routes each of the app's functions will have: the new spec's where `live` moves to
    // the new version, the current `live` version's otherwise.
    let mut next_routes: BTreeMap<String, Vec<HttpTrigger>> = BTreeMap::new();
    for f in &functions {
        let name = f.spec.name.to_string();
        let current = guard.get(&name).and_then(|e| e.record.live());
        let moves = changed.iter().any(|c| c.spec.name == f.spec.name)
            && (canary.is_none() || current.is_none());
        let routes = match current {
            Some(live) if !moves => live.spec.http.clone(),
            _ => f.spec.http.clone(),
        };
        next_routes.insert(name, routes);
    }
    for (name, e) in guard.iter() {
        if e.record.app == app && !next_routes.contains_key(name) {
            next_routes.insert(name.clone(), Vec::new());
        }
    }
    check_routes(&guard, &next_routes)?;

    let s = state.clone();
    let options = DeployOptions {
        deployer,
        canary,
        keep: state.keep_versions,
    };
    let manifest_text = req.manifest.clone();
    let app_name = app.clone();
    let mut preloaded = HashMap::new();
    for f in &changed {
        let (store, digest) = (state.store.clone(), f.digest.clone());
        if !tokio::task::spawn_blocking(move || store.has_artifact(&digest)).await?? {
            return Err(ApiError::new(
                Code::UnknownArtifact,
                format!(
                    "function `{}`: artifact {} was not uploaded (PUT /v1/artifacts/{{digest}} first)",
                    f.spec.name, f.digest
                ),
            ));
        }
        let runtime = managed(state, &f.digest, &f.spec, &state.limits.resolve(&f.spec));
        runtime.load().await.map_err(|e| {
            if e.user_error {
                ApiError::new(
                    Code::InvalidComponent,
                    format!("function `{}`: {e}", f.spec.name),
                )
            } else {
                ApiError::internal("loading a component", e)
            }
        })?;
        preloaded.insert(f.spec.name.to_string(), runtime);
    }
    let (outcome, records) = tokio::task::spawn_blocking(move || {
        let outcome = s.store.deploy_app(
            DEFAULT_PROJECT,
            &app_name,
            &manifest_text,
            &functions,
            &options,
        )?;
        let mut records = Vec::new();
        for f in &functions {
            if let Some(r) = s.store.function(DEFAULT_PROJECT, f.spec.name.as_str())? {
                records.push(r);
            }
        }
        Ok::<_, ApiError>((outcome, records))
    })
    .await??;
    // Durable; now switch traffic.
    let mut next: HashMap<String, Entry> = guard
        .iter()
        .filter(|(k, _)| !outcome.removed.contains(k))
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    for record in records {
        let name = record.name.clone();
        let fresh = outcome
            .published
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| preloaded.remove(&name).map(|r| (*v, r)));
        let e = entry(state, record, guard.get(&name), fresh);
        next.insert(name, e);
    }
    let snap = snapshot(&next).map_err(|e| ApiError::internal("rebuilding routes", e))?;
    state.gateway.publish(snap);
    forget(state, &outcome.orphaned);
    for (name, version) in &outcome.published {
        let msg = match next.get(name).and_then(|e| e.record.alias(LIVE)) {
            Some(live) if live.version == *version => {
                format!("deployed version {version}; live now serves it")
            }
            Some(live) => format!(
                "deployed version {version} as a {}% canary of live (stable: version {})",
                live.canary.as_ref().map_or(0, |c| c.weight),
                live.version
            ),
            None => format!("deployed version {version}"),
        };
        event(state, name, &msg);
    }
    for (name, version) in &outcome.pruned {
        event(
            state,
            name,
            &format!(
                "deleted version {version} (retention keeps the last {})",
                state.keep_versions
            ),
        );
    }
    warm_up(
        next.values()
            .filter(|e| outcome.published.iter().any(|(n, _)| *n == e.record.name)),
    );
    reconcile(state, &next, &outcome.removed).await;
    *guard = next;

    let mut infos: Vec<FunctionInfo> = guard
        .values()
        .filter(|e| e.record.app == app)
        .filter_map(|e| info(&state.limits, e))
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    let mut pruned: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (name, v) in outcome.pruned {
        pruned.entry(name).or_default().push(v);
    }
    Ok(DeployResponse {
        app,
        functions: infos,
        removed: outcome.removed,
        published: outcome.published.into_iter().collect(),
        pruned,
    })
}

/// Deletes one function with its versions. Returns whether it existed.
pub(crate) async fn delete(state: &Arc<State>, name: &str) -> Result<bool, ApiError> {
    let mut guard = state.deployed.inner.lock().await;
    if !guard.contains_key(name) {
        return Ok(false);
    }
    let s = state.clone();
    let n = name.to_owned();
    let pruned =
        tokio::task::spawn_blocking(move || s.store.delete_function(DEFAULT_PROJECT, &n)).await??;
    swap(state, &mut guard, name, None)?;
    reconcile(state, &guard, &[name.to_owned()]).await;
    if let Some(p) = pruned {
        forget(state, &p.orphaned);
    }
    Ok(true)
}

/// Every deployed function, by name.
pub(crate) async fn list(state: &Arc<State>) -> Vec<FunctionInfo> {
    let guard = state.deployed.inner.lock().await;
    let mut infos: Vec<FunctionInfo> = guard
        .values()
        .filter_map(|e| info(&state.limits, e))
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    infos
}
