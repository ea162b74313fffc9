//! The WebAssembly engine: the only crate that configures Wasmtime.
//!
//! It owns:
//! - the [`Engine`]: Wasmtime configured for serving (async, component model, epoch interruption
//!   for deadlines, the pooling allocator when the machine's address space allows it) and a
//!   component `Linker` with the whole WASI 0.2 set that real toolchains
//!   import (`wasi:http`, `wasi:cli`, `wasi:io`, `wasi:clocks`, `wasi:random`, `wasi:filesystem`
//!   with no preopens, `wasi:sockets` with every address denied);
//! - validation of uploaded bytes (a component exporting `wasi:http/incoming-handler`, whose
//!   imports we can satisfy), compilation, and the on-disk compiled-code cache keyed by artifact
//!   digest and engine configuration ([`Engine::compile`], [`Engine::load`]);
//! - [`PreparedFunction`]: a pre-instantiated component plus its per-function settings; each
//!   invocation gets a fresh instance by default (nothing leaks between requests) or, with
//!   [`Reuse::Warm`], a warm one that served earlier requests one at a time; its environment
//!   variables, its memory limit and deadline, captured stdout/stderr (into the dispatcher's
//!   [`InvocationSink`](updraft_dispatch::InvocationSink)) and an outbound-HTTP policy that only
//!   lets it reach its `allowed_outbound_hosts`;
//! - [`ManagedFunction`], the wasm [`Runtime`](updraft_dispatch::Runtime) of one deployed
//!   version: scale to zero. Its code is loaded from the disk cache on demand (a cold start) and
//!   dropped when idle, unless `min_instances` keeps it warm. Events reach the guest as
//!   CloudEvents over HTTP; [`WasmRuntime`] makes one per version for the registry.
//!
//! It must not know about storage, routing or the control API: callers hand it bytes, digests
//! and invocations. Other crates never import `wasmtime::{Config, Engine}`.
//!
//! ```no_run
//! # async fn demo(bytes: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use updraft_dispatch::{InvocationSink, Settings, Stream};
//! use updraft_engine::{Engine, EngineConfig};
//!
//! struct Print;
//! impl InvocationSink for Print {
//!     fn line(&self, stream: Stream, line: &str) { println!("{stream:?}: {line}") }
//! }
//!
//! let engine = Engine::new(EngineConfig::new("/tmp/updraft-cache"))?;
//! let digest = updraft_engine::digest(&bytes);
//! let compiled = engine.compile(&digest, &bytes)?;
//! let function = engine.prepare(&compiled, Settings::default())?;
//! let _ = (function, Arc::new(Print));
//! # Ok(()) }
//! ```

mod capability;
mod compile;
mod fair;
mod host;
mod invoke;
mod keyvalue;
mod lifecycle;
mod logs;
mod outbound;
mod variables;

pub use compile::{CompiledComponent, ComponentError, EngineStats, digest};
pub use invoke::{InstanceStart, PreparedFunction};
pub use lifecycle::{ManagedFunction, WasmRuntime};
pub use logs::{MAX_LOG_BYTES, MAX_LOG_LINES};
pub use outbound::OwnAddresses;

use updraft_dispatch::Reuse;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Linker;

use crate::compile::Stats;
use crate::host::Host;

/// How often the epoch advances. Deadlines are enforced in multiples of this.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Settings for [`Engine::new`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Directory for compiled code (`<dir>/<engine hash>/<digest>.cwasm`).
    pub cache_dir: PathBuf,
    /// Use the pooling instance allocator: `None` probes whether the machine's virtual address
    /// space allows it (as `wasmtime serve` does); `Some(false)` forces on-demand allocation.
    /// The `UPDRAFT_POOLING=0|1` environment variable overrides this.
    pub pooling: Option<bool>,
    /// Instances alive at once with the pooling allocator (running, warm or pre-instantiated);
    /// instantiating more fails that invocation.
    pub max_instances: u32,
    /// Largest linear memory one instance may have, in bytes.
    pub max_memory: u64,
    /// Bytes of each pooled linear memory kept mapped between instances and reset with `memset`
    /// instead of `madvise`: no page faults, and no cross-core TLB shootdowns, for the memory a
    /// typical guest touches.
    pub memory_keep_resident: u64,
    /// Host resources (handles: streams, fields, requests, pollables...) one instance may hold at
    /// once; past it the call that needs another fails the invocation.
    pub max_resources: usize,
    /// Largest `wasi:http` fields (headers or trailers) a guest may build, in bytes of their
    /// in-memory form.
    pub max_field_bytes: usize,
    /// Outbound HTTP requests one invocation may have in flight at once (each its own
    /// connection); past it a request fails with `connection-limit-reached`.
    pub max_outbound_requests: usize,
    /// Wasm time (counted in epoch ticks) after which a run is long-running and moves to the
    /// low-priority threads (see [`long_run_threads`](Self::long_run_threads)).
    pub long_run_after: Duration,
    /// Threads long runs share, at the lowest OS priority: they use what the rest of the machine
    /// leaves.
    pub long_run_threads: usize,
}

