//! Builds every guest in `test-programs/` into `OUT_DIR` and writes `guests.rs` with one path
//! constant per guest (`test-programs/http-echo` becomes `HTTP_ECHO`):
//! - Rust guests (a `Cargo.toml`) with cargo for `wasm32-wasip2`, release profile;
//! - Python guests (an `app.py`) with componentize-py, installed from PyPI into a virtualenv in
//!   `OUT_DIR` at the version in the guest's `requirements.txt`. Their constants are
//!   `Option<&str>`: `None` when no `python3` is available, with a build warning; set
//!   `UPDRAFT_REQUIRE_ALL_GUESTS=1` (CI does) to make that an error instead.
//!
//! - Client directories that are not guests: `py-clients` (a `requirements.txt`: a virtualenv
//!   with it installed, `PY_CLIENTS` its interpreter) and `js-clients` (a `package.json`: the
//!   directory with `npm ci` run, `JS_CLIENTS`).
//!
//! Runs only when this dev-only crate is built, i.e. for tests.

#![allow(
    clippy::expect_used,
    reason = "a build script reports failure by panicking"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let programs = manifest_dir.join("../../test-programs");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed={}", programs.display());
    println!("cargo:rerun-if-env-changed=UPDRAFT_REQUIRE_ALL_GUESTS");

    let mut guests: Vec<(String, PathBuf)> = std::fs::read_dir(&programs)
        .expect("test-programs/ exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    guests.sort();

    let mut code = String::new();
    if guests
        .iter()
        .any(|(_, dir)| dir.join("Cargo.toml").is_file())
    {
        build_rust(&programs, &out_dir);
    }
    for (name, dir) in &guests {
        let konst = name.to_uppercase().replace('-', "_");
        if name == "lambda" {
            code.push_str(&lambda(dir, &out_dir));
        } else if dir.join("Cargo.toml").is_file() {
            // A binary keeps its name; a library component (cdylib, as Spin's template
            // builds one) gets `_` for `-`.
            let release = out_dir.join("target/wasm32-wasip2/release");
            let path = [name.clone(), name.replace('-', "_")]
                .iter()
                .map(|n| release.join(format!("{n}.wasm")))
                .find(|p| p.is_file())
                .unwrap_or_else(|| release.join(format!("{name}.wasm")));
            assert!(
                path.is_file(),
                "expected {} after the build",
                path.display()
            );
            code.push_str(&format!(
                "/// Path of the `{name}` guest component (see test-programs/{name}).\n\
                 pub const {konst}: &str = {:?};\n",
                path.display().to_string()
            ));
        } else if dir.join("package.json").is_file() {
            // Not a guest: JavaScript client libraries the tests use, with their scripts.
            let installed = npm_install(name, dir, &out_dir);
            code.push_str(&format!(
                "/// A directory with the `{name}` scripts and their packages installed (see\n\
                 /// test-programs/{name}); `None` when npm was not available.\n\
                 pub const {konst}: Option<&str> = {:?};\n",
                installed.map(|p| p.display().to_string())
            ));
        } else if dir.join("requirements.txt").is_file() && !dir.join("app.py").is_file() {
            // Not a guest: a virtualenv of client libraries the tests use.
            let python = venv(name, dir, &out_dir).map(|v| v.join("bin/python"));
            code.push_str(&format!(
                "/// The Python interpreter of the `{name}` virtualenv (see test-programs/{name});
                 /// `None` when python3 was not available to make it.
                 pub const {konst}: Option<&str> = {:?};
",
                python.map(|p| p.display().to_string())
            ));
        } else if dir.join("app.py").is_file() {
            let path = build_python(name, dir, &out_dir);
            code.push_str(&format!(
                "/// Path of the `{name}` componentize-py guest (see test-programs/{name}); `None`\n\
                 /// when python3 was not available to build it.\n\
                 pub const {konst}: Option<&str> = {:?};\n",
                path.map(|p| p.display().to_string())
            ));
        }
    }
    std::fs::write(out_dir.join("guests.rs"), code).expect("writing guests.rs");
}

/// `test-programs/lambda`: Lambda handlers for the process runtime. The Python and Node.js
/// ones are source directories; the Rust one is a `lambda_runtime` bootstrap built natively.
fn lambda(dir: &Path, out_dir: &Path) -> String {
    let target = out_dir.join("lambda-target");
    let status = cargo_build(&dir.join("rust"))
        .args(["--locked", "--target-dir"])
        .arg(&target)
        .status()
        .expect("running cargo to build test-programs/lambda/rust");
    assert!(
        status.success(),
        "building test-programs/lambda/rust failed"
    );
    let path = |p: PathBuf| format!("{:?}", p.display().to_string());
    format!(
        "/// The Python Lambda handler's directory (see test-programs/lambda).\n\
         pub const LAMBDA_PYTHON: &str = {};\n\
         /// The Node.js Lambda handler's directory.\n\
         pub const LAMBDA_NODEJS: &str = {};\n\
         /// The Rust `lambda_runtime` bootstrap, built for this machine.\n\
         pub const LAMBDA_RUST_BOOTSTRAP: &str = {};\n",
        path(dir.join("python")),
        path(dir.join("nodejs")),
        path(target.join("release/bootstrap")),
    )
}

