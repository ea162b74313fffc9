//! Object storage: buckets of objects per project, the [`ObjectStore`] trait and its embedded
//! backend ([`FsObjects`]: metadata in `data.db`, bytes in files under `objects/`).
//!
//! An object's bytes are a *blob*: written through a [`BlobWriter`] to a temporary file, then
//! fsynced and renamed into place by [`BlobWriter::finish`]. Nothing names a blob until
//! [`ObjectStore::put_object`] commits the object's row (durable when it returns), so a reader
//! sees the old object or the whole new one, never part of one; the blob an object replaced
//! or a delete freed is removed after that commit. A crash between a blob's rename and its
//! commit leaves an unnamed blob, removed by [`ObjectStore::sweep_blobs`].
//!
//! Bucket names are unique across the server (as on S3: a name is an address), each bucket
//! belongs to one project. Keys are UTF-8 and ordered by their bytes, as S3 lists them. Each
//! project's objects and bytes are counted as objects commit, so a quota is checked inside the
//! commit. S3 access keys (their id, project and grants; the secret is derived, not stored)
//! live here too.

mod blobs;
mod rows;
mod sqlite;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use blobs::FsObjects;
pub use rows::prefix_successor;

use crate::StoreError;

/// Errors of object storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// No bucket has this name.
    #[error("no bucket named `{0}`")]
    NoSuchBucket(String),
    /// A bucket of this name exists (`owned`: in the same project).
    #[error("bucket `{name}` already exists")]
    BucketExists {
        /// The name.
        name: String,
        /// Whether the caller's project owns it.
        owned: bool,
    },
    /// The bucket still holds objects or unfinished uploads.
    #[error("bucket `{0}` is not empty")]
    BucketNotEmpty(String),
    /// No object has this key.
    #[error("no object `{key}` in bucket `{bucket}`")]
    NoSuchKey {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// No multipart upload has this id (it never existed, finished or was aborted).
    #[error("no multipart upload `{0}`")]
    NoSuchUpload(String),
    /// The write's condition did not hold.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// The project's quota would be exceeded.
    #[error("the project's object quota is {limit} {what}; this write would make {needed}")]
    QuotaExceeded {
        /// `bytes` or `objects`.
        what: &'static str,
        /// The quota.
        limit: u64,
        /// What the write would make it.
        needed: u64,
    },
    /// No S3 access key has this id.
    #[error("no S3 access key `{0}`")]
    NoSuchKeyId(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ObjectError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketInfo {
    /// Its name (unique on the server).
    pub name: String,
    /// The project that owns it.
    pub project: String,
    /// Whether anyone may read its objects without credentials.
    pub public_read: bool,
    /// Its CORS configuration (S3's XML, as the client sent it), if any.
    pub cors: Option<String>,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

/// What an object carries besides its bytes: HTTP headers and user metadata, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAttrs {
    /// `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `Expires` (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// User metadata (`x-amz-meta-*`), lower-case names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Checksums by algorithm (`crc32`, `crc32c`, `crc64nvme`, `sha1`, `sha256`), base64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
}

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its entity tag, without quotes (MD5 hex, or `<md5 of part md5s>-<parts>`).
    pub etag: String,
    /// When it was written (ms since the epoch).
    pub modified_at: i64,
    /// The blob holding its bytes.
    pub blob: String,
    /// Headers and metadata.
    pub attrs: ObjectAttrs,
}

/// A blob written and durable, not yet named by an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// Its id.
    pub id: String,
    /// Its size.
    pub size: u64,
}

/// What a put requires of the key's current object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PutCondition {
    /// Nothing.
    #[default]
    Any,
    /// No object may exist (`If-None-Match: *`).
    Absent,
    /// The object must exist with this entity tag (`If-Match`; `*` for any).
    Matches(String),
}

