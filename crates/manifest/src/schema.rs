//! The manifest schema: the raw TOML shape (strict, unknown keys rejected) and the validated
//! model the rest of Updraft uses.
//!
//! Long file: the whole manifest schema (the raw TOML types, every key's validation rule and
//! the validated types) in one place, so one file shows each key and its rule; tests are in
//! `schema/tests.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::collections::is_store_name;
use crate::error::{Locator, ManifestError, Problem, Step, render_path};
use crate::outbound::OutboundHost;
use crate::policy::RoutePolicy;
use crate::route::RoutePattern;
use crate::schedule::Schedule;
use crate::units::{format_duration, format_size, parse_duration, parse_size};
use updraft_api::{Filter, check_resource_name};

mod db;
mod process;
pub use db::{BUCKET_EVENTS, BucketTrigger, DB_EVENTS, DbTrigger, KV_EVENTS, KvTrigger};
pub use process::FunctionRuntime;

/// Default per-invocation time limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest per-invocation time limit a manifest may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Default memory limit per instance.
pub const DEFAULT_MEMORY: u64 = 128 << 20;
/// Largest memory limit (a 32-bit linear memory's ceiling).
pub const MAX_MEMORY: u64 = 4 << 30;
/// Default maximum number of concurrent invocations of one function.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 100;
/// Largest `max_concurrency` a manifest may ask for.
pub const MAX_MAX_CONCURRENCY: u32 = 10_000;
/// Default time a function may sit unused before its code is dropped from memory.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest `idle_timeout` a manifest may ask for.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// The alias every function has, which routes serve unless they name another.
pub const LIVE: &str = "live";
/// Default request body limit.
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 16 << 20;
/// Default response body limit.
pub const DEFAULT_MAX_RESPONSE_BODY: u64 = 64 << 20;
/// Largest body limit a manifest may ask for.
pub const MAX_BODY: u64 = 4 << 30;
/// Default number of requests one warm instance serves before it is replaced.
pub const DEFAULT_MAX_REUSE: u32 = 1_000;
/// Largest `max_reuse`.
pub const MAX_MAX_REUSE: u32 = 1_000_000;
/// Default `max_attempts` of an event trigger.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Largest `max_attempts`.
pub const MAX_MAX_ATTEMPTS: u32 = 100;
/// Largest `batch_size` of a queue trigger.
pub const MAX_BATCH_SIZE: u32 = 100;

// ---------------------------------------------------------------------------------------------
// Raw TOML shape.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    app: RawApp,
    #[serde(default)]
    functions: Vec<RawFunction>,
    #[serde(default)]
    collections: Vec<crate::collections::RawCollection>,
    site: Option<crate::site::RawSite>,
    #[serde(default)]
    buckets: Vec<crate::site::RawBucket>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    name: String,
    component: Option<String>,
    runtime: Option<String>,
    handler: Option<String>,
    code: Option<String>,
    build: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    variables: Option<BTreeMap<String, String>>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    timeout: Option<String>,
    memory: Option<String>,
    max_concurrency: Option<i64>,
    min_instances: Option<i64>,
    idle_timeout: Option<String>,
    instance_reuse: Option<String>,
    max_reuse: Option<i64>,
    max_request_body: Option<String>,
    max_response_body: Option<String>,
    allow_version_pinning: Option<bool>,
    quota: Option<Quotas>,
    #[serde(default)]
    http: Vec<RawHttp>,
    #[serde(default)]
    schedule: Vec<RawSchedule>,
    #[serde(default)]
    queue: Vec<RawQueue>,
    #[serde(default)]
    topic: Vec<RawTopic>,
    #[serde(default)]
    db: Vec<db::RawDbTrigger>,
    #[serde(default)]
    kv: Vec<db::RawKvTrigger>,
    #[serde(default)]
    bucket: Vec<db::RawBucketTrigger>,
    #[serde(default)]
    collections: Vec<String>,
    #[serde(default)]
    buckets: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: Option<String>,
    timezone: Option<String>,
    rate: Option<String>,
    max_attempts: Option<i64>,
    dead_letter: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    queue: String,
    batch_size: Option<i64>,
    max_attempts: Option<i64>,
    dead_letter: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    topic: String,
    filter: Option<Filter>,
    max_attempts: Option<i64>,
    dead_letter: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    route: String,
    methods: Option<Vec<String>>,
    alias: Option<String>,
    auth: Option<toml::Value>,
}

