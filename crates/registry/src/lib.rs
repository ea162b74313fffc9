//! The registry: the one owner of deployed state (projects, their functions, the functions'
//! immutable versions, aliases, routes and triggers).
//!
//! Every change (a deploy, an alias move, a rollback, a delete, the canary guard's decisions)
//! runs under one lock, persists to the metadata store first, then builds and publishes a new
//! immutable [`Snapshot`]: what the gateway routes requests by and what trigger delivery
//! consumes for. What is served therefore always equals what is stored, an acknowledged change
//! is durable, and a failed one changes nothing.
//!
//! Subscribers ([`Registry::subscribe`]) see every snapshot in order and say when they have
//! applied one ([`Subscription::applied`]); a change returns only once they have (bounded by
//! [`SUBSCRIBER_WAIT`]), so that, say, the queues a deploy's triggers consume exist when the
//! deploy is acknowledged. The registry does not know who its subscribers are.
//!
//! Each stored version becomes one dispatch [`Version`](updraft_dispatch::Version) whose
//! runtime comes from the [`RuntimeProvider`]; it is kept across snapshots so its loaded code,
//! warm instances and health record survive alias moves. A function's routes are those of the
//! version `live` points at: moving `live` (a rollback) brings back that version's routes with
//! its code.
//!
//! Every function belongs to a project: names, routes and quotas are per project, so two
//! projects may deploy the same function names and the same routes. A project is deleted only
//! once it has no functions, under the same lock as deploys, so none can land in it meanwhile.
//!
//! It depends on the metadata store, the dispatcher's types and a runtime provider; it must not
//! know about HTTP listeners, Wasmtime or trigger delivery.

mod aliases;
mod buckets;
mod build;
mod canary;
mod collections;
mod deploy;
mod gc;
mod limits;
mod projects;
mod quotas;
mod routes;
mod secrets;
mod views;

pub use aliases::RollbackOutcome;
pub use buckets::{BucketSink, BucketsError, S3_ENDPOINT, STORAGE_URL};
pub use canary::CanaryConfig;
pub use collections::{CollectionSink, DB_URL};
pub use limits::{Effective, Limits, UNCAPPED_REUSE};
pub use projects::domain_name;
pub use routes::{Lookup, Route, RouteConflict, RouteTable};
pub use secrets::{NoSecrets, SecretSource};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use updraft_api::Code;
use updraft_dispatch::{Dispatcher, Function, RuntimeProvider, Stream};
use updraft_store::{
    ArtifactStore, FunctionRecord, MetadataStore, ProjectRecord, StoreError, TelemetryStore,
};

use crate::build::Entry;

/// Versions kept per function by default.
pub const DEFAULT_KEEP_VERSIONS: usize = 10;

/// How long a change waits for its subscribers to apply it before it returns anyway.
pub const SUBSCRIBER_WAIT: Duration = Duration::from_secs(30);

/// The registry's settings (from the server config).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistryConfig {
    /// Function defaults and maxima.
    pub limits: Limits,
    /// Longest wait for a concurrency slot.
    pub queue_timeout: Duration,
    /// Versions kept per function.
    pub keep_versions: usize,
    /// When guarded canaries are rolled back or promoted.
    pub canary: CanaryConfig,
    /// Quotas per project.
    pub project_quotas: BTreeMap<String, updraft_manifest::Quotas>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            queue_timeout: updraft_dispatch::DEFAULT_QUEUE_TIMEOUT,
            keep_versions: DEFAULT_KEEP_VERSIONS,
            canary: CanaryConfig::default(),
            project_quotas: BTreeMap::new(),
        }
    }
}

/// Why a registry operation failed: a code from the API's error table and a message for the
/// caller.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// The error code (and HTTP status).
    pub code: Code,
    /// What went wrong, for the caller.
    pub message: String,
}

impl Error {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An internal error: logged in full, answered without internals.
    pub(crate) fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        Self::new(Code::Internal, format!("{context}; see the server log"))
    }

    pub(crate) fn not_found(name: &str) -> Self {
        Self::new(
            Code::FunctionNotFound,
            format!("no function named `{name}`"),
        )
    }

    /// A project that does not exist (or that the caller may not see: the same answer).
    pub fn project_not_found(project: &str) -> Self {
        Self::new(
            Code::ProjectNotFound,
            format!("no project named `{project}`"),
        )
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DigestMismatch { .. } => Self::new(Code::DigestMismatch, e.to_string()),
            StoreError::FunctionOwnedByOtherApp { .. } => Self::new(Code::Conflict, e.to_string()),
            StoreError::NoSuchVersion { .. } => Self::new(Code::VersionNotFound, e.to_string()),
            StoreError::VersionDeleted { .. } => Self::new(
                Code::VersionNotFound,
                format!("{e}; `updraft versions` lists the versions that can serve"),
            ),
            StoreError::NoSuchFunction { function } => Self::not_found(&function),
            StoreError::NoSuchProject { project } => Self::project_not_found(&project),
            StoreError::ProjectNotEmpty { .. } => Self::new(Code::Conflict, e.to_string()),
            e => Self::internal("storage error", e),
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal("background task failed", e)
    }
}