/// An object to commit.
#[derive(Debug, Clone)]
pub struct ObjectPut {
    /// How it was made, as S3 events name it: `Put`, `Copy`, `CompleteMultipartUpload`.
    pub how: &'static str,
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Its bytes, already written.
    pub blob: BlobRef,
    /// Its entity tag.
    pub etag: String,
    /// Headers and metadata.
    pub attrs: ObjectAttrs,
    /// What the current object must be.
    pub condition: PutCondition,
    /// The function whose credentials write it, if any (recorded in the change log).
    pub writer: Option<String>,
}

/// Limits a commit checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectQuota {
    /// Most bytes a project may store.
    pub max_bytes: u64,
    /// Most objects a project may store.
    pub max_objects: u64,
}

/// A project's stored objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectUsage {
    /// How many objects.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A committed change of a watched bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    /// Its position in the data store's revision order.
    pub revision: u64,
    /// The key.
    pub key: String,
    /// S3's event name: `ObjectCreated:Put`, `ObjectCreated:Copy`,
    /// `ObjectCreated:CompleteMultipartUpload`, `ObjectRemoved:Delete`.
    pub event: String,
    /// The object's size (0 for a removal).
    pub size: u64,
    /// Its entity tag (empty for a removal).
    pub etag: String,
    /// When it committed (ms since the epoch).
    pub at: i64,
    /// The function whose credentials made it, if any.
    pub writer: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Its id.
    pub id: String,
    /// The bucket.
    pub bucket: String,
    /// The key the object will have.
    pub key: String,
    /// Headers and metadata the object will have.
    pub attrs: ObjectAttrs,
    /// When it started (ms since the epoch).
    pub initiated_at: i64,
}

/// An uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its number (1 to 10,000).
    pub number: u32,
    /// Its size.
    pub size: u64,
    /// Its entity tag (MD5 hex).
    pub etag: String,
    /// The blob holding it.
    pub blob: String,
    /// When it was uploaded (ms since the epoch).
    pub uploaded_at: i64,
}

/// What an S3 access key may reach in one bucket.
pub use updraft_api::BucketAccess as BucketGrant;

/// An S3 access key: its id, its project and what it may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3KeyRecord {
    /// The access key id (`AKUP...`).
    pub id: String,
    /// The project.
    pub project: String,
    /// Its grants; none means every bucket of the project, read and write.
    pub grants: Vec<BucketGrant>,
    /// A description.
    pub name: String,
    /// When it was made (ms since the epoch).
    pub created_at: i64,
}

/// A blob being written: a temporary file until [`finish`](BlobWriter::finish).
#[async_trait::async_trait]
pub trait BlobWriter: Send {
    /// Appends bytes.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), ObjectError>;
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// Makes the blob durable under its id. Dropping the writer instead discards it.
    async fn finish(self: Box<Self>) -> Result<BlobRef, ObjectError>;
}

/// A blob's bytes, read from an offset.
pub type BlobRead = Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>;

