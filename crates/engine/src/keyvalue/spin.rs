//! Spin's `fermyon:spin/key-value@2.0.0`, as the Spin SDKs for WASI 0.2 (Rust `spin-sdk` up to
//! 5.x, Python, JS) import it. (`spin:key-value@3.0.0` is a WASI 0.3 async interface, which
//! this Wasmtime does not run.)

use updraft_dispatch::kv::KvError;
use wasmtime::component::{Linker, Resource};

use super::{Bucket, HasKv, KvView, view};
use crate::host::Host;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "updraft:host/spin-kv",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": crate::keyvalue::Bucket,
        },
    });
}

use bindings::fermyon::spin::key_value;

pub(super) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    key_value::add_to_linker::<_, HasKv>(linker, view)
}

fn err(e: KvError) -> key_value::Error {
    match e {
        KvError::NoSuchStore => key_value::Error::NoSuchStore,
        KvError::AccessDenied => key_value::Error::AccessDenied,
        KvError::Other(m) => key_value::Error::Other(m),
    }
}

type Out<T> = wasmtime::Result<Result<T, key_value::Error>>;

impl key_value::Host for KvView<'_> {}

impl key_value::HostStore for KvView<'_> {
    async fn open(&mut self, label: String) -> Out<Resource<Bucket>> {
        match KvView::open(self, label) {
            Ok(b) => Ok(Ok(self.table.push(b)?)),
            Err(e) => Ok(Err(err(e))),
        }
    }

    async fn get(&mut self, store: Resource<Bucket>, key: String) -> Out<Option<Vec<u8>>> {
        let (name, access) = self.store(&store)?;
        Ok(
            async { Ok(access?.get(&name, &key).await?.map(|(v, _)| v)) }
                .await
                .map_err(err),
        )
    }

    async fn set(&mut self, store: Resource<Bucket>, key: String, value: Vec<u8>) -> Out<()> {
        let (name, access) = self.store(&store)?;
        Ok(async { access?.set_many(&name, vec![(key, value)]).await }
            .await
            .map_err(err))
    }

    async fn delete(&mut self, store: Resource<Bucket>, key: String) -> Out<()> {
        let (name, access) = self.store(&store)?;
        Ok(async { access?.delete_many(&name, vec![key]).await }
            .await
            .map_err(err))
    }

    async fn exists(&mut self, store: Resource<Bucket>, key: String) -> Out<bool> {
        let (name, access) = self.store(&store)?;
        Ok(async { Ok(access?.get(&name, &key).await?.is_some()) }
            .await
            .map_err(err))
    }

    async fn get_keys(&mut self, store: Resource<Bucket>) -> Out<Vec<String>> {
        let (name, access) = self.store(&store)?;
        Ok(KvView::all_keys(access, &name).await.map_err(err))
    }

    async fn drop(&mut self, store: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
