//! Builds every guest in `test-programs/` for `wasm32-wasip2` (release profile) into `OUT_DIR`
//! and writes `guests.rs` with one path constant per guest: `test-programs/http-echo` becomes
//! `HTTP_ECHO`. Runs only when this dev-only crate is built, i.e. for tests.

#![allow(
    clippy::expect_used,
    reason = "a build script reports failure by panicking"
)]

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let programs = manifest_dir.join("../../test-programs");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = out_dir.join("target");
    println!("cargo:rerun-if-changed={}", programs.display());

    let mut guests: Vec<String> = std::fs::read_dir(&programs)
        .expect("test-programs/ exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    guests.sort();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&programs)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir)
        // The host build's flags (coverage, sanitizers, target-cpu) must not leak into guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("running cargo to build test-programs");
    assert!(
        status.success(),
        "building test-programs for wasm32-wasip2 failed (is the target installed? \
         `rustup target add wasm32-wasip2`)"
    );

    let mut code = String::new();
    for g in &guests {
        let path = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{g}.wasm"));
        assert!(
            path.is_file(),
            "expected {} after the build",
            path.display()
        );
        code.push_str(&format!(
            "/// Path of the `{g}` guest component (see test-programs/{g}).\n\
             pub const {}: &str = {:?};\n",
            g.to_uppercase().replace('-', "_"),
            path.display().to_string()
        ));
    }
    code.push_str(&format!(
        "/// Every guest, by directory name.\npub const ALL: &[&str] = &{guests:?};\n"
    ));
    std::fs::write(out_dir.join("guests.rs"), code).expect("writing guests.rs");
}