// ---------------------------------------------------------------------------------------------
// Validated model.

/// A validated `updraft.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The `[app]` table.
    pub app: App,
    /// The `[[functions]]` tables, in file order.
    pub functions: Vec<Function>,
    /// The `[[collections]]` tables: the app's document collections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<crate::Collection>,
    /// The `[site]` table: the app's static files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<crate::Site>,
    /// The `[[buckets]]` tables: buckets the app declares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<crate::BucketDecl>,
}

/// The `[app]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// `name = "shop"`: the app's name, unique within a project.
    pub name: Name,
}

/// One `[[functions]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// `name = "hello"`: unique within a project.
    pub name: Name,
    /// `component = "target/wasm32-wasip2/release/hello.wasm"`: relative to the manifest's
    /// directory (empty for a process function).
    pub component: String,
    /// `runtime = "python"`: what runs the code (`wasm`, the default, or a process runtime
    /// speaking the Lambda Runtime API).
    #[serde(default, skip_serializing_if = "is_wasm")]
    pub runtime: FunctionRuntime,
    /// `handler = "app.handler"`: a process function's entry point, as on Lambda (`_HANDLER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// `code = "src"`: a process function's code, a directory or a `.zip` relative to the
    /// manifest's directory (`.` when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `build = "cargo build --release --target wasm32-wasip2"`: run by `deploy`/`up` first.
    pub build: Option<String>,
    /// `env = { GREETING = "hi" }`: environment variables the guest sees.
    pub env: BTreeMap<String, String>,
    /// `secrets = ["STRIPE_KEY"]`: the project's secrets the guest sees as environment
    /// variables of the same names (values are set with `updraft secret set`, never here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// `key_value_stores = ["default"]`: the project's key-value stores the guest may open
    /// (`wasi:keyvalue`, Spin's key-value); created at deploy if missing. Empty: the
    /// interfaces are absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_value_stores: Vec<String>,
    /// `variables = { api_url = "https://..." }`: configuration the guest reads through
    /// `wasi:config/store`. Present (even empty) grants the function that interface; absent,
    /// a component importing it cannot be deployed as this function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<BTreeMap<String, String>>,
    /// `allowed_outbound_hosts = ["https://api.example.com"]`: hosts the guest may call.
    pub allowed_outbound_hosts: Vec<String>,
    /// `timeout = "30s"`: time limit per invocation, in milliseconds. `None`: the server's
    /// default.
    pub timeout_ms: Option<u64>,
    /// `memory = "128MiB"`: memory limit per instance, in bytes.
    pub memory_bytes: Option<u64>,
    /// `max_concurrency = 100`: invocations of this function running at once.
    pub max_concurrency: Option<u32>,
    /// `min_instances = 1`: instances kept loaded and pre-instantiated even when idle.
    #[serde(default)]
    pub min_instances: u32,
    /// `idle_timeout = "10m"`: how long the function may go unused before its code is dropped
    /// from memory (the next request is a cold start), in milliseconds.
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    /// `instance_reuse = "fresh" | "warm"`.
    #[serde(default)]
    pub instance_reuse: InstanceReuse,
    /// `max_reuse = 1000`: with `instance_reuse = "warm"`, requests one instance serves before
    /// it is replaced.
    #[serde(default)]
    pub max_reuse: Option<u32>,
    /// `max_request_body = "16MiB"`: larger request bodies are refused with 413.
    #[serde(default)]
    pub max_request_body: Option<u64>,
    /// `max_response_body = "64MiB"`: larger response bodies are cut off (502 when the size is
    /// known up front).
    #[serde(default)]
    pub max_response_body: Option<u64>,
    /// `allow_version_pinning = true`: any caller may pick a version or alias with the
    /// `x-updraft-version` / `x-updraft-alias` request headers (without it, only callers
    /// presenting the admin token may).
    #[serde(default)]
    pub allow_version_pinning: bool,
    /// `quota = { invocations_per_day = 10000 }`: usage limits; past one, requests get 429
    /// `quota_exceeded` until the period ends.
    #[serde(default)]
    pub quota: Quotas,
    /// `[[functions.http]]` tables.
    pub http: Vec<HttpTrigger>,
    /// `[[functions.schedule]]` tables.
    #[serde(default)]
    pub schedule: Vec<ScheduleTrigger>,
    /// `[[functions.queue]]` tables.
    #[serde(default)]
    pub queue: Vec<QueueTrigger>,
    /// `[[functions.topic]]` tables.
    #[serde(default)]
    pub topic: Vec<TopicTrigger>,
    /// `[[functions.db]]` tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub db: Vec<DbTrigger>,
    /// `[[functions.kv]]` tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kv: Vec<KvTrigger>,
    /// `[[functions.bucket]]` tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bucket: Vec<BucketTrigger>,
    /// `collections = ["orders"]`: the app's collections the function may read and write
    /// through the document API, with the credential the platform gives it
    /// (`UPDRAFT_DB_URL`, `UPDRAFT_DB_TOKEN`). Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<String>,
    /// `buckets = ["uploads:read", "thumbs:write"]`: the project's buckets the function may
    /// reach, each `name` (read and write), `name:read` or `name:write`, with the S3
    /// credentials (`AWS_ACCESS_KEY_ID`, ...) and the bearer credential the platform gives it.
    /// Missing buckets are made at deploy. Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<String>,
}

