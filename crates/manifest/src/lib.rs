//! The `updraft.toml` manifest: what a developer writes to describe an app.
//!
//! This crate owns the manifest's schema, its validation (every error names the file, the line
//! and the key, e.g. `updraft.toml:12: functions[1].http[0].route: must start with '/'`), and the
//! small value types the manifest is made of: names, durations, sizes, route patterns and
//! outbound-host patterns. It is plain Rust with no I/O beyond what the caller hands it, and it
//! must not depend on Wasmtime, storage or networking: the CLI, the control API and the gateway all
//! reuse it.
//!
//! ```
//! let text = r#"
//! [app]
//! name = "shop"
//!
//! [[functions]]
//! name = "hello"
//! component = "hello.wasm"
//!
//! [[functions.http]]
//! route = "/hello/:name"
//! "#;
//! let manifest = updraft_manifest::Manifest::parse("updraft.toml", text)?;
//! assert_eq!(manifest.functions[0].http[0].route.to_string(), "/hello/:name");
//! # Ok::<(), updraft_manifest::ManifestError>(())
//! ```

mod collections;
mod error;
mod outbound;
mod policy;
mod route;
mod schedule;
mod schema;
mod site;
mod units;

pub use collections::{Collection, RULE_OPERATIONS, is_field_path, is_store_name};
pub use error::{ManifestError, Problem};
pub use outbound::{OutboundHost, OutboundHostError};
pub use policy::RoutePolicy;
pub use route::{RouteError, RouteMatch, RoutePattern, Segment};
pub use schedule::{MIN_RATE, Schedule};
pub use schema::{
    App, BUCKET_EVENTS, BucketTrigger, DB_EVENTS, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_REQUEST_BODY, DEFAULT_MAX_RESPONSE_BODY,
    DEFAULT_MAX_REUSE, DEFAULT_MEMORY, DEFAULT_TIMEOUT, DbTrigger, Function, FunctionRuntime,
    HttpTrigger, InstanceReuse, KV_EVENTS, KvTrigger, LIVE, MAX_BATCH_SIZE, MAX_BODY,
    MAX_IDLE_TIMEOUT, MAX_MAX_ATTEMPTS, MAX_MAX_CONCURRENCY, MAX_MAX_REUSE, MAX_MEMORY,
    MAX_TIMEOUT, Manifest, Method, Name, NameError, QueueTrigger, QuotaMetric, QuotaPeriod, Quotas,
    Retry, ScheduleTrigger, TopicTrigger, is_env_name,
};
pub use site::{BucketDecl, MAX_SITE_RULES, Site, SiteHeaders, SiteRule};
pub use units::{ByteSize, format_duration, format_size, parse_duration, parse_size};
