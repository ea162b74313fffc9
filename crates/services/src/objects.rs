//! Object storage with the S3 API: buckets per project on the durable [`ObjectStore`], served
//! by the `s3s` protocol crate (SigV4 headers and presigned URLs, aws-chunked bodies with
//! trailing checksums, S3's XML and error codes) on its own listener, path-style and
//! virtual-host style (`<bucket>.<s3 domain>`).
//!
//! This module owns the rules: who may do what ([`access`]: S3 access keys scoped to a project
//! and optionally to buckets, read or write; anonymous reads of public buckets), bucket
//! names, object size, part and quota limits, entity tags, listing with delimiters and
//! continuation tokens, multipart assembly. Bytes stream through in constant memory: a put
//! goes to a blob as it arrives, is checked (MD5 and any checksum the client sent) and only
//! then committed.

pub mod access;
mod api;
mod cors;
mod keys;
mod list;
mod listener;
mod multipart;
mod plain;
mod put;
#[cfg(test)]
mod tests;

pub use crate::chunks::ReadStream;
pub use access::{Caller, FunctionKeys};
pub use keys::{FUNCTION_KEY_PREFIX, KEY_PREFIX, MintedKey, S3Keys};
pub use listener::S3Listener;
pub use plain::PlainError;

use std::sync::Arc;

use updraft_store::objects::{
    BucketGrant, BucketInfo, ObjectError, ObjectQuota, ObjectStore, S3KeyRecord,
};

/// Limits of object storage (`[objects]` in the server's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectsConfig {
    /// Largest object one PutObject (or CopyObject) may write, in bytes.
    pub max_object_bytes: u64,
    /// Largest part of a multipart upload, in bytes.
    pub max_part_bytes: u64,
    /// Bytes one project may store in all its buckets.
    pub max_project_bytes: u64,
    /// Objects one project may store in all its buckets.
    pub max_project_objects: u64,
    /// Buckets one project may have.
    pub max_buckets: usize,
    /// The domain virtual-host requests end in (`<bucket>.<domain>`).
    pub domain: String,
    /// The region clients sign for (any region is accepted; this one is reported).
    pub region: String,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        Self {
            max_object_bytes: 5 << 30,
            max_part_bytes: 5 << 30,
            max_project_bytes: 100 << 30,
            max_project_objects: 10_000_000,
            max_buckets: 100,
            domain: "s3.localhost".to_owned(),
            region: "us-east-1".to_owned(),
        }
    }
}

impl ObjectsConfig {
    pub(crate) fn quota(&self) -> ObjectQuota {
        ObjectQuota {
            max_bytes: self.max_project_bytes,
            max_objects: self.max_project_objects,
        }
    }
}

/// Why a management call failed (the control API's bucket and key calls).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectsError {
    /// Bad input; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// The name is taken, or the bucket is not empty.
    #[error("{0}")]
    Conflict(String),
    /// No such bucket.
    #[error("{0}")]
    NotFound(String),
    /// No such S3 access key.
    #[error("{0}")]
    KeyNotFound(String),
    /// The store failed.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<ObjectError> for ObjectsError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::BucketExists { .. } | ObjectError::BucketNotEmpty(_) => {
                Self::Conflict(e.to_string())
            }
            ObjectError::NoSuchBucket(_) => Self::NotFound(e.to_string()),
            ObjectError::NoSuchKeyId(_) => Self::KeyNotFound(e.to_string()),
            other => Self::Storage(other.to_string()),
        }
    }
}

/// Object storage: what the S3 listener serves and the control API manages.
pub struct ObjectService {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) config: ObjectsConfig,
    pub(crate) keys: S3Keys,
    /// Whose function keys are (set once the server knows its functions).
    pub(crate) functions: std::sync::OnceLock<Arc<dyn FunctionKeys>>,
}