/// What happens to an event whose delivery fails (on every event trigger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// `max_attempts = 3`: deliveries tried before the event is dead-lettered.
    pub max_attempts: u32,
    /// `dead_letter = "orders-failed"`: the queue failed events go to (`None`: the function's
    /// own, `<function>-dlq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
}

/// One `[[functions.schedule]]` table: `cron` (with an optional `timezone`) or `rate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleTrigger {
    /// `cron = "*/5 * * * *"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// `timezone = "Europe/Berlin"` (with `cron`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `rate = "30s"`, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_ms: Option<u64>,
    /// Retries and dead letters.
    pub retry: Retry,
}

impl ScheduleTrigger {
    /// The schedule it describes.
    ///
    /// # Errors
    /// Only if the time-zone database no longer knows its time zone (it was validated).
    pub fn schedule(&self) -> Result<Schedule, String> {
        match (&self.cron, self.rate_ms) {
            (Some(cron), _) => Schedule::cron(cron, self.timezone.as_deref()),
            (None, Some(ms)) => Ok(Schedule::Rate(Duration::from_millis(ms))),
            (None, None) => Err("a schedule needs `cron` or `rate`".to_owned()),
        }
    }
}

/// One `[[functions.queue]]` table: the function consumes a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueTrigger {
    /// `queue = "orders"`: created on deploy if it does not exist.
    pub queue: String,
    /// `batch_size = 10`: messages per invocation (more than 1: CloudEvents batch mode).
    pub batch_size: u32,
    /// Retries and dead letters.
    pub retry: Retry,
}

/// One `[[functions.topic]]` table: the function subscribes to a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicTrigger {
    /// `topic = "signups"`: created on deploy if it does not exist.
    pub topic: String,
    /// `filter = { plan = "pro", region = ["eu", "us"] }`: only publications whose attributes
    /// match.
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub filter: Filter,
    /// Retries and dead letters.
    pub retry: Retry,
}

/// Usage limits per UTC calendar day or month (`quota = { ... }` on a function; `[quotas.<project>]`
/// in the server config). Each is optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Invocations per day.
    pub invocations_per_day: Option<u64>,
    /// Invocations per month.
    pub invocations_per_month: Option<u64>,
    /// GB-seconds (configured memory x billed duration) per day.
    pub gb_seconds_per_day: Option<u64>,
    /// GB-seconds per month.
    pub gb_seconds_per_month: Option<u64>,
}

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaMetric {
    /// Invocations.
    Invocations,
    /// GB-seconds.
    GbSeconds,
}

/// The calendar period (UTC) a quota resets after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaPeriod {
    /// A day.
    Day,
    /// A month.
    Month,
}

impl QuotaMetric {
    /// `invocations` or `gb_seconds`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaMetric::Invocations => "invocations",
            QuotaMetric::GbSeconds => "gb_seconds",
        }
    }
}

impl QuotaPeriod {
    /// `day` or `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "day",
            QuotaPeriod::Month => "month",
        }
    }
}

