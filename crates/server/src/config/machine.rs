//! Defaults that depend on the machine: how much memory this process may use, and the global
//! concurrency cap derived from it.

use std::path::Path;

/// Bytes of memory this process may use: the machine's (`MemTotal`), or its cgroup's limit when
/// that is lower (a container). `None` where neither can be read (not Linux).
pub(crate) fn memory_bytes() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| meminfo_total(&s));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",                   // cgroup v2
        "/sys/fs/cgroup/memory/memory.limit_in_bytes", // cgroup v1
    ]
    .iter()
    .find_map(|p| cgroup_limit(Path::new(p)));
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// The default `[concurrency] global_max`: as many invocations as fit in `memory` if each used
/// the default function memory, and no more than the instance pool holds (an invocation needs
/// an instance). Without a memory figure, the pool size.
pub(crate) fn default_global_max(
    memory: Option<u64>,
    default_function_memory: u64,
    pool_max_instances: u32,
) -> u32 {
    let pool = pool_max_instances.max(1);
    let Some(memory) = memory else {
        return pool;
    };
    let fit = memory / default_function_memory.max(1);
    u32::try_from(fit).unwrap_or(u32::MAX).clamp(1, pool)
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// A cgroup memory limit in bytes, `None` when unlimited (`max`, or v1's near-`u64::MAX`
/// sentinel) or unreadable.
fn cgroup_limit(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let limit: u64 = text.trim().parse().ok()?;
    (limit < 1 << 62).then_some(limit)
}

#[cfg(test)]
mod tests;