impl ObjectService {
    /// The service over `store`; `keys` derives S3 secrets.
    pub fn new(store: Arc<dyn ObjectStore>, keys: S3Keys, config: ObjectsConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            config,
            keys,
            functions: std::sync::OnceLock::new(),
        })
    }

    /// Sets who function keys stand for (once; later calls are ignored). Until then no
    /// function key is accepted.
    pub fn set_function_keys(&self, functions: Arc<dyn FunctionKeys>) {
        let _ = self.functions.set(functions);
    }

    /// Derives S3 keys and secrets.
    pub fn keys(&self) -> &S3Keys {
        &self.keys
    }

    /// The region clients sign for.
    pub fn region(&self) -> &str {
        &self.config.region
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The S3 protocol service, for a listener (`hyper` service).
    pub fn s3(self: &Arc<Self>) -> S3Listener {
        let mut builder = s3s::service::S3ServiceBuilder::new(api::Api(self.clone()));
        builder.set_auth(access::Auth(self.clone()));
        builder.set_access(access::Access(self.clone()));
        builder.set_host(self.hosts());
        S3Listener {
            inner: builder.build(),
            svc: self.clone(),
        }
    }

    /// How hosts name buckets (virtual-host style).
    pub(crate) fn hosts(&self) -> access::Hosts {
        access::Hosts {
            domains: vec![
                self.config.domain.clone(),
                updraft_dispatch::S3_HOST.to_owned(),
            ],
        }
    }

    /// Creates a bucket of `project`.
    ///
    /// # Errors
    /// [`ObjectsError::Invalid`] for a bad name or past the bucket limit,
    /// [`ObjectsError::Conflict`] if the name is taken.
    pub async fn create_bucket(
        &self,
        project: &str,
        name: &str,
        public_read: bool,
    ) -> Result<BucketInfo, ObjectsError> {
        updraft_api::check_bucket_name(name).map_err(ObjectsError::Invalid)?;
        if self.store.buckets(project).await?.len() >= self.config.max_buckets {
            return Err(ObjectsError::Invalid(format!(
                "project `{project}` has {} buckets, the most allowed ([objects] max_buckets)",
                self.config.max_buckets
            )));
        }
        let bucket = BucketInfo {
            name: name.to_owned(),
            project: project.to_owned(),
            public_read,
            cors: None,
            created_at: updraft_store::now_ms(),
        };
        self.store.create_bucket(&bucket).await?;
        Ok(bucket)
    }

    /// The bucket `name` of `project`, made if missing.
    ///
    /// # Errors
    /// [`ObjectsError::Conflict`] if another project has it, [`ObjectsError::Invalid`] for a
    /// bad name or past the bucket limit.
    pub async fn claim_bucket(
        &self,
        project: &str,
        name: &str,
    ) -> Result<BucketInfo, ObjectsError> {
        let taken = || {
            ObjectsError::Conflict(format!(
                "bucket `{name}` belongs to another project; bucket names are unique on the \
                 server, pick another"
            ))
        };
        match self.store.bucket(name).await? {
            Some(b) if b.project == project => Ok(b),
            Some(_) => Err(taken()),
            None => match self.create_bucket(project, name, false).await {
                Ok(b) => Ok(b),
                // Made meanwhile: by this project (a concurrent deploy) or another.
                Err(ObjectsError::Conflict(_)) => match self.store.bucket(name).await? {
                    Some(b) if b.project == project => Ok(b),
                    _ => Err(taken()),
                },
                Err(e) => Err(e),
            },
        }
    }

    /// Makes or updates a bucket an app declares: public reads as given, and, if
    /// `cors_origins` is not empty, one CORS rule letting those origins GET, PUT, POST, DELETE
    /// and HEAD with any header, seeing `ETag`.
    ///
    /// # Errors
    /// As [`ObjectService::claim_bucket`].
    pub async fn declare_bucket(
        &self,
        project: &str,
        name: &str,
        public_read: bool,
        cors_origins: &[String],
    ) -> Result<(), ObjectsError> {
        let mut b = self.claim_bucket(project, name).await?;
        let cors = if cors_origins.is_empty() {
            b.cors.clone()
        } else {
            Some(cors::simple(cors_origins))
        };
        if b.public_read != public_read || b.cors != cors {
            b.public_read = public_read;
            b.cors = cors;
            self.store.update_bucket(&b).await?;
        }
        Ok(())
    }

    /// The bucket `name` if `project` owns it.
    ///
    /// # Errors
    /// [`ObjectsError::NotFound`] otherwise.
    pub async fn owned_bucket(
        &self,
        project: &str,
        name: &str,
    ) -> Result<BucketInfo, ObjectsError> {
        match self.store.bucket(name).await? {
            Some(b) if b.project == project => Ok(b),
            _ => Err(ObjectsError::NotFound(format!("no bucket named `{name}`"))),
        }
    }

    /// Creates an S3 access key of `project` with `grants` (none: every bucket, read and
    /// write); the secret is in the answer and nowhere else.
    ///
    /// # Errors
    /// [`ObjectsError::Invalid`] for a grant naming a bucket the project does not own.
    pub async fn create_key(
        &self,
        project: &str,
        name: &str,
        grants: Vec<BucketGrant>,
    ) -> Result<MintedKey, ObjectsError> {
        for g in &grants {
            if self.owned_bucket(project, &g.bucket).await.is_err() {
                return Err(ObjectsError::Invalid(format!(
                    "grant names bucket `{}`, which project `{project}` does not have",
                    g.bucket
                )));
            }
        }
        let id = self.keys.new_id();
        let record = S3KeyRecord {
            id,
            project: project.to_owned(),
            grants,
            name: name.to_owned(),
            created_at: updraft_store::now_ms(),
        };
        self.store.create_s3_key(&record).await?;
        Ok(MintedKey {
            secret_access_key: self.keys.secret(&record.id),
            record,
        })
    }
}
