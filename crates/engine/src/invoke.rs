//! Running invocations on instances of a pre-instantiated component.
//!
//! Each instance has its own `Store` holding the WASI context (the function's environment
//! variables, no preopened directories, every socket address denied, stdout/stderr captured into
//! the current invocation's log), the wasi:http context with the outbound policy, a memory
//! limiter and an epoch deadline. The guest runs in its own task so that it can keep streaming
//! the response body after the head has been returned; the deadline covers the whole run, body
//! included.
//!
//! By default an instance serves one request and is dropped ([`Reuse::Fresh`]). With
//! [`Reuse::Warm`] an instance that finished a request cleanly goes back to the function's idle
//! set and serves the next one (never two at once), up to `max_reuse` requests. A guest that
//! fails on a reused instance but works on a fresh one is switched back to fresh instances for
//! good, with a platform log line saying so. `min_instances` instances are kept ready
//! (pre-instantiated) at all times.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use updraft_dispatch::{InvocationSink, InvokeError, Report, Reuse, Settings, Stream};
use updraft_manifest::OutboundHost;
use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use crate::compile::CompiledComponent;
use crate::host::{Host, MemoryLimiter};
use crate::logs::{Capture, LogSlot, LogState};
use crate::outbound::OutboundPolicy;
use crate::{Engine, lock};

/// A body as Wasmtime's wasi:http takes and gives it.
pub(crate) type GuestBody =
    http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// Failures in a row on reused instances, when no fresh retry was possible, after which a
/// function is switched to fresh instances.
const REUSE_FAILURES_BEFORE_FALLBACK: u32 = 3;

/// One instance of a function's component and its store.
struct Instance {
    store: Store<Host>,
    /// `None` until instantiated.
    proxy: Option<Arc<Proxy>>,
    /// Requests it has served.
    served: u32,
    /// When it last finished a request (or was created).
    idle_since: Instant,
}

/// A function ready to serve: its component pre-instantiated plus its settings and its ready
/// instances. Cloning is cheap; in-flight invocations keep their own clone, so replacing or
/// evicting a function never disturbs them.
#[derive(Clone)]
pub struct PreparedFunction {
    inner: Arc<Inner>,
}

struct Inner {
    pre: ProxyPre<Host>,
    env: Vec<(String, String)>,
    /// Shown as `***` in its log lines.
    redact: Arc<[String]>,
    outbound: Arc<[OutboundHost]>,
    /// Whether it may call the platform's APIs at `updraft.internal`.
    platform_api: bool,
    own: crate::outbound::OwnAddresses,
    sandbox: crate::Sandbox,
    background: Arc<crate::fair::Background>,
    /// Ticks of all of this function's runs, lately.
    load: Arc<crate::fair::FunctionLoad>,
    /// Counts runs of wasm, so the epoch ticks only while one is under way.
    running: Arc<crate::Running>,
    config: Arc<WasiConfigVariables>,
    vars: Arc<std::collections::BTreeMap<String, String>>,
    /// Key-value access (`None`: not granted).
    kv: Option<Arc<dyn updraft_dispatch::kv::KeyValue>>,
    timeout: Duration,
    memory_bytes: usize,
    reuse: Reuse,
    min_instances: usize,
    digest: String,
    /// Instantiated instances waiting for a request.
    ready: Mutex<Vec<Instance>>,
    refilling: AtomicBool,
    reuse_disabled: AtomicBool,
    reuse_failures: AtomicU32,
}

