//! Building a process function's bundle the way Lambda users expect: its `code` directory (or
//! the `.zip` it names, sent as it is), plus its dependencies installed the way SAM does:
//! `requirements.txt` with pip into the bundle's root, `package.json` with npm into
//! `node_modules`. Installs are cached in `.updraft/deps/<function>` and redone only when the
//! dependency file changes.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use updraft_manifest::{Function, FunctionRuntime};

use crate::output;

/// The bundle of process function `f` of the app in `dir`, as bytes.
pub(crate) async fn build(dir: &Path, f: &Function, progress: bool) -> anyhow::Result<Vec<u8>> {
    let code = dir.join(f.code.as_deref().unwrap_or("."));
    if code.is_file() {
        let bytes = std::fs::read(&code).with_context(|| format!("reading {}", code.display()))?;
        if !updraft_process::bundle::is_bundle(&bytes) {
            bail!(
                "function `{}`: {} is not a zip file",
                f.name,
                code.display()
            );
        }
        return Ok(bytes);
    }
    if !code.is_dir() {
        bail!(
            "function `{}`: code `{}` is neither a directory nor a .zip file",
            f.name,
            code.display()
        );
    }
    let deps_root = dir.join(".updraft").join("deps");
    let mut sources = vec![(String::new(), code.clone())];
    match f.runtime {
        FunctionRuntime::Python if code.join("requirements.txt").is_file() => {
            let deps = install(
                &deps_root,
                f.name.as_str(),
                &code.join("requirements.txt"),
                progress,
                |target| {
                    let mut c = std::process::Command::new(python());
                    c.args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "-r",
                    ])
                    .arg(code.join("requirements.txt"))
                    .arg("--target")
                    .arg(target);
                    c
                },
            )
            .await?;
            sources.push((String::new(), deps));
        }
        FunctionRuntime::Nodejs
            if code.join("package.json").is_file() && !code.join("node_modules").exists() =>
        {
            let package = code.join("package.json");
            let lock = code.join("package-lock.json");
            let deps = install(&deps_root, f.name.as_str(), &package, progress, |target| {
                let _ = std::fs::copy(&package, target.join("package.json"));
                if lock.is_file() {
                    let _ = std::fs::copy(&lock, target.join("package-lock.json"));
                }
                let mut c = std::process::Command::new("npm");
                c.args([
                    "install",
                    "--omit=dev",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                ])
                .current_dir(target);
                c
            })
            .await?;
            if deps.join("node_modules").is_dir() {
                sources.push(("node_modules".into(), deps.join("node_modules")));
            }
        }
        _ => {}
    }
    tokio::task::spawn_blocking(move || updraft_process::bundle::pack(&sources))
        .await?
        .with_context(|| format!("zipping the code of `{}`", f.name))
}

fn python() -> String {
    std::env::var("UPDRAFT_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `command` (made for an empty target directory) unless the cached install of `file`'s
/// current contents is there; returns the directory.
async fn install(
    root: &Path,
    function: &str,
    file: &Path,
    progress: bool,
    command: impl FnOnce(&Path) -> std::process::Command,
) -> anyhow::Result<PathBuf> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let stamp = hex::encode(Sha256::digest(&bytes));
    let target = root.join(function);
    let stamp_file = root.join(format!("{function}.stamp"));
    if target.is_dir() && std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp) {
        return Ok(target);
    }
    let _ = std::fs::remove_dir_all(&target);
    std::fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pb = progress.then(|| output::spinner(format!("installing {function}'s {name}")));
    let mut cmd = command(&target);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await?
        .with_context(|| format!("installing the dependencies of `{function}`"))?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        bail!(
            "installing the dependencies in {name} of `{function}` failed ({})",
            out.status
        );
    }
    std::fs::write(&stamp_file, stamp)?;
    Ok(target)
}
