//! Deploying apps: validate, load, check routes, persist, then publish atomically.
//!
//! Invariant: the gateway's snapshot always equals what the store holds. Every change (deploy,
//! delete) runs under the [`Deployed`] lock, persists first, and publishes the new snapshot only
//! after the store has committed, so an acknowledged deploy is durable and a failed one changes
//! nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use updraft_api::{Code, DeployRequest, DeployResponse, FunctionInfo, RouteInfo, RuntimeInfo};
use updraft_engine::{FunctionSettings, ManagedFunction, Reuse};
use updraft_gateway::{ConcurrencyLimit, Function, RouteTable, Snapshot};
use updraft_manifest::Manifest;
use updraft_store::{DEFAULT_PROJECT, DeployedFunction, FunctionRecord};

use crate::State;
use crate::config::Limits;
use crate::error::ApiError;

/// The functions being served, with the records they were built from.
#[derive(Default)]
pub(crate) struct Deployed {
    // tokio Mutex: held across the awaits of a deploy (compile-cache loads run on blocking
    // threads) so that deploys are serialised.
    inner: tokio::sync::Mutex<HashMap<String, Entry>>,
}

#[derive(Clone)]
struct Entry {
    record: FunctionRecord,
    function: Arc<Function>,
}

/// Makes the gateway's function for a stored record: settings resolved against the server's
/// defaults, code not loaded yet.
fn function(state: &State, record: &FunctionRecord) -> Arc<Function> {
    let spec = &record.spec;
    let e = state.limits.resolve(spec);
    let settings = FunctionSettings {
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
    };
    let runtime = ManagedFunction::new(
        state.engine.clone(),
        record.digest.clone(),
        state.store.artifact_path(&record.digest),
        settings,
        e.idle_timeout,
    );
    Arc::new(Function {
        project: record.project.clone(),
        name: spec.name.to_string(),
        runtime: Arc::new(runtime),
        limit: ConcurrencyLimit::new(e.max_concurrency, state.queue_timeout),
        max_request_body: e.max_request_body,
        max_response_body: e.max_response_body,
    })
}

/// Loads and pre-instantiates the functions that ask for warm instances, in the background.
fn warm_up(functions: impl IntoIterator<Item = Arc<Function>>) {
    for f in functions {
        if f.runtime.min_instances() == 0 {
            continue;
        }
        tokio::spawn(async move {
            if let Err(e) = f.runtime.warm_up().await {
                tracing::error!(function = %f.name, error = %e, "could not pre-instantiate");
            }
        });
    }
}

