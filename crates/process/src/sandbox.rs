//! The sandbox a process function runs in, applied by a small helper between the server and
//! the function: the `updraft` binary run as `updraft __updraft-sandbox <plan> <program>
//! <args>...`, which locks itself down and then `exec`s the function's program (same pid, same
//! pipes, same process group, same environment), so the lockdown is inherited and cannot be
//! undone.
//!
//! In order, each step best effort (what a host allows is found once by `probe` and shown
//! to users as [`Enforced`]):
//! 1. resource limits: open files, core dumps off, largest file it may write;
//! 2. a private mount namespace (a user namespace too when not root) with a fresh `tmpfs` at
//!    `/tmp` capped at the plan's size: the function's writable space, gone when it exits;
//! 3. when running as root, every capability dropped from the bounding set and the process's
//!    sets, and `no_new_privs`;
//! 4. Landlock: read-only access to the system's libraries, the interpreter, the runtime
//!    client and the function's own code; read-write to `/tmp` and a few devices; nothing else
//!    (not the data directory, not other functions' code); and no signals to processes outside
//!    the sandbox (ABI 6);
//! 5. a seccomp filter denying system calls a handler has no use for and that widen the
//!    kernel it can reach: new namespaces, `bpf`, `io_uring`, `ptrace`... (see `syscalls`);
//! 6. last, just before `exec`, a wait until the server has moved it into the memory cgroup
//!    it made for it (`cgroup`), if any: the move costs the kernel an RCU grace period (about
//!    10 ms here), spent while the helper does the steps above. This one is not best effort:
//!    the helper stops rather than run the function outside its cgroup.
//!
//! Not done here (see docs/lambda.md): PID and network namespaces (the Runtime API is reached
//! over the host's loopback, and Lambda functions have network egress), and a separate user
//! (the data directory is private to the server's user, and the code is inside it; Landlock
//! keeps the process out of the rest).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod syscalls;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod syscalls {
    /// No filter for this architecture's system call numbers.
    pub(super) fn install() -> bool {
        false
    }
}

/// The first argument that makes the `updraft` binary act as the helper.
pub const HELPER_ARG: &str = "__updraft-sandbox";

/// What one function's processes may touch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plan {
    /// Read and execute, beneath each.
    pub read: Vec<PathBuf>,
    /// Read and write, beneath each (besides `/tmp`).
    pub write: Vec<PathBuf>,
    /// Size of the private `/tmp`, in bytes (also the largest file it may write).
    pub tmp_bytes: u64,
    /// Most open files.
    pub max_open_files: u64,
    /// The memory cgroup the server moves it into, which it must be in before `exec` (its
    /// directory's name, as the last part of its path in `/proc/self/cgroup`).
    #[serde(default)]
    pub cgroup: Option<String>,
}

/// What the sandbox enforces on this host.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Enforced {
    /// Whether the helper runs at all (it is off, or no helper binary is known: nothing
    /// below is enforced).
    pub helper: bool,
    /// Landlock confines the filesystem to the plan's paths.
    pub filesystem: bool,
    /// Landlock stops signals to processes outside the sandbox.
    pub signals: bool,
    /// A private `/tmp` with a size cap (a mount namespace).
    pub private_tmp: bool,
    /// It runs without capabilities (root's dropped, or never had any).
    pub no_capabilities: bool,
    /// A seccomp filter denies the system calls `syscalls` lists.
    #[serde(default)]
    pub syscalls: bool,
    /// Each process is in a memory cgroup capped at its `memory` plus its `/tmp` (found by the
    /// server, not the helper).
    #[serde(default)]
    pub memory_cgroup: bool,
}

impl Enforced {
    /// One line for users: what is enforced, and what is not.
    pub fn summary(&self) -> String {
        if !self.helper {
            let cgroup = if self.memory_cgroup {
                "; memory capped by a cgroup"
            } else {
                ""
            };
            return format!(
                "not sandboxed: no helper (the code can read what the server can){cgroup}"
            );
        }
        let mut on = Vec::new();
        let mut off = Vec::new();
        for (yes, name) in [
            (
                self.filesystem,
                "filesystem confined (code read-only, no data dir)",
            ),
            (self.private_tmp, "private /tmp with a size cap"),
            (self.signals, "no signals outside"),
            (self.no_capabilities, "no capabilities"),
            (self.syscalls, "system calls filtered"),
            (self.memory_cgroup, "memory capped by a cgroup"),
        ] {
            if yes { on.push(name) } else { off.push(name) }
        }
        let mut s = format!("enforced: {}", on.join(", "));
        if !off.is_empty() {
            s.push_str(&format!("; not on this host: {}", off.join(", ")));
        }
        s
    }
}