impl Engine {
    /// Pre-instantiates a compiled component with a function's settings, linking only the
    /// capabilities the settings grant.
    ///
    /// # Errors
    /// [`crate::ComponentError::NotGranted`] if the component imports a capability the
    /// function was not granted; [`crate::ComponentError::Link`] if its imports cannot be
    /// satisfied otherwise.
    pub fn prepare(
        &self,
        compiled: &CompiledComponent,
        settings: Settings,
    ) -> Result<PreparedFunction, crate::ComponentError> {
        let caps = self.linkers.capabilities();
        let grants = crate::capability::Grants::of(caps, &settings);
        let ty = compiled.component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.wasmtime)
            .map(|(name, _)| name.to_owned())
            .collect();
        if let Some(e) =
            crate::capability::ungranted(caps, grants, imports.iter().map(String::as_str))
        {
            return Err(e);
        }
        let pre = self
            .linkers
            .get(grants)?
            .instantiate_pre(&compiled.component)
            .and_then(ProxyPre::new)
            .map_err(|e| crate::ComponentError::Link(format!("{e:#}")))?;
        Ok(PreparedFunction {
            inner: Arc::new(Inner {
                pre,
                env: settings.env,
                redact: settings
                    .redact
                    .into_iter()
                    .filter(|v| v.len() >= crate::logs::MIN_REDACTED_LEN)
                    .collect(),
                outbound: settings.allowed_outbound_hosts.into(),
                platform_api: settings.platform_api,
                own: self.own.clone(),
                sandbox: self.sandbox,
                background: self.background.clone(),
                load: crate::fair::FunctionLoad::new(self.activity.clone()),
                running: self._epoch.running.clone(),
                config: Arc::new(
                    settings
                        .variables
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                ),
                vars: Arc::new(
                    settings
                        .variables
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                ),
                kv: settings.key_value.map(|g| g.access),
                timeout: settings.timeout,
                memory_bytes: usize::try_from(settings.memory_bytes).unwrap_or(usize::MAX),
                reuse: settings.reuse,
                min_instances: usize::try_from(settings.min_instances).unwrap_or(0),
                digest: compiled.digest.clone(),
                ready: Mutex::new(Vec::new()),
                refilling: AtomicBool::new(false),
                reuse_disabled: AtomicBool::new(false),
                reuse_failures: AtomicU32::new(0),
            }),
        })
    }
}

/// What serving one request did, for the caller's log and metering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceStart {
    /// A new instance was created for the request.
    Fresh,
    /// A pre-instantiated instance that had served nothing yet.
    Ready,
    /// A warm instance that had already served this many requests.
    Reused(u32),
}

impl PreparedFunction {
    /// Instantiated instances waiting for a request.
    pub fn ready_instances(&self) -> usize {
        lock(&self.inner.ready).len()
    }

    /// Whether instance reuse was switched off after the guest failed on reused instances.
    pub fn reuse_disabled(&self) -> bool {
        self.inner.reuse_disabled.load(Ordering::Relaxed)
    }

    /// Instantiates instances until `min_instances` are ready. Runs on the caller's task.
    ///
    /// # Errors
    /// [`InvokeError`] if an instance cannot be created (its start code traps, say).
    pub async fn fill_ready(&self) -> Result<(), InvokeError> {
        while self.ready_instances() < self.inner.min_instances {
            let _running = self.inner.running.enter();
            let mut instance = self.new_instance();
            let proxy = self.inner.instantiate(&mut instance.store).await?;
            instance.proxy = Some(proxy);
            lock(&self.inner.ready).push(instance);
        }
        Ok(())
    }

    /// Drops ready instances idle for longer than `idle`, keeping `min_instances`. Returns how
    /// many were dropped.
    pub fn trim_ready(&self, idle: Duration) -> usize {
        let mut ready = lock(&self.inner.ready);
        let before = ready.len();
        let keep = self.inner.min_instances;
        let mut kept = 0;
        // Newest last: keep the most recently used ones.
        let mut i = ready.len();
        while i > 0 {
            i -= 1;
            if kept < keep || ready[i].idle_since.elapsed() < idle {
                kept += 1;
            } else {
                drop(ready.remove(i));
            }
        }
        before - ready.len()
    }

