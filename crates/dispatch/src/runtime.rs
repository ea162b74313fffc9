//! The boundary between the dispatcher and the runtimes that run code: what an invocation hands
//! a runtime ([`Invocation`]), what a runtime reports back while it runs ([`InvocationSink`],
//! [`Report`]) and how it fails ([`InvokeError`]), and the two traits a runtime implements:
//! [`Runtime`] for one deployed version (invoke, finish, evict when idle, stats) and
//! [`RuntimeProvider`] to make them.
//!
//! The wasm engine (`updraft-engine`) implements both today; a process runtime speaking the AWS
//! Lambda Runtime API will be the second. Nothing here knows Wasmtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use updraft_manifest::OutboundHost;

use crate::body::Body;
use crate::event::Events;

/// A boxed future, for the object-safe traits here.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one invocation asks a runtime to run.
#[allow(
    clippy::large_enum_variant,
    reason = "the HTTP request is the hot path: boxing it would cost an allocation per request"
)]
pub enum Input {
    /// An HTTP request (the `http` trigger and direct invokes).
    Http(http::Request<Body>),
    /// Events (schedule, queue, topic, asynchronous invoke): a runtime encodes them the way its
    /// guests expect (CloudEvents over HTTP for wasm, Lambda's event shapes for processes).
    Events(Events),
}

/// One invocation as a runtime sees it.
pub struct Invocation {
    /// Its request id (`x-updraft-request-id`).
    pub request_id: String,
    /// The version being run.
    pub version: u32,
    /// The W3C `traceparent` the guest sees (its parent is the dispatcher's execute span).
    pub traceparent: String,
    /// What triggered it (a runtime may shape the input by it: Lambda's event shapes).
    pub trigger: updraft_api::Trigger,
    /// What to run.
    pub input: Input,
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
    /// The platform, about this invocation (a trap, a denied outbound request).
    Platform,
}

impl Stream {
    /// `stdout`, `stderr` or `platform`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Platform => "platform",
        }
    }
}

/// Observes one invocation for the dispatcher: receives its log lines as they are written,
/// gives the trace context its outbound requests carry, hears of a cold start, and gets its
/// [`Report`] when the guest is done. Implementations must be cheap and must not block: `line`
/// is called from the guest's write path (queue the line, don't write it to disk inline).
pub trait InvocationSink: Send + Sync {
    /// One line, without its trailing newline.
    fn line(&self, stream: Stream, line: &str);

    /// The W3C `traceparent` the guest's outbound HTTP requests carry (unless the guest sets
    /// its own), if the invocation is traced.
    fn traceparent(&self) -> Option<String> {
        None
    }

    /// The version's code had to be loaded for this invocation (a cold start) and took `load`.
    fn cold_start(&self, load: Duration) {
        let _ = load;
    }

    /// The guest's run is over (response body included). Called once per attempt: a request
    /// replayed on a fresh instance after failing on a reused one reports twice, the replay
    /// last.
    fn finished(&self, report: Report) {
        let _ = report;
    }
}

/// What one guest run used and how it ended, for metering and traces.
#[derive(Debug)]
pub struct Report {
    /// The instance's memory at the end, in bytes: its high-water mark (for a warm instance,
    /// over all the requests it served).
    pub peak_memory: u64,
    /// When the run started (the instance was taken or created).
    pub started: Instant,
    /// How long creating and initialising the instance took, if this run had to (a fresh
    /// instance; a pre-instantiated or warm one did not).
    pub instantiate: Option<Duration>,
    /// When the guest finished.
    pub ended: Instant,
    /// Why it failed, if it did, even after sending a response head (a body cut off by the
    /// timeout, say).
    pub error: Option<InvokeError>,
}