impl EngineConfig {
    /// Defaults with the given cache directory.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            pooling: None,
            max_instances: 1_000,
            max_memory: updraft_manifest::MAX_MEMORY,
            memory_keep_resident: 64 << 10,
            max_resources: 10_000,
            max_field_bytes: 128 << 10,
            max_outbound_requests: 32,
            long_run_after: Duration::from_millis(20),
            long_run_threads: default_long_run_threads(),
        }
    }
}

/// One per core: the default of [`EngineConfig::long_run_threads`].
#[must_use]
pub fn default_long_run_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Limits on what one instance may hold on the host's side (see [`EngineConfig`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sandbox {
    pub(crate) max_resources: usize,
    pub(crate) max_field_bytes: usize,
    pub(crate) max_outbound_requests: usize,
    /// Ticks after which a run is long (see [`fair`]).
    pub(crate) long_run_ticks: u32,
}

/// Errors setting up the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Wasmtime rejected the configuration or the linker could not be built.
    #[error("configuring wasmtime: {0}")]
    Config(String),
    /// The cache directory could not be created, or the epoch thread could not start.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Wasmtime, configured for serving functions. Cheap to share behind an `Arc`.
pub struct Engine {
    pub(crate) wasmtime: wasmtime::Engine,
    pub(crate) linkers: capability::Linkers,
    pub(crate) cache_dir: PathBuf,
    pub(crate) stats: Stats,
    /// The server's listen addresses, refused to outbound requests.
    pub(crate) own: outbound::OwnAddresses,
    /// Per-instance host resource limits.
    pub(crate) sandbox: Sandbox,
    /// The low-priority threads long runs move to.
    pub(crate) background: Arc<fair::Background>,
    /// Which functions run lately (whether a busy function has neighbours to yield to).
    pub(crate) activity: Arc<fair::Activity>,
    _epoch: EpochThread,
}

impl Engine {
    /// Tells outbound policy the server's listen addresses: guests may not call them, whatever
    /// their `allowed_outbound_hosts` say (unless they list the address literally).
    pub fn set_own_addresses(&self, addrs: Vec<std::net::SocketAddr>) {
        if let Ok(mut own) = self.own.write() {
            *own = addrs;
        }
    }

    /// Builds the engine and its linker, and starts the epoch ticker thread (joined on drop).
    ///
    /// # Errors
    /// [`EngineError`] if Wasmtime rejects the configuration or the cache directory cannot be
    /// created.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let pooling = match std::env::var("UPDRAFT_POOLING").ok().as_deref() {
            Some("0") => false,
            Some("1") => true,
            _ => config.pooling.unwrap_or_else(pooling_is_supported),
        };
        let wasmtime = match wasmtime::Engine::new(&wasmtime_config(pooling, &config)) {
            Ok(engine) => engine,
            // The pool reserves its address space up front; when that fails (a tight
            // `ulimit -v`, many engines in one process), serve with on-demand allocation.
            Err(e) if pooling => {
                tracing::warn!(error = %format!("{e:#}"), "pooling allocator unavailable; using on-demand allocation");
                wasmtime::Engine::new(&wasmtime_config(false, &config))
                    .map_err(|e| EngineError::Config(format!("{e:#}")))?
            }
            Err(e) => return Err(EngineError::Config(format!("{e:#}"))),
        };
        let mut linker = Linker::<Host>::new(&wasmtime);
        // Toolchains import different 0.2.x patch versions; the linker resolves them by semver.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let cache_dir = config.cache_dir.join(compile::engine_hash(&wasmtime));
        std::fs::create_dir_all(&cache_dir).map_err(|source| EngineError::Io {
            path: cache_dir.clone(),
            source,
        })?;
        let epoch =
            EpochThread::spawn(EPOCH_TICK, wasmtime.clone()).map_err(|source| EngineError::Io {
                path: "epoch ticker thread".into(),
                source,
            })?;
        tracing::debug!(cache = %cache_dir.display(), "wasm engine ready");
        Ok(Self {
            wasmtime,
            linkers: capability::Linkers::new(linker),
            cache_dir,
            stats: Stats::default(),
            own: outbound::OwnAddresses::default(),
            sandbox: Sandbox {
                max_resources: config.max_resources.max(1),
                max_field_bytes: config.max_field_bytes.max(1),
                max_outbound_requests: config.max_outbound_requests.max(1),
                long_run_ticks: u32::try_from(
                    config.long_run_after.as_millis() / EPOCH_TICK.as_millis().max(1),
                )
                .unwrap_or(u32::MAX),
            },
            background: fair::Background::new(config.long_run_threads),
            activity: fair::Activity::new(),
            _epoch: epoch,
        })
    }
}

