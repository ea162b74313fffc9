//! Building what is served from what is stored: one dispatch [`Function`] per stored function,
//! one [`Version`] per stored version that can serve (its runtime from the provider, kept across
//! snapshots), the aliases that pick among them, and the route table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use updraft_api::Code;
use updraft_dispatch::{
    Alias, ConcurrencyLimit, Function, Health, Reuse, Runtime, Settings, Version,
};
use updraft_manifest::{Function as Spec, HttpTrigger};
use updraft_store::{FunctionRecord, ProjectRecord, VersionRecord};

use crate::limits::Effective;
use crate::routes::{RouteConflict, RouteTable};
use crate::{Entries, Error, Project, Registry, Snapshot};

/// One function: its stored record and what is served for it.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) record: Arc<FunctionRecord>,
    pub(crate) function: Arc<Function>,
}

impl Entry {
    /// The served version `n`, if it can serve.
    pub(crate) fn version(&self, n: u32) -> Option<&Arc<Version>> {
        self.function.versions.get(&n)
    }
}

impl Registry {
    /// The runtime of the artifact `digest` run with `spec` (settings `e` resolved from it,
    /// the values of the secrets it lists taken from `secrets`) as function `function` of
    /// `project`, not loaded yet.
    pub(crate) fn runtime(
        &self,
        (project, function): (&str, &str),
        digest: &str,
        spec: &Spec,
        e: &Effective,
        secrets: &BTreeMap<String, String>,
    ) -> Arc<dyn Runtime> {
        let granted: Vec<(String, String)> = spec
            .secrets
            .iter()
            .filter_map(|n| secrets.get(n).map(|v| (n.clone(), v.clone())))
            .collect();
        let mut platform = crate::collections::grant_env(
            self.stores.collections.as_deref(),
            project,
            function,
            &spec.collections,
        );
        platform.extend(crate::buckets::grant_env(
            self.stores.buckets.as_deref(),
            project,
            function,
            &spec.buckets,
        ));
        let redact = granted
            .iter()
            .chain(
                platform
                    .iter()
                    .filter(|(k, _)| crate::buckets::SECRET_VARS.contains(&k.as_str())),
            )
            .map(|(_, v)| v.clone())
            .collect();
        // The config interfaces see the variables and the granted secrets; either grants them.
        let variables = (spec.variables.is_some() || !granted.is_empty()).then(|| {
            spec.variables
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(granted.iter().cloned())
                .collect()
        });
        let key_value = match (&self.stores.key_value, spec.key_value_stores.is_empty()) {
            (Some(provider), false) => Some(updraft_dispatch::kv::KeyValueGrant {
                stores: spec.key_value_stores.clone(),
                access: provider.for_function(project, function, &spec.key_value_stores),
            }),
            _ => None,
        };
        let settings = Settings {
            env: spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(granted)
                .chain(platform.iter().cloned())
                .collect(),
            redact,
            allowed_outbound_hosts: spec.outbound_hosts(),
            variables,
            key_value,
            process: spec
                .runtime
                .is_process()
                .then(|| updraft_dispatch::ProcessSettings {
                    runtime: spec.runtime,
                    handler: spec.handler.clone(),
                    project: project.to_owned(),
                    function: function.to_owned(),
                }),
            platform_api: !platform.is_empty(),
            timeout: e.timeout,
            memory_bytes: e.memory,
            reuse: match e.max_reuse {
                Some(max_reuse) => Reuse::Warm { max_reuse },
                None => Reuse::Fresh,
            },
            min_instances: spec.min_instances,
            idle_timeout: e.idle_timeout,
        };
        self.runtimes.prepare(digest, settings)
    }

    /// The served version for a stored one: settings resolved against the server's defaults,
    /// code not loaded yet (unless `runtime` is code already loaded for it).
    fn new_version(
        &self,
        (project, function): (&str, &str),
        v: &VersionRecord,
        runtime: Option<Arc<dyn Runtime>>,
        secrets: &BTreeMap<String, String>,
    ) -> Version {
        let e = self.config.limits.resolve(&v.spec);
        let runtime = runtime
            .unwrap_or_else(|| self.runtime((project, function), &v.digest, &v.spec, &e, secrets));
        Version {
            number: v.version,
            number_header: v.version.into(),
            runtime,
            max_request_body: e.max_request_body,
            max_response_body: e.max_response_body,
            memory_bytes: e.memory,
            health: Health::new(self.config.canary.window),
            metrics: self
                .dispatcher
                .metrics()
                .version(project, function, v.version),
        }
    }

    /// Builds what is served for `record`, reusing the versions of `previous` (same number,
    /// same immutable code) and `preloaded` code for a just-published version.
    pub(crate) async fn entry(
        &self,
        record: FunctionRecord,
        previous: Option<&Entry>,
        preloaded: Option<(u32, Arc<dyn Runtime>)>,
    ) -> Entry {
        self.entry_renewing(record, previous, preloaded, &|_| false)
            .await
    }

