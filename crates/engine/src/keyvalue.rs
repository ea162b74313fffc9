//! The key-value capability: `wasi:keyvalue` (`store`, `atomics`, `batch`) at `0.2.0-draft`
//! (wasmCloud's, and wasmtime-wasi-keyvalue's) and at `0.2.0-draft2` (Spin 3's, with
//! compare-and-swap and string cursors), and Spin's `fermyon:spin/key-value@2.0.0`, all over
//! the function's [`KeyValue`] access. Linked only when the manifest grants stores
//! (`key_value_stores`); opening any other store fails with the interface's `access-denied`.
//!
//! The interfaces only translate: limits, the quota, expiry and metering are the service's
//! behind [`KeyValue`]. A counter is a decimal integer in ASCII (`"42"`) in every interface.

mod draft;
mod draft2;
mod spin;

use std::sync::Arc;

use updraft_dispatch::kv::{KeyValue, KvError};
use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::host::{Host, KvState};

/// Most keys Spin's `get-keys` (which has no cursor) returns; past it the call fails and
/// points at `wasi:keyvalue`'s paged `list-keys`.
const MAX_GET_KEYS: usize = 100_000;

/// Numeric cursors (draft) one instance keeps before forgetting the old ones.
const MAX_CURSORS: usize = 4096;

/// An open store, as a guest resource. (`pub`: the generated bindings re-export it.)
#[allow(unreachable_pub)]
pub struct Bucket {
    name: String,
}

/// A compare-and-swap handle (draft2): the key and the revision it was read at.
#[allow(unreachable_pub)]
pub struct Cas {
    store: String,
    key: String,
    revision: Option<u64>,
    current: Option<Vec<u8>>,
}

impl KvState {
    fn access(&self) -> Access {
        self.access.clone().ok_or(KvError::AccessDenied)
    }
}

/// The function's access, or why there is none.
type Access = Result<Arc<dyn KeyValue>, KvError>;

/// What the generated host traits are implemented on.
pub(crate) struct KvView<'a> {
    state: &'a mut KvState,
    table: &'a mut ResourceTable,
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

fn view(h: &mut Host) -> KvView<'_> {
    KvView {
        state: &mut h.kv,
        table: &mut h.table,
    }
}

impl KvView<'_> {
    fn open(&mut self, name: String) -> Result<Bucket, KvError> {
        self.state.access()?.open(&name)?;
        Ok(Bucket { name })
    }

    fn store(
        &self,
        bucket: &wasmtime::component::Resource<Bucket>,
    ) -> wasmtime::Result<(String, Access)> {
        let name = self.table.get(bucket)?.name.clone();
        Ok((name, self.state.access()))
    }

    /// Every key of a store, page by page, up to [`MAX_GET_KEYS`].
    async fn all_keys(access: Access, store: &str) -> Result<Vec<String>, KvError> {
        let access = access?;
        let mut keys = Vec::new();
        let mut after = None;
        loop {
            let page = access.list(store, after).await?;
            keys.extend(page.keys);
            if keys.len() > MAX_GET_KEYS {
                return Err(KvError::Other(format!(
                    "the store has more than {MAX_GET_KEYS} keys; list them a page at a time \
                     with wasi:keyvalue list-keys"
                )));
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(keys),
            }
        }
    }
}

/// Adds every key-value interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    draft::add_to_linker(linker)?;
    draft2::add_to_linker(linker)?;
    spin::add_to_linker(linker)
}
