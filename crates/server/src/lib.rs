//! The composition root: opens the data directory, builds the engine, loads every deployed
//! function, and runs the data plane (`updraft-gateway`) and the control API side by side.
//!
//! Only this crate knows the whole set of parts; it owns start-up and shutdown order:
//! 1. open the store (SQLite + artifact files) and make the first admin token if there is none;
//! 2. build the engine and publish every deployed function to the gateway, scaled to zero: its
//!    code is loaded from the compiled-code cache on its first request, except for functions
//!    with `min_instances`, which are loaded and pre-instantiated now (code missing from the
//!    cache is compiled now, so no request pays for it);
//!    a background task guards canaries (rolls back or promotes them, see `versions`);
//!    the event log (`events.db`) is opened, leases a killed run held are released, and every
//!    function's event triggers start delivering (see `events`);
//! 3. serve both planes and deliver events until the shutdown future resolves; stop accepting
//!    and stop leasing events, let in-flight requests and deliveries finish (bounded by
//!    `drain`), then flush queued log lines.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use updraft_server::{Server, ServerConfig};
//! let server = Server::open(ServerConfig::new(".updraft")).await?;
//! let data = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let control = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
//! server.run(data, control, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod audit;
mod auth;
mod changes;
mod config;
mod control;
mod credentials;
mod datadir;
mod error;
mod function_buckets;
mod janitor;
mod meter;
#[cfg(feature = "otlp")]
mod otlp;
mod runtimes;
mod secrets;
mod telemetry;
mod user_tokens;

pub use config::{
    CanaryConfig, Cidr, ConfigError, DEFAULT_KEEP_VERSIONS, EventsConfig, FileConfig, Limits, Pool,
    Sandbox, TracingConfig, default_prices,
};
pub use error::ServerError;
pub use updraft_dispatch::rfc3339;
pub(crate) use user_tokens::UserTokens;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use updraft_dispatch::{CodeSource, DispatchConfig, Dispatcher};
use updraft_engine::{Engine, EngineConfig, WasmRuntime};
use updraft_events::{EventLog, Holder, LocalWakeups, Wakeups};
use updraft_gateway::{Gateway, ListenConfig, listen};
use updraft_registry::{Registry, RegistryConfig, Stores};
use updraft_store::{ArtifactStore, FsArtifacts, MetadataStore, Store, TelemetryStore};
use updraft_triggers::Triggers;

/// Settings for [`Server::open`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The data directory (default `./.updraft`).
    pub data_dir: PathBuf,
    /// How long shutdown waits for in-flight requests.
    pub drain: Duration,
    /// What the configuration file sets (defaults when there is none).
    pub file: FileConfig,
}

impl ServerConfig {
    /// Defaults with the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            drain: Duration::from_secs(30),
            file: FileConfig::default(),
        }
    }
}

/// How often idle functions are looked for.
const EVICTION_TICK: Duration = Duration::from_millis(100);

/// A server with its state loaded, ready to [`run`](Server::run).
pub struct Server {
    state: Arc<State>,
    s3: Option<TcpListener>,
    new_admin_token: Option<String>,
    failed_loads: Vec<(String, String)>,
}

