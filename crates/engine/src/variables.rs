//! The config interfaces beyond Wasmtime's `wasi:config/store@0.2.0-rc.1`: `wasi:config/store`
//! at `0.2.0-draft-2024-09-27` (what Spin SDKs import) and Spin's
//! `fermyon:spin/variables@2.0.0`, over the same variables (the manifest's `variables` and the
//! function's granted secrets).

use std::collections::BTreeMap;

use wasmtime::component::{HasData, Linker};

use crate::host::Host;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "updraft:host/config-draft",
        imports: { default: trappable },
    });
}

mod spin_bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "updraft:host/spin-variables",
        imports: { default: trappable },
    });
}

use bindings::wasi::config::store;
use spin_bindings::fermyon::spin::variables;

/// The variables, as the generated traits see them.
pub(crate) struct Vars<'a>(&'a BTreeMap<String, String>);

struct HasVars;

impl HasData for HasVars {
    type Data<'a> = Vars<'a>;
}

fn vars(h: &mut Host) -> Vars<'_> {
    Vars(&h.vars)
}

/// Links both interfaces.
pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasVars>(linker, vars)?;
    variables::add_to_linker::<_, HasVars>(linker, vars)
}

impl Vars<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

impl store::Host for Vars<'_> {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        Ok(Ok(Vars::get(self, &key)))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        Ok(Ok(self.0.clone().into_iter().collect()))
    }
}

impl variables::Host for Vars<'_> {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        // Spin's names are lower case; a secret granted as `API_KEY` is also `api_key`.
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Ok(Err(variables::Error::InvalidName(name)));
        }
        let found = Vars::get(self, &name).or_else(|| Vars::get(self, &name.to_ascii_uppercase()));
        Ok(found.ok_or(variables::Error::Undefined(name)))
    }
}