/// `cargo build --release` in `dir`, without the host build's flags (coverage, sanitizers,
/// target-cpu), which must not leak into test programs.
fn cargo_build(dir: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(dir)
        .args(["build", "--release"])
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    c
}

fn build_rust(programs: &Path, out_dir: &Path) {
    let status = cargo_build(programs)
        .args(["--target", "wasm32-wasip2", "--target-dir"])
        .arg(out_dir.join("target"))
        .status()
        .expect("running cargo to build test-programs");
    assert!(
        status.success(),
        "building test-programs for wasm32-wasip2 failed (is the target installed? \
         `rustup target add wasm32-wasip2`)"
    );
}

/// Builds a componentize-py guest; `None` if Python is unavailable and that is allowed.
fn build_python(name: &str, dir: &Path, out_dir: &Path) -> Option<PathBuf> {
    let venv = venv(name, dir, out_dir)?;
    let output = out_dir.join(format!("{name}.wasm"));
    let status = Command::new(venv.join("bin/componentize-py"))
        .current_dir(dir)
        // Convention: the guest's wit/world.wit names its world after the guest.
        .args([
            "--quiet",
            "-d",
            "wit",
            "-w",
            name,
            "componentize",
            "app",
            "-o",
        ])
        .arg(&output)
        .status()
        .expect("running componentize-py");
    assert!(status.success(), "componentize-py failed for `{name}`");
    Some(output)
}

/// A virtualenv in `OUT_DIR` with `dir/requirements.txt` installed (again only when that
/// file changed); `None` if Python is unavailable and that is allowed.
fn venv(name: &str, dir: &Path, out_dir: &Path) -> Option<PathBuf> {
    let required = std::env::var("UPDRAFT_REQUIRE_ALL_GUESTS").is_ok_and(|v| v == "1");
    let unavailable = |why: String| {
        assert!(!required, "cannot build Python guest `{name}`: {why}");
        println!("cargo:warning=skipping Python guest `{name}`: {why}");
        None
    };
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let venv = out_dir.join(format!("{name}-venv"));
    let requirements = dir.join("requirements.txt");
    let stamp = venv.join("installed-requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap_or_default();
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        match Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
        {
            Ok(s) if s.success() => {}
            Ok(s) => return unavailable(format!("`{python} -m venv` failed ({s})")),
            Err(e) => return unavailable(format!("`{python}` not found ({e})")),
        }
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements)
            .status();
        match status {
            Ok(s) if s.success() => {
                std::fs::write(&stamp, &wanted).expect("writing the venv stamp")
            }
            other => {
                return unavailable(format!("installing {}: {other:?}", requirements.display()));
            }
        }
    }
    Some(venv)
}

/// Copies `dir`'s files (not `node_modules`) into `OUT_DIR/<name>` and runs `npm ci` there
/// (again only when the lockfile changed); `None` if npm is unavailable and that is allowed.
fn npm_install(name: &str, dir: &Path, out_dir: &Path) -> Option<PathBuf> {
    let required = std::env::var("UPDRAFT_REQUIRE_ALL_GUESTS").is_ok_and(|v| v == "1");
    let target = out_dir.join(name);
    std::fs::create_dir_all(&target).expect("making the JS clients directory");
    for entry in std::fs::read_dir(dir).expect("reading the JS clients directory") {
        let path = entry.expect("listing the JS clients directory").path();
        if path.is_file() {
            let file = path.file_name().expect("a file has a name");
            std::fs::copy(&path, target.join(file)).expect("copying a JS client file");
        }
    }
    let lock = std::fs::read_to_string(dir.join("package-lock.json")).unwrap_or_default();
    let stamp = target.join("node_modules/.installed-lock.json");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
        return Some(target);
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(&target)
        .status();
    match status {
        Ok(s) if s.success() => {
            std::fs::write(&stamp, &lock).expect("writing the npm stamp");
            Some(target)
        }
        other => {
            assert!(
                !required,
                "cannot install the JS clients `{name}`: {other:?}"
            );
            println!("cargo:warning=skipping JS clients `{name}`: npm ci failed: {other:?}");
            None
        }
    }
}
