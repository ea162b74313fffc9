//! JSON documents: collections per project, the [`DocStore`] trait and its SQLite
//! implementation on [`crate::DataStore`].
//!
//! A document is a JSON object with an id (unique in its collection), a revision (from the same
//! sequence as key-value revisions: unique, increasing, never reused), and creation and update
//! times. Queries filter and sort on *declared* fields only (`indexes`), each served from an
//! index on that field's value, so a query's cost never depends on scanning a collection.
//! Documents' bytes count toward the project's storage quota, with key-value data.

pub(crate) mod sqlite;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::{Condition, StoreError};

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRecord {
    /// Its id.
    pub id: String,
    /// Its JSON object, as text.
    pub body: String,
    /// Its revision: changes with every write.
    pub revision: u64,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When it was last written (ms since the epoch).
    pub updated_at: i64,
}

/// One change to a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocOp {
    /// Store this JSON object (text) as the document.
    Put(String),
    /// Remove the document.
    Delete,
}

/// A write of one document, if the condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocWrite {
    /// The document's id.
    pub id: String,
    /// What to do.
    pub op: DocOp,
    /// What its state must be.
    pub condition: Condition,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocOutcome {
    /// Stored: the document as it now is, and as it was.
    Written {
        /// The document now.
        after: DocRecord,
        /// The document before, if it existed.
        before: Option<DocRecord>,
    },
    /// Deleted (`before`: what was there, if anything).
    Deleted {
        /// The document before, if it existed.
        before: Option<DocRecord>,
    },
    /// The condition did not hold; nothing changed.
    ConditionFailed {
        /// The document's current revision (`None`: absent).
        current: Option<u64>,
    },
}

/// What a committed write did to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// It did not exist before.
    Created,
    /// It existed and was replaced.
    Updated,
    /// It was deleted.
    Deleted,
}

impl ChangeOp {
    /// `created`, `updated` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "updated" => Self::Updated,
            _ => Self::Deleted,
        }
    }
}

/// One committed change of a document, as the change log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocChange {
    /// The project.
    pub project: String,
    /// The collection.
    pub collection: String,
    /// The document's id.
    pub id: String,
    /// The change's revision (the document's new revision; for a delete, one of its own):
    /// unique and increasing in commit order.
    pub revision: u64,
    /// What happened.
    pub op: ChangeOp,
    /// The document's JSON before (`None` when created).
    pub before: Option<String>,
    /// The document's JSON after (`None` when deleted).
    pub after: Option<String>,
    /// When (ms since the epoch).
    pub at: i64,
}

/// How a filter compares a field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// The field equals one of a list.
    In,
    /// The field is a string starting with the value.
    Prefix,
}

/// A condition on a declared field.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The field's path (`status`, `address.city`).
    pub field: String,
    /// The comparison.
    pub op: FilterOp,
    /// The value (a list for [`FilterOp::In`], a string for [`FilterOp::Prefix`]).
    pub value: Value,
}

/// A query of one collection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DocQuery {
    /// Every filter must hold.
    pub filters: Vec<Filter>,
    /// The field to sort by, descending if `true`; the id breaks ties (and is the order
    /// without one).
    pub order: Option<(String, bool)>,
    /// Start after this position: the sort field's value (`Null` without an order) and id of
    /// the last document of the previous page.
    pub after: Option<(Value, String)>,
    /// Most documents to return.
    pub limit: usize,
    /// The collection's composite indexes (their fields, in order): an equality filter on one's
    /// first field with a sort on its second is served from it.
    pub composites: Vec<Vec<String>>,
}

/// Most values in one `in` filter (more are ignored: the service refuses them first).
pub const MAX_IN_VALUES: usize = 100;

pub use updraft_manifest::is_field_path;

/// JSON document collections, per project. Every write is durable when it returns.
#[async_trait::async_trait]
pub trait DocStore: Send + Sync + 'static {
    /// Creates or updates collection `name` of `project`: its settings (`spec`, JSON kept for
    /// the service) and the fields its queries may use (each gets an index; an entry of 2 to 4
    /// field paths joined by `,`, such as `status,total`, gets one composite index).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a field that is not a [field path](is_field_path);
    /// [`StoreError::Backend`].
    async fn doc_collection_set(
        &self,
        project: &str,
        name: &str,
        spec: &str,
        indexes: &[String],
    ) -> Result<(), StoreError>;

    /// The collections of `project` with their settings, by name.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn doc_collections(&self, project: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Document `id` of collection `collection`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn doc_get(
        &self,
        project: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<DocRecord>, StoreError>;

    /// Applies `write`, within `quota` bytes for the project if given.
    ///
    /// # Errors
    /// [`StoreError::NoSuchCollection`] if the collection does not exist;
    /// [`StoreError::QuotaExceeded`]; [`StoreError::Backend`].
    async fn doc_write(
        &self,
        project: &str,
        collection: &str,
        write: DocWrite,
        quota: Option<u64>,
        now: i64,
    ) -> Result<DocOutcome, StoreError>;

    /// The documents matching `query`, in its order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a field that is not a field path; [`StoreError::Backend`].
    async fn doc_query(
        &self,
        project: &str,
        collection: &str,
        query: &DocQuery,
    ) -> Result<Vec<DocRecord>, StoreError>;

    /// Changes of `collection` with revisions after `after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn doc_changes(
        &self,
        project: &str,
        collection: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DocChange>, StoreError>;

    /// Changes as they commit, in commit order (every project's). A receiver more than a few
    /// thousand behind gets `Lagged` and reads the rest with [`DocStore::doc_changes`].
    fn doc_subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<DocChange>>;

    /// The last revision committed (a subscriber starting now resumes after it).
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn doc_position(&self) -> Result<u64, StoreError>;

    /// Deletes change-log entries older than `before` (ms since the epoch); returns how many.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn doc_trim_changes(&self, before: i64) -> Result<u64, StoreError>;

    /// Deletes every collection of `project` and its documents.
    ///
    /// # Errors
    /// [`StoreError::Backend`].
    async fn doc_delete_project(&self, project: &str) -> Result<(), StoreError>;
}
