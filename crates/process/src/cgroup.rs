//! A memory cgroup per process: the kernel's hard cap behind the RSS watchdog. The watchdog
//! (every 10 ms) holds a process to its function's `memory` and answers with an error naming
//! it; a process that allocates faster than it looks is stopped by the kernel at the cgroup's
//! limit instead, `memory` plus `[process] tmp_size` (its private `/tmp` is memory too), so
//! no handler can take the host's memory from its neighbours. A process the kernel killed for
//! it fails its invocation as out of memory, like one the watchdog caught. The cgroup also holds
//! what the watchdog cannot see: memory in anonymous files, and processes the handler starts.
//!
//! Cgroup v1 (a `memory` hierarchy) and v2 (a cgroup with `memory` in its
//! `cgroup.subtree_control`) are both handled. The server makes `updraft-<pid>-<random>` under
//! its own cgroup (or the operator's `[process] cgroup` directory) and one `env-*` child per
//! process; a process's directory goes when it has exited, and directories of servers no
//! longer running are removed at start. Where none of this can be written (no root, no
//! delegation), there is no cgroup and the summary says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the cgroups go (`[process] cgroup`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CgroupParent {
    /// Under the server's own memory cgroup, if it can be written.
    #[default]
    Auto,
    /// None: the watchdog alone.
    Off,
    /// Under this cgroup directory (v1 memory, or v2 with `memory` available to children).
    Under(PathBuf),
}

/// The server's own directory of per-process cgroups.
#[derive(Debug)]
pub(crate) struct Cgroups {
    base: PathBuf,
    v2: bool,
}

/// One process's cgroup.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

/// The unified (v2) hierarchy and the v1 memory hierarchy, where distributions mount them.
const V2_ROOT: &str = "/sys/fs/cgroup";
const V1_MEMORY: &str = "/sys/fs/cgroup/memory";

