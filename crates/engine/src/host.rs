//! The per-instance store data: the base WASI set's state, the memory limiter, where the
//! instance's output goes, and a field per host capability.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::logs::LogSlot;
use crate::outbound::OutboundPolicy;

/// The per-instance store data: the base set's state, then a field per capability.
pub(crate) struct Host {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) limits: MemoryLimiter,
    pub(crate) log: Arc<LogSlot>,
    /// Outbound HTTP: the policy of the function's `allowed_outbound_hosts`.
    pub(crate) hooks: OutboundPolicy,
    /// Config: the function's `variables` (empty, and unreachable, when not granted).
    pub(crate) config: Arc<WasiConfigVariables>,
    /// The same variables, for the config interfaces Updraft implements itself.
    pub(crate) vars: Arc<std::collections::BTreeMap<String, String>>,
    /// Key-value: the function's access to the stores it is granted.
    pub(crate) kv: KvState,
    /// When the current run (invocation or instantiation) must stop: the epoch callback traps
    /// the guest past it, and yields to the executor every tick before it.
    pub(crate) deadline: std::time::Instant,
    /// Ticks of the current run: past its allowance the run moves to the background threads.
    pub(crate) clock: crate::fair::RunClock,
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

/// The key-value capability's per-instance state: the function's access (`None`: not
/// granted), and the draft interface's numeric cursors (each names the last key of a page).
#[derive(Default)]
pub(crate) struct KvState {
    pub(crate) access: Option<Arc<dyn updraft_dispatch::kv::KeyValue>>,
    pub(crate) cursors: Vec<String>,
}

impl KvState {
    pub(crate) fn new(access: Option<Arc<dyn updraft_dispatch::kv::KeyValue>>) -> Self {
        Self {
            access,
            cursors: Vec::new(),
        }
    }
}

/// Holds an instance to its memory limit, counting all of its linear memories together, and
/// remembers a refused growth so the failure can name the figure.
pub(crate) struct MemoryLimiter {
    pub(crate) limit: usize,
    pub(crate) used: usize,
    pub(crate) refused: Option<usize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            self.refused = Some(total);
            return Ok(false);
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold references, not data; cap them so a guest cannot use them as a memory
        // side channel.
        Ok(desired <= 1 << 20)
    }
}