/// Builds the gateway snapshot for a set of entries.
fn snapshot(entries: &HashMap<String, Entry>) -> Result<Snapshot, updraft_gateway::RouteConflict> {
    // Sorted by name so that conflicts are reported deterministically.
    let sorted: BTreeMap<&String, &Entry> = entries.iter().collect();
    let routes = RouteTable::new(sorted.values().flat_map(|e| {
        e.record
            .spec
            .http
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

/// Loads every stored function and publishes them. Returns the ones that failed, with why.
pub(crate) async fn load_all(
    state: &Arc<State>,
) -> Result<Vec<(String, String)>, crate::ServerError> {
    let mut guard = state.deployed.inner.lock().await;
    let s = state.clone();
    let (entries, failed) = tokio::task::spawn_blocking(move || {
        let mut entries = HashMap::new();
        let mut failed = Vec::new();
        for record in s.store.all_functions()? {
            let name = record.spec.name.to_string();
            let function = function(&s, &record);
            // Scaled to zero: only code missing from the cache is loaded now (compiled, so
            // that no request pays for it), and dropped again until a request comes.
            let loaded = if s.engine.is_cached(&record.digest) {
                Ok(())
            } else {
                s.engine
                    .load(&record.digest, &s.store.artifact_path(&record.digest))
                    .map(drop)
            };
            match loaded {
                Ok(()) => {
                    entries.insert(name, Entry { record, function });
                }
                Err(e) => {
                    tracing::error!(function = %name, error = %e, "could not load function");
                    failed.push((name, e.to_string()));
                }
            }
        }
        Ok::<_, crate::ServerError>((entries, failed))
    })
    .await
    .map_err(|e| crate::ServerError::Internal(e.to_string()))??;
    let snap = snapshot(&entries).map_err(|e| crate::ServerError::Internal(e.to_string()))?;
    state.gateway.publish(snap);
    warm_up(entries.values().map(|e| e.function.clone()));
    *guard = entries;
    Ok(failed)
}

/// The API view of a function: its record with the server's defaults filled in, and its
/// runtime state when it is being served.
pub(crate) fn info(
    limits: &Limits,
    record: &FunctionRecord,
    function: Option<&Function>,
) -> FunctionInfo {
    let spec = &record.spec;
    let e = limits.resolve(spec);
    FunctionInfo {
        name: spec.name.to_string(),
        app: record.app.clone(),
        digest: record.digest.clone(),
        routes: spec
            .http
            .iter()
            .map(|t| RouteInfo {
                route: t.route.to_string(),
                methods: t.methods.iter().map(|m| m.as_str().to_owned()).collect(),
            })
            .collect(),
        timeout_ms: u64::try_from(e.timeout.as_millis()).unwrap_or(u64::MAX),
        memory_bytes: e.memory,
        max_concurrency: e.max_concurrency,
        min_instances: spec.min_instances,
        idle_timeout_ms: u64::try_from(e.idle_timeout.as_millis()).unwrap_or(u64::MAX),
        instance_reuse: spec.instance_reuse.as_str().to_owned(),
        max_reuse: e.max_reuse,
        max_request_body: e.max_request_body,
        max_response_body: e.max_response_body,
        allowed_outbound_hosts: spec.allowed_outbound_hosts.clone(),
        env: spec.env.keys().cloned().collect(),
        updated_at: record.updated_at,
        runtime: function.map(|f| {
            let s = f.runtime.stats();
            RuntimeInfo {
                loaded: s.loaded,
                ready_instances: s.ready_instances,
                cold_starts: s.cold_starts,
                evictions: s.evictions,
                reuse_disabled: s.reuse_disabled,
            }
        }),
    }
}

/// Deploys (or redeploys) one app.
pub(crate) async fn deploy(
    state: &Arc<State>,
    req: DeployRequest,
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
    let app = manifest.app.name.to_string();

    let mut guard = state.deployed.inner.lock().await;
    // The new set starts as everything else, unchanged; this app's functions are replaced.
    let mut next: HashMap<String, Entry> = guard
        .iter()
        .filter(|(_, e)| e.record.app != app || e.record.project != DEFAULT_PROJECT)
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    if let Some(f) = functions
        .iter()
        .find(|f| next.contains_key(f.spec.name.as_str()))
    {
        let owner = &next[f.spec.name.as_str()].record.app;
        return Err(ApiError::new(
            Code::Conflict,
            format!(
                "function `{}` already belongs to app `{owner}`; delete it there first",
                f.spec.name
            ),
        ));
    }
    // Functions whose code and settings did not change keep their running instance (and their
    // `updated_at`); the rest are loaded from the compiled cache before anything is switched, so
    // a deploy that cannot run changes nothing.
    let mut to_load = Vec::new();
    for f in &functions {
        let name = f.spec.name.as_str();
        match guard.get(name) {
            Some(old)
                if old.record.app == app
                    && old.record.digest == f.digest
                    && old.record.spec == f.spec =>
            {
                next.insert(name.to_owned(), old.clone());
            }
            _ => to_load.push(f.clone()),
        }
    }
    let s = state.clone();
    let app_name = app.clone();
    let loaded: Vec<Entry> = tokio::task::spawn_blocking(move || {
        to_load
            .into_iter()
            .map(|f| {
                if !s.store.has_artifact(&f.digest)? {
                    return Err(ApiError::new(
                        Code::UnknownArtifact,
                        format!(
                            "function `{}`: artifact {} was not uploaded (PUT /v1/artifacts/{{digest}} first)",
                            f.spec.name, f.digest
                        ),
                    ));
                }
                let record = FunctionRecord {
                    project: DEFAULT_PROJECT.to_owned(),
                    app: app_name.clone(),
                    digest: f.digest,
                    spec: f.spec,
                    updated_at: updraft_store::now_ms(),
                };
                // Load now so that a deploy whose code cannot run changes nothing, and so that
                // the first request after a deploy is warm.
                let function = function(&s, &record);
                function.runtime.load_now().map_err(|e| {
                    if e.is_user_error() {
                        ApiError::new(Code::InvalidComponent, format!("function `{}`: {e}", record.spec.name))
                    } else {
                        ApiError::internal("loading a component", e)
                    }
                })?;
                Ok(Entry { record, function })
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await??;
    let fresh: Vec<Arc<Function>> = loaded.iter().map(|e| e.function.clone()).collect();
    for e in loaded {
        next.insert(e.record.spec.name.to_string(), e);
    }
    let snap = snapshot(&next).map_err(|e| ApiError::new(Code::Conflict, e.to_string()))?;

    let s = state.clone();
    let (app_name, manifest_text) = (app.clone(), req.manifest.clone());
    let removed = tokio::task::spawn_blocking(move || {
        s.store
            .deploy_app(DEFAULT_PROJECT, &app_name, &manifest_text, &functions)
    })
    .await??;
    // Durable; now switch traffic.
    state.gateway.publish(snap);
    *guard = next;
    warm_up(fresh);

    let mut infos: Vec<FunctionInfo> = guard
        .values()
        .filter(|e| e.record.app == app)
        .map(|e| info(&state.limits, &e.record, Some(&e.function)))
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(DeployResponse {
        app,
        functions: infos,
        removed,
    })
}

/// Deletes one function. Returns whether it existed.
pub(crate) async fn delete(state: &Arc<State>, name: &str) -> Result<bool, ApiError> {
    let mut guard = state.deployed.inner.lock().await;
    if !guard.contains_key(name) {
        return Ok(false);
    }
    let mut next = guard.clone();
    next.remove(name);
    let snap = snapshot(&next).map_err(|e| ApiError::internal("rebuilding routes", e))?;
    let s = state.clone();
    let n = name.to_owned();
    tokio::task::spawn_blocking(move || s.store.delete_function(DEFAULT_PROJECT, &n)).await??;
    state.gateway.publish(snap);
    *guard = next;
    Ok(true)
}

/// Every deployed function, by name.
pub(crate) async fn list(state: &Arc<State>) -> Vec<FunctionInfo> {
    let guard = state.deployed.inner.lock().await;
    let mut infos: Vec<FunctionInfo> = guard
        .values()
        .map(|e| info(&state.limits, &e.record, Some(&e.function)))
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    infos
}
