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
    /// What the sandbox must let it read: the interpreter's installation and the client.
    pub(crate) read: Vec<PathBuf>,
}

/// Installs clients on demand, once.
pub(crate) struct Clients {
    dir: PathBuf,
    python: String,
    node: String,
    install: tokio::sync::Mutex<()>,
    /// The interpreters resolved: their real executable and installation prefix.
    python_found: tokio::sync::OnceCell<(PathBuf, PathBuf)>,
    node_found: tokio::sync::OnceCell<(PathBuf, PathBuf)>,
}

impl Clients {
    pub(crate) fn new(dir: PathBuf, python: String, node: String) -> Self {
        Self {
            dir,
            python,
            node,
            install: tokio::sync::Mutex::new(()),
            python_found: tokio::sync::OnceCell::new(),
            node_found: tokio::sync::OnceCell::new(),
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
                let (program, prefix) = self
                    .python_found
                    .get_or_try_init(|| {
                        resolve(
                            &self.python,
                            &[
                                "-c",
                                "import sys; print(sys.executable); print(sys.base_prefix)",
                            ],
                        )
                    })
                    .await?
                    .clone();
                let site = self.python_client().await?;
                Ok(Launch {
                    program,
                    args: vec![
                        "-m".into(),
                        "awslambdaric".into(),
                        handler.unwrap_or_default().to_owned(),
                    ],
                    read: vec![prefix, site.clone()],
                    python_path: Some(site),
                })
            }
            FunctionRuntime::Nodejs => {
                let (program, prefix) = self
                    .node_found
                    .get_or_try_init(|| {
                        resolve(
                            &self.node,
                            &[
                                "-e",
                                "const p = require('path'); const e = process.execPath; \
                                     console.log(e); console.log(p.dirname(p.dirname(e)))",
                            ],
                        )
                    })
                    .await?
                    .clone();
                let script = self.node_client().await?;
                Ok(Launch {
                    program,
                    read: vec![prefix, script.clone()],
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
                    read: Vec::new(),
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

/// Runs `program` with `args`, which print its real executable and its installation prefix
/// on two lines (a version manager's shim resolves to the interpreter it picks).
async fn resolve(program: &str, args: &[&str]) -> Result<(PathBuf, PathBuf), String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|e| {
            format!(
                "running `{program}`: {e} (is it installed? see [process] in the server config)"
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match (out.status.success(), lines.next(), lines.next()) {
        (true, Some(exe), Some(prefix)) => Ok((PathBuf::from(exe), PathBuf::from(prefix))),
        _ => Err(format!(
            "`{program}` did not say where it is installed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}
