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
