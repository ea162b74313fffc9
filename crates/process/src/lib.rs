//! Process functions: existing AWS Lambda handlers (Python, Node.js, or any executable
//! `bootstrap`) run unchanged as native processes speaking the Lambda Runtime API.
//!
//! [`ProcessRuntimes`] is the second [`RuntimeProvider`] beside the wasm engine: the registry
//! asks it for the [`Runtime`] of each deployed version whose `runtime` is a process one, and
//! the dispatcher drives those exactly like wasm versions (limits, quotas, metering, logs,
//! every trigger). What it owns:
//! - [`bundle`]: the zip a function's code travels in, and its checked unpacking into
//!   `<process dir>/bundles/<digest>` (read-only);
//! - the runtime interface clients (`clients`): `awslambdaric` installed once per server, a
//!   Node.js client shipped in the binary;
//! - execution environments (`env`): one process each, its own loopback Runtime API (`api`),
//!   its own temp directory, killed at its deadline or past its memory;
//! - Lambda's event shapes and response mapping (`shapes`).
//!
//! It depends on the dispatcher's runtime traits only: it must not touch storage (artifact
//! bytes come through a [`CodeSource`]), routes or listeners.

mod api;
pub mod bundle;
mod cgroup;
mod clients;
mod env;
mod finish;
mod identity;
mod invoke;
pub mod sandbox;
mod shapes;
mod stream;
mod version;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use updraft_dispatch::{BoxFuture, CodeSource, LoadError, Runtime, RuntimeProvider, Settings};

pub use cgroup::CgroupParent;
pub use clients::AWSLAMBDARIC;
pub use shapes::FAILED_EVENTS;
pub use version::ProcessVersion;

/// The operator's settings for process functions (`[process]` in the server config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    /// The Python 3 interpreter `python` functions run on (and install `awslambdaric` with).
    pub python: String,
    /// The Node.js binary `nodejs` functions run on.
    pub node: String,
    /// How long a process may take to start and ask for its first invocation.
    pub init_timeout: Duration,
    /// Largest invocation response a handler may send, in bytes (Lambda: 6 MB).
    pub max_payload: usize,
    /// Largest unpacked bundle.
    pub bundle: bundle::Limits,
    /// Where runtime clients are installed (`None`: `<process dir>/clients`); servers may
    /// share one.
    pub clients_dir: Option<PathBuf>,
    /// Whether processes run in the [`sandbox`] (when a helper binary is known).
    pub sandbox: bool,
    /// The binary that applies the sandbox (`updraft` itself; set by whoever starts the
    /// server, not by the config file).
    pub helper: Option<PathBuf>,
    /// Size of each process's private `/tmp`, in bytes (Lambda's default: 512 MB).
    pub tmp_bytes: u64,
    /// Where each process's memory cgroup goes (the kernel's cap behind the watchdog).
    pub cgroup: CgroupParent,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            python: "python3".into(),
            node: "node".into(),
            init_timeout: Duration::from_secs(10),
            max_payload: 6 << 20,
            bundle: bundle::Limits::default(),
            clients_dir: None,
            sandbox: true,
            helper: None,
            tmp_bytes: 512 << 20,
            cgroup: CgroupParent::Auto,
        }
    }
}

/// What every process version shares.
pub(crate) struct Shared {
    dir: PathBuf,
    code: Arc<dyn CodeSource>,
    config: ProcessConfig,
    clients: clients::Clients,
    unpacking: tokio::sync::Mutex<()>,
    /// What the sandbox enforces here, probed once.
    enforced: tokio::sync::OnceCell<sandbox::Enforced>,
    /// This server's per-process memory cgroups, where the host has them.
    cgroups: Option<Arc<cgroup::Cgroups>>,
}

impl Shared {
    /// The helper to run processes through, if the sandbox is on and one is known.
    fn helper(&self) -> Option<&std::path::Path> {
        self.config
            .helper
            .as_deref()
            .filter(|_| self.config.sandbox)
    }

    /// What the sandbox enforces on this host (probed the first time it is asked).
    async fn enforced(&self) -> sandbox::Enforced {
        *self
            .enforced
            .get_or_init(|| async {
                let Some(helper) = self.helper().map(std::path::Path::to_path_buf) else {
                    return sandbox::Enforced {
                        memory_cgroup: self.cgroups.is_some(),
                        ..sandbox::Enforced::default()
                    };
                };
                let plan = sandbox::Plan::new(Vec::new(), 1 << 20);
                let mut e = tokio::task::spawn_blocking(move || sandbox::probe(&helper, &plan))
                    .await
                    .unwrap_or_default();
                e.memory_cgroup = self.cgroups.is_some();
                e
            })
            .await
    }