impl Quotas {
    /// The limits that are set.
    pub fn limits(&self) -> Vec<(QuotaMetric, QuotaPeriod, u64)> {
        use QuotaMetric::{GbSeconds, Invocations};
        use QuotaPeriod::{Day, Month};
        [
            (Invocations, Day, self.invocations_per_day),
            (Invocations, Month, self.invocations_per_month),
            (GbSeconds, Day, self.gb_seconds_per_day),
            (GbSeconds, Month, self.gb_seconds_per_month),
        ]
        .into_iter()
        .filter_map(|(m, p, v)| Some((m, p, v?)))
        .collect()
    }
}

/// Whether an instance may serve more than one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceReuse {
    /// A new instance per request: nothing leaks from one request to the next (the default).
    #[default]
    Fresh,
    /// One instance serves sequential requests (never two at once), like a Lambda execution
    /// environment, up to `max_reuse` requests and while it is not idle too long.
    Warm,
}

impl InstanceReuse {
    /// `fresh` or `warm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Warm => "warm",
        }
    }
}

fn is_wasm(r: &FunctionRuntime) -> bool {
    *r == FunctionRuntime::Wasm
}

impl Function {
    /// The parsed `allowed_outbound_hosts` (valid by construction).
    pub fn outbound_hosts(&self) -> Vec<OutboundHost> {
        self.allowed_outbound_hosts
            .iter()
            .filter_map(|h| OutboundHost::parse(h).ok())
            .collect()
    }
}

/// One `[[functions.http]]` table: a route that invokes the function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpTrigger {
    /// `route = "/hello/:name"`.
    #[serde(with = "route_serde")]
    pub route: RoutePattern,
    /// `methods = ["GET"]`; empty means every method.
    pub methods: Vec<Method>,
    /// `alias = "staging"`: the alias this route serves (`None`: `live`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<Name>,
    /// `auth = "user"`: who may call the route (default: anyone).
    #[serde(default, skip_serializing_if = "RoutePolicy::is_public")]
    pub auth: RoutePolicy,
}

impl HttpTrigger {
    /// The alias this route serves: its `alias`, or `live`.
    pub fn alias(&self) -> &str {
        self.alias.as_ref().map_or(LIVE, Name::as_str)
    }

    /// Whether this trigger accepts `method`.
    pub fn accepts(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m.0 == method)
    }

    /// Whether two triggers could both accept some request method.
    pub fn methods_overlap(&self, other: &HttpTrigger) -> bool {
        self.methods.is_empty()
            || other.methods.is_empty()
            || self.methods.iter().any(|m| other.methods.contains(m))
    }
}

mod route_serde {
    use super::RoutePattern;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(r: &RoutePattern, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(r)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RoutePattern, D::Error> {
        let s = String::deserialize(d)?;
        RoutePattern::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An HTTP method name, upper case (`GET`, `POST`, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Method(String);

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

impl Method {
    /// The method as an upper-case string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let upper = s.to_ascii_uppercase();
        if METHODS.contains(&upper.as_str()) {
            Ok(Self(upper))
        } else {
            Err(format!(
                "`{s}` is not an HTTP method (use one of {})",
                METHODS.join(", ")
            ))
        }
    }
}

/// A name for an app or a function: 1 to 63 characters of lower-case letters, digits and `-`,
/// starting with a letter (so it is safe in URLs, file names and metric labels).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

/// Why a name is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a valid name: use 1 to 63 lower-case letters, digits and '-', starting with a letter"
)]
pub struct NameError(String);

impl Name {
    /// Validates a name.
    ///
    /// # Errors
    /// [`NameError`] when the name breaks the rules above.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let ok = (1..=63).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError(s.to_owned()))
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::new(&s).map_err(serde::de::Error::custom)
    }
}

impl FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Name::new(s)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation.

/// Collects problems with their key paths while validating.
struct Checker<'a> {
    locator: Locator<'a>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, path: &[Step], message: impl Into<String>) {
        self.problems.push(Problem {
            line: self.locator.line_of_path(path),
            key: render_path(path),
            message: message.into(),
        });
    }
}

fn key(k: &str) -> Step {
    Step::Key(k.to_owned())
}

