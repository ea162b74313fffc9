//! Parsing and answering helpers the control API's handlers share.

use updraft_api::Code;

use crate::error::ApiError;

/// The 404 for a function that does not exist.
pub(crate) fn not_found(name: &str) -> ApiError {
    ApiError::new(
        Code::FunctionNotFound,
        format!("no function named `{name}`"),
    )
}

/// Checks a path's artifact digest: 64 lower-case hex characters.
pub(crate) fn valid_digest(digest: &str) -> Result<(), ApiError> {
    if digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::BadRequest,
            format!("`{digest}` is not a sha256 digest (64 lower-case hex characters)"),
        ))
    }
}

/// A version number from a path or query.
pub(crate) fn parse_version(v: &str) -> Result<u32, ApiError> {
    v.parse()
        .map_err(|_| ApiError::new(Code::BadRequest, format!("`{v}` is not a version number")))
}

/// `since` is a duration back from now (`10m`, `24h`) or a timestamp in ms since the epoch.
pub(crate) fn parse_since(s: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let d = updraft_manifest::parse_duration(s)
        .map_err(|e| ApiError::new(Code::BadRequest, format!("since: {e}")))?;
    Ok(updraft_store::now_ms() - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))
}
