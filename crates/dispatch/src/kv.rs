//! Key-value access as a runtime hands it to a guest: the [`KeyValue`] of one function (its
//! project's stores, only those its manifest grants), implemented by the key-value service and
//! made per function by a [`KeyValueProvider`]. Runtimes (the wasm engine's `wasi:keyvalue`
//! and Spin key-value interfaces) only translate calls; limits, quotas, expiry and metering are
//! the service's.

use std::sync::Arc;

use crate::BoxFuture;

/// Why a key-value call failed, in the terms guest interfaces report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// No store has this name.
    #[error("no such store")]
    NoSuchStore,
    /// The function may not use this store (its manifest does not grant it).
    #[error("access denied: the function's manifest does not grant this store")]
    AccessDenied,
    /// Anything else (a limit, the quota, a non-integer counter, storage), said plainly.
    #[error("{0}")]
    Other(String),
}

/// A value and its revision (which changes with every write of the key).
pub type Versioned = (Vec<u8>, u64);

/// A page of keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys, in byte order.
    pub keys: Vec<String>,
    /// Where the next page starts (pass it back as `after`); `None` on the last page.
    pub next: Option<String>,
}

/// One function's key-value access.
pub trait KeyValue: Send + Sync + 'static {
    /// Checks that the function may open `store` (granted, and existing).
    ///
    /// # Errors
    /// [`KvError::AccessDenied`] or [`KvError::NoSuchStore`].
    fn open(&self, store: &str) -> Result<(), KvError>;

    /// The value of `key` and its revision.
    fn get<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Versioned>, KvError>>;

    /// The values of `keys`, in order.
    fn get_many<'a>(
        &'a self,
        store: &'a str,
        keys: Vec<String>,
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, KvError>>;

    /// Sets every pair, all or none.
    fn set_many<'a>(
        &'a self,
        store: &'a str,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> BoxFuture<'a, Result<(), KvError>>;

    /// Deletes every key (missing ones are skipped), all or none.
    fn delete_many<'a>(
        &'a self,
        store: &'a str,
        keys: Vec<String>,
    ) -> BoxFuture<'a, Result<(), KvError>>;

    /// Keys after `after` (one page).
    fn list<'a>(
        &'a self,
        store: &'a str,
        after: Option<String>,
    ) -> BoxFuture<'a, Result<KeyPage, KvError>>;

    /// Adds `delta` to the counter at `key` (absent: 0) and returns the new value.
    fn increment<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        delta: i64,
    ) -> BoxFuture<'a, Result<i64, KvError>>;

    /// Sets `key` to `value` if it is still at `revision` (`None`: still absent); `Ok(false)`
    /// if it changed.
    fn swap<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        revision: Option<u64>,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<bool, KvError>>;
}

/// Makes the [`KeyValue`] of each function.
pub trait KeyValueProvider: Send + Sync + 'static {
    /// The access of `function` of `project` to the `stores` its manifest grants.
    fn for_function(&self, project: &str, function: &str, stores: &[String]) -> Arc<dyn KeyValue>;

    /// Creates those of `stores` that `project` does not have yet (at deploy).
    ///
    /// # Errors
    /// A message naming what failed.
    fn ensure_stores<'a>(
        &'a self,
        project: &'a str,
        stores: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// A function's key-value grant as its runtime receives it.
#[derive(Clone)]
pub struct KeyValueGrant {
    /// The stores it may open.
    pub stores: Vec<String>,
    /// Its access.
    pub access: Arc<dyn KeyValue>,
}

impl std::fmt::Debug for KeyValueGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyValueGrant")
            .field("stores", &self.stores)
            .finish_non_exhaustive()
    }
}