/// Why an invocation produced no response.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// The version's code could not be loaded (its compiled code and artifact are gone, say).
    #[error("could not load the function's code: {0}")]
    Load(String),
    /// The guest did not respond before its deadline.
    #[error("the function did not respond within its {0:?} timeout")]
    Timeout(Duration),
    /// The guest tried to grow its memory past its limit and then failed.
    #[error(
        "the function exceeded its memory limit of {} (it asked for {} in all)",
        updraft_manifest::format_size(*limit),
        updraft_manifest::format_size(*requested)
    )]
    OutOfMemory {
        /// The limit, in bytes.
        limit: u64,
        /// The total it tried to grow to, in bytes.
        requested: u64,
    },
    /// The guest trapped or crashed (panic, `unreachable`, stack overflow...).
    #[error("the function failed: {0}")]
    Trap(String),
    /// The guest returned without setting a response.
    #[error("the function returned without sending a response")]
    NoResponse,
    /// The guest answered with an error instead of a response.
    #[error("the function responded with an error: {0}")]
    Guest(String),
    /// A Lambda handler reported an error (`errorType`, `errorMessage`).
    #[error("{error_type}: {message}")]
    Handler {
        /// Its `errorType` (`ValueError`, `Runtime.ExitError`, ...).
        error_type: String,
        /// Its `errorMessage`.
        message: String,
    },
    /// The instance could not be created (e.g. resource limits).
    #[error("could not start the function: {0}")]
    Instantiate(String),
    /// The runtime cannot encode the input for its guests (an event attribute that is not a
    /// valid header value, say): no retry can fix it.
    #[error("bad input: {0}")]
    BadInput(String),
}

/// How an invocation found its version's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The code was in memory.
    Warm,
    /// The code was loaded for this invocation.
    Cold {
        /// Time spent loading it, in microseconds.
        load_us: u64,
    },
}

/// Counters of one version's lifecycle since it was deployed (or the server started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleStats {
    /// Whether its code is in memory now.
    pub loaded: bool,
    /// Instances initialised and waiting for an invocation.
    pub ready_instances: usize,
    /// Invocations that had to load the code first.
    pub cold_starts: u64,
    /// Times the code was dropped for being idle.
    pub evictions: u64,
    /// Whether instance reuse was turned off after the guest failed on a reused instance.
    pub reuse_disabled: bool,
}

/// Whether instances serve more than one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// A new instance per invocation.
    Fresh,
    /// Instances serve sequential invocations, each at most `max_reuse` of them.
    Warm {
        /// Invocations per instance before it is replaced.
        max_reuse: u32,
    },
}

/// One version's settings with the server's defaults filled in: what a runtime needs to run it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Environment variables the guest sees.
    pub env: Vec<(String, String)>,
    /// Hosts the guest may call over HTTP (the outbound-HTTP grant; none: every call is
    /// refused).
    pub allowed_outbound_hosts: Vec<OutboundHost>,
    /// Configuration variables the guest may read (the config grant; `None`: not granted, the
    /// interface is absent).
    pub variables: Option<Vec<(String, String)>>,
    /// Time limit for the whole invocation, response body included.
    pub timeout: Duration,
    /// Memory limit per instance, in bytes.
    pub memory_bytes: u64,
    /// Instance reuse policy.
    pub reuse: Reuse,
    /// Instances kept initialised and ready.
    pub min_instances: u32,
    /// How long the version may go unused before its code is dropped (scale to zero).
    pub idle_timeout: Duration,
    /// Values shown as `***` in the guest's log lines (the secrets it is granted).
    pub redact: Vec<String>,
    /// The key-value stores the guest may open (`None`: not granted, the interfaces are
    /// absent).
    pub key_value: Option<crate::kv::KeyValueGrant>,
    /// How to run the version as a native process speaking the Lambda Runtime API (`None`:
    /// a WebAssembly component).
    pub process: Option<ProcessSettings>,
    /// Whether the guest may call the platform's own data-plane APIs (`/_updraft/...`) at
    /// [`PLATFORM_HOST`] and its S3 API at [`S3_HOST`] without listing them in
    /// `allowed_outbound_hosts` (a `collections` or `buckets` grant; the credentials are in
    /// its environment).
    pub platform_api: bool,
}

/// What a process runtime needs beyond [`Settings`]: which runtime, its handler, and the
/// names Lambda's environment variables carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    /// `python`, `nodejs` or `provided`.
    pub runtime: updraft_manifest::FunctionRuntime,
    /// `_HANDLER` (`app.handler`).
    pub handler: Option<String>,
    /// The project the function belongs to.
    pub project: String,
    /// The function's name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function: String,
}

/// The host name a granted guest reaches the platform's data plane by
/// (`http://updraft.internal/_updraft/...`); the server connects it to its own listener.
pub const PLATFORM_HOST: &str = "updraft.internal";

