//! Bucket CORS, as S3 has it: a bucket's rules (`PutBucketCors`: allowed origins, methods and
//! headers, exposed headers, max age) decide which browser origins may call the S3 listener
//! for that bucket. A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is answered from the first matching rule, or refused with
//! 403; an actual request from an allowed origin gets `Access-Control-Allow-Origin` and the
//! rule's exposed headers. Rules are stored as JSON in the bucket's row.

use s3s::dto::{
    CORSConfiguration, CORSRule, DeleteBucketCorsOutput, GetBucketCorsOutput, PutBucketCorsInput,
    PutBucketCorsOutput,
};
use s3s::{S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};

use super::ObjectService;
use super::api::{existing_bucket, object_err};

/// Most rules a bucket may have (S3's limit).
pub(crate) const MAX_RULES: usize = 100;

/// The methods a rule may allow.
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

/// One stored rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    origins: Vec<String>,
    methods: Vec<String>,
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    expose: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age: Option<i32>,
}

/// `*` matches any run of characters (at most one `*`, as S3 allows), case-insensitively for
/// headers.
fn wildcard(pattern: &str, value: &str, fold: bool) -> bool {
    let (p, v) = if fold {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), value.to_owned())
    };
    match p.split_once('*') {
        None => p == v,
        Some((a, b)) => v.len() >= a.len() + b.len() && v.starts_with(a) && v.ends_with(b),
    }
}

impl Rule {
    fn allows(&self, origin: &str, method: &str, headers: &[&str]) -> bool {
        self.origins.iter().any(|o| wildcard(o, origin, false))
            && self.methods.iter().any(|m| m == method)
            && headers
                .iter()
                .all(|h| self.headers.iter().any(|a| wildcard(a, h, true)))
    }

    /// The `Access-Control-Allow-Origin` value for `origin`.
    pub(crate) fn allow_origin<'a>(&self, origin: &'a str) -> &'a str {
        if self.origins.iter().any(|o| o == "*") {
            "*"
        } else {
            origin
        }
    }

    pub(crate) fn methods(&self) -> String {
        self.methods.join(", ")
    }

    pub(crate) fn expose(&self) -> String {
        self.expose.join(", ")
    }

    pub(crate) fn max_age(&self) -> Option<i32> {
        self.max_age
    }
}

/// The first rule of `stored` (a bucket's `cors` column) that lets `origin` use `method`
/// with `headers`.
pub(crate) fn find(
    stored: Option<&str>,
    origin: &str,
    method: &str,
    headers: &[&str],
) -> Option<Rule> {
    let rules: Vec<Rule> = serde_json::from_str(stored?).ok()?;
    rules
        .into_iter()
        .find(|r| r.allows(origin, method, headers))
}

/// Checks a `PutBucketCors` configuration and turns it into what is stored.
pub(crate) fn from_s3(cfg: CORSConfiguration) -> Result<String, String> {
    let rules = cfg.cors_rules;
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(format!("a CORS configuration has 1 to {MAX_RULES} rules"));
    }
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err("each rule names at least one AllowedOrigin and AllowedMethod".into());
        }
        if let Some(m) = r
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err(format!(
                "AllowedMethod `{m}` is not one of GET, PUT, POST, DELETE, HEAD"
            ));
        }
        let headers = r.allowed_headers.unwrap_or_default();
        if let Some(o) = r
            .allowed_origins
            .iter()
            .chain(headers.iter())
            .find(|o| o.matches('*').count() > 1)
        {
            return Err(format!("`{o}` has more than one `*`"));
        }
        out.push(Rule {
            id: r.id,
            origins: r.allowed_origins,
            methods: r.allowed_methods,
            headers,
            expose: r.expose_headers.unwrap_or_default(),
            max_age: r.max_age_seconds,
        });
    }
    serde_json::to_string(&out).map_err(|e| e.to_string())
}

/// One rule letting `origins` GET, PUT, POST, DELETE and HEAD with any header, seeing `ETag`
/// (a manifest's `cors_origins`), as stored.
pub(crate) fn simple(origins: &[String]) -> String {
    let rule = Rule {
        id: Some("updraft.toml".into()),
        origins: origins.to_vec(),
        methods: METHODS.iter().map(|m| (*m).to_owned()).collect(),
        headers: vec!["*".into()],
        expose: vec!["ETag".into()],
        max_age: Some(3600),
    };
    serde_json::to_string(&[rule]).unwrap_or_default()
}

/// The stored rules as S3 returns them (`GetBucketCors`).
pub(crate) fn to_s3(stored: &str) -> Vec<CORSRule> {
    let rules: Vec<Rule> = serde_json::from_str(stored).unwrap_or_default();
    rules
        .into_iter()
        .map(|r| CORSRule {
            id: r.id,
            allowed_origins: r.origins,
            allowed_methods: r.methods,
            allowed_headers: (!r.headers.is_empty()).then_some(r.headers),
            expose_headers: (!r.expose.is_empty()).then_some(r.expose),
            max_age_seconds: r.max_age,
        })
        .collect()
}

/// `PutBucketCors`.
pub(crate) async fn put(
    svc: &ObjectService,
    input: PutBucketCorsInput,
) -> S3Result<S3Response<PutBucketCorsOutput>> {
    let mut bucket = existing_bucket(svc, &input.bucket).await?;
    let stored = from_s3(input.cors_configuration).map_err(|m| s3_error!(MalformedXML, "{m}"))?;
    bucket.cors = Some(stored);
    svc.store.update_bucket(&bucket).await.map_err(object_err)?;
    Ok(S3Response::new(PutBucketCorsOutput::default()))
}

/// `GetBucketCors`.
pub(crate) async fn get(
    svc: &ObjectService,
    bucket: &str,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    match existing_bucket(svc, bucket).await?.cors {
        Some(stored) => Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(to_s3(&stored)),
        })),
        None => Err(s3_error!(NoSuchCORSConfiguration)),
    }
}

/// `DeleteBucketCors`.
pub(crate) async fn delete(
    svc: &ObjectService,
    bucket: &str,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    let mut b = existing_bucket(svc, bucket).await?;
    b.cors = None;
    svc.store.update_bucket(&b).await.map_err(object_err)?;
    Ok(S3Response::new(DeleteBucketCorsOutput::default()))
}
