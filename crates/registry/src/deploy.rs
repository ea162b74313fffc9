//! Deploys, deletes and start-up: validate, load, check routes, persist, then publish.

use std::collections::{BTreeMap, HashMap};

use updraft_api::{Code, DeployRequest, DeployResponse, FunctionInfo};
use updraft_manifest::{HttpTrigger, LIVE, Manifest};
use updraft_store::{Canary, DeployOptions, DeployedFunction};

use crate::build::{Entry, check_routes, warm_up};
use crate::{Entries, Error, Registry, views};

/// Validates a canary weight and guard.
pub(crate) fn canary_template(p: &updraft_api::CanaryPolicy) -> Result<Canary, Error> {
    if p.weight > 100 {
        return Err(Error::new(
            Code::BadRequest,
            format!("canary weight {} is not a percentage (0 to 100)", p.weight),
        ));
    }
    if p.promote_after_ms == Some(0) {
        return Err(Error::new(
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

impl Registry {
    /// Loads every stored function and publishes them: scaled to zero, only code missing from
    /// the runtime's prepared form (the compiled-code cache) is made now, so that no request
    /// pays for it. Returns the functions that could not be loaded (`project/name`), with why
    /// (they are not served; the rest are).
    ///
    /// # Errors
    /// [`Error`] if the store cannot be read.
    pub async fn load(&self) -> Result<Vec<(String, String)>, Error> {
        let mut deployed = self.deployed.lock().await;
        deployed.projects = self
            .stores
            .metadata
            .projects()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let records = self.stores.metadata.all_functions().await?;
        let mut entries: Entries = deployed
            .projects
            .keys()
            .map(|p| (p.clone(), HashMap::new()))
            .collect();
        let mut failed = Vec::new();
        for record in records {
            let name = record.name.clone();
            let project = record.project.clone();
            // Versions no alias points at are left to compile on the first request that pins
            // one.
            let aliased = |n: u32| record.aliases.iter().any(|a| a.references(n));
            let mut problem = None;
            for v in &record.versions {
                if v.deleted_at.is_none()
                    && aliased(v.version)
                    && let Err(e) = self.runtimes.ensure_prepared(&v.digest).await
                {
                    problem = Some(format!("version {}: {e}", v.version));
                    break;
                }
            }
            // A function whose secrets can't be opened (the key file was replaced) is not
            // served without them.
            let kept = record.versions.iter().filter(|v| v.deleted_at.is_none());
            if problem.is_none()
                && let Err(e) = self.secret_values(&project, kept.map(|v| &v.spec)).await
            {
                problem = Some(e.message);
            }
            match problem {
                None => {
                    let entry = self.entry(record, None, None).await;
                    entries.entry(project).or_default().insert(name, entry);
                }
                Some(e) => {
                    tracing::error!(project, function = %name, error = %e, "could not load function");
                    failed.push((format!("{project}/{name}"), e));
                }
            }
        }
        self.publish(&mut deployed, entries, Vec::new()).await?;
        warm_up(deployed.entries.values().flat_map(HashMap::values));
        Ok(failed)
    }

    /// Deploys (or redeploys) one app of `project`: validates the manifest against the server's maxima,
    /// loads the code of every changed function (a deploy whose code cannot run changes
    /// nothing), checks routes, persists new versions and moves `live` (or adds a canary),
    /// then publishes.
    ///
    /// # Errors
    /// [`Error`] naming what is wrong: the manifest, an artifact, a route conflict, a project
    /// that does not exist.
    pub async fn deploy(
        &self,
        project: &str,
        req: DeployRequest,
        deployer: String,
    ) -> Result<DeployResponse, Error> {
        let file = req.manifest_file.as_deref().unwrap_or("updraft.toml");
        let manifest = Manifest::parse(file, &req.manifest)
            .map_err(|e| Error::new(Code::InvalidManifest, e.to_string()))?;
        for name in req.artifacts.keys() {
            if !manifest.functions.iter().any(|f| f.name.as_str() == name) {
                return Err(Error::new(
                    Code::BadRequest,
                    format!("artifacts names `{name}`, which is not a function in {file}"),
                ));
            }
        }
        if !manifest.collections.is_empty() {
            let Some(sink) = &self.stores.collections else {
                return Err(Error::new(
                    Code::InvalidManifest,
                    format!("{file}: this server has no document service for [[collections]]"),
                ));
            };
            sink.check(&manifest.collections)
                .map_err(|e| Error::new(Code::InvalidManifest, format!("{file}: {e}")))?;
        }
        let mut functions = Vec::new();
        for f in &manifest.functions {
            let digest = req.artifacts.get(f.name.as_str()).ok_or_else(|| {
                Error::new(
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
            .flat_map(|(i, f)| self.config.limits.check(i, f))
            .collect();
        if !problems.is_empty() {
            return Err(Error::new(
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

        let mut deployed = self.deployed.lock().await;
        let guard = deployed.of(project)?;
        if let Some((f, owner)) = functions.iter().find_map(|f| {
            guard
                .get(f.spec.name.as_str())
                .filter(|e| e.record.app != app)
                .map(|e| (f, e.record.app.clone()))
        }) {
            return Err(Error::new(
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
        check_routes(guard, &next_routes)?;

        let options = DeployOptions {
            deployer,
            canary,
            keep: self.config.keep_versions,
        };
        if let Some(sink) = &self.stores.collections
            && !manifest.collections.is_empty()
        {
            sink.apply(project, &manifest.collections)
                .await
                .map_err(|e| Error::internal("applying the app's collections", e))?;
        }
        if !manifest.buckets.is_empty() {
            let Some(sink) = &self.stores.buckets else {
                return Err(Error::new(
                    Code::InvalidManifest,
                    format!("{file}: this server has no object storage for [[buckets]]"),
                ));
            };
            sink.declare(project, &manifest.buckets)
                .await
                .map_err(|e| match e {
                    crate::BucketsError::Refused(m) => {
                        Error::new(Code::InvalidManifest, format!("{file}: {m}"))
                    }
                    crate::BucketsError::Failed(m) => Error::internal("declaring buckets", m),
                })?;
        }
        // Every function's stores and buckets, changed or not (one may have been dropped by
        // hand).
        for f in &functions {
            self.ensure_stores(project, &f.spec).await?;
            self.ensure_buckets(project, &f.spec).await?;
        }
        let mut preloaded = HashMap::new();
        for f in &changed {
            // Artifacts are stored once for every project; a project deploys only those it
            // uploaded, so knowing another project's digest gets nothing.
            if !self
                .stores
                .metadata
                .has_artifact(project, &f.digest)
                .await?
                || !self.stores.artifacts.exists(&f.digest).await?
            {
                return Err(Error::new(
                    Code::UnknownArtifact,
                    format!(
                        "function `{}`: artifact {} was not uploaded (PUT /v1/artifacts/{{digest}} first)",
                        f.spec.name, f.digest
                    ),
                ));
            }
            let secrets = self.secret_values(project, [&f.spec]).await?;
            let limits = self.config.limits.resolve(&f.spec);
            let name = f.spec.name.as_str();
            let runtime = self.runtime((project, name), &f.digest, &f.spec, &limits, &secrets);
            runtime.load().await.map_err(|e| {
                if e.user_error {
                    Error::new(
                        Code::InvalidComponent,
                        format!("function `{}`: {e}", f.spec.name),
                    )
                } else {
                    Error::internal("loading a component", e)
                }
            })?;
            preloaded.insert(f.spec.name.to_string(), runtime);
        }
        let metadata = &self.stores.metadata;
        let outcome = metadata
            .deploy_app(project, &app, &req.manifest, &functions, &options)
            .await?;
        let mut records = Vec::new();
        for f in &functions {
            if let Some(r) = metadata.function(project, f.spec.name.as_str()).await? {
                records.push(r);
            }
        }
        // Durable; now switch traffic.
        let mut mine: HashMap<String, Entry> = guard
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
            let e = self.entry(record, guard.get(&name), fresh).await;
            mine.insert(name, e);
        }
        let mut next = deployed.entries.clone();
        next.insert(project.to_owned(), mine);
        let removed = outcome
            .removed
            .iter()
            .map(|n| (project.to_owned(), n.clone()))
            .collect();
        self.publish(&mut deployed, next, removed).await?;
        self.forget(&outcome.orphaned).await;
        let next = deployed.of(project)?;
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
            self.event(project, name, &msg);
        }
        for (name, version) in &outcome.pruned {
            self.event(
                project,
                name,
                &format!(
                    "deleted version {version} (retention keeps the last {})",
                    self.config.keep_versions
                ),
            );
        }
        warm_up(
            next.values()
                .filter(|e| outcome.published.iter().any(|(n, _)| *n == e.record.name)),
        );
        let mut infos: Vec<FunctionInfo> = next
            .values()
            .filter(|e| e.record.app == app)
            .filter_map(|e| views::info(&self.config.limits, e))
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
            site_version: None,
        })
    }

    /// Deletes function `name` of `project` with its versions. Returns whether it existed.
    ///
    /// # Errors
    /// [`Error`] if the store fails, [`Code::ProjectNotFound`].
    pub async fn delete(&self, project: &str, name: &str) -> Result<bool, Error> {
        let mut deployed = self.deployed.lock().await;
        if !deployed.of(project)?.contains_key(name) {
            return Ok(false);
        }
        let pruned = self.stores.metadata.delete_function(project, name).await?;
        let mut next = deployed.entries.clone();
        if let Some(mine) = next.get_mut(project) {
            mine.remove(name);
        }
        let forgotten = vec![(project.to_owned(), name.to_owned())];
        self.publish(&mut deployed, next, forgotten).await?;
        if let Some(p) = pruned {
            self.forget(&p.orphaned).await;
        }
        Ok(true)
    }

    /// Every deployed function of `project`, by name.
    ///
    /// # Errors
    /// [`Code::ProjectNotFound`].
    pub async fn list(&self, project: &str) -> Result<Vec<FunctionInfo>, Error> {
        let deployed = self.deployed.lock().await;
        let mut infos: Vec<FunctionInfo> = deployed
            .of(project)?
            .values()
            .filter_map(|e| views::info(&self.config.limits, e))
            .collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(infos)
    }

    /// One deployed function of `project`.
    ///
    /// # Errors
    /// [`Code::FunctionNotFound`], [`Code::ProjectNotFound`].
    pub async fn function(&self, project: &str, name: &str) -> Result<FunctionInfo, Error> {
        let deployed = self.deployed.lock().await;
        views::info(&self.config.limits, deployed.entry(project, name)?)
            .ok_or_else(|| Error::not_found(name))
    }
}

impl Registry {
    /// Creates the key-value stores `spec` is granted or watches (`[[functions.kv]]`), if
    /// missing.
    async fn ensure_stores(
        &self,
        project: &str,
        spec: &updraft_manifest::Function,
    ) -> Result<(), Error> {
        let mut stores = spec.key_value_stores.clone();
        for t in &spec.kv {
            if !stores.contains(&t.store) {
                stores.push(t.store.clone());
            }
        }
        if stores.is_empty() {
            return Ok(());
        }
        let Some(kv) = &self.stores.key_value else {
            return Err(Error::new(
                Code::InvalidManifest,
                format!(
                    "function `{}`: this server has no key-value service for `key_value_stores`",
                    spec.name
                ),
            ));
        };
        kv.ensure_stores(project, &stores)
            .await
            .map_err(|e| Error::internal("creating key-value stores", e))
    }

    /// Makes the buckets `spec` is granted or watches that do not exist yet; one another
    /// project has fails the deploy.
    async fn ensure_buckets(
        &self,
        project: &str,
        spec: &updraft_manifest::Function,
    ) -> Result<(), Error> {
        let mut buckets: Vec<String> = Vec::new();
        let granted = spec
            .buckets
            .iter()
            .map(|g| g.split(':').next().unwrap_or(g));
        for b in granted.chain(spec.bucket.iter().map(|t| t.bucket.as_str())) {
            if !buckets.iter().any(|x| x == b) {
                buckets.push(b.to_owned());
            }
        }
        if buckets.is_empty() {
            return Ok(());
        }
        let Some(sink) = &self.stores.buckets else {
            return Err(Error::new(
                Code::InvalidManifest,
                format!(
                    "function `{}`: this server has no object storage for `buckets`",
                    spec.name
                ),
            ));
        };
        sink.ensure(project, &buckets).await.map_err(|e| match e {
            crate::BucketsError::Refused(m) => Error::new(
                Code::InvalidManifest,
                format!("function `{}`: {m}", spec.name),
            ),
            crate::BucketsError::Failed(m) => Error::internal("making buckets", m),
        })
    }
}
