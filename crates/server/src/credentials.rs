//! Function credentials: what a function granted collections (`collections = ["orders"]`)
//! sends to the document API (`UPDRAFT_DB_TOKEN`), and one granted buckets to the plain object
//! API (`UPDRAFT_STORAGE_TOKEN`).
//!
//! `updfn1.<payload>.<mac>`: the payload is base64url JSON naming the project, the function
//! and the granted collections or buckets; the MAC is HMAC-SHA256 under a key derived from the server's
//! secret key, so only this server mints them and a changed payload does not verify. A
//! credential is checked on every call against the functions served now: once its function is
//! deleted it verifies no more. It is minted per version, so a version keeps the grants it was
//! deployed with; replacing the secret key invalidates every credential (functions get new ones
//! when their versions are prepared again, at the next start).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The prefix of every function credential.
pub(crate) const PREFIX: &str = "updfn1.";

/// What a credential grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Grant {
    /// The project.
    #[serde(rename = "p")]
    pub(crate) project: String,
    /// The function.
    #[serde(rename = "f")]
    pub(crate) function: String,
    /// The collections it may use.
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) collections: Vec<String>,
    /// The buckets it may use, as the manifest grants them (`uploads:read`).
    #[serde(rename = "b", default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) buckets: Vec<String>,
}

/// Mints the credential for `grant`.
pub(crate) fn mint(key: &hmac::Key, grant: &Grant) -> String {
    let payload = B64.encode(serde_json::to_vec(grant).unwrap_or_default());
    let mac = hmac::sign(key, payload.as_bytes());
    format!("{PREFIX}{payload}.{}", B64.encode(mac.as_ref()))
}

/// The grant of `token`, if it is a credential this key minted.
pub(crate) fn verify(key: &hmac::Key, token: &str) -> Option<Grant> {
    let rest = token.strip_prefix(PREFIX)?;
    let (payload, mac) = rest.split_once('.')?;
    let mac = B64.decode(mac).ok()?;
    hmac::verify(key, payload.as_bytes(), &mac).ok()?;
    serde_json::from_slice(&B64.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests;