/// `/etc` entries a process may read (not all of `/etc`: no `shadow`, no keys).
const ETC: [&str; 16] = [
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/crypto-policies",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/mime.types",
    "/etc/os-release",
];

/// System directories every process may read and execute beneath.
const SYSTEM: [&str; 8] = [
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/proc", "/sys",
];

/// Devices a process may read and write.
const DEVICES: [&str; 5] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

impl Plan {
    /// A plan reading `code` (the function's, plus its interpreter's and client's paths) on top
    /// of the system's.
    pub fn new(code: Vec<PathBuf>, tmp_bytes: u64) -> Self {
        let mut read: Vec<PathBuf> = SYSTEM.iter().chain(ETC.iter()).map(PathBuf::from).collect();
        read.extend(code);
        Self {
            read,
            write: Vec::new(),
            tmp_bytes,
            max_open_files: 1024,
            cgroup: None,
        }
    }
}

/// The helper's entry point: `args` are what follows [`HELPER_ARG`]: `<plan json> <program>
/// <args>...`, or `--probe <plan json>` to report what it could enforce as JSON. Returns only
/// on failure, with the exit code.
pub fn helper_main(args: Vec<OsString>) -> i32 {
    let (probe, rest) = match args.first().and_then(|a| a.to_str()) {
        Some("--probe") => (true, &args[1..]),
        _ => (false, &args[..]),
    };
    let Some(plan) = rest
        .first()
        .and_then(|p| p.to_str())
        .and_then(|p| serde_json::from_str::<Plan>(p).ok())
    else {
        eprintln!("updraft sandbox: expected a plan");
        return 125;
    };
    let enforced = apply(&plan);
    if probe {
        // `/` is beneath none of the plan's paths: listing it must fail.
        let escaped = std::fs::read_dir("/").is_ok();
        let mut e = enforced;
        e.filesystem &= !escaped;
        println!("{}", serde_json::to_string(&e).unwrap_or_default());
        return 0;
    }
    let Some(program) = rest.get(1) else {
        eprintln!("updraft sandbox: expected a program");
        return 125;
    };
    if let Some(name) = &plan.cgroup
        && !moved_into(name)
    {
        eprintln!("updraft sandbox: not moved into its memory cgroup {name} in time");
        return 125;
    }
    let err = std::process::Command::new(program).args(&rest[2..]).exec();
    eprintln!(
        "updraft sandbox: could not run {}: {err}",
        Path::new(program).display()
    );
    126
}

/// How long the helper waits for the server to move it into its cgroup.
const CGROUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits (polling `/proc/self/cgroup`) until this process is in the cgroup called `name`.
fn moved_into(name: &str) -> bool {
    let suffix = format!("/{name}");
    let started = std::time::Instant::now();
    while started.elapsed() < CGROUP_WAIT {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        if own.lines().any(|l| l.trim_end().ends_with(&suffix)) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    false
}

/// Applies `plan` to this process; returns what took.
fn apply(plan: &Plan) -> Enforced {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let limit = |r, n: u64| {
        let _ = setrlimit(
            r,
            Rlimit {
                current: Some(n),
                maximum: Some(n),
            },
        );
    };
    limit(Resource::Nofile, plan.max_open_files);
    limit(Resource::Core, 0);
    limit(Resource::Fsize, plan.tmp_bytes);

    let root = rustix::process::geteuid().is_root();
    let private_tmp = private_tmp(root, plan);
    let no_capabilities = if root { drop_capabilities() } else { true };
    let (filesystem, signals) = landlock(plan);
    // Last: the filter denies `unshare`, which the steps above need.
    let syscalls = rustix::thread::set_no_new_privs(true).is_ok() && syscalls::install();
    Enforced {
        helper: true,
        filesystem,
        signals,
        private_tmp,
        no_capabilities,
        syscalls,
        // The server's to say.
        memory_cgroup: false,
    }
}

/// A mount namespace of its own with a fresh, size-capped `tmpfs` at `/tmp`. Paths of the
/// plan that live under the host's `/tmp` (a data directory there, say) are bound back in at
/// the same place, through descriptors opened before the host's `/tmp` is covered.
fn private_tmp(root: bool, plan: &Plan) -> bool {
    use rustix::fs::{Mode, OFlags};
    use rustix::mount::{MountFlags, MountPropagationFlags, mount, mount_bind, mount_change};
    use rustix::thread::UnshareFlags;
    let (uid, gid) = (rustix::process::getuid(), rustix::process::getgid());
    let flags = if root {
        UnshareFlags::NEWNS
    } else {
        UnshareFlags::NEWNS | UnshareFlags::NEWUSER
    };
    if unshare(flags).is_err() {
        return false;
    }
    if !root {
        // The same ids inside as outside: files keep their owners.
        let maps = std::fs::write("/proc/self/setgroups", "deny")
            .and_then(|()| std::fs::write("/proc/self/uid_map", format!("{0} {0} 1", uid.as_raw())))
            .and_then(|()| {
                std::fs::write("/proc/self/gid_map", format!("{0} {0} 1", gid.as_raw()))
            });
        if maps.is_err() {
            return false;
        }
    }
    if mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .is_err()
    {
        return false;
    }
    let bytes = plan.tmp_bytes;
    let Ok(data) = std::ffi::CString::new(format!("size={bytes},mode=1777")) else {
        return false;
    };
    let under_tmp: Vec<(PathBuf, rustix::fd::OwnedFd, bool)> = plan
        .read
        .iter()
        .chain(&plan.write)
        .filter(|p| p.starts_with("/tmp"))
        .filter_map(|p| {
            let fd = rustix::fs::open(p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).ok()?;
            Some((p.clone(), fd, p.is_dir()))
        })
        .collect();
    if mount(
        "tmpfs",
        "/tmp",
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        data.as_c_str(),
    )
    .is_err()
    {
        return false;
    }
    for (path, fd, dir) in &under_tmp {
        let made = if *dir {
            std::fs::create_dir_all(path)
        } else {
            path.parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::File::create(path).map(drop))
        };
        let source = format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(fd));
        if made.is_err() || mount_bind(source.as_str(), path).is_err() {
            return false;
        }
    }
    true
}

