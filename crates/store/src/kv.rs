//! Key-value data: named stores of keys per project, the [`KvStore`] trait and its SQLite
//! backend ([`DataStore`], `data.db` in the data directory).
//!
//! A store holds keys (UTF-8 strings) with byte values, each with a revision (unique across
//! the whole backend and increasing with every write, so a compare-and-swap can never be fooled
//! by a value written, deleted and written again) and an optional expiry. Expired keys read as
//! absent at once and are deleted later ([`KvStore::kv_purge_expired`]). Counters are values
//! holding a decimal integer in ASCII (`"42"`), so every client can read them.
//!
//! Writes go in [`KvWrite`] batches that commit as one transaction (all or nothing) and are
//! durable when the call returns. Each project's stored bytes (key plus value lengths) are
//! counted as writes commit, so a quota is checked inside the write.

mod sqlite;
#[cfg(test)]
mod tests;

pub use crate::data::{DataStore, Restored};

use crate::StoreError;

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// The value's bytes.
    pub value: Vec<u8>,
    /// Its revision: changes with every write of the key.
    pub revision: u64,
    /// When it expires (ms since the epoch), if it does.
    pub expires_at: Option<i64>,
}

/// What a write requires of the key's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// Nothing: write whatever is there.
    #[default]
    Any,
    /// The key must be absent (or expired).
    Absent,
    /// The key must be at this revision.
    Revision(u64),
}

/// One change to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    /// Store a value, expiring at the given time (ms since the epoch) if any.
    Put {
        /// The bytes.
        value: Vec<u8>,
        /// The expiry.
        expires_at: Option<i64>,
    },
    /// Remove the key.
    Delete,
    /// Add to the decimal integer the key holds (an absent key holds 0); the expiry is kept.
    Increment(i64),
}

/// One write of a batch: an operation on a key, if the condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvWrite {
    /// The key.
    pub key: String,
    /// What to do.
    pub op: KvOp,
    /// What the key's state must be.
    pub condition: Condition,
}

impl KvWrite {
    /// An unconditional put without expiry.
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            op: KvOp::Put {
                value: value.into(),
                expires_at: None,
            },
            condition: Condition::Any,
        }
    }

    /// An unconditional delete.
    pub fn delete(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            op: KvOp::Delete,
            condition: Condition::Any,
        }
    }

    /// An increment by `delta`.
    pub fn increment(key: impl Into<String>, delta: i64) -> Self {
        Self {
            key: key.into(),
            op: KvOp::Increment(delta),
            condition: Condition::Any,
        }
    }

    /// This write, only if `condition` holds.
    #[must_use]
    pub fn when(mut self, condition: Condition) -> Self {
        self.condition = condition;
        self
    }
}

/// What one write of a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOutcome {
    /// The key now has this revision (a put).
    Written {
        /// The new revision.
        revision: u64,
    },
    /// The key was deleted (`existed`: whether it was there to delete).
    Deleted {
        /// Whether the key existed (and had not expired).
        existed: bool,
    },
    /// The counter's new value.
    Incremented {
        /// The new value.
        value: i64,
        /// The new revision.
        revision: u64,
    },
    /// The condition did not hold; the batch was not applied.
    ConditionFailed {
        /// The key's current revision (`None`: absent).
        current: Option<u64>,
    },
}

/// A store and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStoreInfo {
    /// The store's name.
    pub name: String,
    /// Keys in it (expired ones not yet purged included).
    pub keys: u64,
    /// Bytes of its keys and values.
    pub bytes: u64,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

/// A project's stored key-value data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KvUsage {
    /// Keys stored.
    pub keys: u64,
    /// Bytes of keys and values stored.
    pub bytes: u64,
}

/// Largest value a change-log entry keeps; a larger one is logged without it.
pub const MAX_LOGGED_VALUE: usize = 64 << 10;