/// Everything served at one moment. Immutable; a change publishes a new one.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// Increases with every change.
    pub generation: u64,
    /// Every project, by name (one with no functions too).
    pub projects: HashMap<String, Arc<Project>>,
    /// Custom domains (lower case) → the project they serve.
    pub domains: HashMap<String, String>,
    /// Functions the change that made this snapshot deleted, as `(project, name)`: their
    /// event state can go.
    pub forgotten: Vec<(String, String)>,
}

/// What one project serves.
#[derive(Clone, Default)]
pub struct Project {
    /// The stored project.
    pub record: Option<ProjectRecord>,
    /// HTTP routes.
    pub routes: RouteTable,
    /// Functions by name.
    pub functions: HashMap<String, Arc<Function>>,
    /// The stored record of each function (its versions and aliases).
    pub records: HashMap<String, Arc<FunctionRecord>>,
}

impl Snapshot {
    /// Project `id`, if it exists.
    pub fn project(&self, id: &str) -> Option<&Arc<Project>> {
        self.projects.get(id)
    }

    /// Function `name` of `project`, if it is served.
    pub fn function(&self, project: &str, name: &str) -> Option<&Arc<Function>> {
        self.projects.get(project)?.functions.get(name)
    }

    /// Every served function of every project.
    pub fn all_functions(&self) -> impl Iterator<Item = &Arc<Function>> {
        self.projects.values().flat_map(|p| p.functions.values())
    }

    /// The stored record of every served function of every project.
    pub fn all_records(&self) -> impl Iterator<Item = &Arc<FunctionRecord>> {
        self.projects.values().flat_map(|p| p.records.values())
    }
}

/// A subscriber's view of the registry's snapshots.
pub struct Subscription {
    rx: watch::Receiver<Arc<Snapshot>>,
    applied: watch::Sender<u64>,
}

impl Subscription {
    /// The next snapshot (the current one first); `None` once the registry is gone.
    pub async fn next(&mut self) -> Option<Arc<Snapshot>> {
        self.rx.changed().await.ok()?;
        Some(self.rx.borrow_and_update().clone())
    }

    /// Tells the registry this subscriber has applied snapshot `generation`.
    pub fn applied(&self, generation: u64) {
        self.applied.send_if_modified(|g| {
            let newer = generation > *g;
            if newer {
                *g = generation;
            }
            newer
        });
    }
}

/// The stores the registry works with.
#[derive(Clone)]
pub struct Stores {
    /// Functions, versions, aliases.
    pub metadata: Arc<dyn MetadataStore>,
    /// Uploaded code: a deploy checks its artifacts are there; orphaned ones are deleted.
    pub artifacts: Arc<dyn ArtifactStore>,
    /// Invocation records, which quotas start counting from.
    pub telemetry: Arc<dyn TelemetryStore>,
    /// Opens the project secrets functions are granted ([`NoSecrets`] if none are used).
    pub secrets: Arc<dyn SecretSource>,
    /// Key-value stores for functions granted them (`None`: a function listing
    /// `key_value_stores` cannot be deployed).
    pub key_value: Option<Arc<dyn updraft_dispatch::kv::KeyValueProvider>>,
    /// Document collections apps declare (`None`: an app declaring `[[collections]]` cannot
    /// be deployed).
    pub collections: Option<Arc<dyn CollectionSink>>,
    /// Buckets functions are granted or watch (`None`: a function with `buckets` or
    /// `[[functions.bucket]]` cannot be deployed).
    pub buckets: Option<Arc<dyn BucketSink>>,
}

/// The registry. Share it behind an `Arc`.
pub struct Registry {
    stores: Stores,
    runtimes: Arc<dyn RuntimeProvider>,
    dispatcher: Arc<Dispatcher>,
    config: RegistryConfig,
    quotas: quotas::QuotaRegistry,
    // tokio Mutex: held across the awaits of a change (loads, store calls on blocking
    // threads, subscribers applying it) so that changes are serialised.
    deployed: tokio::sync::Mutex<Deployed>,
    current: ArcSwap<Snapshot>,
    changes: watch::Sender<Arc<Snapshot>>,
    acks: Mutex<Vec<watch::Receiver<u64>>>,
}

/// Functions by project, then by name.
type Entries = HashMap<String, HashMap<String, Entry>>;

