//! Projects (`/v1/projects`): the tenants that own functions, keys, logs and usage; and their
//! secrets (`/v1/secrets`).

use serde::{Deserialize, Serialize};

/// The project used when a request names none.
pub const DEFAULT_PROJECT: &str = "default";

/// The header a control API call names its project with (a scoped key's own project is used
/// without it; naming another answers 404 `project_not_found`).
pub const PROJECT_HEADER: &str = "x-updraft-project";

/// `POST /v1/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Its name: 1 to 63 lower-case letters, digits and '-', starting with a letter (it is
    /// also the first label of its host name, `<name>.localhost`).
    pub name: String,
    /// Custom domains its functions are served on.
    #[serde(default)]
    pub domains: Vec<String>,
}

/// `PUT /v1/projects/{name}/domains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetDomains {
    /// The project's custom domains from now on (replacing the old list).
    pub domains: Vec<String>,
}

/// `PUT /v1/projects/{name}/cors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCors {
    /// Origins (`https://app.example.com`) browsers may call the project's routes and auth API
    /// from; `["*"]` for any; empty for none (the default).
    pub origins: Vec<String>,
}

/// A project as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectInfo {
    /// Its name.
    pub name: String,
    /// Its custom domains.
    pub domains: Vec<String>,
    /// Origins browsers may call it from (`*`: any).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// How many functions it has.
    pub functions: usize,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

/// `GET /v1/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectList {
    /// By name.
    pub projects: Vec<ProjectInfo>,
}

/// `PUT /v1/secrets/{name}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    /// The value (UTF-8, no NUL, at most 64 KiB). Never shown again.
    pub value: String,
}

impl std::fmt::Debug for SetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSecret")
            .field("value", &"<redacted>")
            .finish()
    }
}

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// Its name.
    pub name: String,
    /// When it was first set (ms since the epoch).
    pub created_at: i64,
    /// When it was last set.
    pub updated_at: i64,
    /// Functions a kept version of which lists it.
    pub used_by: Vec<String>,
}

/// `GET /v1/secrets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretList {
    /// By name.
    pub secrets: Vec<SecretInfo>,
}

/// The answer to [`SetSecret`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretSet {
    /// The secret (no value).
    pub secret: SecretInfo,
    /// Whether this call created it.
    pub created: bool,
    /// Functions whose new instances see the new value.
    pub restarted: Vec<String>,
}

/// One entry of the audit log (`GET /v1/audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Increasing id.
    pub id: i64,
    /// The project it happened in.
    pub project: String,
    /// When (ms since the epoch).
    pub ts_ms: i64,
    /// Who: a key id (`key_...`), `admin`, or `system` for the platform's own decisions.
    pub actor: String,
    /// What: `deploy`, `alias.set`, `rollback`, `key.create`, `secret.set`, ...
    pub action: String,
    /// On what: the resource's path under `/v1/`.
    pub target: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    /// The HTTP status answered (0 for the platform's own decisions).
    pub status: u16,
    /// What a deploy published, why a change failed, ...
    pub detail: String,
}

/// `GET /v1/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditList {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
}