/// Object storage: buckets, objects and their blobs, multipart uploads, S3 access keys.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync {
    /// Creates a bucket; [`ObjectError::BucketExists`] if the name is taken.
    async fn create_bucket(&self, bucket: &BucketInfo) -> Result<(), ObjectError>;
    /// The bucket of this name.
    async fn bucket(&self, name: &str) -> Result<Option<BucketInfo>, ObjectError>;
    /// The buckets of a project, by name.
    async fn buckets(&self, project: &str) -> Result<Vec<BucketInfo>, ObjectError>;
    /// Sets a bucket's public-read flag and CORS configuration.
    async fn update_bucket(&self, bucket: &BucketInfo) -> Result<(), ObjectError>;
    /// Deletes an empty bucket ([`ObjectError::BucketNotEmpty`] otherwise).
    async fn delete_bucket(&self, name: &str) -> Result<(), ObjectError>;
    /// Starts logging the bucket's changes (objects created and removed), in the commits that
    /// make them; already watched is a no-op.
    async fn watch_bucket(&self, name: &str) -> Result<(), ObjectError>;
    /// Up to `limit` logged changes of a watched bucket after revision `after`, oldest first.
    async fn object_changes(
        &self,
        bucket: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, ObjectError>;
    /// Deletes logged changes older than `before` (ms since the epoch); how many.
    async fn trim_object_changes(&self, before: i64) -> Result<u64, ObjectError>;

    /// Starts a blob.
    async fn blob_writer(&self) -> Result<Box<dyn BlobWriter>, ObjectError>;
    /// Reads up to `len` bytes of a blob from `offset`; `None` if the blob is gone (the object
    /// was replaced or deleted since its metadata was read: read the metadata again).
    async fn read_blob(
        &self,
        id: &str,
        offset: u64,
        len: u64,
    ) -> Result<Option<BlobRead>, ObjectError>;
    /// Removes a blob no object names (a failed or abandoned write).
    async fn discard_blob(&self, id: &str) -> Result<(), ObjectError>;
    /// Removes blobs older than `older_than_ms` (ms since the epoch) that nothing names:
    /// those a crash left between a blob's rename and its commit. Returns how many.
    async fn sweep_blobs(&self, older_than_ms: i64) -> Result<u64, ObjectError>;

    /// Commits an object; on success the blob it replaced is removed, on failure its own blob.
    async fn put_object(
        &self,
        put: ObjectPut,
        quota: ObjectQuota,
    ) -> Result<ObjectMeta, ObjectError>;
    /// The object under `key`.
    async fn head_object(&self, bucket: &str, key: &str)
    -> Result<Option<ObjectMeta>, ObjectError>;
    /// Deletes the object under `key` (and its blob), on behalf of function `writer` if any;
    /// the object it was, if any.
    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        writer: Option<&str>,
    ) -> Result<Option<ObjectMeta>, ObjectError>;
    /// Up to `limit` objects whose keys start with `prefix` and are at least `from` (bytes;
    /// need not be UTF-8: the key after `k` is `k` + `0x00`), in byte order.
    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        from: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>, ObjectError>;
    /// What a project stores.
    async fn usage(&self, project: &str) -> Result<ObjectUsage, ObjectError>;

    /// Starts a multipart upload.
    async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
    ) -> Result<Upload, ObjectError>;
    /// The upload with this id.
    async fn upload(&self, id: &str) -> Result<Option<Upload>, ObjectError>;
    /// Uploads in progress in a bucket whose keys start with `prefix`, by key then start.
    async fn uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<Upload>, ObjectError>;
    /// Stores a part (replacing one of the same number, whose blob is removed). An open
    /// upload's parts count toward its project's bytes (checked against `quota`) until it
    /// completes or is aborted.
    async fn put_part(
        &self,
        upload: &str,
        number: u32,
        blob: BlobRef,
        etag: &str,
        quota: ObjectQuota,
    ) -> Result<Part, ObjectError>;
    /// The parts of an upload, by number.
    async fn parts(&self, upload: &str) -> Result<Vec<Part>, ObjectError>;
    /// Commits the object assembled from an upload's parts and ends the upload (its parts'
    /// blobs are removed).
    async fn complete_upload(
        &self,
        upload: &str,
        put: ObjectPut,
        quota: ObjectQuota,
    ) -> Result<ObjectMeta, ObjectError>;
    /// Ends an upload, removing its parts.
    async fn abort_upload(&self, upload: &str) -> Result<(), ObjectError>;

    /// Records an S3 access key.
    async fn create_s3_key(&self, key: &S3KeyRecord) -> Result<(), ObjectError>;
    /// The S3 access key with this id.
    async fn s3_key(&self, id: &str) -> Result<Option<S3KeyRecord>, ObjectError>;
    /// A project's S3 access keys.
    async fn s3_keys(&self, project: &str) -> Result<Vec<S3KeyRecord>, ObjectError>;
    /// Deletes an S3 access key of `project`.
    async fn delete_s3_key(&self, project: &str, id: &str) -> Result<(), ObjectError>;
}