    /// A new, not yet instantiated, instance.
    fn new_instance(&self) -> Instance {
        let inner = &self.inner;
        let slot = LogSlot::new(LogState::discard());
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&inner.env)
            .stdout(Capture {
                stream: Stream::Stdout,
                slot: slot.clone(),
            })
            .stderr(Capture {
                stream: Stream::Stderr,
                slot: slot.clone(),
            })
            // Deny every socket address: functions reach the network only through wasi:http.
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .allow_ip_name_lookup(false);
        let mut table = ResourceTable::new();
        table.set_max_capacity(inner.sandbox.max_resources);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(inner.sandbox.max_field_bytes);
        let host = Host {
            table,
            wasi: wasi.build(),
            http,
            hooks: OutboundPolicy {
                allowed: inner.outbound.clone(),
                own: inner.own.clone(),
                in_flight: Arc::new(AtomicUsize::new(0)),
                max_in_flight: inner.sandbox.max_outbound_requests,
                log: slot.clone(),
                platform: inner.platform_api,
            },
            limits: MemoryLimiter {
                limit: inner.memory_bytes,
                used: 0,
                refused: None,
            },
            log: slot,
            config: inner.config.clone(),
            vars: inner.vars.clone(),
            kv: crate::host::KvState::new(inner.kv.clone()),
            deadline: Instant::now(),
            clock: crate::fair::RunClock::new(inner.sandbox.long_run_ticks, inner.load.clone()),
        };
        let mut store = Store::new(inner.pre.engine(), host);
        store.limiter(|h| &mut h.limits);
        store.epoch_deadline_callback(|mut store| {
            let host = store.data_mut();
            let now = Instant::now();
            if now >= host.deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            if host.clock.waited_through(now) {
                return Ok(UpdateDeadline::Continue(1));
            }
            // Counted for the move of a run that turns long to the background threads, which
            // happens at this yield.
            host.clock.tick(now);
            // Give the worker thread back every tick: a guest spinning in pure compute must
            // not hold it, or the control API, other functions and this guest's own timer
            // queue behind it. Tokio's yield goes to the back of the run queue.
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        Instance {
            store,
            proxy: None,
            served: 0,
            idle_since: Instant::now(),
        }
    }

    /// Runs one invocation: takes a ready instance or creates one, and calls its
    /// `wasi:http/incoming-handler` with `req`. Returns once the guest has sent the response
    /// head; the body streams from the guest's task until it finishes or the deadline passes.
    /// Every line the guest writes to stdout/stderr goes to `log`.
    ///
    /// # Errors
    /// [`InvokeError`] when the guest produced no response head.
    pub async fn handle(
        &self,
        req: http::Request<GuestBody>,
        log: Arc<dyn InvocationSink>,
    ) -> Result<(http::Response<GuestBody>, InstanceStart), InvokeError> {
        // A request without a body can be replayed on a fresh instance if a reused one fails.
        let replay =
            (http_body::Body::is_end_stream(req.body()) && self.reuses()).then(|| head_of(&req));
        match self.run(req, log.clone(), false).await {
            Err((e, InstanceStart::Reused(_))) => match replay {
                Some(head) => {
                    let retried = self.run(head, log.clone(), true).await;
                    if retried.is_ok() {
                        self.disable_reuse(&*log, &e);
                    }
                    retried.map_err(|(e, _)| e)
                }
                None => {
                    let n = self.inner.reuse_failures.fetch_add(1, Ordering::Relaxed) + 1;
                    if n >= REUSE_FAILURES_BEFORE_FALLBACK {
                        self.disable_reuse(&*log, &e);
                    }
                    Err(e)
                }
            },
            Ok((resp, start)) => {
                if matches!(start, InstanceStart::Reused(_)) {
                    self.inner.reuse_failures.store(0, Ordering::Relaxed);
                }
                Ok((resp, start))
            }
            Err((e, _)) => Err(e),
        }
    }

    fn reuses(&self) -> bool {
        matches!(self.inner.reuse, Reuse::Warm { .. }) && !self.reuse_disabled()
    }

    fn disable_reuse(&self, log: &dyn InvocationSink, why: &InvokeError) {
        if !self.inner.reuse_disabled.swap(true, Ordering::Relaxed) {
            lock(&self.inner.ready).retain(|i| i.served == 0);
            let msg = format!(
                "instance reuse turned off for this function: it failed on a reused instance \
                 ({why}) but works on fresh ones; every request now gets a fresh instance"
            );
            tracing::warn!(digest = %self.inner.digest, "{msg}");
            log.line(Stream::Platform, &msg);
        }
    }

    /// One attempt. `fresh_only`: do not use an instance that served a request before.
    async fn run(
        &self,
        req: http::Request<GuestBody>,
        log: Arc<dyn InvocationSink>,
        fresh_only: bool,
    ) -> Result<(http::Response<GuestBody>, InstanceStart), (InvokeError, InstanceStart)> {
        let inner = self.inner.clone();
        let log = LogState::new(log, inner.redact.clone());
        let popped = {
            let mut ready = lock(&inner.ready);
            if fresh_only {
                let unused = ready.iter().position(|i| i.served == 0);
                unused.map(|i| ready.remove(i))
            } else {
                ready.pop()
            }
        };
        let (mut instance, start) = match popped {
            Some(i) if i.served > 0 => {
                let n = i.served;
                (i, InstanceStart::Reused(n))
            }
            Some(i) => (i, InstanceStart::Ready),
            None => (self.new_instance(), InstanceStart::Fresh),
        };
        instance.store.data().log.set(log.clone());
        // A refusal a warm instance survived earlier must not be blamed for a later failure.
        instance.store.data_mut().limits.refused = None;
        start_run(&mut instance.store, inner.timeout);

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut http = instance.store.data_mut().http();
        let setup = http
            .new_incoming_request(Scheme::Http, req)
            .and_then(|req| Ok((req, http.new_response_outparam(sender)?)));
        let (req, out) = setup
            .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))
            .map_err(|e| (e, start))?;

