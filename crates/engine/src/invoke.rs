//! Running one invocation: a fresh `Store` per request on a pre-instantiated component.
//!
//! Per invocation: a new `Store` holding the WASI context (the function's environment variables,
//! no preopened directories, every socket address denied, stdout/stderr captured), the wasi:http
//! context with the outbound policy, a memory limit, and an epoch deadline. The guest runs in its
//! own task so that it can keep streaming the response body after the head has been returned; the
//! deadline covers the whole run, body included.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use updraft_manifest::OutboundHost;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::compile::CompiledComponent;
use crate::logs::{Capture, LogSink, LogState, Stream};
use crate::outbound::OutboundPolicy;
use crate::{EPOCH_TICK, Engine};

/// A response body streamed from a guest.
pub type GuestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// Per-function settings applied to every invocation.
#[derive(Debug, Clone)]
pub struct FunctionSettings {
    /// Environment variables the guest sees.
    pub env: Vec<(String, String)>,
    /// Hosts the guest may call over HTTP.
    pub allowed_outbound_hosts: Vec<OutboundHost>,
    /// Time limit for the whole invocation, response body included.
    pub timeout: Duration,
    /// Memory limit per instance, in bytes.
    pub memory_bytes: u64,
}

impl Default for FunctionSettings {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            allowed_outbound_hosts: Vec::new(),
            timeout: updraft_manifest::DEFAULT_TIMEOUT,
            memory_bytes: updraft_manifest::DEFAULT_MEMORY,
        }
    }
}

/// Why an invocation produced no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// The guest did not respond before its deadline.
    #[error("the function did not respond within its {0:?} timeout")]
    Timeout(Duration),
    /// The guest trapped (panic, `unreachable`, stack overflow, out of memory...).
    #[error("the function failed: {0}")]
    Trap(String),
    /// The guest returned without setting a response.
    #[error("the function returned without sending a response")]
    NoResponse,
    /// The guest answered with a wasi:http error code instead of a response.
    #[error("the function responded with an error: {0}")]
    Guest(String),
    /// The instance could not be created (e.g. resource limits).
    #[error("could not start the function: {0}")]
    Instantiate(String),
}

/// The per-invocation store data.
pub(crate) struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundPolicy,
    limits: StoreLimits,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// A function ready to serve: its component pre-instantiated plus its settings. Cloning is cheap;
/// in-flight invocations keep their own clone, so replacing a function never disturbs them.
#[derive(Clone)]
pub struct PreparedFunction {
    inner: Arc<Inner>,
}

struct Inner {
    pre: ProxyPre<Host>,
    env: Vec<(String, String)>,
    outbound: Arc<[OutboundHost]>,
    timeout: Duration,
    memory_bytes: usize,
    digest: String,
}

impl Engine {
    /// Pre-instantiates a compiled component with a function's settings.
    ///
    /// # Errors
    /// [`crate::ComponentError::Link`] if the component's imports cannot be satisfied.
    pub fn prepare(
        &self,
        compiled: &CompiledComponent,
        settings: FunctionSettings,
    ) -> Result<PreparedFunction, crate::ComponentError> {
        let pre = self
            .linker
            .instantiate_pre(&compiled.component)
            .and_then(ProxyPre::new)
            .map_err(|e| crate::ComponentError::Link(format!("{e:#}")))?;
        Ok(PreparedFunction {
            inner: Arc::new(Inner {
                pre,
                env: settings.env,
                outbound: settings.allowed_outbound_hosts.into(),
                timeout: settings.timeout,
                memory_bytes: usize::try_from(settings.memory_bytes).unwrap_or(usize::MAX),
                digest: compiled.digest.clone(),
            }),
        })
    }
}

impl PreparedFunction {
    /// The digest of the artifact this function runs.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Runs one invocation: instantiates the component in a fresh store and calls its
    /// `wasi:http/incoming-handler` with `req`. Returns once the guest has sent the response
    /// head; the body streams from the guest's task until it finishes or the deadline passes.
    /// Every line the guest writes to stdout/stderr goes to `log`.
    ///
    /// # Errors
    /// [`InvokeError`] when the guest produced no response head.
    pub async fn handle<B>(
        &self,
        req: http::Request<B>,
        log: Arc<dyn LogSink>,
    ) -> Result<http::Response<GuestBody>, InvokeError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let inner = &self.inner;
        let log = LogState::new(log);
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&inner.env)
            .stdout(Capture {
                stream: Stream::Stdout,
                state: log.clone(),
            })
            .stderr(Capture {
                stream: Stream::Stderr,
                state: log.clone(),
            })
            // Deny every socket address: functions reach the network only through wasi:http.
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .allow_ip_name_lookup(false);
        let host = Host {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundPolicy {
                allowed: inner.outbound.clone(),
                log: log.clone(),
            },
            limits: StoreLimitsBuilder::new()
                .memory_size(inner.memory_bytes)
                .build(),
        };
        let mut store = Store::new(inner.pre.engine(), host);
        store.limiter(|h| &mut h.limits);
        let ticks = inner.timeout.as_millis().div_ceil(EPOCH_TICK.as_millis()) + 1;
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let setup = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .and_then(|req| Ok((req, store.data_mut().http().new_response_outparam(sender)?)));
        let (req, out) = setup.map_err(|e| InvokeError::Instantiate(format!("{e:#}")))?;

        let pre = inner.pre.clone();
        let timeout = inner.timeout;
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            let run = async {
                let proxy = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
                    .map_err(|e| trap_error(&e, timeout))
            };
            let result = match tokio::time::timeout(timeout, run).await {
                Ok(r) => r,
                Err(_) => Err(InvokeError::Timeout(timeout)),
            };
            // Dropping the store here, before flushing, ends any body stream still attached.
            drop(store);
            if let Err(e) = &result {
                task_log.sink().line(Stream::Platform, &e.to_string());
            }
            task_log.flush();
            result
        });

        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(Ok(resp))) => Ok(resp),
            Ok(Ok(Err(code))) => Err(InvokeError::Guest(format!("{code:?}"))),
            // The guest dropped the response outparam: its task tells us why.
            Ok(Err(_)) => match task.await {
                Ok(Ok(())) => Err(InvokeError::NoResponse),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(InvokeError::Trap(format!("task failed: {e}"))),
            },
            Err(_) => {
                // The task enforces the same deadline and logs it; stop waiting for the head.
                Err(InvokeError::Timeout(timeout))
            }
        }
    }
}

/// Classifies a wasmtime error from the guest call.
fn trap_error(e: &wasmtime::Error, timeout: Duration) -> InvokeError {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => InvokeError::Timeout(timeout),
        _ => InvokeError::Trap(format!("{e:#}")),
    }
}

/// Maps a body's error type for [`PreparedFunction::handle`], for bodies whose errors are not
/// wasi:http errors (e.g. axum's).
pub fn body_error(e: impl std::fmt::Display) -> wasmtime_wasi_http::Error {
    wasmtime_wasi_http::Error::InternalError(Some(e.to_string()))
}
