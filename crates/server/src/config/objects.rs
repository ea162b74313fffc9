//! `[objects]`: object storage's limits and names (see docs/storage.md).

use serde::Deserialize;
use updraft_manifest::parse_size;
use updraft_services::objects::ObjectsConfig;

/// The `[objects]` table as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawObjects {
    max_object_bytes: Option<String>,
    max_part_bytes: Option<String>,
    max_project_bytes: Option<String>,
    max_project_objects: Option<u64>,
    max_buckets: Option<usize>,
    domain: Option<String>,
    region: Option<String>,
}

/// Checks the `[objects]` table; errors name the key.
pub(super) fn parse(raw: &RawObjects) -> Result<ObjectsConfig, String> {
    let d = ObjectsConfig::default();
    let size = |key: &str, v: &Option<String>, default: u64, min: u64| match v {
        None => Ok(default),
        Some(s) => match parse_size(s) {
            Ok(n) if n >= min => Ok(n),
            Ok(_) => Err(format!("objects.{key}: must be at least {min} bytes")),
            Err(e) => Err(format!("objects.{key}: {e}")),
        },
    };
    let domain = raw.domain.clone().unwrap_or(d.domain);
    if domain.is_empty()
        || !domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(format!(
            "objects.domain: `{domain}` is not a lower-case domain name"
        ));
    }
    let region = raw.region.clone().unwrap_or(d.region);
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(format!("objects.region: `{region}` is not a region name"));
    }
    Ok(ObjectsConfig {
        max_object_bytes: size(
            "max_object_bytes",
            &raw.max_object_bytes,
            d.max_object_bytes,
            1,
        )?,
        // S3's smallest part but the last is 5 MiB: a smaller cap would refuse every upload.
        max_part_bytes: size(
            "max_part_bytes",
            &raw.max_part_bytes,
            d.max_part_bytes,
            5 << 20,
        )?,
        max_project_bytes: size(
            "max_project_bytes",
            &raw.max_project_bytes,
            d.max_project_bytes,
            1,
        )?,
        max_project_objects: match raw.max_project_objects {
            Some(0) => return Err("objects.max_project_objects: must be at least 1".into()),
            Some(n) => n,
            None => d.max_project_objects,
        },
        max_buckets: match raw.max_buckets {
            Some(0) => return Err("objects.max_buckets: must be at least 1".into()),
            Some(n) => n,
            None => d.max_buckets,
        },
        domain,
        region,
    })
}

/// The `[sites]` table as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSites {
    max_file_bytes: Option<String>,
    max_files: Option<usize>,
    cache_bytes: Option<String>,
}

/// Checks the `[sites]` table (static sites' limits); errors name the key.
pub(super) fn parse_sites(raw: &RawSites) -> Result<updraft_services::sites::SitesConfig, String> {
    let d = updraft_services::sites::SitesConfig::default();
    Ok(updraft_services::sites::SitesConfig {
        max_file_bytes: match &raw.max_file_bytes {
            None => d.max_file_bytes,
            Some(s) => match parse_size(s) {
                Ok(0) => return Err("sites.max_file_bytes: must be at least 1 byte".into()),
                Ok(n) => n,
                Err(e) => return Err(format!("sites.max_file_bytes: {e}")),
            },
        },
        max_files: match raw.max_files {
            Some(0) => return Err("sites.max_files: must be at least 1".into()),
            Some(n) => n,
            None => d.max_files,
        },
        cache_bytes: match &raw.cache_bytes {
            None => d.cache_bytes,
            Some(s) => parse_size(s).map_err(|e| format!("sites.cache_bytes: {e}"))?,
        },
    })
}
