//! Scale to zero: a deployed function's code is in memory only while it is used.
//!
//! A [`ManagedFunction`] is what the gateway holds for each deployed function. It loads the
//! compiled code from the disk cache on the first request (a *cold start*: a memory map and a
//! pre-instantiation, no compilation), keeps it while requests come, and drops it (with its ready
//! instances) once the function has been idle for its `idle_timeout`, unless `min_instances`
//! asks for it to stay warm. In-flight requests hold their own reference, so eviction never
//! disturbs them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{ComponentError, Engine, FunctionSettings, PreparedFunction, Reuse, lock};

/// How a request found its function's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The code was in memory.
    Warm,
    /// The code was loaded from the compiled-code cache for this request.
    Cold {
        /// Time spent loading it, in microseconds.
        load_us: u64,
    },
}

/// Counters of one function's lifecycle since it was deployed (or the server started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleStats {
    /// Whether its code is in memory now.
    pub loaded: bool,
    /// Instantiated instances waiting for a request.
    pub ready_instances: usize,
    /// Requests that had to load the code first.
    pub cold_starts: u64,
    /// Times the code was dropped for being idle.
    pub evictions: u64,
    /// Whether instance reuse was turned off after the guest failed on a reused instance.
    pub reuse_disabled: bool,
}

/// A deployed function whose code is loaded on demand and dropped when idle.
pub struct ManagedFunction {
    engine: Arc<Engine>,
    digest: String,
    wasm_path: PathBuf,
    settings: FunctionSettings,
    idle_timeout: Duration,
    loaded: Mutex<Option<PreparedFunction>>,
    /// Serialises loads so that a burst of requests to a cold function loads it once.
    loading: tokio::sync::Mutex<()>,
    /// Milliseconds since `epoch` when a request last started or finished.
    last_used_ms: AtomicU64,
    epoch: Instant,
    cold_starts: AtomicU64,
    evictions: AtomicU64,
    /// Instance reuse was turned off for this guest; remembered across evictions.
    reuse_disabled: AtomicBool,
}

impl ManagedFunction {
    /// A function that is not loaded yet: its first request loads it.
    pub fn new(
        engine: Arc<Engine>,
        digest: String,
        wasm_path: PathBuf,
        settings: FunctionSettings,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            engine,
            digest,
            wasm_path,
            settings,
            idle_timeout,
            loaded: Mutex::new(None),
            loading: tokio::sync::Mutex::new(()),
            last_used_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            cold_starts: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            reuse_disabled: AtomicBool::new(false),
        }
    }

    /// Loads the code now (blocking: call from a blocking thread), e.g. at deploy time so that a
    /// deploy fails when the code cannot run, and so that the first request is warm.
    ///
    /// # Errors
    /// [`ComponentError`] if the code cannot be loaded or linked.
    pub fn load_now(&self) -> Result<(), ComponentError> {
        let prepared = self.load_blocking()?;
        *lock(&self.loaded) = Some(prepared);
        self.touch();
        Ok(())
    }

    /// Its `min_instances`.
    pub fn min_instances(&self) -> u32 {
        self.settings.min_instances
    }

    fn load_blocking(&self) -> Result<PreparedFunction, ComponentError> {
        let compiled = self.engine.load(&self.digest, &self.wasm_path)?;
        let mut settings = self.settings.clone();
        if self.reuse_disabled.load(Ordering::Relaxed) {
            settings.reuse = Reuse::Fresh;
        }
        self.engine.prepare(&compiled, settings)
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_used_ms.store(ms, Ordering::Relaxed);
    }

    /// The function's code, loading it from the compiled-code cache if it was evicted.
    ///
    /// # Errors
    /// [`ComponentError`] if it cannot be loaded (its cache entry and artifact are gone, say).
    pub async fn acquire(self: &Arc<Self>) -> Result<(PreparedFunction, Start), ComponentError> {
        self.touch();
        if let Some(p) = lock(&self.loaded).clone() {
            return Ok((p, Start::Warm));
        }
        let start = Instant::now();
        let load_us = || u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let _guard = self.loading.lock().await;
        if let Some(p) = lock(&self.loaded).clone() {
            // Another request loaded it while this one waited: still a cold start for this one,
            // which took as long as its wait.
            return Ok((p, Start::Cold { load_us: load_us() }));
        }
        let this = self.clone();
        let prepared = tokio::task::spawn_blocking(move || this.load_blocking())
            .await
            .map_err(|e| ComponentError::Invalid(format!("loading task failed: {e}")))??;
        let load_us = load_us();
        *lock(&self.loaded) = Some(prepared.clone());
        self.cold_starts.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Ok((prepared, Start::Cold { load_us }))
    }

    /// Records that a request finished, so idleness is counted from its end.
    pub fn finished(&self) {
        self.touch();
    }

    /// Loads the code if needed and pre-instantiates `min_instances` instances.
    ///
    /// # Errors
    /// A message if the code cannot be loaded or an instance cannot be created.
    pub async fn warm_up(self: &Arc<Self>) -> Result<(), String> {
        let (prepared, _) = self.acquire().await.map_err(|e| e.to_string())?;
        prepared.fill_ready().await.map_err(|e| e.to_string())
    }

    /// Drops the code if the function has been idle for its `idle_timeout` and has no
    /// `min_instances`; otherwise drops ready instances idle that long (keeping
    /// `min_instances`). Returns whether the code was evicted.
    pub fn evict_if_idle(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let idle_ms = now.saturating_sub(self.last_used_ms.load(Ordering::Relaxed));
        let mut loaded = lock(&self.loaded);
        let Some(prepared) = loaded.as_ref() else {
            return false;
        };
        prepared.trim_ready(self.idle_timeout);
        let idle = Duration::from_millis(idle_ms) >= self.idle_timeout;
        if idle && self.settings.min_instances == 0 {
            if prepared.reuse_disabled() {
                self.reuse_disabled.store(true, Ordering::Relaxed);
            }
            *loaded = None;
            self.evictions.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Its lifecycle counters.
    pub fn stats(&self) -> LifecycleStats {
        let loaded = lock(&self.loaded).clone();
        LifecycleStats {
            loaded: loaded.is_some(),
            ready_instances: loaded.as_ref().map_or(0, PreparedFunction::ready_instances),
            cold_starts: self.cold_starts.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            reuse_disabled: self.reuse_disabled.load(Ordering::Relaxed)
                || loaded
                    .as_ref()
                    .is_some_and(PreparedFunction::reuse_disabled),
        }
    }
}