/// Shared by every handler.
pub(crate) struct State {
    /// The data directory.
    pub(crate) data_dir: PathBuf,
    /// Uploaded code.
    pub(crate) artifacts: Arc<dyn ArtifactStore>,
    /// Deployed state and keys, for what the registry does not own (API keys).
    pub(crate) metadata: Arc<dyn MetadataStore>,
    /// Seals secrets before they are stored.
    pub(crate) secret_key: Arc<secrets::SecretKey>,
    /// End-user auth of every project.
    pub(crate) users: Arc<updraft_services::auth::Auth>,
    /// Key-value stores (`/_updraft/kv/v1`, `/v1/kv`, and functions' `wasi:keyvalue`).
    pub(crate) kv: Arc<updraft_services::kv::KeyValueService>,
    /// Document collections (`/_updraft/db/v1`).
    pub(crate) docs: Arc<updraft_services::docs::DocService>,
    /// The store under both (backup and restore).
    pub(crate) data: Arc<updraft_store::DataStore>,
    /// Buckets and objects (the S3 listener, `/v1/buckets`, `/v1/s3-keys`).
    pub(crate) objects: Arc<updraft_services::objects::ObjectService>,
    /// Base URL of the S3 listener, set once it is bound.
    pub(crate) s3_url: std::sync::OnceLock<String>,
    /// Static sites (`[site]`, `/v1/site`, the gateway's fallback).
    pub(crate) sites: Arc<updraft_services::sites::SiteService>,
    /// When the janitor last swept unnamed object blobs (ms since the epoch; 0: never).
    pub(crate) blobs_swept_at: std::sync::atomic::AtomicI64,
    /// Access tokens the gateway has verified.
    pub(crate) user_tokens: Arc<UserTokens>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub(crate) trusted_proxies: Vec<config::Cidr>,
    /// Log lines and invocation records.
    pub(crate) telemetry: Arc<dyn TelemetryStore>,
    pub(crate) engine: Arc<Engine>,
    /// Process (Lambda) functions' bundles and environments.
    pub(crate) process: Arc<updraft_process::ProcessRuntimes>,
    /// Deployed state: functions, versions, aliases, routes.
    pub(crate) registry: Arc<Registry>,
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) auth: Arc<auth::Auth>,
    pub(crate) drain: Duration,
    /// Connection settings of the data plane and of the control API.
    pub(crate) http: ListenConfig,
    pub(crate) control_http: ListenConfig,
    /// How often the canary guard looks.
    pub(crate) canary_check: Duration,
    /// The price table of cost estimates.
    pub(crate) prices: updraft_api::Prices,
    /// Set to true when the server starts shutting down (ends `logs --follow` streams).
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// The durable event log.
    pub(crate) log: Arc<dyn EventLog>,
    /// Wakes consumers and long-polling receivers when a queue gets something.
    pub(crate) wakeups: Arc<dyn Wakeups>,
    /// Trigger delivery: consumers and schedule tickers.
    pub(crate) triggers: Arc<Triggers>,
    /// Base URL of the data plane, set once it is bound.
    pub(crate) data_url: std::sync::OnceLock<String>,
    /// How long finished asynchronous invokes are kept.
    pub(crate) async_result_max_age: Duration,
    /// How long an uploaded artifact no version uses is kept.
    pub(crate) unused_artifact_grace: Duration,
    /// How long audit log entries are kept.
    pub(crate) audit_max_age: Duration,
    /// The data directory's lock, released when the server has stopped.
    pub(crate) lock: std::sync::Mutex<Option<datadir::DataDirLock>>,
}

