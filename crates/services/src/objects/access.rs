//! Who may do what on the S3 listener.
//!
//! Every signed request names an access key; `s3s` checks the signature (headers, presigned
//! URL or POST policy) with the secret `Auth` derives, then `Access` decides: the bucket
//! must belong to the key's project, and a key with grants reaches only the buckets it names,
//! reading or writing as granted. A function's key (`AKFN...`, in its environment) is not
//! stored: [`FunctionKeys`] says whose it is, as long as that function is served with those
//! grants. Creating and deleting buckets and changing their CORS takes
//! a key without grants. Unsigned requests may only read objects (GET, HEAD) of buckets made
//! `--public-read`. A refusal is S3's `AccessDenied` (403), whether or not the bucket exists
//! in another project.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::host::{S3Host, VirtualHost};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};
use updraft_store::objects::{BucketGrant, BucketInfo};

use super::ObjectService;
use super::api::internal;

/// The caller of an S3 request, as `Access` resolved it (in the request's extensions).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The project whose buckets it reaches; `None` for an anonymous caller.
    pub project: Option<String>,
    /// Its grants (none: every bucket of the project).
    pub grants: Vec<BucketGrant>,
    /// The function whose credentials it used, if any (the writer of its changes).
    pub function: Option<String>,
}

impl Caller {
    /// A caller with every right on `project`'s buckets (a project's key, the control API).
    pub fn owner(project: &str) -> Self {
        Self {
            project: Some(project.to_owned()),
            grants: Vec::new(),
            function: None,
        }
    }

    /// Whether the caller may read (`write == false`) or write `bucket`.
    pub fn may(&self, bucket: &BucketInfo, write: bool) -> bool {
        match &self.project {
            None => !write && bucket.public_read,
            Some(p) if *p != bucket.project => false,
            Some(_) if self.grants.is_empty() => true,
            Some(_) => self
                .grants
                .iter()
                .any(|g| g.bucket == bucket.name && if write { g.write } else { g.read }),
        }
    }
}

/// What an operation needs of its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Reading objects or listing them.
    Read,
    /// Writing or deleting objects.
    Write,
    /// Managing the bucket itself: a key without grants.
    Manage,
    /// Nothing of a bucket (ListBuckets).
    Signed,
}

fn need(op: &str) -> Need {
    match op {
        "GetObject"
        | "HeadObject"
        | "ListObjects"
        | "ListObjectsV2"
        | "ListParts"
        | "ListMultipartUploads"
        | "HeadBucket"
        | "GetBucketLocation"
        | "GetBucketCors" => Need::Read,
        "PutObject"
        | "DeleteObject"
        | "DeleteObjects"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "PostObject" => Need::Write,
        "ListBuckets" => Need::Signed,
        _ => Need::Manage,
    }
}

/// Who a function's access key stands for (the server knows which functions are served).
pub trait FunctionKeys: Send + Sync + 'static {
    /// The caller function key `access_key` stands for: its project, grants and function,
    /// if that function is still served with those grants.
    fn caller(&self, access_key: &str) -> Option<Caller>;
}

impl ObjectService {
    /// The caller signing with `access_key`, if it is a key: a stored one, or a served
    /// function's.
    async fn key_caller(&self, access_key: &str) -> S3Result<Option<Caller>> {
        if access_key.starts_with(super::FUNCTION_KEY_PREFIX) {
            return Ok(self.functions.get().and_then(|f| f.caller(access_key)));
        }
        let key = self.store.s3_key(access_key).await.map_err(internal)?;
        Ok(key.map(|k| Caller {
            project: Some(k.project),
            grants: k.grants,
            function: None,
        }))
    }
}

/// Derives the secret of a signed request's access key (if the key exists).
pub(crate) struct Auth(pub(crate) Arc<ObjectService>);

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.key_caller(access_key).await? {
            Some(_) => Ok(SecretKey::from(self.0.keys.secret(access_key))),
            None => Err(s3_error!(InvalidAccessKeyId)),
        }
    }
}

/// Decides each request (see the module docs).
pub(crate) struct Access(pub(crate) Arc<ObjectService>);

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        let need = need(&op);
        let caller = match cx.credentials() {
            Some(c) => self
                .0
                .key_caller(&c.access_key)
                .await?
                .ok_or_else(|| s3_error!(InvalidAccessKeyId))?,
            None => Caller {
                project: None,
                grants: Vec::new(),
                function: None,
            },
        };
        let bucket = match cx.s3_path() {
            S3Path::Root => None,
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(bucket.to_string()),
        };
        match (need, bucket) {
            (Need::Signed, _) | (_, None) if caller.project.is_none() => {
                return Err(s3_error!(AccessDenied, "a signature is required"));
            }
            (Need::Manage, _) if caller.project.is_none() || !caller.grants.is_empty() => {
                return Err(s3_error!(
                    AccessDenied,
                    "managing buckets takes an access key without bucket grants"
                ));
            }
            (_, Some(name)) => {
                let found = self.0.store.bucket(&name).await.map_err(internal)?;
                match found {
                    // Creating it, or a call that will answer NoSuchBucket: the operation
                    // decides (a project's own missing bucket is not a secret).
                    None if caller.project.is_some() => {}
                    None => return Err(s3_error!(AccessDenied)),
                    // Taken: the operation answers BucketAlreadyExists, as S3 does.
                    Some(_) if op == "CreateBucket" => {}
                    Some(b) => {
                        let allowed = match need {
                            Need::Read => caller.may(&b, false),
                            Need::Write => caller.may(&b, true),
                            Need::Manage | Need::Signed => {
                                caller.project.as_deref() == Some(b.project.as_str())
                            }
                        };
                        if !allowed {
                            return Err(s3_error!(AccessDenied));
                        }
                    }
                }
            }
            _ => {}
        }
        cx.extensions_mut().insert(caller);
        Ok(())
    }
}

/// Virtual-host requests: `<bucket>.<domain>` (any port) for the configured domain and the
/// one granted functions use ([`updraft_dispatch::S3_HOST`]); every other host is path-style.
pub(crate) struct Hosts {
    pub(crate) domains: Vec<String>,
}

impl S3Host for Hosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = match host.rsplit_once(':') {
            Some((h, port))
                if !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && (!h.contains(':') || h.ends_with(']')) =>
            {
                h
            }
            _ => host,
        };
        let bucket = self.domains.iter().find_map(|d| {
            name.strip_suffix(d.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
                .filter(|b| !b.is_empty())
        });
        Ok(match bucket {
            Some(b) => VirtualHost::new(name).with_bucket(b),
            None => VirtualHost::new(name),
        })
    }
}