/// The projects and the functions being served, with the records they were built from. Every
/// project in `projects` has a (maybe empty) map in `entries`.
#[derive(Default)]
struct Deployed {
    projects: BTreeMap<String, ProjectRecord>,
    entries: Entries,
    generation: u64,
}

impl Deployed {
    /// The functions of `project`.
    ///
    /// # Errors
    /// [`Code::ProjectNotFound`].
    fn of(&self, project: &str) -> Result<&HashMap<String, Entry>, Error> {
        self.entries
            .get(project)
            .ok_or_else(|| Error::project_not_found(project))
    }

    /// Function `name` of `project`.
    fn entry(&self, project: &str, name: &str) -> Result<&Entry, Error> {
        self.of(project)?
            .get(name)
            .ok_or_else(|| Error::not_found(name))
    }
}

impl Registry {
    /// A registry serving nothing yet; [`Registry::load`] publishes what the store holds.
    pub fn new(
        stores: Stores,
        runtimes: Arc<dyn RuntimeProvider>,
        dispatcher: Arc<Dispatcher>,
        config: RegistryConfig,
    ) -> Arc<Self> {
        let empty = Arc::new(Snapshot::default());
        Arc::new(Self {
            quotas: quotas::QuotaRegistry::new(config.project_quotas.clone()),
            stores,
            runtimes,
            dispatcher,
            config,
            deployed: tokio::sync::Mutex::default(),
            current: ArcSwap::new(empty.clone()),
            changes: watch::Sender::new(empty),
            acks: Mutex::default(),
        })
    }

    /// What is served now (lock-free: the request path calls it).
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Every snapshot from now on, the current one first.
    pub fn subscribe(&self) -> Subscription {
        let mut rx = self.changes.subscribe();
        rx.mark_changed();
        let (applied, ack) = watch::channel(0);
        lock(&self.acks).push(ack);
        Subscription { rx, applied }
    }

    /// The settings it resolves functions' limits with.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The quotas of `project` in force, for the usage API.
    pub fn quotas(
        &self,
        project: &str,
        function: Option<&str>,
    ) -> Vec<Arc<updraft_dispatch::Quota>> {
        self.quotas.all(project, function)
    }

    /// Publishes `entries` (with `deployed.projects`) as the new snapshot, then waits for
    /// subscribers to apply it. `forgotten`: functions deleted, as `(project, name)`.
    async fn publish(
        &self,
        deployed: &mut Deployed,
        entries: Entries,
        forgotten: Vec<(String, String)>,
    ) -> Result<(), Error> {
        let mut snapshot = build::snapshot(&deployed.projects, &entries)
            .map_err(|e| Error::internal("rebuilding routes", e))?;
        deployed.generation += 1;
        snapshot.generation = deployed.generation;
        snapshot.forgotten = forgotten;
        self.dispatcher
            .metrics()
            .retain(|project, function, version| {
                snapshot
                    .function(project, function)
                    .is_some_and(|f| f.versions.contains_key(&version))
            });
        let snapshot = Arc::new(snapshot);
        self.current.store(snapshot.clone());
        self.changes.send_replace(snapshot);
        deployed.entries = entries;
        self.wait_for_subscribers(deployed.generation).await;
        Ok(())
    }

    async fn wait_for_subscribers(&self, generation: u64) {
        let acks: Vec<watch::Receiver<u64>> = {
            let mut acks = lock(&self.acks);
            // A subscription that was dropped will never apply anything.
            acks.retain(|rx| rx.has_changed().is_ok());
            acks.clone()
        };
        for mut rx in acks {
            let applied = tokio::time::timeout(SUBSCRIBER_WAIT, rx.wait_for(|g| *g >= generation));
            if applied.await.is_err() {
                tracing::warn!(
                    generation,
                    "a subscriber did not apply a change within {SUBSCRIBER_WAIT:?}; going on"
                );
            }
        }
    }

    /// Writes a platform event into a function's log (and the server's).
    pub(crate) fn event(&self, project: &str, function: &str, message: &str) {
        tracing::info!(project, function, "{message}");
        self.dispatcher
            .telemetry()
            .line(project, function, None, "", Stream::Platform, message);
    }

    /// Deletes artifacts no version references any more, and their prepared code.
    async fn forget(&self, digests: &[String]) {
        for d in digests {
            self.runtimes.forget(d);
            if let Err(e) = self.stores.metadata.forget_artifact(d).await {
                tracing::warn!(digest = %d, error = %e, "could not forget an artifact's grants");
            }
            if let Err(e) = self.stores.artifacts.delete(d).await {
                // Nothing references it, so it is only wasted space; say so and go on.
                tracing::warn!(digest = %d, error = %e, "could not delete an artifact");
            }
        }
    }
}

/// Locks a mutex, ignoring poisoning: every critical section leaves its data consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