    /// [`Registry::entry`], but versions whose spec `renew` picks get a new runtime even
    /// where `previous` has one (a secret they see changed).
    pub(crate) async fn entry_renewing(
        &self,
        record: FunctionRecord,
        previous: Option<&Entry>,
        mut preloaded: Option<(u32, Arc<dyn Runtime>)>,
        renew: &(dyn Fn(&Spec) -> bool + Sync),
    ) -> Entry {
        let kept = || record.versions.iter().filter(|v| v.deleted_at.is_none());
        let reusable = |v: &VersionRecord| {
            previous
                .and_then(|p| p.version(v.version))
                .filter(|_| !renew(&v.spec))
                .cloned()
        };
        // Values of the secrets the versions built now see (deploys checked they exist; one
        // that can't be read now is logged and left out of the environment).
        let fresh: Vec<&Spec> = kept()
            .filter(|v| reusable(v).is_none())
            .map(|v| &v.spec)
            .collect();
        let secrets = match self.secret_values(&record.project, fresh).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(project = %record.project, function = %record.name, error = %e.message, "could not read the function's secrets");
                BTreeMap::new()
            }
        };
        let versions: BTreeMap<u32, Arc<Version>> = kept()
            .map(|v| {
                let version = reusable(v).unwrap_or_else(|| {
                    let runtime = preloaded.take_if(|(n, _)| *n == v.version).map(|(_, r)| r);
                    let names = (record.project.as_str(), record.name.as_str());
                    Arc::new(self.new_version(names, v, runtime, &secrets))
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
        let quotas = match record.live() {
            Some(v) => {
                self.quotas
                    .for_function(
                        &*self.stores.telemetry,
                        &record.project,
                        &record.name,
                        &v.spec.quota,
                    )
                    .await
            }
            None => Vec::new(),
        };
        // One limit per function, kept across redeploys and alias moves: the value of the
        // version `live` serves.
        let max_concurrency = record
            .live()
            .map_or(self.config.limits.max_concurrency, |v| {
                self.config.limits.resolve(&v.spec).max_concurrency
            });
        let limit = match previous {
            Some(p) => {
                p.function.limit.resize(max_concurrency);
                p.function.limit.clone()
            }
            None => Arc::new(ConcurrencyLimit::new(
                max_concurrency,
                self.config.queue_timeout,
            )),
        };
        let function = Arc::new(Function {
            project: record.project.clone(),
            name: record.name.clone(),
            name_header: updraft_dispatch::header_value(&record.name),
            versions,
            aliases,
            allow_pinning,
            quotas,
            limit,
        });
        Entry {
            record: Arc::new(record),
            function,
        }
    }
}

/// The HTTP routes of a function: those of the version `live` points at.
pub(crate) fn routes(record: &FunctionRecord) -> &[HttpTrigger] {
    record.live().map_or(&[], |v| v.spec.http.as_slice())
}

/// Builds the snapshot of `projects` and their functions (its generation is set by the
/// caller).
pub(crate) fn snapshot(
    projects: &BTreeMap<String, ProjectRecord>,
    entries: &Entries,
) -> Result<Snapshot, RouteConflict> {
    let mut snapshot = Snapshot::default();
    let none = HashMap::new();
    for (id, record) in projects {
        let entries = entries.get(id).unwrap_or(&none);
        // Sorted by name so that conflicts are reported deterministically.
        let sorted: BTreeMap<&String, &Entry> = entries.iter().collect();
        let routes = RouteTable::new(sorted.values().flat_map(|e| {
            routes(&e.record)
                .iter()
                .map(|t| (t.clone(), e.function.clone()))
        }))?;
        let project = Project {
            record: Some(record.clone()),
            routes,
            functions: entries
                .iter()
                .map(|(k, e)| (k.clone(), e.function.clone()))
                .collect(),
            records: entries
                .iter()
                .map(|(k, e)| (k.clone(), e.record.clone()))
                .collect(),
        };
        for d in &record.domains {
            snapshot.domains.insert(d.clone(), id.clone());
        }
        snapshot.projects.insert(id.clone(), Arc::new(project));
    }
    Ok(snapshot)
}

/// Checks that routes taken from `replaced` (function name → routes) together with the routes
/// of every other function of the project (`entries`) do not collide, before anything is
/// stored.
pub(crate) fn check_routes(
    entries: &HashMap<String, Entry>,
    replaced: &BTreeMap<String, Vec<HttpTrigger>>,
) -> Result<(), Error> {
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
    .map_err(|e| Error::new(Code::Conflict, e.to_string()))
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
