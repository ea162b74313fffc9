//! `wasi:keyvalue@0.2.0-draft`: numeric cursors, unsigned counters, `get-many` answering
//! `option<tuple<key, value>>` per key.

use updraft_dispatch::kv::KvError;
use wasmtime::component::{Linker, Resource};

use super::{Bucket, HasKv, KvView, view};
use crate::host::Host;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "updraft:host/keyvalue-draft",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::keyvalue::Bucket,
        },
    });
}

use bindings::wasi::keyvalue0_2_0_draft::{atomics, batch, store};

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
        cursor: Option<u64>,
    ) -> Out<store::KeyResponse> {
        let (name, access) = self.store(&bucket)?;
        let after = match cursor {
            None => None,
            Some(c) => match usize::try_from(c)
                .ok()
                .and_then(|c| c.checked_sub(1))
                .and_then(|i| self.state.cursors.get(i))
            {
                Some(k) => Some(k.clone()),
                None => {
                    return Ok(Err(store::Error::Other(format!(
                        "cursor {c} was not returned by list-keys in this invocation"
                    ))));
                }
            },
        };
        let page = match async { access?.list(&name, after).await }.await {
            Ok(p) => p,
            Err(e) => return Ok(Err(err(e))),
        };
        if self.state.cursors.len() >= super::MAX_CURSORS {
            // A warm instance listing forever: start over (older cursors then fail clearly).
            self.state.cursors.clear();
        }
        let cursor = page.next.map(|k| {
            self.state.cursors.push(k);
            self.state.cursors.len() as u64
        });
        Ok(Ok(store::KeyResponse {
            keys: page.keys,
            cursor,
        }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: u64) -> Out<u64> {
        let (name, access) = self.store(&bucket)?;
        Ok(async {
            let delta = i64::try_from(delta)
                .map_err(|_| KvError::Other("the delta is past the signed 64-bit range".into()))?;
            let value = access?.increment(&name, &key, delta).await?;
            u64::try_from(value).map_err(|_| {
                KvError::Other(format!(
                    "the counter is negative ({value}); this interface's counters are unsigned"
                ))
            })
        }
        .await
        .map_err(err))
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Out<Vec<Option<(String, Vec<u8>)>>> {
        let (name, access) = self.store(&bucket)?;
        Ok(async {
            let values = access?.get_many(&name, keys.clone()).await?;
            Ok(keys
                .into_iter()
                .zip(values)
                .map(|(k, v)| v.map(|v| (k, v)))
                .collect())
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
