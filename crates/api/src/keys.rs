//! Scoped API keys for the control API (`/v1/keys`).

use serde::{Deserialize, Serialize};

/// The roles a scoped key can have, weakest first. The server-wide admin key is above all of
/// them.
pub const KEY_ROLES: [&str; 4] = ["metrics", "viewer", "deployer", "owner"];

/// `POST /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// One of [`KEY_ROLES`].
    pub role: String,
    /// The project the key acts in (default: the request's project).
    #[serde(default)]
    pub project: Option<String>,
    /// How long the key works (`30d`, `12h`); never expires without it.
    #[serde(default)]
    pub expires_in: Option<String>,
    /// What it is for (shown by `updraft key list`).
    #[serde(default)]
    pub description: String,
}

/// A key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Public id (`key_...`), used to revoke it.
    pub id: String,
    /// The project it acts in.
    pub project: String,
    /// Its role.
    pub role: String,
    /// What it is for.
    pub description: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When it stops working (ms since the epoch), if ever.
    pub expires_at: Option<i64>,
}

/// The answer to [`CreateKey`]: the only time the key is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedKey {
    /// The key (`upd_` + 64 hex); store it now, it can't be shown again.
    pub key: String,
    /// What was stored (its id among it).
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    /// Oldest first.
    pub keys: Vec<KeyInfo>,
}
