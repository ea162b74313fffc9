//! Scale to zero: a deployed version's code is in memory only while it is used.
//!
//! A [`ManagedFunction`] is the wasm [`Runtime`] of one deployed version. It loads the compiled
//! code from the disk cache on the first invocation (a *cold start*: a memory map and a
//! pre-instantiation, no compilation), keeps it while invocations come, and drops it (with its
//! ready instances) once the version has been idle for its `idle_timeout`, unless
//! `min_instances` asks for it to stay warm. In-flight invocations hold their own reference, so
//! eviction never disturbs them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderValue, header};
use http_body_util::BodyExt;
use updraft_api::headers;
use updraft_dispatch::{
    BodyError, BoxFuture, CodeSource, Input, Invocation, InvocationSink, InvokeError,
    LifecycleStats, LoadError, Runtime, RuntimeProvider, Settings, Start, Stream, TRACEPARENT,
};

use crate::invoke::GuestBody;
use crate::{ComponentError, Engine, PreparedFunction, Reuse, lock};

/// A deployed version whose code is loaded on demand and dropped when idle. Cheap to clone:
/// clones share the same state.
#[derive(Clone)]
pub struct ManagedFunction(Arc<Managed>);

struct Managed {
    engine: Arc<Engine>,
    digest: String,
    code: Arc<dyn CodeSource>,
    settings: Settings,
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
    /// A version that is not loaded yet: its first invocation loads it.
    pub fn new(
        engine: Arc<Engine>,
        digest: String,
        code: Arc<dyn CodeSource>,
        settings: Settings,
    ) -> Self {
        Self(Arc::new(Managed {
            engine,
            digest,
            code,
            settings,
            loaded: Mutex::new(None),
            loading: tokio::sync::Mutex::new(()),
            last_used_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            cold_starts: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            reuse_disabled: AtomicBool::new(false),
        }))
    }

    /// Loads the code now (blocking: call from a blocking thread), e.g. at deploy time so that a
    /// deploy fails when the code cannot run, and so that the first request is warm.
    ///
    /// # Errors
    /// [`ComponentError`] if the code cannot be loaded or linked.
    pub fn load_now(&self) -> Result<(), ComponentError> {
        let prepared = self.0.load_blocking()?;
        *lock(&self.0.loaded) = Some(prepared);
        self.0.touch();
        Ok(())
    }

    /// The version's code, loading it from the compiled-code cache if it was evicted.
    ///
    /// # Errors
    /// [`ComponentError`] if it cannot be loaded (its cache entry and artifact are gone, say).
    pub async fn acquire(&self) -> Result<(PreparedFunction, Start), ComponentError> {
        let this = &self.0;
        this.touch();
        if let Some(p) = lock(&this.loaded).clone() {
            return Ok((p, Start::Warm));
        }
        let start = Instant::now();
        let load_us = || u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let _guard = this.loading.lock().await;
        if let Some(p) = lock(&this.loaded).clone() {
            // Another request loaded it while this one waited: still a cold start for this one,
            // which took as long as its wait.
            return Ok((p, Start::Cold { load_us: load_us() }));
        }
        let managed = this.clone();
        let prepared = tokio::task::spawn_blocking(move || managed.load_blocking())
            .await
            .map_err(|e| ComponentError::Invalid(format!("loading task failed: {e}")))??;
        let load_us = load_us();
        *lock(&this.loaded) = Some(prepared.clone());
        this.cold_starts.fetch_add(1, Ordering::Relaxed);
        this.touch();
        Ok((prepared, Start::Cold { load_us }))
    }

    /// Runs one invocation (see [`Runtime::invoke`]).
    async fn run(
        self,
        invocation: Invocation,
        sink: Arc<dyn InvocationSink>,
    ) -> Result<http::Response<updraft_dispatch::Body>, InvokeError> {
        let req = request(invocation)?;
        let (prepared, start) = match self.acquire().await {
            Ok(loaded) => loaded,
            Err(e) => {
                let e = InvokeError::Load(e.to_string());
                sink.line(Stream::Platform, &e.to_string());
                return Err(e);
            }
        };
        if let Start::Cold { load_us } = start {
            sink.cold_start(Duration::from_micros(load_us));
        }
        let (resp, _instance) = prepared.handle(req, sink).await?;
        Ok(resp.map(|b| b.map_err(BodyError::failed).boxed_unsync()))
    }
}

impl Managed {
    fn load_blocking(&self) -> Result<PreparedFunction, ComponentError> {
        let compiled = self
            .engine
            .load(&self.digest, || self.code.read(&self.digest))?;
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
}

/// The request the guest gets: the invocation's HTTP request, or its events encoded as
/// CloudEvents; with the request id, version and `traceparent` headers set.
fn request(invocation: Invocation) -> Result<http::Request<GuestBody>, InvokeError> {
    let Invocation {
        request_id,
        version,
        traceparent,
        input,
        trigger: _,
    } = invocation;
    let mut req = match input {
        Input::Http(req) => req,
        Input::Events(events) => events.to_http().map_err(InvokeError::BadInput)?,
    };
    let h = req.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert(headers::REQUEST_ID, v);
    }
    h.insert(headers::VERSION, HeaderValue::from(version));
    if let Ok(v) = HeaderValue::from_str(&traceparent) {
        h.insert(TRACEPARENT, v);
    }
    if !h.contains_key(header::HOST) && req.uri().authority().is_none() {
        req.headers_mut()
            .insert(header::HOST, HeaderValue::from_static("localhost"));
    }
    Ok(req.map(|b| b.map_err(guest_body_error).boxed_unsync()))
}