    fn bundle_dir(&self, digest: &str) -> PathBuf {
        self.dir.join("bundles").join(digest)
    }

    /// The bundle `digest` unpacked (now, if it was not).
    async fn unpacked(&self, digest: &str) -> Result<PathBuf, LoadError> {
        let dest = self.bundle_dir(digest);
        if dest.is_dir() {
            return Ok(dest);
        }
        let _guard = self.unpacking.lock().await;
        if dest.is_dir() {
            return Ok(dest);
        }
        let code = self.code.clone();
        let (d, target, limits) = (digest.to_owned(), dest.clone(), self.config.bundle);
        tokio::task::spawn_blocking(move || {
            let bytes = code.read(&d).map_err(|message| LoadError {
                message,
                user_error: false,
            })?;
            unpack_checked(&bytes, &target, limits)
        })
        .await
        .map_err(|e| LoadError {
            message: format!("unpacking the bundle: {e}"),
            user_error: false,
        })??;
        Ok(dest)
    }
}

fn unpack_checked(
    bytes: &[u8],
    dest: &std::path::Path,
    limits: bundle::Limits,
) -> Result<(), LoadError> {
    if !bundle::is_bundle(bytes) {
        return Err(LoadError {
            message: "the artifact is not a bundle (a zip file)".into(),
            user_error: true,
        });
    }
    bundle::unpack(bytes, dest, limits)
        .map(|_| ())
        .map_err(|e| LoadError {
            message: e.to_string(),
            user_error: matches!(e, bundle::BundleError::Invalid(_)),
        })
}

/// The provider of process versions.
pub struct ProcessRuntimes {
    shared: Arc<Shared>,
}

impl ProcessRuntimes {
    /// Process functions keeping their files under `dir` (`bundles/`, `clients/`, `tmp/`).
    /// Temp directories left by a previous run are removed.
    pub fn new(dir: PathBuf, code: Arc<dyn CodeSource>, config: ProcessConfig) -> Self {
        let _ = std::fs::remove_dir_all(dir.join("tmp"));
        Self {
            shared: Arc::new(Shared {
                clients: clients::Clients::new(
                    config
                        .clients_dir
                        .clone()
                        .unwrap_or_else(|| dir.join("clients")),
                    config.python.clone(),
                    config.node.clone(),
                ),
                dir,
                code,
                unpacking: tokio::sync::Mutex::new(()),
                enforced: tokio::sync::OnceCell::new(),
                cgroups: cgroup::Cgroups::open(&config.cgroup).map(Arc::new),
                config,
            }),
        }
    }

    /// What the sandbox enforces on this host (probed once).
    pub async fn enforced(&self) -> sandbox::Enforced {
        self.shared.enforced().await
    }

    /// Whether the artifact `digest` is a bundle already unpacked here.
    pub fn is_prepared(&self, digest: &str) -> bool {
        self.shared.bundle_dir(digest).is_dir()
    }

    /// Checks and unpacks the uploaded bundle `bytes` (stored as `digest`).
    ///
    /// # Errors
    /// A [`LoadError`] naming what is wrong with the bundle (a user error) or the disk.
    pub async fn prepare_bundle(&self, digest: &str, bytes: Vec<u8>) -> Result<(), LoadError> {
        let dest = self.shared.bundle_dir(digest);
        if dest.is_dir() {
            return Ok(());
        }
        let limits = self.shared.config.bundle;
        tokio::task::spawn_blocking(move || unpack_checked(&bytes, &dest, limits))
            .await
            .map_err(|e| LoadError {
                message: format!("unpacking the bundle: {e}"),
                user_error: false,
            })?
    }
}

impl RuntimeProvider for ProcessRuntimes {
    fn prepare(&self, digest: &str, settings: Settings) -> Arc<dyn Runtime> {
        Arc::new(ProcessVersion::new(
            self.shared.clone(),
            digest.to_owned(),
            settings,
        ))
    }

    fn ensure_prepared(&self, digest: &str) -> BoxFuture<'_, Result<(), LoadError>> {
        let digest = digest.to_owned();
        Box::pin(async move { self.shared.unpacked(&digest).await.map(|_| ()) })
    }

    fn forget(&self, digest: &str) {
        bundle::remove_tree(&self.shared.bundle_dir(digest));
    }
}