impl Cgroups {
    /// The directory for this server's processes, made (and the leftovers of servers no longer
    /// running removed) now; `None` where cgroups are off or cannot be written here.
    pub(crate) fn open(parent: &CgroupParent) -> Option<Self> {
        let parent = match parent {
            CgroupParent::Off => return None,
            CgroupParent::Under(p) => p.clone(),
            CgroupParent::Auto => own_memory_cgroup()?,
        };
        let v2 = parent.join("cgroup.controllers").is_file();
        if v2 {
            enable_memory(&parent)?;
        } else if !parent.join("memory.limit_in_bytes").is_file() {
            return None;
        }
        remove_stale(&parent);
        // Its own, even beside another server in the same process (tests run many).
        let base = parent.join(format!(
            "updraft-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir(&base).ok()?;
        if v2 && enable_memory(&base).is_none() {
            let _ = std::fs::remove_dir(&base);
            return None;
        }
        // A trial child: limits must be writable, not just directories.
        let cgroups = Self { base, v2 };
        drop(cgroups.create(64 << 20).ok()?);
        Some(cgroups)
    }

    /// A cgroup capped at `limit` bytes (swap included, where the host accounts for it).
    pub(crate) fn create(&self, limit: u64) -> std::io::Result<Cgroup> {
        let dir = self
            .base
            .join(format!("env-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&dir)?;
        let cgroup = Cgroup { dir, v2: self.v2 };
        let (max, swap, swap_value) = if self.v2 {
            ("memory.max", "memory.swap.max", "0".to_owned())
        } else {
            (
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                limit.to_string(),
            )
        };
        std::fs::write(cgroup.dir.join(max), limit.to_string())?;
        // Not every host accounts for swap: where it does, none beyond the limit.
        let _ = std::fs::write(cgroup.dir.join(swap), swap_value);
        Ok(cgroup)
    }
}

impl Drop for Cgroups {
    /// The server is going: what is left of its processes' cgroups (those whose process
    /// outlived its waiter) goes too, where empty.
    fn drop(&mut self) {
        remove_tree(&self.base);
    }
}

impl Cgroup {
    /// Its directory's name (the last part of its path in `/proc/<pid>/cgroup`).
    pub(crate) fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Moves `pid` into it. Blocks for an RCU grace period (milliseconds): call it off the
    /// async threads.
    pub(crate) fn join(&self, pid: u32) -> std::io::Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// One of its files, by its v1 or its v2 name.
    fn read(&self, v1: &str, v2: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(if self.v2 { v2 } else { v1 })).ok()
    }

    /// Whether the kernel killed a process in it for going past its limit.
    pub(crate) fn oom_killed(&self) -> bool {
        self.read("memory.oom_control", "memory.events")
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .is_some_and(|n| n > 0)
    }

    /// The most memory it used, in bytes.
    pub(crate) fn peak(&self) -> u64 {
        self.read("memory.max_usage_in_bytes", "memory.peak")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Removes it once the last process in it is gone (the exited one's children may take a
    /// moment longer to be reaped), giving up after a second.
    pub(crate) async fn remove(&self) {
        for _ in 0..100 {
            match std::fs::remove_dir(&self.dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ => return,
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The server's own memory cgroup: v2's from `0::<path>`, else v1's `memory` line.
fn own_memory_cgroup() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let unified = Path::new(V2_ROOT).join("cgroup.controllers").is_file();
    own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if unified && controllers.is_empty() {
            Some(Path::new(V2_ROOT).join(path))
        } else if !unified && controllers.split(',').any(|c| c == "memory") {
            Some(Path::new(V1_MEMORY).join(path))
        } else {
            None
        }
    })
}

/// Makes `memory` available to the children of v2 cgroup `dir` (refused by the kernel when
/// `dir` has processes of its own, unless it is the root).
fn enable_memory(dir: &Path) -> Option<()> {
    let control = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control).ok()?;
    if enabled.split_whitespace().any(|c| c == "memory") {
        return Some(());
    }
    std::fs::write(&control, "+memory").ok()
}

/// Removes the `updraft-<pid>-*` directories of servers no longer running (a `kill -9` leaves
/// them behind), with their empty children.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("updraft-"))
            .and_then(|p| p.split('-').next()?.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        remove_tree(&entry.path());
    }
}

/// Removes the empty cgroups beneath `dir`, then `dir` (a cgroup directory is removed with
/// `rmdir`, its files with it).
fn remove_tree(dir: &Path) {
    if let Ok(children) = std::fs::read_dir(dir) {
        for child in children.flatten() {
            if child.path().is_dir() {
                let _ = std::fs::remove_dir(child.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel holds a process to its cgroup's limit, and the kill is seen as one. Skipped
    /// (with a line saying so) where this host gives no writable memory cgroup.
    #[tokio::test]
    async fn a_process_past_its_cgroup_limit_is_killed_and_seen_as_out_of_memory() {
        let Some(cgroups) = Cgroups::open(&CgroupParent::Auto) else {
            eprintln!("no writable memory cgroup on this host: skipped");
            return;
        };
        let run = |cgroup: &Cgroup, megabytes: u32| {
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                // Waits to be moved in, then holds `megabytes` of memory in a shell variable.
                .arg(format!(
                    "read go; x=$(head -c {megabytes}000000 /dev/zero | tr '\\0' x); echo ${{#x}}"
                ))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            cgroup.join(child.id()).unwrap();
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(b"go\n").unwrap();
            child.wait_with_output().unwrap()
        };
        let small = cgroups.create(64 << 20).unwrap();
        let out = run(&small, 200);
        assert_ne!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "200000000",
            "200 MB fit in a 64 MiB cgroup"
        );
        assert!(small.oom_killed(), "the kill was not seen as out of memory");
        assert!(small.peak() >= 60 << 20, "{}", small.peak());
        small.remove().await;
        assert!(!small.dir.exists());

        let roomy = cgroups.create(512 << 20).unwrap();
        let out = run(&roomy, 20);
        assert!(out.status.success(), "20 MB did not fit in 512 MiB");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "20000000");
        assert!(!roomy.oom_killed());
    }
}
