//! Host capabilities: what a guest may import beyond the base set every function gets (WASI
//! 0.2's `cli`, `io`, `clocks`, `random`, `filesystem` with no preopens, `sockets` with every
//! address denied, and `wasi:http` types and its incoming handler).
//!
//! Each capability is a provider with three phases, as in Spin's factors:
//! - *grant*: whether a function's settings (its manifest) grant it: deny by default;
//! - *link*: adds its interfaces to a linker; the engine builds one linker per set of granted
//!   capabilities, so an interface a function was not granted is absent from its imports and a
//!   component importing it fails at deploy with [`ComponentError::NotGranted`];
//! - *prepare*: the per-instance state behind its interfaces, in a field of the instance's
//!   [`Host`](crate::host::Host) (one concrete struct, one field per capability).
//!
//! Outbound HTTP is linked for every function, since `wasi:http/outgoing-handler` is part of
//! the `wasi:http/proxy` world every toolchain imports; its grant (`allowed_outbound_hosts`)
//! decides what the policy lets through, none by default. Config (`wasi:config/store`, Spin's
//! variables) is linked only when granted (`variables` or `secrets`), key-value only with
//! `key_value_stores`. Objects and the rest come next, the same way.

use std::sync::Arc;

use updraft_dispatch::Settings;
use wasmtime::component::Linker;

use crate::ComponentError;
use crate::host::Host;

/// One host capability.
pub(crate) trait Capability: Send + Sync {
    /// Its name in errors and docs.
    fn name(&self) -> &'static str;

    /// The interfaces it provides, as import-name prefixes (`wasi:config/store@`).
    fn interfaces(&self) -> &'static [&'static str];

    /// How a function is granted it, for the error when it is not.
    fn grant_hint(&self) -> &'static str;

    /// Whether a function with `settings` is granted it.
    fn granted(&self, settings: &Settings) -> bool;

    /// Adds its interfaces to `linker`.
    ///
    /// # Errors
    /// Wasmtime's, when an interface cannot be added.
    fn link(&self, linker: &mut Linker<Host>) -> wasmtime::Result<()>;
}

/// `wasi:http/outgoing-handler`: calls to the hosts in `allowed_outbound_hosts` (see
/// `outbound.rs`); linked with the base set for every function.
pub(crate) struct OutboundHttp;

impl Capability for OutboundHttp {
    fn name(&self) -> &'static str {
        "outbound HTTP"
    }
    fn interfaces(&self) -> &'static [&'static str] {
        &["wasi:http/outgoing-handler@"]
    }
    fn grant_hint(&self) -> &'static str {
        "list the hosts in `allowed_outbound_hosts`"
    }
    fn granted(&self, _: &Settings) -> bool {
        // Linked for every function (the proxy world imports it); the policy denies every
        // host not granted.
        true
    }
    fn link(&self, _: &mut Linker<Host>) -> wasmtime::Result<()> {
        // Added with the rest of wasi:http by the base set.
        Ok(())
    }
}

/// `wasi:config/store`: the function's `variables`.
pub(crate) struct Config;

impl Capability for Config {
    fn name(&self) -> &'static str {
        "config"
    }
    fn interfaces(&self) -> &'static [&'static str] {
        &["wasi:config/store@", "fermyon:spin/variables@"]
    }
    fn grant_hint(&self) -> &'static str {
        "give the function `variables = { ... }` (or `secrets = [...]`) in its manifest entry"
    }
    fn granted(&self, settings: &Settings) -> bool {
        settings.variables.is_some()
    }
    fn link(&self, linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        wasmtime_wasi_config::add_to_linker(linker, |h: &mut Host| {
            wasmtime_wasi_config::WasiConfig::from(&*h.config)
        })?;
        crate::variables::add_to_linker(linker)
    }
}

/// Key-value stores (`wasi:keyvalue` draft and draft2, Spin's key-value): the stores in
/// `key_value_stores` (see `keyvalue.rs`).
pub(crate) struct KeyValue;

impl Capability for KeyValue {
    fn name(&self) -> &'static str {
        "key-value"
    }
    fn interfaces(&self) -> &'static [&'static str] {
        &["wasi:keyvalue/", "fermyon:spin/key-value@"]
    }
    fn grant_hint(&self) -> &'static str {
        "list the stores it may open in `key_value_stores = [\"default\"]`"
    }
    fn granted(&self, settings: &Settings) -> bool {
        settings.key_value.is_some()
    }
    fn link(&self, linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        crate::keyvalue::add_to_linker(linker)
    }
}

/// Every capability the engine knows, in a fixed order (a grant set is a bit per entry).
pub(crate) fn all() -> Vec<Box<dyn Capability>> {
    vec![Box::new(OutboundHttp), Box::new(Config), Box::new(KeyValue)]
}

/// Which capabilities a function is granted: bit `i` for `all()[i]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Grants(u64);

impl Grants {
    /// Everything: the linker uploads are validated against (can the platform run it at all?).
    pub(crate) const ALL: Grants = Grants(u64::MAX);

    pub(crate) fn of(caps: &[Box<dyn Capability>], settings: &Settings) -> Self {
        Grants(
            caps.iter()
                .enumerate()
                .filter(|(_, c)| c.granted(settings))
                .fold(0, |bits, (i, _)| bits | 1 << i),
        )
    }

    pub(crate) fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }
}

/// The first import of `imports` that a capability not in `grants` provides, as the error a
/// deploy answers with.
pub(crate) fn ungranted<'a>(
    caps: &[Box<dyn Capability>],
    grants: Grants,
    imports: impl IntoIterator<Item = &'a str>,
) -> Option<ComponentError> {
    for import in imports {
        for (i, cap) in caps.iter().enumerate() {
            if !grants.has(i) && cap.interfaces().iter().any(|p| import.starts_with(p)) {
                return Some(ComponentError::NotGranted {
                    import: import.to_owned(),
                    capability: cap.name(),
                    hint: cap.grant_hint(),
                });
            }
        }
    }
    None
}

/// A linker per grant set, built on first use.
pub(crate) struct Linkers {
    caps: Vec<Box<dyn Capability>>,
    base: Linker<Host>,
    built: std::sync::Mutex<std::collections::HashMap<Grants, Arc<Linker<Host>>>>,
}

impl Linkers {
    pub(crate) fn new(base: Linker<Host>) -> Self {
        Self {
            caps: all(),
            base,
            built: std::sync::Mutex::default(),
        }
    }

    pub(crate) fn capabilities(&self) -> &[Box<dyn Capability>] {
        &self.caps
    }

    /// The linker of a function granted `grants`.
    ///
    /// # Errors
    /// [`ComponentError::Link`] if a capability cannot be linked.
    pub(crate) fn get(&self, grants: Grants) -> Result<Arc<Linker<Host>>, ComponentError> {
        if let Some(l) = crate::lock(&self.built).get(&grants) {
            return Ok(l.clone());
        }
        let mut linker = self.base.clone();
        for (i, cap) in self.caps.iter().enumerate() {
            if grants.has(i) {
                cap.link(&mut linker)
                    .map_err(|e| ComponentError::Link(format!("linking {}: {e:#}", cap.name())))?;
            }
        }
        let linker = Arc::new(linker);
        crate::lock(&self.built).insert(grants, linker.clone());
        Ok(linker)
    }
}