/// One logged change of a watched store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvChange {
    /// Its revision: unique and increasing in commit order (shared with documents).
    pub revision: u64,
    /// The key.
    pub key: String,
    /// Whether the key was deleted (else it was set: put or incremented).
    pub deleted: bool,
    /// The new value, when set and at most [`MAX_LOGGED_VALUE`] bytes.
    pub value: Option<Vec<u8>>,
    /// The new value's size, when set.
    pub size: u64,
    /// When (ms since the epoch).
    pub at: i64,
}

/// Key-value data, per project and store. Every write is durable when it returns; reads see
/// every write that returned before they began.
#[async_trait::async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// Creates `store` in `project`; `Ok(false)` if it exists.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_create_store(&self, project: &str, store: &str) -> Result<bool, StoreError>;

    /// The stores of `project`, by name.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_stores(&self, project: &str) -> Result<Vec<KvStoreInfo>, StoreError>;

    /// Whether `project` has `store`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_has_store(&self, project: &str, store: &str) -> Result<bool, StoreError>;

    /// Deletes `store` and its keys; `Ok(false)` if there was no such store.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_delete_store(&self, project: &str, store: &str) -> Result<bool, StoreError>;

    /// Deletes every store of `project`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_delete_project(&self, project: &str) -> Result<(), StoreError>;

    /// The entry of `key`, unless absent or expired at `now` (ms since the epoch).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_get(
        &self,
        project: &str,
        store: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<KvEntry>, StoreError>;

    /// The entries of `keys`, in their order, as [`KvStore::kv_get`] would return them.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_get_many(
        &self,
        project: &str,
        store: &str,
        keys: &[String],
        now: i64,
    ) -> Result<Vec<Option<KvEntry>>, StoreError>;

    /// Applies `writes` as one transaction, in order, or none of them: every condition is
    /// checked against the state the earlier writes of the batch left. With `quota`, a batch
    /// that would leave the project storing more bytes than it fails with
    /// [`StoreError::QuotaExceeded`] (a batch that frees bytes is always allowed). A failed
    /// condition ends the batch, unapplied, with [`KvOutcome::ConditionFailed`] last.
    ///
    /// # Errors
    /// [`StoreError::NoSuchKvStore`]; [`StoreError::NotAnInteger`] or
    /// [`StoreError::IntegerOverflow`] for an increment; [`StoreError::QuotaExceeded`];
    /// [`StoreError::Backend`].
    async fn kv_write(
        &self,
        project: &str,
        store: &str,
        writes: Vec<KvWrite>,
        quota: Option<u64>,
        now: i64,
    ) -> Result<Vec<KvOutcome>, StoreError>;

    /// Keys of `store` starting with `prefix`, in byte order, after `after` (exclusive), at
    /// most `limit`, skipping expired ones.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_list(
        &self,
        project: &str,
        store: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// What `project` stores.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_usage(&self, project: &str) -> Result<KvUsage, StoreError>;

    /// Deletes up to `limit` keys expired at `now`; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_purge_expired(&self, now: i64, limit: usize) -> Result<u64, StoreError>;

    /// Turns on `store`'s change log (for `[[functions.kv]]` triggers): from the next write on,
    /// every set and delete of a key is logged ([`KvStore::kv_changes`]). It stays on.
    ///
    /// # Errors
    /// [`StoreError::NoSuchKvStore`].
    async fn kv_watch(&self, project: &str, store: &str) -> Result<(), StoreError>;

    /// Logged changes of `store` after revision `after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_changes(
        &self,
        project: &str,
        store: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<KvChange>, StoreError>;

    /// Deletes change-log entries older than `before` (ms since the epoch); returns how many.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn kv_trim_changes(&self, before: i64) -> Result<u64, StoreError>;
}

/// The smallest string greater than every string starting with `prefix` (for a range scan),
/// or `None` when there is none (`prefix` empty or all `U+10FFFF`).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value, skipping the surrogate gap.
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}