/// What the guest sees when the request body fails: the wasi:http error for a body over its
/// limit, an internal error otherwise.
fn guest_body_error(e: BodyError) -> wasmtime_wasi_http::Error {
    match e {
        BodyError::TooLarge { limit } => {
            wasmtime_wasi_http::Error::HttpRequestBodySize(Some(limit))
        }
        e => wasmtime_wasi_http::Error::InternalError(Some(e.to_string())),
    }
}

impl Runtime for ManagedFunction {
    fn invoke(
        &self,
        invocation: Invocation,
        sink: Arc<dyn InvocationSink>,
    ) -> BoxFuture<'_, Result<http::Response<updraft_dispatch::Body>, InvokeError>> {
        Box::pin(self.clone().run(invocation, sink))
    }

    fn finished(&self) {
        self.0.touch();
    }

    fn evict_if_idle(&self) -> bool {
        let this = &self.0;
        let now = u64::try_from(this.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let idle_ms = now.saturating_sub(this.last_used_ms.load(Ordering::Relaxed));
        let mut loaded = lock(&this.loaded);
        let Some(prepared) = loaded.as_ref() else {
            return false;
        };
        let idle_timeout = this.settings.idle_timeout;
        prepared.trim_ready(idle_timeout);
        let idle = Duration::from_millis(idle_ms) >= idle_timeout;
        if idle && this.settings.min_instances == 0 {
            if prepared.reuse_disabled() {
                this.reuse_disabled.store(true, Ordering::Relaxed);
            }
            *loaded = None;
            this.evictions.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    fn stats(&self) -> LifecycleStats {
        let this = &self.0;
        let loaded = lock(&this.loaded).clone();
        LifecycleStats {
            loaded: loaded.is_some(),
            ready_instances: loaded.as_ref().map_or(0, PreparedFunction::ready_instances),
            cold_starts: this.cold_starts.load(Ordering::Relaxed),
            evictions: this.evictions.load(Ordering::Relaxed),
            reuse_disabled: this.reuse_disabled.load(Ordering::Relaxed)
                || loaded
                    .as_ref()
                    .is_some_and(PreparedFunction::reuse_disabled),
        }
    }

    fn load(&self) -> BoxFuture<'_, Result<(), LoadError>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.load_now())
                .await
                .map_err(|e| LoadError {
                    message: format!("loading task failed: {e}"),
                    user_error: false,
                })?
                .map_err(load_error)
        })
    }

    fn warm_up(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let (prepared, _) = self.acquire().await.map_err(|e| e.to_string())?;
            prepared.fill_ready().await.map_err(|e| e.to_string())
        })
    }

    fn min_instances(&self) -> u32 {
        self.0.settings.min_instances
    }
}

fn load_error(e: ComponentError) -> LoadError {
    LoadError {
        user_error: e.is_user_error(),
        message: e.to_string(),
    }
}

/// The wasm runtime: makes a [`ManagedFunction`] for each deployed version, reading artifacts
/// from `code` when the compiled-code cache lacks them.
pub struct WasmRuntime {
    engine: Arc<Engine>,
    code: Arc<dyn CodeSource>,
}

impl WasmRuntime {
    /// The wasm runtime of `engine`.
    pub fn new(engine: Arc<Engine>, code: Arc<dyn CodeSource>) -> Self {
        Self { engine, code }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

impl RuntimeProvider for WasmRuntime {
    fn prepare(&self, digest: &str, settings: Settings) -> Arc<dyn Runtime> {
        Arc::new(ManagedFunction::new(
            self.engine.clone(),
            digest.to_owned(),
            self.code.clone(),
            settings,
        ))
    }

    fn ensure_prepared(&self, digest: &str) -> BoxFuture<'_, Result<(), LoadError>> {
        let (engine, code, digest) = (self.engine.clone(), self.code.clone(), digest.to_owned());
        Box::pin(async move {
            if engine.is_cached(&digest) {
                return Ok(());
            }
            tokio::task::spawn_blocking(move || {
                engine
                    .load(&digest, || code.read(&digest))
                    .map(drop)
                    .map_err(load_error)
            })
            .await
            .map_err(|e| LoadError {
                message: format!("compiling task failed: {e}"),
                user_error: false,
            })?
        })
    }

    fn forget(&self, digest: &str) {
        if let Err(e) = self.engine.forget(digest) {
            tracing::warn!(digest, error = %e, "could not delete compiled code");
        }
    }
}