        let this = self.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let _running = this.inner.running.enter();
            let timeout = this.inner.timeout;
            let long = instance.store.data().clock.long_flag();
            // The guest's part owns the instance, so it can move to the background threads
            // if it turns long (see `crate::fair`); the rest runs here.
            let guest = {
                let this = this.clone();
                async move {
                    let mut instantiate = None;
                    let polled = instance.store.data().clock.poll_mark();
                    let run = async {
                        let proxy = match &instance.proxy {
                            Some(p) => p.clone(),
                            None => {
                                let p = this.inner.instantiate(&mut instance.store).await?;
                                instantiate = Some(started.elapsed());
                                instance.proxy = Some(p.clone());
                                p
                            }
                        };
                        proxy
                            .wasi_http_incoming_handler()
                            .call_handle(&mut instance.store, req, out)
                            .await
                            .map_err(|e| trap_error(&e, timeout, &this.inner.sandbox))
                    };
                    let run = crate::fair::stamped(run, polled);
                    let result = match tokio::time::timeout(timeout, run).await {
                        Ok(r) => r,
                        Err(_) => Err(InvokeError::Timeout(timeout)),
                    };
                    (instance, instantiate, result)
                }
            };
            let Some((mut instance, instantiate, result)) =
                this.inner.background.run(guest, &long).await
            else {
                return Err(InvokeError::Trap("the server is shutting down".to_owned()));
            };
            let result = result.map_err(|e| {
                match instance.store.data().limits.refused {
                    // Whatever the guest did after being refused memory (abort, trap), the
                    // refusal is the cause worth reporting.
                    Some(requested) if !matches!(e, InvokeError::Timeout(_)) => {
                        InvokeError::OutOfMemory {
                            limit: this.inner.memory_bytes as u64,
                            requested: requested as u64,
                        }
                    }
                    _ => e,
                }
            });
            instance.served += 1;
            let peak_memory = instance.store.data().limits.used as u64;
            let keep = result.is_ok()
                && match this.inner.reuse {
                    Reuse::Warm { max_reuse } => instance.served < max_reuse && this.reuses(),
                    Reuse::Fresh => false,
                };
            if keep {
                // Output between requests (there should be none) must not reach this
                // invocation's log.
                instance.idle_since = Instant::now();
                instance.store.data().log.set(LogState::discard());
                lock(&this.inner.ready).push(instance);
            } else {
                // Dropping the store ends any body stream still attached.
                drop(instance);
            }
            this.refill();
            if let Err(e) = &result {
                log.sink().line(Stream::Platform, &e.to_string());
            }
            log.flush();
            let (result, error) = match result {
                Ok(()) => (Ok(()), None),
                Err(e) => (Err(e.clone()), Some(e)),
            };
            log.sink().finished(Report {
                peak_memory,
                started,
                instantiate,
                ended: Instant::now(),
                error,
            });
            result
        });

        // No timer of its own: the guest's task ends at the deadline at the latest (its
        // timeout covers the whole run), dropping the store and with it the response outparam.
        match receiver.await {
            Ok(Ok(resp)) => Ok((resp, start)),
            Ok(Err(code)) => Err((InvokeError::Guest(format!("{code:?}")), start)),
            // The guest dropped the response outparam: its task tells us why.
            Err(_) => match task.await {
                Ok(Ok(())) => Err((InvokeError::NoResponse, start)),
                Ok(Err(e)) => Err((e, start)),
                Err(e) => Err((InvokeError::Trap(format!("task failed: {e}")), start)),
            },
        }
    }

    /// Tops the ready set back up to `min_instances` in the background.
    fn refill(&self) {
        if self.ready_instances() >= self.inner.min_instances
            || self.inner.refilling.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.fill_ready().await {
                tracing::warn!(digest = %this.inner.digest, error = %e, "could not pre-instantiate");
            }
            this.inner.refilling.store(false, Ordering::Release);
        });
    }
}

