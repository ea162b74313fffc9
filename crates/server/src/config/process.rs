//! `[process]`: process (Lambda) functions: which interpreters run them and their limits.

use std::time::Duration;

use serde::Deserialize;
use updraft_manifest::{parse_duration, parse_size};
use updraft_process::ProcessConfig;

/// The `[process]` table as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProcess {
    python: Option<String>,
    node: Option<String>,
    init_timeout: Option<String>,
    max_payload: Option<String>,
    max_bundle_bytes: Option<String>,
    max_bundle_files: Option<usize>,
    clients_dir: Option<String>,
    sandbox: Option<bool>,
    tmp_size: Option<String>,
    cgroup: Option<String>,
}

/// Checks the `[process]` table; errors name the key.
pub(super) fn parse(raw: &RawProcess) -> Result<ProcessConfig, String> {
    let d = ProcessConfig::default();
    let program = |key: &str, v: &Option<String>, default: &str| match v.as_deref() {
        None => Ok(default.to_owned()),
        Some(p) if p.trim().is_empty() => Err(format!("process.{key}: must name a program")),
        Some(p) => Ok(p.to_owned()),
    };
    let size = |key: &str, v: &Option<String>, default: u64| match v.as_deref() {
        None => Ok(default),
        Some(s) => match parse_size(s) {
            Ok(0) => Err(format!("process.{key}: must be at least 1 byte")),
            Ok(n) => Ok(n),
            Err(e) => Err(format!("process.{key}: {e}")),
        },
    };
    let init_timeout = match raw.init_timeout.as_deref() {
        None => d.init_timeout,
        Some(s) => match parse_duration(s) {
            Ok(t) if t >= Duration::from_millis(100) && t <= Duration::from_secs(900) => t,
            Ok(_) => return Err("process.init_timeout: must be between 100ms and 15m".into()),
            Err(e) => return Err(format!("process.init_timeout: {e}")),
        },
    };
    let cgroup = match raw.cgroup.as_deref() {
        None | Some("auto") => updraft_process::CgroupParent::Auto,
        Some("off") => updraft_process::CgroupParent::Off,
        Some(p) if p.starts_with('/') => updraft_process::CgroupParent::Under(p.into()),
        Some(p) => {
            return Err(format!(
                "process.cgroup: `{p}` is not \"auto\", \"off\" or an absolute cgroup directory"
            ));
        }
    };
    Ok(ProcessConfig {
        cgroup,
        sandbox: raw.sandbox.unwrap_or(d.sandbox),
        helper: None,
        tmp_bytes: size("tmp_size", &raw.tmp_size, d.tmp_bytes)?,
        python: program("python", &raw.python, &d.python)?,
        node: program("node", &raw.node, &d.node)?,
        init_timeout,
        max_payload: usize::try_from(size("max_payload", &raw.max_payload, d.max_payload as u64)?)
            .map_err(|_| "process.max_payload: too large".to_owned())?,
        bundle: updraft_process::bundle::Limits {
            max_bytes: size(
                "max_bundle_bytes",
                &raw.max_bundle_bytes,
                d.bundle.max_bytes,
            )?,
            max_entries: match raw.max_bundle_files {
                Some(0) => return Err("process.max_bundle_files: must be at least 1".into()),
                Some(n) => n,
                None => d.bundle.max_entries,
            },
        },
        clients_dir: match raw.clients_dir.as_deref() {
            None => None,
            Some(p) if p.trim().is_empty() => {
                return Err("process.clients_dir: must be a directory".into());
            }
            Some(p) => Some(std::path::PathBuf::from(p)),
        },
    })
}
