//! Roles, and the role each control API endpoint needs.

use http::Method;

/// What a key may do, weakest first. `Metrics` only scrapes `/metrics`; every other role
/// includes the ones before it; `Admin` (the server-wide key) may do everything, in every
/// project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    Metrics,
    Viewer,
    Deployer,
    Owner,
    Admin,
}

impl Role {
    /// A scoped key's role by name (`admin` is not one).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "metrics" => Some(Self::Metrics),
            "viewer" => Some(Self::Viewer),
            "deployer" => Some(Self::Deployer),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Viewer => "viewer",
            Self::Deployer => "deployer",
            Self::Owner => "owner",
            Self::Admin => "admin",
        }
    }

    /// Whether this role may call an endpoint that needs `needed`.
    pub(crate) fn allows(self, needed: Role) -> bool {
        // Every role that can read can also scrape metrics; a metrics key can do nothing else.
        self >= needed && (needed == Role::Metrics || self != Role::Metrics)
    }
}

/// The role an endpoint needs, by method and route pattern (axum's `MatchedPath`). Reads need
/// a viewer; changes a deployer; keys, queue and topic administration an owner. A change to a
/// route this table does not name needs an owner, so a new endpoint is never open by mistake.
pub(crate) fn required(method: &Method, route: &str) -> Role {
    let read = *method == Method::GET || *method == Method::HEAD;
    match route {
        "/metrics" => Role::Metrics,
        // Creating and deleting projects is the server admin's; an owner sets its domains.
        "/v1/projects" | "/v1/projects/{name}" if !read => Role::Admin,
        // Every project's data at once: the server admin's.
        "/v1/backup" | "/v1/restore" => Role::Admin,
        "/v1/projects/{name}/domains" | "/v1/projects/{name}/cors" => Role::Owner,
        "/v1/secrets/{name}" => Role::Owner,
        // Who changed what (key ids among it) is an owner's business.
        "/v1/audit" => Role::Owner,
        // End users' records are personal data: the owner's.
        r if r.starts_with("/v1/users") => Role::Owner,
        "/v1/auth/keys/rotate" | "/v1/auth/mail" => Role::Owner,
        "/v1/keys" | "/v1/keys/{id}" => Role::Owner,
        // S3 access keys are credentials like API keys: the owner's, listing included.
        "/v1/s3-keys" | "/v1/s3-keys/{id}" => Role::Owner,
        // Reading a function's log shows what its requests carried: a deployer's business.
        "/v1/functions/{name}/logs" => Role::Deployer,
        "/v1/queues/{q}/keys" | "/v1/topics/{t}/keys" => Role::Owner,
        _ if read => Role::Viewer,
        // Key-value data: what functions store, so what a deployer may change.
        r if r.starts_with("/v1/kv/") => Role::Deployer,
        // Documents: what apps store, likewise.
        r if r.starts_with("/v1/db/") => Role::Deployer,
        // Buckets: where apps keep files, likewise.
        "/v1/buckets" | "/v1/buckets/{name}" | "/v1/buckets/{name}/objects/{*key}" => {
            Role::Deployer
        }
        "/v1/artifacts/{digest}"
        | "/v1/site/files/missing"
        | "/v1/site/files/{digest}"
        | "/v1/site/rollback"
        | "/v1/apps"
        | "/v1/functions/{name}"
        | "/v1/functions/{name}/aliases/{alias}"
        | "/v1/functions/{name}/rollback"
        | "/v1/functions/{name}/invoke"
        | "/v1/functions/{name}/invocations" => Role::Deployer,
        _ => Role::Owner,
    }
}