impl Manifest {
    /// Parses and validates a manifest. `file` names the file in error messages.
    ///
    /// # Errors
    /// [`ManifestError`] listing every problem found, each with its line and key.
    pub fn parse(file: &str, text: &str) -> Result<Manifest, ManifestError> {
        let locator = Locator::new(text);
        let raw: RawManifest = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let (line, key) = match e.span() {
                    Some(span) => (
                        Some(locator.line_of(span.start)),
                        render_path(&locator.path_at(&span)),
                    ),
                    None => (None, String::new()),
                };
                return Err(ManifestError {
                    file: file.to_owned(),
                    problems: vec![Problem {
                        line,
                        key,
                        message: e.message().trim().to_owned(),
                    }],
                });
            }
        };
        let mut checker = Checker {
            locator,
            problems: Vec::new(),
        };
        let manifest = validate(raw, &mut checker);
        if checker.problems.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError {
                file: file.to_owned(),
                problems: checker.problems,
            })
        }
    }
}

/// Whether `k` is a valid environment variable (and secret) name.
pub fn is_env_name(k: &str) -> bool {
    (1..=255).contains(&k.len())
        && k.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
        && k.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn validate(raw: RawManifest, c: &mut Checker<'_>) -> Manifest {
    let app_name = Name::new(&raw.app.name).unwrap_or_else(|e| {
        c.report(&[key("app"), key("name")], e.to_string());
        Name(raw.app.name.clone())
    });
    let mut functions: Vec<Function> = Vec::new();
    for (i, f) in raw.functions.into_iter().enumerate() {
        let at = |k: &str| vec![key("functions"), Step::Index(i), key(k)];
        let name = Name::new(&f.name).unwrap_or_else(|e| {
            c.report(&at("name"), e.to_string());
            Name(f.name.clone())
        });
        if let Some(j) = functions.iter().position(|g| g.name == name) {
            c.report(
                &at("name"),
                format!("function `{name}` is already defined by functions[{j}]"),
            );
        }
        let code = process::check(
            c,
            i,
            &process::RawRuntime {
                runtime: f.runtime.as_deref(),
                component: f.component.as_deref(),
                handler: f.handler.as_deref(),
                code: f.code.as_deref(),
                key_value_stores: !f.key_value_stores.is_empty(),
                variables: f.variables.is_some(),
                allowed_outbound_hosts: !f.allowed_outbound_hosts.is_empty(),
                instance_reuse: f.instance_reuse.as_deref(),
            },
        );
        if let Some(b) = &f.build
            && b.trim().is_empty()
        {
            c.report(&at("build"), "must be a command, or be left out");
        }
        for k in f.env.keys() {
            if !is_env_name(k) {
                let mut p = at("env");
                p.push(key(k));
                c.report(
                    &p,
                    format!("`{k}` is not a valid environment variable name"),
                );
            }
        }
        for (j, s) in f.secrets.iter().enumerate() {
            let mut p = at("secrets");
            p.push(Step::Index(j));
            if !is_env_name(s) {
                c.report(
                    &p,
                    format!("`{s}` is not a valid secret name (an environment variable name)"),
                );
            } else if f.env.contains_key(s) {
                c.report(&p, format!("`{s}` is also set in env; give it one value"));
            } else if f.secrets[..j].contains(s) {
                c.report(&p, format!("`{s}` is listed twice"));
            }
        }
        for (j, s) in f.key_value_stores.iter().enumerate() {
            let mut p = at("key_value_stores");
            p.push(Step::Index(j));
            if !is_store_name(s) {
                c.report(
                    &p,
                    format!(
                        "`{s}` is not a valid store name (1 to 63 of a-z, 0-9, `-`, `_`, \
                         starting with a letter or digit)"
                    ),
                );
            } else if f.key_value_stores[..j].contains(s) {
                c.report(&p, format!("`{s}` is listed twice"));
            }
        }
        for k in f.variables.iter().flat_map(BTreeMap::keys) {
            let valid = (1..=128).contains(&k.len())
                && k.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
            if !valid {
                let mut p = at("variables");
                p.push(key(k));
                c.report(
                    &p,
                    format!(
                        "`{k}` is not a valid variable name (1 to 128 letters, digits, `_`, `-` or `.`)"
                    ),
                );
            }
        }
        for (j, h) in f.allowed_outbound_hosts.iter().enumerate() {
            if let Err(e) = OutboundHost::parse(h) {
                let mut p = at("allowed_outbound_hosts");
                p.push(Step::Index(j));
                c.report(&p, e.to_string());
            }
        }
        let timeout = check_duration(c, &at("timeout"), f.timeout.as_deref(), MAX_TIMEOUT);
        let idle_timeout = check_duration(
            c,
            &at("idle_timeout"),
            f.idle_timeout.as_deref(),
            MAX_IDLE_TIMEOUT,
        );
        let memory = check_size(c, &at("memory"), f.memory.as_deref(), 1 << 20, MAX_MEMORY);
        let max_request_body = check_size(
            c,
            &at("max_request_body"),
            f.max_request_body.as_deref(),
            0,
            MAX_BODY,
        );
        let max_response_body = check_size(
            c,
            &at("max_response_body"),
            f.max_response_body.as_deref(),
            0,
            MAX_BODY,
        );
        let max_concurrency = check_count(
            c,
            &at("max_concurrency"),
            f.max_concurrency,
            1,
            MAX_MAX_CONCURRENCY,
        );
        let min_instances = check_count(
            c,
            &at("min_instances"),
            f.min_instances,
            0,
            max_concurrency.unwrap_or(MAX_MAX_CONCURRENCY),
        );
        let max_reuse = check_count(c, &at("max_reuse"), f.max_reuse, 1, MAX_MAX_REUSE);
        let instance_reuse = match f.instance_reuse.as_deref() {
            _ if code.runtime.is_process() => InstanceReuse::Warm,
            None | Some("fresh") => InstanceReuse::Fresh,
            Some("warm") => InstanceReuse::Warm,
            Some(other) => {
                c.report(
                    &at("instance_reuse"),
                    format!("`{other}` is not an instance reuse mode (use \"fresh\" or \"warm\")"),
                );
                InstanceReuse::Fresh
            }
        };
        if max_reuse.is_some() && instance_reuse == InstanceReuse::Fresh {
            c.report(
                &at("max_reuse"),
                "only applies with instance_reuse = \"warm\"",
            );
        }
        let quota = f.quota.unwrap_or_default();
        if quota.limits().iter().any(|(_, _, v)| *v == 0) {
            c.report(
                &at("quota"),
                "limits must be at least 1 (leave a limit out to have none)",
            );
        }
        let mut http = Vec::new();
        for (j, h) in f.http.into_iter().enumerate() {
            let at_http = |k: &str| {
                vec![
                    key("functions"),
                    Step::Index(i),
                    key("http"),
                    Step::Index(j),
                    key(k),
                ]
            };
            if h.route == "/_updraft" || h.route.starts_with("/_updraft/") {
                c.report(
                    &at_http("route"),
                    "paths under /_updraft/ are reserved for the platform's queue and topic APIs",
                );
                continue;
            }
            let route = match RoutePattern::parse(&h.route) {
                Ok(r) => r,
                Err(e) => {
                    c.report(&at_http("route"), e.to_string());
                    continue;
                }
            };
            let mut methods = Vec::new();
            for (k, m) in h.methods.unwrap_or_default().iter().enumerate() {
                match m.parse::<Method>() {
                    Ok(m) if !methods.contains(&m) => methods.push(m),
                    Ok(m) => {
                        let mut p = at_http("methods");
                        p.push(Step::Index(k));
                        c.report(&p, format!("`{}` is listed twice", m.as_str()));
                    }
                    Err(e) => {
                        let mut p = at_http("methods");
                        p.push(Step::Index(k));
                        c.report(&p, e);
                    }
                }
            }
            let alias = h.alias.and_then(|a| match Name::new(&a) {
                Ok(a) => Some(a),
                Err(e) => {
                    c.report(&at_http("alias"), e.to_string());
                    None
                }
            });
            let auth = match h.auth.as_ref().map(RoutePolicy::parse) {
                None => RoutePolicy::Public,
                Some(Ok(p)) => p,
                Some(Err(e)) => {
                    c.report(&at_http("auth"), e);
                    RoutePolicy::Public
                }
            };
            http.push((
                j,
                HttpTrigger {
                    route,
                    methods,
                    alias,
                    auth,
                },
            ));
        }
        // Routes that conflict with an earlier route in this manifest.
        for (j, trigger) in &http {
            let earlier = functions.iter().enumerate().flat_map(|(fi, g)| {
                g.http
                    .iter()
                    .enumerate()
                    .map(move |(hi, t)| (format!("functions[{fi}].http[{hi}]"), t))
            });
            let same_fn = http
                .iter()
                .take_while(|(k, _)| k < j)
                .map(|(k, t)| (format!("functions[{i}].http[{k}]"), t));
            for (where_, other) in earlier.chain(same_fn) {
                if other.route.shape() == trigger.route.shape() && other.methods_overlap(trigger) {
                    c.report(
                        &[
                            key("functions"),
                            Step::Index(i),
                            key("http"),
                            Step::Index(*j),
                            key("route"),
                        ],
                        format!(
                            "`{}` conflicts with `{}` at {where_}",
                            trigger.route, other.route
                        ),
                    );
                    break;
                }
            }
        }
        let (schedule, queue, topic) = event_triggers(c, i, f.schedule, f.queue, f.topic);
        let db = db::db_triggers(c, i, f.db);
        let kv = db::kv_triggers(c, i, f.kv);
        let bucket = db::bucket_triggers(c, i, f.bucket);
        db::bucket_grants(c, i, &f.buckets);
        functions.push(Function {
            name,
            component: code.component,
            runtime: code.runtime,
            handler: code.handler,
            code: code.code,
            build: f.build,
            env: f.env,
            secrets: f.secrets,
            key_value_stores: f.key_value_stores,
            variables: f.variables,
            allowed_outbound_hosts: f.allowed_outbound_hosts,
            timeout_ms: timeout.map(duration_ms),
            memory_bytes: memory,
            max_concurrency,
            min_instances: min_instances.unwrap_or(0),
            idle_timeout_ms: idle_timeout.map(duration_ms),
            instance_reuse,
            max_reuse,
            max_request_body,
            max_response_body,
            allow_version_pinning: f.allow_version_pinning.unwrap_or(false),
            quota,
            http: http.into_iter().map(|(_, t)| t).collect(),
            schedule,
            queue,
            topic,
            db,
            kv,
            bucket,
            collections: f.collections,
            buckets: f.buckets,
        });
    }
    let (collections, problems) = crate::collections::validate(raw.collections);
    for (path, message) in problems {
        c.report(&path, message);
    }
    for (i, f) in functions.iter().enumerate() {
        db::check_collections(c, i, &f.collections, &f.db, &collections);
    }
    let (site, problems) = crate::site::validate(raw.site);
    for (path, message) in problems {
        c.report(&path, message);
    }
    let (buckets, problems) = crate::site::validate_buckets(raw.buckets);
    for (path, message) in problems {
        c.report(&path, message);
    }
    Manifest {
        app: App { name: app_name },
        functions,
        collections,
        site,
        buckets,
    }
}

/// Validates a function's `schedule`, `queue` and `topic` tables.
fn event_triggers(
    c: &mut Checker<'_>,
    i: usize,
    schedules: Vec<RawSchedule>,
    queues: Vec<RawQueue>,
    topics: Vec<RawTopic>,
) -> (Vec<ScheduleTrigger>, Vec<QueueTrigger>, Vec<TopicTrigger>) {
    let at = |table: &str, j: usize, k: &str| {
        vec![
            key("functions"),
            Step::Index(i),
            key(table),
            Step::Index(j),
            key(k),
        ]
    };
    let retry =
        |c: &mut Checker<'_>, table: &str, j: usize, max: Option<i64>, dl: Option<String>| {
            let max_attempts =
                check_count(c, &at(table, j, "max_attempts"), max, 1, MAX_MAX_ATTEMPTS)
                    .unwrap_or(DEFAULT_MAX_ATTEMPTS);
            if let Some(q) = &dl
                && let Err(e) = check_resource_name("queue", q)
            {
                c.report(&at(table, j, "dead_letter"), e);
            }
            Retry {
                max_attempts,
                dead_letter: dl,
            }
        };
    let mut out_schedules = Vec::new();
    for (j, s) in schedules.into_iter().enumerate() {
        let retry = retry(c, "schedule", j, s.max_attempts, s.dead_letter);
        let parsed = match (&s.cron, &s.rate) {
            (Some(cron), None) => Schedule::cron(cron, s.timezone.as_deref())
                .map_err(|e| {
                    let k = if e.contains("time zone") {
                        "timezone"
                    } else {
                        "cron"
                    };
                    c.report(&at("schedule", j, k), e);
                })
                .ok(),
            (None, Some(rate)) => {
                if s.timezone.is_some() {
                    c.report(&at("schedule", j, "timezone"), "only applies to `cron`");
                }
                Schedule::rate(rate)
                    .map_err(|e| c.report(&at("schedule", j, "rate"), e))
                    .ok()
            }
            (Some(_), Some(_)) => {
                c.report(
                    &at("schedule", j, "rate"),
                    "give `cron` or `rate`, not both",
                );
                None
            }
            (None, None) => {
                let mut p = at("schedule", j, "cron");
                p.pop();
                c.report(&p, "a schedule needs `cron = \"...\"` or `rate = \"...\"`");
                None
            }
        };
        if let Some(schedule) = parsed {
            out_schedules.push(ScheduleTrigger {
                cron: s.cron,
                timezone: s.timezone,
                rate_ms: match schedule {
                    Schedule::Rate(d) => Some(duration_ms(d)),
                    Schedule::Cron { .. } => None,
                },
                retry,
            });
        }
    }
    let mut out_queues: Vec<QueueTrigger> = Vec::new();
    for (j, q) in queues.into_iter().enumerate() {
        let retry = retry(c, "queue", j, q.max_attempts, q.dead_letter);
        if let Err(e) = check_resource_name("queue", &q.queue) {
            c.report(&at("queue", j, "queue"), e);
        } else if out_queues.iter().any(|t| t.queue == q.queue) {
            c.report(
                &at("queue", j, "queue"),
                format!("`{}` is consumed twice", q.queue),
            );
        }
        let batch_size = check_count(
            c,
            &at("queue", j, "batch_size"),
            q.batch_size,
            1,
            MAX_BATCH_SIZE,
        )
        .unwrap_or(1);
        out_queues.push(QueueTrigger {
            queue: q.queue,
            batch_size,
            retry,
        });
    }
    let mut out_topics: Vec<TopicTrigger> = Vec::new();
    for (j, t) in topics.into_iter().enumerate() {
        let retry = retry(c, "topic", j, t.max_attempts, t.dead_letter);
        if let Err(e) = check_resource_name("topic", &t.topic) {
            c.report(&at("topic", j, "topic"), e);
        } else if out_topics.iter().any(|o| o.topic == t.topic) {
            c.report(
                &at("topic", j, "topic"),
                format!("`{}` is subscribed to twice", t.topic),
            );
        }
        out_topics.push(TopicTrigger {
            topic: t.topic,
            filter: t.filter.unwrap_or_default(),
            retry,
        });
    }
    (out_schedules, out_queues, out_topics)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A duration between 1ms and `max`, or a reported problem.
fn check_duration(
    c: &mut Checker<'_>,
    path: &[Step],
    value: Option<&str>,
    max: Duration,
) -> Option<Duration> {
    match parse_duration(value?) {
        Ok(d) if d.is_zero() || d > max => {
            c.report(
                path,
                format!("must be between 1ms and {}", format_duration(max)),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            c.report(path, e);
            None
        }
    }
}

/// A size between `min` and `max`, or a reported problem.
fn check_size(
    c: &mut Checker<'_>,
    path: &[Step],
    value: Option<&str>,
    min: u64,
    max: u64,
) -> Option<u64> {
    match parse_size(value?) {
        Ok(n) if !(min..=max).contains(&n) => {
            c.report(
                path,
                format!(
                    "must be between {} and {}",
                    format_size(min),
                    format_size(max)
                ),
            );
            None
        }
        Ok(n) => Some(n),
        Err(e) => {
            c.report(path, e);
            None
        }
    }
}

/// A whole number between `min` and `max`, or a reported problem.
fn check_count(
    c: &mut Checker<'_>,
    path: &[Step],
    value: Option<i64>,
    min: u32,
    max: u32,
) -> Option<u32> {
    match u32::try_from(value?) {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            c.report(path, format!("must be between {min} and {max}"));
            None
        }
    }
}

#[cfg(test)]
mod tests;