impl Server {
    /// Opens the data directory and loads every deployed function.
    ///
    /// # Errors
    /// [`ServerError`] if the data directory, database or engine cannot be set up. A function
    /// that fails to load is not fatal: it is reported by [`Server::failed_loads`] and skipped.
    pub async fn open(config: ServerConfig) -> Result<Self, ServerError> {
        let lock = datadir::DataDirLock::acquire(&config.data_dir)?;
        let data_dir = config.data_dir.clone();
        let file = config.file.clone();
        let (store, data, artifacts, engine, event_log) = tokio::task::spawn_blocking(move || {
            let store = Store::open_with(&data_dir, file.retention)?;
            let data = updraft_store::kv::DataStore::open(&data_dir)?;
            let artifacts = FsArtifacts::open(data_dir.join("artifacts"))?;
            let event_log = updraft_events::SqliteLog::open(&data_dir.join("events.db"))?;
            event_log.set_max_queue_depth(file.max_queue_depth);
            let mut engine_config = EngineConfig::new(data_dir.join("compiled"));
            engine_config.pooling = file.pool.enabled;
            engine_config.max_instances = file.pool.max_instances;
            engine_config.max_memory = file.limits.max_memory.max(file.limits.memory);
            engine_config.memory_keep_resident = file.pool.memory_keep_resident;
            engine_config.max_resources = file.sandbox.max_resources;
            engine_config.max_field_bytes = file.sandbox.max_field_bytes;
            engine_config.max_outbound_requests = file.sandbox.max_outbound_requests;
            engine_config.long_run_after = file.sandbox.long_run_after;
            engine_config.long_run_threads = file.sandbox.long_run_threads;
            let engine = Engine::new(engine_config)?;
            Ok::<_, ServerError>((store, data, artifacts, engine, event_log))
        })
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))??;
        let event_log: Arc<dyn EventLog> = Arc::new(event_log);
        // Nothing runs the leases a previous run of the deliverer held.
        let released = event_log.release_all(Holder::Deliverer).await?;
        if released > 0 {
            tracing::info!(
                released,
                "events in flight when the server stopped will be delivered again"
            );
        }
        let metadata: Arc<dyn MetadataStore> = Arc::new(store.clone());
        let auth_store: Arc<dyn updraft_store::AuthStore> = Arc::new(store.clone());
        let telemetry_store: Arc<dyn TelemetryStore> = Arc::new(store);
        let artifacts: Arc<dyn ArtifactStore> = Arc::new(artifacts);
        let (auth, new_admin_token) =
            auth::Auth::load_or_bootstrap(&*metadata, &config.data_dir).await?;
        let auth = Arc::new(auth);
        let mut dispatch_config = DispatchConfig::default();
        dispatch_config.global_max_concurrency = config.file.global_max_concurrency;
        dispatch_config.metering = config.file.metering;
        let telemetry = telemetry::StoreTelemetry::new(
            telemetry_store.clone(),
            config.file.logs,
            config.file.max_lines_per_second,
        );
        #[cfg(feature = "otlp")]
        let telemetry = match &config.file.tracing.otlp_endpoint {
            Some(endpoint) => telemetry.with_otlp(otlp::Exporter::start(
                endpoint.clone(),
                config.file.tracing.service_name.clone(),
            )),
            None => telemetry,
        };
        #[cfg(not(feature = "otlp"))]
        if config.file.tracing.otlp_endpoint.is_some() {
            tracing::warn!(
                "[tracing] otlp_endpoint is set but this build has no `otlp` feature; spans are \
                 not exported"
            );
        }
        let dispatcher = Arc::new(Dispatcher::new(Arc::new(telemetry), dispatch_config));
        let engine = Arc::new(engine);
        let code = Arc::new(ArtifactCode {
            artifacts: artifacts.clone(),
            runtime: tokio::runtime::Handle::current(),
        });
        let process = Arc::new(updraft_process::ProcessRuntimes::new(
            config.data_dir.join("process"),
            code.clone(),
            config.file.process.clone(),
        ));
        let runtime = Arc::new(runtimes::Runtimes {
            wasm: Arc::new(WasmRuntime::new(engine.clone(), code)),
            process: process.clone(),
        });
        let mut registry_config = RegistryConfig::default();
        registry_config.limits = config.file.limits.clone();
        registry_config.queue_timeout = config.file.queue_timeout;
        registry_config.keep_versions = config.file.keep_versions;
        registry_config.canary = config.file.canary.clone();
        registry_config.project_quotas = config.file.project_quotas.clone();
        let secret_key = Arc::new(secrets::SecretKey::load_or_create(
            &config.data_dir,
            config.file.secrets_key_file.as_deref(),
        )?);
        let object_store =
            updraft_store::objects::FsObjects::open(data.clone(), config.data_dir.join("objects"))?;
        let objects = updraft_services::objects::ObjectService::new(
            Arc::new(object_store),
            updraft_services::objects::S3Keys::new(secret_key.s3_keys()),
            config.file.objects.clone(),
        );
        let data = Arc::new(data);
        let kv =
            updraft_services::kv::KeyValueService::new(data.clone(), config.file.key_value.clone());
        let mut doc_config = config.file.documents.clone();
        doc_config.max_project_bytes = config.file.key_value.max_project_bytes;
        let doc_changes = changes::DataChanges::new(data.clone(), objects.clone());
        let sites = updraft_services::sites::SiteService::new(
            Arc::new((*data).clone()),
            updraft_store::FsArtifacts::files(config.data_dir.join("sites").join("files"))?,
            config.file.sites.clone(),
        );
        sites
            .load()
            .await
            .map_err(|e| ServerError::Config(format!("loading the live static sites: {e}")))?;
        let function_buckets =
            function_buckets::FunctionBuckets::new(objects.clone(), secret_key.clone());
        objects.set_function_keys(function_buckets.clone());
        let docs = updraft_services::docs::DocService::new(data.clone(), doc_config);
        let stores = Stores {
            key_value: Some(Arc::new(updraft_services::kv::Provider(kv.clone()))),
            collections: Some(Arc::new(control::Collections {
                docs: docs.clone(),
                key: secret_key.clone(),
            })),
            buckets: Some(function_buckets.clone()),
            metadata: metadata.clone(),
            artifacts: artifacts.clone(),
            telemetry: telemetry_store.clone(),
            secrets: Arc::new(secrets::StoredSecrets {
                metadata: metadata.clone(),
                key: secret_key.clone(),
            }),
        };
        let registry = Registry::new(stores, runtime, dispatcher.clone(), registry_config);
        function_buckets.attach(&registry);
        let users = updraft_services::auth::Auth::new(
            auth_store,
            secret_key.clone(),
            config.file.auth.clone(),
        )
        .map_err(ServerError::Config)?;
        let services = Arc::new(control::DataPlane::default());
        let user_tokens = Arc::new(UserTokens::new(users.clone()));
        let gateway = Gateway::new(registry.clone(), dispatcher.clone())
            .with_base_domain(&config.file.base_domain)
            .with_admin_check(auth.clone())
            .with_user_check(user_tokens.clone())
            .with_services(services.clone())
            .with_sites(Arc::new(control::Sites(sites.clone())));
        let wakeups: Arc<dyn Wakeups> = Arc::new(LocalWakeups::default());
        let triggers = Triggers::new(
            event_log.clone(),
            wakeups.clone(),
            dispatcher,
            Arc::new(ServedFunctions(registry.clone())),
            Some(doc_changes),
            config.file.events.clone(),
        );
        // Trigger delivery follows every change of what is served; the registry waits for it
        // to apply a change before acknowledging it.
        tokio::spawn(follow(registry.clone(), triggers.clone()));
        let state = Arc::new(State {
            data_dir: config.data_dir.clone(),
            artifacts,
            telemetry: telemetry_store,
            engine,
            process,
            registry: registry.clone(),
            gateway: Arc::new(gateway),
            metadata: metadata.clone(),
            secret_key,
            users,
            kv,
            docs,
            data,
            objects,
            s3_url: std::sync::OnceLock::new(),
            sites,
            blobs_swept_at: std::sync::atomic::AtomicI64::new(0),
            user_tokens,
            trusted_proxies: config.file.trusted_proxies.clone(),
            auth,
            drain: config.drain,
            http: config.file.http.clone(),
            control_http: config.file.control_http.clone(),
            canary_check: config.file.canary.check_interval,
            prices: config.file.prices.clone(),
            stopping: tokio::sync::watch::Sender::new(false),
            log: event_log,
            wakeups,
            triggers,
            data_url: std::sync::OnceLock::new(),
            async_result_max_age: config.file.async_result_max_age,
            unused_artifact_grace: config.file.unused_artifact_grace,
            audit_max_age: config.file.audit_max_age,
            lock: std::sync::Mutex::new(Some(lock)),
        });
        services.attach(&state);
        let failed_loads = registry
            .load()
            .await
            .map_err(|e| ServerError::Internal(e.message))?;
        Ok(Self {
            state,
            s3: None,
            new_admin_token,
            failed_loads,
        })
    }

    /// Serves the S3 API on `listener` too when [`run`](Server::run) runs.
    #[must_use]
    pub fn with_s3(mut self, listener: TcpListener) -> Self {
        self.s3 = Some(listener);
        self
    }

    /// The admin token created by this start, if the data directory had none. Print it once.
    pub fn new_admin_token(&self) -> Option<&str> {
        self.new_admin_token.as_deref()
    }

    /// Functions that could not be loaded at start-up, with the reason.
    pub fn failed_loads(&self) -> &[(String, String)] {
        &self.failed_loads
    }

    /// How many functions are being served.
    pub fn function_count(&self) -> usize {
        self.state.gateway.snapshot().all_functions().count()
    }

    /// Path of the file holding the first admin token (mode 0600), for the local CLI.
    pub fn admin_token_file(&self) -> PathBuf {
        auth::token_file(&self.state.data_dir)
    }

    /// Serves the data plane on `data` and the control API on `control` until `shutdown`
    /// resolves; then drains in-flight requests and flushes logs.
    ///
    /// # Errors
    /// [`ServerError::Io`] if a listener's address cannot be read.
    pub async fn run(
        self,
        data: TcpListener,
        control: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let data_addr = data
            .local_addr()
            .map_err(ServerError::io("data plane listener"))?;
        let _ = self.state.data_url.set(format!("http://{data_addr}"));
        let control_addr = control
            .local_addr()
            .map_err(ServerError::io("control API listener"))?;
        let mut own = vec![data_addr, control_addr];
        if let Some(s3) = &self.s3 {
            own.push(s3.local_addr().map_err(ServerError::io("S3 listener"))?);
        }
        self.state.engine.set_own_addresses(own);
        let stop_tx = self.state.stopping.clone();
        let stop_rx = stop_tx.subscribe();
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        // Change streams never end on their own: end them when the server starts stopping, so
        // the drain does not wait on them.
        let (docs, closing) = (self.state.docs.clone(), wait(stop_rx.clone()));
        tokio::spawn(async move {
            closing.await;
            docs.close();
        });
        let gateway = self.state.gateway.clone();
        let (http, drain) = (self.state.http.clone(), self.state.drain);
        let stop = wait(stop_rx.clone());
        let data_task = tokio::spawn(async move { gateway.serve(data, &http, stop, drain).await });
        let s3_task = match self.s3 {
            Some(listener) => {
                let addr = listener
                    .local_addr()
                    .map_err(ServerError::io("S3 listener"))?;
                let _ = self.state.s3_url.set(format!("http://{addr}"));
                let service = self.state.objects.s3();
                let (http, stop) = (self.state.http.clone(), wait(stop_rx.clone()));
                Some(tokio::spawn(async move {
                    listen::serve(listener, &http, "S3 API", service, stop, drain).await;
                }))
            }
            None => None,
        };
        let router =
            hyper_util::service::TowerToHyperService::new(control::router(self.state.clone()));
        let http = self.state.control_http.clone();
        let stop = wait(stop_rx.clone());
        let control_task = tokio::spawn(async move {
            listen::serve(control, &http, "control API", router, stop, drain).await;
        });
        let registry = self.state.registry.clone();
        let dispatcher = self.state.gateway.dispatcher().clone();
        let stop = wait(stop_rx.clone());
        let evictor = tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVICTION_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let snapshot = registry.snapshot();
                        dispatcher.evict_idle(snapshot.all_functions());
                    }
                    () = &mut stop => break,
                }
            }
        });
        let janitor = tokio::spawn(janitor::run(self.state.clone(), wait(stop_rx.clone())));
        let meter = tokio::spawn(meter::run(self.state.clone(), wait(stop_rx.clone())));
        let state = self.state.clone();
        let stop = wait(stop_rx);
        let guard = tokio::spawn(async move {
            let mut tick = tokio::time::interval(state.canary_check);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = tick.tick() => state.registry.guard_canaries().await,
                    () = &mut stop => break,
                }
            }
        });
        shutdown.await;
        let _ = stop_tx.send(true);
        self.state.triggers.stop_all();
        let _ = data_task.await;
        let _ = tokio::time::timeout(self.state.drain, self.state.triggers.drained()).await;
        let _ = evictor.await;
        let _ = janitor.await;
        let _ = guard.await;
        let _ = tokio::time::timeout(self.state.drain, control_task).await;
        if let Some(task) = s3_task {
            let _ = tokio::time::timeout(self.state.drain, task).await;
        }
        // After the last requests: their counts are stored too.
        meter::flush(&self.state).await;
        let _ = meter.await;
        self.state.telemetry.flush().await;
        // Background tasks may hold the state a little longer; the directory is free now.
        if let Ok(mut lock) = self.state.lock.lock() {
            lock.take();
        }
        Ok(())
    }
}

