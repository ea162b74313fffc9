//! Key-value stores for functions and apps: named stores per project on the durable
//! [`KvStore`], reached by guests through the engine's `wasi:keyvalue` and Spin interfaces
//! (each function only the stores its manifest grants, see [`Provider`])
//! and by keys and admins over HTTP (`/_updraft/kv/v1`, [`router`]).
//!
//! This module owns the rules: key and value size limits, the per-project storage quota, the
//! page size of listings, expiry (`ttl`), and read/write counts per function and project. A
//! counter is a decimal integer in ASCII (`"42"`).

mod http;

pub use http::{KvCaller, router};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use updraft_dispatch::BoxFuture;
use updraft_dispatch::kv::{KeyPage, KeyValue, KeyValueProvider, KvError};
use updraft_store::StoreError;
use updraft_store::kv::{Condition, KvEntry, KvOutcome, KvStore, KvWrite};

/// Limits of the key-value service (`[key_value]` in the server's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvConfig {
    /// Longest key, in bytes of UTF-8.
    pub max_key_bytes: usize,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Bytes (keys plus values) one project may store in all its stores.
    pub max_project_bytes: u64,
    /// Most keys in one batch call.
    pub max_batch: usize,
    /// Keys in one page of a listing.
    pub page: usize,
}

impl Default for KvConfig {
    fn default() -> Self {
        Self {
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
            max_project_bytes: 1 << 30,
            max_batch: 1000,
            page: 1000,
        }
    }
}

/// Why a call failed, for the HTTP API and the guest interfaces alike.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvServiceError {
    /// Bad input (an empty or long key, a big value, a bad name); the message says which.
    #[error("{0}")]
    Invalid(String),
    /// The value or batch is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// No such store.
    #[error("no key-value store named `{0}`")]
    NoSuchStore(String),
    /// The write would pass the project's quota.
    #[error("{0}")]
    Quota(String),
    /// The key's value is not what an increment needs.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<StoreError> for KvServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchKvStore { store } => Self::NoSuchStore(store),
            StoreError::QuotaExceeded { .. } => Self::Quota(e.to_string()),
            StoreError::NotAnInteger { .. } | StoreError::IntegerOverflow { .. } => {
                Self::Conflict(e.to_string())
            }
            e => Self::Storage(e.to_string()),
        }
    }
}

impl From<KvServiceError> for KvError {
    fn from(e: KvServiceError) -> Self {
        match e {
            KvServiceError::NoSuchStore(_) => KvError::NoSuchStore,
            e => KvError::Other(e.to_string()),
        }
    }
}

pub use updraft_manifest::is_store_name;

/// Reads and writes, counted per project and function (`""` for the HTTP API).
#[derive(Debug, Default)]
struct Counts {
    reads: AtomicU64,
    writes: AtomicU64,
}

/// Calls counted for one project and function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KvCounts {
    /// The project.
    pub project: String,
    /// The function (`""`: the HTTP API).
    pub function: String,
    /// Keys read.
    pub reads: u64,
    /// Keys written or deleted.
    pub writes: u64,
}

/// The key-value service. Share it behind an `Arc`.
pub struct KeyValueService {
    store: Arc<dyn KvStore>,
    config: KvConfig,
    counts: Mutex<HashMap<(String, String), Arc<Counts>>>,
}

