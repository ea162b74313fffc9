//! The runtime interface clients: what runs inside a `python` or `nodejs` process and speaks
//! the Runtime API for the handler.
//!
//! - Python: AWS's official client, [`AWSLAMBDARIC`] from PyPI, installed once per server with
//!   `pip install --target` into `<process dir>/clients/python-awslambdaric-<version>` the
//!   first time a Python function loads (not per function; bundles never carry it).
//! - Node.js: `ric.mjs`, shipped in this binary (AWS's `aws-lambda-ric` builds native code with
//!   cmake and a C++ toolchain at install time, which a server should not need), written once
//!   to `<process dir>/clients/nodejs-<hash>.mjs`.
//! - `provided`: none; the bundle's `bootstrap` is the client.

use std::path::{Path, PathBuf};

use updraft_manifest::FunctionRuntime;

/// The pinned `awslambdaric` release.
pub const AWSLAMBDARIC: &str = "awslambdaric==4.2.2";

const NODE_CLIENT: &str = include_str!("clients/ric.mjs");

/// The program and arguments that run a handler, and the `PYTHONPATH`-like extra search path.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) python_path: Option<PathBuf>,
}

/// Installs clients on demand, once.
pub(crate) struct Clients {
    dir: PathBuf,
    python: String,
    node: String,
    install: tokio::sync::Mutex<()>,
}

impl Clients {
    pub(crate) fn new(dir: PathBuf, python: String, node: String) -> Self {
        Self {
            dir,
            python,
            node,
            install: tokio::sync::Mutex::new(()),
        }
    }

    /// How to start a `runtime` process whose code is at `task_root`, installing its client
    /// first if this server has not yet.
    pub(crate) async fn launch(
        &self,
        runtime: FunctionRuntime,
        handler: Option<&str>,
        task_root: &Path,
    ) -> Result<Launch, String> {
        match runtime {
            FunctionRuntime::Python => {
                let site = self.python_client().await?;
                Ok(Launch {
                    program: PathBuf::from(&self.python),
                    args: vec![
                        "-m".into(),
                        "awslambdaric".into(),
                        handler.unwrap_or_default().to_owned(),
                    ],
                    python_path: Some(site),
                })
            }
            FunctionRuntime::Nodejs => {
                let script = self.node_client().await?;
                Ok(Launch {
                    program: PathBuf::from(&self.node),
                    args: vec![script.to_string_lossy().into_owned()],
                    python_path: None,
                })
            }
            FunctionRuntime::Provided => {
                let bootstrap = task_root.join("bootstrap");
                if !bootstrap.is_file() {
                    return Err(
                        "a `provided` function's code must have an executable `bootstrap` at its root"
                            .into(),
                    );
                }
                Ok(Launch {
                    program: bootstrap,
                    args: Vec::new(),
                    python_path: None,
                })
            }
            FunctionRuntime::Wasm => Err("a wasm function is not a process".into()),
        }
    }

    async fn python_client(&self) -> Result<PathBuf, String> {
        let version = AWSLAMBDARIC.replace("==", "-");
        let target = self.dir.join(format!("python-{version}"));
        if target.join("awslambdaric").is_dir() {
            return Ok(target);
        }
        let _guard = self.install.lock().await;
        if target.join("awslambdaric").is_dir() {
            return Ok(target);
        }
        let staging = self
            .dir
            .join(format!(".python-{version}-{}", rand::random::<u32>()));
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        tracing::info!(
            client = AWSLAMBDARIC,
            "installing the Python runtime interface client"
        );
        let out = tokio::process::Command::new(&self.python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&staging)
            .arg(AWSLAMBDARIC)
            .output()
            .await
            .map_err(|e| {
                format!(
                    "running `{} -m pip`: {e} (is Python 3 installed? see [process] python)",
                    self.python
                )
            })?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(format!(
                "installing {AWSLAMBDARIC} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        match std::fs::rename(&staging, &target) {
            Ok(()) => Ok(target),
            // Another server sharing this directory installed it meanwhile.
            Err(_) if target.join("awslambdaric").is_dir() => {
                let _ = std::fs::remove_dir_all(&staging);
                Ok(target)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                Err(format!("installing {AWSLAMBDARIC}: {e}"))
            }
        }
    }

    async fn node_client(&self) -> Result<PathBuf, String> {
        let hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            NODE_CLIENT.hash(&mut h);
            h.finish()
        };
        let path = self.dir.join(format!("nodejs-{hash:016x}.mjs"));
        if path.is_file() {
            return Ok(path);
        }
        let _guard = self.install.lock().await;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let staging = path.with_extension(format!("tmp{}", rand::random::<u32>()));
        std::fs::write(&staging, NODE_CLIENT)
            .and_then(|()| std::fs::rename(&staging, &path))
            .map_err(|e| format!("writing the Node.js runtime client: {e}"))?;
        Ok(path)
    }
}