#[allow(
    unsafe_code,
    reason = "unshare(2) is unsafe in rustix only for CLONE_FILES, which is not asked for; the \
              helper is single-threaded and about to exec"
)]
fn unshare(flags: rustix::thread::UnshareFlags) -> std::io::Result<()> {
    // SAFETY: no `FILES` flag, so no thread can observe an unshared descriptor table; the
    // helper runs no other threads.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(std::io::Error::from)
}

/// Root without its powers: every capability out of the bounding set (so `exec` grants none)
/// and out of this process's sets.
fn drop_capabilities() -> bool {
    use rustix::thread::{CapabilitySet, CapabilitySets, remove_capability_from_bounding_set};
    for cap in CapabilitySet::all().iter() {
        let _ = remove_capability_from_bounding_set(cap);
    }
    let none = CapabilitySets {
        effective: CapabilitySet::empty(),
        permitted: CapabilitySet::empty(),
        inheritable: CapabilitySet::empty(),
    };
    rustix::thread::set_capabilities(None, none).is_ok()
}

fn landlock(plan: &Plan) -> (bool, bool) {
    use landlock::{
        ABI, Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetStatus, Scope,
    };
    let abi = ABI::V6;
    // A file gets only the rights that apply to files (asking more would leave the ruleset
    // "partially enforced").
    let rules = |paths: Vec<&Path>, access: landlock::BitFlags<AccessFs>| {
        paths
            .into_iter()
            .filter_map(|p| {
                let access = if p.is_dir() {
                    access
                } else {
                    access & AccessFs::from_file(abi)
                };
                Some(PathBeneath::new(PathFd::new(p).ok()?, access))
            })
            .collect::<Vec<_>>()
    };
    let read = rules(
        plan.read.iter().map(PathBuf::as_path).collect(),
        AccessFs::from_read(abi),
    );
    let mut writable: Vec<&Path> = plan.write.iter().map(PathBuf::as_path).collect();
    writable.push(Path::new("/tmp"));
    let write = rules(writable, AccessFs::from_all(abi));
    let devices = rules(
        DEVICES.iter().map(Path::new).collect(),
        AccessFs::ReadFile | AccessFs::WriteFile,
    );
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(read.into_iter().map(Ok::<_, landlock::RulesetError>)))
        .and_then(|r| r.add_rules(write.into_iter().map(Ok::<_, landlock::RulesetError>)))
        .and_then(|r| r.add_rules(devices.into_iter().map(Ok::<_, landlock::RulesetError>)))
        .and_then(|r| r.restrict_self());
    match status {
        Ok(s) => {
            let fs = s.ruleset != RulesetStatus::NotEnforced;
            let signals = s.ruleset == RulesetStatus::FullyEnforced;
            (fs, signals)
        }
        Err(_) => (false, false),
    }
}

/// Runs the helper in probe mode with a plan like a function's: what this host enforces.
pub(crate) fn probe(helper: &Path, plan: &Plan) -> Enforced {
    let Ok(json) = serde_json::to_string(plan) else {
        return Enforced::default();
    };
    let out = std::process::Command::new(helper)
        .arg(HELPER_ARG)
        .arg("--probe")
        .arg(json)
        .env_clear()
        .output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap_or_default(),
        _ => Enforced::default(),
    }
}