/// The Wasmtime configuration every Updraft engine uses.
fn wasmtime_config(pooling: bool, config: &EngineConfig) -> wasmtime::Config {
    let mut wt = wasmtime::Config::new();
    wt.wasm_component_model(true);
    wt.epoch_interruption(true);
    if pooling {
        let n = config.max_instances.max(1);
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        // A component instance typically holds a few core instances (the program plus the
        // adapter and shim modules toolchains add), each with a memory or a table or two.
        pool.total_component_instances(n);
        pool.total_core_instances(n.saturating_mul(4));
        pool.total_memories(n.saturating_mul(2));
        pool.total_tables(n.saturating_mul(4));
        pool.max_memory_size(usize::try_from(config.max_memory).unwrap_or(usize::MAX));
        // Keeping memory resident between instances turns the reset of a slot into a memset
        // of what was touched, instead of an madvise that unmaps pages (and makes every core
        // running this process flush its TLB) and page faults when the next guest touches them.
        pool.linear_memory_keep_resident(
            usize::try_from(config.memory_keep_resident).unwrap_or(usize::MAX),
        );
        pool.table_keep_resident(256 << 10);
        pool.decommit_batch_size(32);
        wt.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    wt
}

/// Whether the pooling allocator can reserve its virtual memory here. Some systems (39-bit
/// address spaces, tight `ulimit -v`) cannot; there we fall back to on-demand allocation. This
/// mirrors `use_pooling_allocator_by_default` in `wasmtime serve`.
fn pooling_is_supported() -> bool {
    const BITS_TO_TEST: u32 = 42;
    let mut config = wasmtime::Config::new();
    config.wasm_memory64(true);
    config.memory_reservation(1 << BITS_TO_TEST);
    let Ok(engine) = wasmtime::Engine::new(&config) else {
        return false;
    };
    let mut store = wasmtime::Store::new(&engine, ());
    let ty = wasmtime::MemoryType::new64(0, Some(1 << (BITS_TO_TEST - 16)));
    wasmtime::Memory::new(&mut store, ty).is_ok()
}

/// Locks `m`, ignoring poisoning: every value guarded here stays consistent even if a holder
/// panicked (a list of ready instances, a loaded function, the current log).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Advances the engine's epoch every tick while wasm runs, so that guests yield, deadlines fire
/// and long runs are noticed; parked while nothing runs (an idle server, scaled to zero, takes no wake-ups). Joined on
/// drop.
struct EpochThread {
    stop: Arc<AtomicBool>,
    running: Arc<Running>,
    handle: Option<JoinHandle<()>>,
}

/// How many runs of wasm (invocations, instantiations) are under way; the epoch thread ticks
/// only while there is one.
#[derive(Default)]
pub(crate) struct Running {
    count: AtomicUsize,
    ticker: std::sync::OnceLock<std::thread::Thread>,
}

impl Running {
    /// Counts a run until the guard is dropped; wakes the ticker for the first one.
    pub(crate) fn enter(self: &Arc<Self>) -> RunGuard {
        if self.count.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(t) = self.ticker.get()
        {
            t.unpark();
        }
        RunGuard(self.clone())
    }
}

/// See [`Running::enter`].
pub(crate) struct RunGuard(Arc<Running>);

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EpochThread {
    fn spawn(tick: Duration, engine: wasmtime::Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::new(Running::default());
        let handle = std::thread::Builder::new()
            .name("updraft-epoch".into())
            .spawn({
                let (stop, running) = (stop.clone(), running.clone());
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        if running.count.load(Ordering::Acquire) == 0 {
                            // Woken by the next run (or spuriously: the loop checks again).
                            std::thread::park();
                            continue;
                        }
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                }
            })?;
        let _ = running.ticker.set(handle.thread().clone());
        Ok(Self {
            stop,
            running,
            handle: Some(handle),
        })
    }
}

impl Drop for EpochThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}