/// The host name a granted guest reaches the platform's S3 API by (path style, or
/// `<bucket>.s3.updraft.internal`); the server connects it to its S3 listener.
pub const S3_HOST: &str = "s3.updraft.internal";

impl Default for Settings {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            allowed_outbound_hosts: Vec::new(),
            variables: None,
            timeout: updraft_manifest::DEFAULT_TIMEOUT,
            memory_bytes: updraft_manifest::DEFAULT_MEMORY,
            reuse: Reuse::Fresh,
            min_instances: 0,
            idle_timeout: updraft_manifest::DEFAULT_IDLE_TIMEOUT,
            redact: Vec::new(),
            key_value: None,
            process: None,
            platform_api: false,
        }
    }
}

/// Why a version's code cannot be made ready.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    /// What is wrong, written for the developer who deployed it.
    pub message: String,
    /// Whether it is the code's fault (a 4xx at deploy) rather than the server's (a 5xx).
    pub user_error: bool,
}

/// Where a runtime gets an artifact's bytes when it has no prepared form of them (a compiled-
/// code cache miss, say).
pub trait CodeSource: Send + Sync + 'static {
    /// The artifact's bytes. Blocking: runtimes call it from a blocking thread.
    ///
    /// # Errors
    /// A message naming what failed (the artifact is gone, an I/O error).
    fn read(&self, digest: &str) -> Result<Vec<u8>, String>;
}

/// One deployed version as a runtime runs it. Implementations keep the code loaded while it is
/// used and drop it when idle (scale to zero), and must be cheap to share.
pub trait Runtime: Send + Sync + 'static {
    /// Runs one invocation: loads the code if it was evicted (telling `sink` of the cold
    /// start), takes or creates an instance, and returns once the guest has a response head;
    /// the body streams until the guest is done or its deadline passes. Every line the guest
    /// writes goes to `sink`, and so does the [`Report`] when the guest is done.
    fn invoke(
        &self,
        invocation: Invocation,
        sink: Arc<dyn InvocationSink>,
    ) -> BoxFuture<'_, Result<http::Response<Body>, InvokeError>>;

    /// An invocation's response is done (its body finished or was dropped): idleness counts
    /// from now. By default, nothing to do.
    fn finished(&self) {}

    /// Drops the code if the version has been idle past its idle timeout and keeps no
    /// `min_instances`, else trims idle instances. Returns whether the code was dropped. By
    /// default there is nothing to drop.
    fn evict_if_idle(&self) -> bool {
        false
    }

    /// Its lifecycle counters (none by default).
    fn stats(&self) -> LifecycleStats {
        LifecycleStats::default()
    }

    /// Loads the code now, so that a deploy fails when it cannot run (and the first request
    /// is warm). By default there is nothing to load.
    fn load(&self) -> BoxFuture<'_, Result<(), LoadError>> {
        Box::pin(async { Ok(()) })
    }

    /// Loads the code if needed and initialises `min_instances` instances. By default, the
    /// same as [`Runtime::load`].
    fn warm_up(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { self.load().await.map_err(|e| e.to_string()) })
    }

    /// How its cold start log line says what the load did ("loaded from the compiled-code
    /// cache" by default).
    fn cold_start_note(&self) -> &'static str {
        "loaded from the compiled-code cache"
    }

    /// Its `min_instances` (0 by default).
    fn min_instances(&self) -> u32 {
        0
    }
}

/// Makes the [`Runtime`] of each deployed version of one kind of function.
pub trait RuntimeProvider: Send + Sync + 'static {
    /// The version running the artifact `digest` with `settings`. Cheap: the code is not
    /// loaded until [`Runtime::load`] or the first invocation.
    fn prepare(&self, digest: &str, settings: Settings) -> Arc<dyn Runtime>;

    /// Makes the artifact's prepared form (compiled code) if it is missing, without loading
    /// it, so that no invocation pays for it (at start-up, after an engine upgrade).
    fn ensure_prepared(&self, digest: &str) -> BoxFuture<'_, Result<(), LoadError>>;

    /// Deletes the prepared form of an artifact that is gone.
    fn forget(&self, digest: &str);
}
