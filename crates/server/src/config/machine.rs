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
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn cap_is_memory_over_default_function_memory_within_the_pool() {
        assert_eq!(default_global_max(Some(24 * GIB), 128 * MIB, 1000), 192);
        assert_eq!(default_global_max(Some(2 * GIB), 128 * MIB, 1000), 16);
        assert_eq!(default_global_max(Some(512 * GIB), 128 * MIB, 1000), 1000);
        // A machine smaller than one function still runs one invocation at a time.
        assert_eq!(default_global_max(Some(64 * MIB), 128 * MIB, 1000), 1);
        assert_eq!(default_global_max(None, 128 * MIB, 1000), 1000);
        assert_eq!(default_global_max(Some(GIB), 0, 0), 1);
    }

    #[test]
    fn meminfo_and_cgroup_values_parse() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:         1000 kB\n";
        assert_eq!(meminfo_total(meminfo), Some(24_576_000 * 1024));
        assert_eq!(meminfo_total("MemFree: 1 kB\n"), None);
        assert_eq!(meminfo_total("MemTotal: lots kB\n"), None);

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("memory.max");
        std::fs::write(&p, "max\n").unwrap();
        assert_eq!(cgroup_limit(&p), None);
        std::fs::write(&p, "9223372036854771712\n").unwrap();
        assert_eq!(cgroup_limit(&p), None);
        std::fs::write(&p, "4294967296\n").unwrap();
        assert_eq!(cgroup_limit(&p), Some(4 * GIB));
        assert_eq!(cgroup_limit(&dir.path().join("missing")), None);
    }

    #[test]
    fn this_machine_has_a_memory_figure() {
        if cfg!(target_os = "linux") {
            assert!(memory_bytes().is_some_and(|m| m > 64 * MIB));
        }
    }
}
