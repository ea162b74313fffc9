//! Buckets for functions: the registry's [`BucketSink`] (granted and watched buckets made at
//! deploy, the credentials a granted function gets) and the object service's
//! [`FunctionKeys`] (whose a function's S3 access key is).
//!
//! A function granted `buckets = ["uploads:read", "thumbs:write"]` gets:
//! - S3 credentials: `AWS_ACCESS_KEY_ID` is `AKFN` and 16 characters derived (HMAC) from its
//!   project, name and grants, so it is the same for every version and restart with those
//!   grants and is stored nowhere; `AWS_SECRET_ACCESS_KEY` is derived from the id like every
//!   S3 key's; `AWS_REGION`, `AWS_DEFAULT_REGION` and `AWS_ENDPOINT_URL_S3`
//!   (`http://s3.updraft.internal`, which the engine connects to the S3 listener).
//! - A bearer credential for the plain object API (`UPDRAFT_STORAGE_TOKEN`, at
//!   `UPDRAFT_STORAGE_URL`), minted like the document API's.
//!
//! Both are honoured only while a stored version of the function has exactly those grants:
//! deleting the function, or deploying it with other grants and letting the old versions go,
//! revokes them. Writes made with them name the function as their writer, which the upload
//! triggers' loop guard reads.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock, Weak};

use updraft_dispatch::BoxFuture;
use updraft_registry::{BucketSink, BucketsError, Registry, S3_ENDPOINT, STORAGE_URL};
use updraft_services::objects::{Caller, FunctionKeys, ObjectService, ObjectsError};

use crate::credentials;
use crate::secrets::SecretKey;

/// Whose each minted function key is.
#[derive(Debug, Clone)]
struct Minted {
    project: String,
    function: String,
    grants: Vec<String>,
}

/// See the module docs.
pub(crate) struct FunctionBuckets {
    objects: Arc<ObjectService>,
    key: Arc<SecretKey>,
    minted: RwLock<HashMap<String, Minted>>,
    registry: OnceLock<Weak<Registry>>,
}

impl FunctionBuckets {
    pub(crate) fn new(objects: Arc<ObjectService>, key: Arc<SecretKey>) -> Arc<Self> {
        Arc::new(Self {
            objects,
            key,
            minted: RwLock::new(HashMap::new()),
            registry: OnceLock::new(),
        })
    }

    /// Tells it the registry whose functions it vouches for (once built).
    pub(crate) fn attach(&self, registry: &Arc<Registry>) {
        let _ = self.registry.set(Arc::downgrade(registry));
    }
}

/// Whether `function` of `project` has a stored version granted exactly `grants`.
pub(crate) fn served_with(
    registry: &Registry,
    project: &str,
    function: &str,
    grants: &[String],
) -> bool {
    let snapshot = registry.snapshot();
    snapshot
        .project(project)
        .and_then(|p| p.records.get(function))
        .is_some_and(|r| r.versions.iter().any(|v| v.spec.buckets == grants))
}

/// A refusal of the object service as the registry's.
fn refused(e: ObjectsError) -> BucketsError {
    match e {
        ObjectsError::Conflict(m) | ObjectsError::Invalid(m) => BucketsError::Refused(m),
        other => BucketsError::Failed(other.to_string()),
    }
}

impl BucketSink for FunctionBuckets {
    fn ensure<'a>(
        &'a self,
        project: &'a str,
        buckets: &'a [String],
    ) -> BoxFuture<'a, Result<(), BucketsError>> {
        Box::pin(async move {
            for name in buckets {
                self.objects
                    .claim_bucket(project, name)
                    .await
                    .map_err(refused)?;
            }
            Ok(())
        })
    }

    fn declare<'a>(
        &'a self,
        project: &'a str,
        buckets: &'a [updraft_manifest::BucketDecl],
    ) -> BoxFuture<'a, Result<(), BucketsError>> {
        Box::pin(async move {
            for b in buckets {
                self.objects
                    .declare_bucket(project, &b.name, b.public_read, &b.cors_origins)
                    .await
                    .map_err(refused)?;
            }
            Ok(())
        })
    }

    fn env(&self, project: &str, function: &str, grants: &[String]) -> Vec<(String, String)> {
        let keys = self.objects.keys();
        let id = keys.function_key_id(project, function, grants);
        if let Ok(mut minted) = self.minted.write() {
            minted.insert(
                id.clone(),
                Minted {
                    project: project.to_owned(),
                    function: function.to_owned(),
                    grants: grants.to_vec(),
                },
            );
        }
        let bearer = credentials::mint(
            self.key.credentials(),
            &credentials::Grant {
                project: project.to_owned(),
                function: function.to_owned(),
                collections: Vec::new(),
                buckets: grants.to_vec(),
            },
        );
        let region = self.objects.region().to_owned();
        vec![
            ("AWS_SECRET_ACCESS_KEY".to_owned(), keys.secret(&id)),
            ("AWS_ACCESS_KEY_ID".to_owned(), id),
            ("AWS_REGION".to_owned(), region.clone()),
            ("AWS_DEFAULT_REGION".to_owned(), region),
            ("AWS_ENDPOINT_URL_S3".to_owned(), S3_ENDPOINT.to_owned()),
            ("UPDRAFT_STORAGE_URL".to_owned(), STORAGE_URL.to_owned()),
            ("UPDRAFT_STORAGE_TOKEN".to_owned(), bearer),
        ]
    }
}

impl FunctionKeys for FunctionBuckets {
    fn caller(&self, access_key: &str) -> Option<Caller> {
        let m = self.minted.read().ok()?.get(access_key).cloned()?;
        let registry = self.registry.get()?.upgrade()?;
        if !served_with(&registry, &m.project, &m.function, &m.grants) {
            return None;
        }
        let grants = updraft_api::parse_bucket_grants(&m.grants).ok()?;
        Some(Caller {
            project: Some(m.project),
            grants,
            function: Some(m.function),
        })
    }
}