/// Artifacts as the runtime reads them: from the artifact store, on the blocking thread the
/// runtime compiles on.
struct ArtifactCode {
    artifacts: Arc<dyn ArtifactStore>,
    runtime: tokio::runtime::Handle,
}

impl CodeSource for ArtifactCode {
    fn read(&self, digest: &str) -> Result<Vec<u8>, String> {
        self.runtime
            .block_on(self.artifacts.read(digest))
            .map_err(|e| e.to_string())
    }
}

/// The functions the registry serves, as trigger delivery looks them up.
struct ServedFunctions(Arc<Registry>);

impl updraft_triggers::Functions for ServedFunctions {
    fn function(&self, project: &str, name: &str) -> Option<Arc<updraft_dispatch::Function>> {
        self.0.snapshot().function(project, name).cloned()
    }
}

/// Brings trigger delivery in line with every snapshot the registry publishes (each served
/// function's `live` version's triggers), then tells the registry it has.
async fn follow(registry: Arc<Registry>, triggers: Arc<Triggers>) {
    let mut changes = registry.subscribe();
    // Hold the registry weakly: the server owns it, this task only follows it.
    let registry = Arc::downgrade(&registry);
    while let Some(snapshot) = changes.next().await {
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let limits = &registry.config().limits;
        let served: Vec<updraft_triggers::Served> = snapshot
            .all_records()
            .filter_map(|record| {
                let live = record.live()?;
                let e = limits.resolve(&live.spec);
                Some(updraft_triggers::Served {
                    project: record.project.clone(),
                    name: record.name.clone(),
                    spec: live.spec.clone(),
                    timeout: e.timeout,
                    max_concurrency: e.max_concurrency,
                })
            })
            .collect();
        triggers.reconcile(&served, &snapshot.forgotten).await;
        changes.applied(snapshot.generation);
    }
}
