//! `[key_value]` and `[documents]`: the data services' limits (see docs/database.md).

use updraft_manifest::parse_size;
use updraft_services::docs::DocConfig;
use updraft_services::kv::KvConfig;

use super::raw::{RawDocuments, RawKeyValue};

/// Checks the `[key_value]` table; errors name the key.
pub(super) fn parse(raw: &RawKeyValue) -> Result<KvConfig, String> {
    let d = KvConfig::default();
    let size = |key: &str, v: &Option<String>, default: u64, min: u64| match v {
        None => Ok(default),
        Some(s) => match parse_size(s) {
            Ok(n) if n >= min => Ok(n),
            Ok(_) => Err(format!("key_value.{key}: must be at least {min} bytes")),
            Err(e) => Err(format!("key_value.{key}: {e}")),
        },
    };
    let count = |key: &str, v: Option<usize>, default: usize| match v {
        Some(0) => Err(format!("key_value.{key}: must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(KvConfig {
        max_key_bytes: to_usize(size(
            "max_key_bytes",
            &raw.max_key_bytes,
            d.max_key_bytes as u64,
            16,
        )?),
        max_value_bytes: to_usize(size(
            "max_value_bytes",
            &raw.max_value_bytes,
            d.max_value_bytes as u64,
            1,
        )?),
        max_project_bytes: size(
            "max_project_bytes",
            &raw.max_project_bytes,
            d.max_project_bytes,
            1,
        )?,
        max_batch: count("max_batch", raw.max_batch, d.max_batch)?,
        page: count("page_size", raw.page_size, d.page)?,
    })
}

/// Checks the `[documents]` table; errors name the key. (`max_project_bytes` is
/// `[key_value]`'s: one quota for a project's key-value data and documents.)
pub(super) fn documents(raw: &RawDocuments) -> Result<DocConfig, String> {
    let d = DocConfig::default();
    let max_document_bytes = match &raw.max_document_bytes {
        None => d.max_document_bytes,
        Some(s) => match parse_size(s) {
            Ok(n) if n >= 64 => usize::try_from(n).unwrap_or(usize::MAX),
            Ok(_) => return Err("documents.max_document_bytes: must be at least 64 bytes".into()),
            Err(e) => return Err(format!("documents.max_document_bytes: {e}")),
        },
    };
    let count = |key: &str, v: Option<usize>, default: usize| match v {
        Some(0) => Err(format!("documents.{key}: must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let max_page = count("max_page", raw.max_page, d.max_page)?;
    let page = count("page_size", raw.page_size, d.page)?;
    if page > max_page {
        return Err("documents.page_size: must not be more than max_page".into());
    }
    let changes_max_age = match &raw.changes_max_age {
        None => d.changes_max_age,
        Some(s) => match updraft_manifest::parse_duration(s) {
            Ok(t) if !t.is_zero() => t,
            Ok(_) => return Err("documents.changes_max_age: must be more than 0".into()),
            Err(e) => return Err(format!("documents.changes_max_age: {e}")),
        },
    };
    Ok(DocConfig {
        max_document_bytes,
        page,
        max_page,
        changes_max_age,
        max_streams: count("max_streams", raw.max_streams, d.max_streams)?,
        max_streams_per_user: count(
            "max_streams_per_user",
            raw.max_streams_per_user,
            d.max_streams_per_user,
        )?,
        ..d
    })
}