impl KeyValueService {
    /// The service over `store` with `config`'s limits.
    pub fn new(store: Arc<dyn KvStore>, config: KvConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            config,
            counts: Mutex::default(),
        })
    }

    /// The limits.
    pub fn config(&self) -> &KvConfig {
        &self.config
    }

    /// The backing store.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    fn counts(&self, project: &str, function: &str) -> Arc<Counts> {
        let mut all = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.entry((project.to_owned(), function.to_owned()))
            .or_default()
            .clone()
    }

    /// Reads and writes counted since the last call, per project (every one with `None`) and
    /// function (the counters start again from zero; metering takes them every few seconds).
    pub fn take_usage(&self, project: Option<&str>) -> Vec<KvCounts> {
        let all = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<KvCounts> = all
            .iter()
            .filter(|((p, _), _)| project.is_none_or(|want| want == p))
            .map(|((p, f), c)| KvCounts {
                project: p.clone(),
                function: f.clone(),
                reads: c.reads.swap(0, Ordering::Relaxed),
                writes: c.writes.swap(0, Ordering::Relaxed),
            })
            .filter(|c| c.reads > 0 || c.writes > 0)
            .collect();
        out.sort_by(|a, b| (&a.project, &a.function).cmp(&(&b.project, &b.function)));
        out
    }

    /// Checks a key against the limits.
    ///
    /// # Errors
    /// [`KvServiceError::Invalid`] naming the problem.
    pub fn check_key(&self, key: &str) -> Result<(), KvServiceError> {
        if key.is_empty() {
            return Err(KvServiceError::Invalid("a key must not be empty".into()));
        }
        if key.len() > self.config.max_key_bytes {
            return Err(KvServiceError::Invalid(format!(
                "the key is {} bytes; keys may have at most {} (`[key_value] max_key_bytes`)",
                key.len(),
                self.config.max_key_bytes
            )));
        }
        Ok(())
    }

    /// Checks a value's size.
    ///
    /// # Errors
    /// [`KvServiceError::TooLarge`].
    pub fn check_value(&self, len: usize) -> Result<(), KvServiceError> {
        if len > self.config.max_value_bytes {
            return Err(KvServiceError::TooLarge(format!(
                "the value is {len} bytes; values may have at most {} (`[key_value] \
                 max_value_bytes`)",
                self.config.max_value_bytes
            )));
        }
        Ok(())
    }

    fn check_batch(&self, n: usize) -> Result<(), KvServiceError> {
        if n > self.config.max_batch {
            return Err(KvServiceError::TooLarge(format!(
                "the batch has {n} keys; batches may have at most {} (`[key_value] max_batch`)",
                self.config.max_batch
            )));
        }
        Ok(())
    }

    /// The entry of `key` in `store` of `project`.
    ///
    /// # Errors
    /// [`KvServiceError`].
    async fn get(
        &self,
        (project, counts): (&str, &Counts),
        store: &str,
        key: &str,
    ) -> Result<Option<KvEntry>, KvServiceError> {
        self.check_key(key)?;
        counts.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .store
            .kv_get(project, store, key, updraft_store::now_ms())
            .await?)
    }

    /// Applies `writes` to `store` of `project` as one batch, within the project's quota.
    ///
    /// # Errors
    /// [`KvServiceError`].
    async fn write(
        &self,
        (project, counts): (&str, &Counts),
        store: &str,
        writes: Vec<KvWrite>,
    ) -> Result<Vec<KvOutcome>, KvServiceError> {
        self.check_batch(writes.len())?;
        for w in &writes {
            self.check_key(&w.key)?;
            if let updraft_store::kv::KvOp::Put { value, .. } = &w.op {
                self.check_value(value.len())?;
            }
        }
        let n = writes.len() as u64;
        let out = self
            .store
            .kv_write(
                project,
                store,
                writes,
                Some(self.config.max_project_bytes),
                updraft_store::now_ms(),
            )
            .await?;
        counts.writes.fetch_add(n, Ordering::Relaxed);
        Ok(out)
    }

    /// One page of the keys of `store` starting with `prefix`, after `cursor`.
    ///
    /// # Errors
    /// [`KvServiceError`].
    pub async fn list(
        &self,
        project: &str,
        store: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<KeyPage, KvServiceError> {
        let page = limit.unwrap_or(self.config.page).clamp(1, self.config.page);
        // One more than the page says whether there is a next one.
        let mut keys = self
            .store
            .kv_list(
                project,
                store,
                prefix,
                cursor,
                page + 1,
                updraft_store::now_ms(),
            )
            .await?;
        let next = if keys.len() > page {
            keys.truncate(page);
            keys.last().cloned()
        } else {
            None
        };
        Ok(KeyPage { keys, next })
    }
}

/// One function's access: its project's stores that its manifest grants.
struct FunctionKv {
    service: Arc<KeyValueService>,
    project: String,
    /// This function's reads and writes, looked up once rather than on every call.
    counts: Arc<Counts>,
    stores: Vec<String>,
}

impl FunctionKv {
    fn who(&self) -> (&str, &Counts) {
        (&self.project, &self.counts)
    }