impl Inner {
    async fn instantiate(&self, store: &mut Store<Host>) -> Result<Arc<Proxy>, InvokeError> {
        // Start code runs under the same deadline as a request.
        start_run(store, self.timeout);
        self.pre
            .instantiate_async(store)
            .await
            .map(Arc::new)
            .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))
    }
}

/// The method, URI and headers of `req`, with an empty body.
fn head_of(req: &http::Request<GuestBody>) -> http::Request<GuestBody> {
    let mut head = http::Request::new(
        http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *head.method_mut() = req.method().clone();
    *head.uri_mut() = req.uri().clone();
    *head.version_mut() = req.version();
    *head.headers_mut() = req.headers().clone();
    head
}

/// Starts a run of at most `timeout` on `store`, interactive at first (see [`crate::fair`]): the
/// epoch callback yields every tick until then and traps after. (The run's own timer usually
/// ends it first; the trap is the backstop for runs without one, such as pre-instantiation.)
fn start_run(store: &mut Store<crate::host::Host>, timeout: Duration) {
    let host = store.data_mut();
    host.deadline = Instant::now() + timeout;
    host.clock.restart();
    store.set_epoch_deadline(1);
}

/// Classifies a wasmtime error from the guest call.
fn trap_error(e: &wasmtime::Error, timeout: Duration, sandbox: &crate::Sandbox) -> InvokeError {
    let max_resources = sandbox.max_resources;
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => InvokeError::Timeout(timeout),
        _ if e.chain().any(|c| {
            c.downcast_ref::<ResourceTableError>()
                .is_some_and(|r| matches!(r, ResourceTableError::Full))
        }) =>
        {
            InvokeError::Trap(format!(
                "the function holds more than {max_resources} host resources at once (streams, \
                 fields, requests...), the limit ([sandbox] max_resources): {e:#}"
            ))
        }
        _ if format!("{e:#}").contains("total size of fields exceeds limit") => {
            InvokeError::Trap(format!(
                "the function built wasi:http headers or trailers larger than {} bytes, the \
                 limit ([sandbox] max_field_bytes): {e:#}",
                sandbox.max_field_bytes
            ))
        }
        _ => InvokeError::Trap(format!("{e:#}")),
    }
}
