//! `wasi:keyvalue@0.2.0-draft2`: string cursors, signed counters, compare-and-swap handles.

use updraft_dispatch::kv::KvError;
use wasmtime::component::{Linker, Resource};

use super::{Bucket, Cas, HasKv, KvView, view};
use crate::host::Host;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "updraft:host/keyvalue-draft2",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::keyvalue::Bucket,
            "wasi:keyvalue/atomics.cas": crate::keyvalue::Cas,
        },
    });
}

use bindings::wasi::keyvalue0_2_0_draft2::{atomics, batch, store};

pub(super) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasKv>(linker, view)?;
    atomics::add_to_linker::<_, HasKv>(linker, view)?;
    batch::add_to_linker::<_, HasKv>(linker, view)
}

fn err(e: KvError) -> store::Error {
    match e {
        KvError::NoSuchStore => store::Error::NoSuchStore,
        KvError::AccessDenied => store::Error::AccessDenied,
        KvError::Other(m) => store::Error::Other(m),
    }
}

type Out<T> = wasmtime::Result<Result<T, store::Error>>;

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Out<Resource<Bucket>> {
        match KvView::open(self, identifier) {
            Ok(b) => Ok(Ok(self.table.push(b)?)),
            Err(e) => Ok(Err(err(e))),
        }
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Out<Option<Vec<u8>>> {
        let (name, access) = self.store(&bucket)?;
        Ok(
            async { Ok(access?.get(&name, &key).await?.map(|(v, _)| v)) }
                .await
                .map_err(err),
        )
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Out<()> {
        let (name, access) = self.store(&bucket)?;
        Ok(async { access?.set_many(&name, vec![(key, value)]).await }
            .await
            .map_err(err))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Out<()> {
        let (name, access) = self.store(&bucket)?;
        Ok(async { access?.delete_many(&name, vec![key]).await }
            .await
            .map_err(err))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Out<bool> {
        let (name, access) = self.store(&bucket)?;
        Ok(async { Ok(access?.get(&name, &key).await?.is_some()) }
            .await
            .map_err(err))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Out<store::KeyResponse> {
        let (name, access) = self.store(&bucket)?;
        Ok(async { access?.list(&name, cursor).await }
            .await
            .map(|page| store::KeyResponse {
                keys: page.keys,
                cursor: page.next,
            })
            .map_err(err))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl KvView<'_> {
    /// A compare-and-swap handle on `key` as it is now.
    async fn read_cas(&mut self, store: String, key: String) -> Out<Resource<Cas>> {
        let access = match self.state.access() {
            Ok(a) => a,
            Err(e) => return Ok(Err(err(e))),
        };
        let current = match access.get(&store, &key).await {
            Ok(c) => c,
            Err(e) => return Ok(Err(err(e))),
        };
        let (current, revision) = match current {
            Some((v, r)) => (Some(v), Some(r)),
            None => (None, None),
        };
        Ok(Ok(self.table.push(Cas {
            store,
            key,
            revision,
            current,
        })?))
    }
}

impl atomics::HostCas for KvView<'_> {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Out<Resource<Cas>> {
        let name = self.table.get(&bucket)?.name.clone();
        self.read_cas(name, key).await
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Out<Option<Vec<u8>>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: i64) -> Out<i64> {
        let (name, access) = self.store(&bucket)?;
        Ok(async { access?.increment(&name, &key, delta).await }
            .await
            .map_err(err))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas {
            store,
            key,
            revision,
            ..
        } = self.table.delete(cas)?;
        let access = match self.state.access() {
            Ok(a) => a,
            Err(e) => return Ok(Err(atomics::CasError::StoreError(err(e)))),
        };
        match access.swap(&store, &key, revision, value).await {
            Ok(true) => Ok(Ok(())),
            // Changed since it was read: a fresh handle to retry with.
            Ok(false) => Ok(match self.read_cas(store, key).await? {
                Ok(fresh) => Err(atomics::CasError::CasFailed(fresh)),
                Err(e) => Err(atomics::CasError::StoreError(e)),
            }),
            Err(e) => Ok(Err(atomics::CasError::StoreError(err(e)))),
        }
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Out<Vec<(String, Option<Vec<u8>>)>> {
        let (name, access) = self.store(&bucket)?;
        Ok(async {
            let values = access?.get_many(&name, keys.clone()).await?;
            Ok(keys.into_iter().zip(values).collect())
        }
        .await
        .map_err(err))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Out<()> {
        let (name, access) = self.store(&bucket)?;
        Ok(async { access?.set_many(&name, key_values).await }
            .await
            .map_err(err))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Out<()> {
        let (name, access) = self.store(&bucket)?;
        Ok(async { access?.delete_many(&name, keys).await }
            .await
            .map_err(err))
    }
}