    fn granted(&self, store: &str) -> Result<(), KvError> {
        if self.stores.iter().any(|s| s == store) {
            Ok(())
        } else {
            Err(KvError::AccessDenied)
        }
    }
}

impl KeyValue for FunctionKv {
    fn open(&self, store: &str) -> Result<(), KvError> {
        self.granted(store)
    }

    fn get<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<updraft_dispatch::kv::Versioned>, KvError>> {
        Box::pin(async move {
            self.granted(store)?;
            Ok(self
                .service
                .get(self.who(), store, key)
                .await?
                .map(|e| (e.value, e.revision)))
        })
    }

    fn get_many<'a>(
        &'a self,
        store: &'a str,
        keys: Vec<String>,
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, KvError>> {
        Box::pin(async move {
            self.granted(store)?;
            self.service.check_batch(keys.len())?;
            for k in &keys {
                self.service.check_key(k)?;
            }
            self.counts
                .reads
                .fetch_add(keys.len() as u64, Ordering::Relaxed);
            let entries = self
                .service
                .store
                .kv_get_many(&self.project, store, &keys, updraft_store::now_ms())
                .await
                .map_err(KvServiceError::from)?;
            Ok(entries.into_iter().map(|e| e.map(|e| e.value)).collect())
        })
    }

    fn set_many<'a>(
        &'a self,
        store: &'a str,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> BoxFuture<'a, Result<(), KvError>> {
        Box::pin(async move {
            self.granted(store)?;
            let writes = pairs.into_iter().map(|(k, v)| KvWrite::put(k, v)).collect();
            self.service.write(self.who(), store, writes).await?;
            Ok(())
        })
    }

    fn delete_many<'a>(
        &'a self,
        store: &'a str,
        keys: Vec<String>,
    ) -> BoxFuture<'a, Result<(), KvError>> {
        Box::pin(async move {
            self.granted(store)?;
            let writes = keys.into_iter().map(KvWrite::delete).collect();
            self.service.write(self.who(), store, writes).await?;
            Ok(())
        })
    }

    fn list<'a>(
        &'a self,
        store: &'a str,
        after: Option<String>,
    ) -> BoxFuture<'a, Result<KeyPage, KvError>> {
        Box::pin(async move {
            self.granted(store)?;
            self.counts.reads.fetch_add(1, Ordering::Relaxed);
            Ok(self
                .service
                .list(&self.project, store, "", after.as_deref(), None)
                .await?)
        })
    }

    fn increment<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        delta: i64,
    ) -> BoxFuture<'a, Result<i64, KvError>> {
        Box::pin(async move {
            self.granted(store)?;
            let out = self
                .service
                .write(self.who(), store, vec![KvWrite::increment(key, delta)])
                .await?;
            match out.first() {
                Some(KvOutcome::Incremented { value, .. }) => Ok(*value),
                other => Err(KvError::Other(format!("unexpected outcome {other:?}"))),
            }
        })
    }

    fn swap<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        revision: Option<u64>,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<bool, KvError>> {
        Box::pin(async move {
            self.granted(store)?;
            let condition = match revision {
                Some(r) => Condition::Revision(r),
                None => Condition::Absent,
            };
            let out = self
                .service
                .write(
                    self.who(),
                    store,
                    vec![KvWrite::put(key, value).when(condition)],
                )
                .await?;
            Ok(!matches!(
                out.first(),
                Some(KvOutcome::ConditionFailed { .. })
            ))
        })
    }
}

/// Makes each function's access.
pub struct Provider(pub Arc<KeyValueService>);

impl KeyValueProvider for Provider {
    fn for_function(&self, project: &str, function: &str, stores: &[String]) -> Arc<dyn KeyValue> {
        Arc::new(FunctionKv {
            service: self.0.clone(),
            project: project.to_owned(),
            counts: self.0.counts(project, function),
            stores: stores.to_vec(),
        })
    }

    fn ensure_stores<'a>(
        &'a self,
        project: &'a str,
        stores: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            for s in stores {
                self.0
                    .store
                    .kv_create_store(project, s)
                    .await
                    .map_err(|e| format!("creating key-value store `{s}`: {e}"))?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
