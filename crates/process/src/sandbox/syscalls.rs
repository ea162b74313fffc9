//! The seccomp filter of the sandbox: a short deny list, in the spirit of Docker's default
//! profile, of system calls a Lambda handler has no use for and that widen the kernel an
//! attacker can reach. Everything else is allowed: an allow list would break runtimes (Python,
//! Node.js, a Go or Rust `bootstrap`) in ways a user cannot see coming.
//!
//! Denied with `EPERM`:
//! - new namespaces: `unshare`, `setns`, and `clone` with any `CLONE_NEW*` flag (an
//!   unprivileged user namespace hands out capabilities inside it, and with them much of the
//!   kernel); `clone3`, whose flags a filter cannot read, answers `ENOSYS` so that the C
//!   library falls back to `clone`, as under Docker and systemd;
//! - kernel attack surface with no place in a handler: `bpf`, `perf_event_open`,
//!   `userfaultfd`, the `io_uring` calls, the key ring (`keyctl`, `add_key`, `request_key`);
//! - reaching into other processes: `ptrace`, `process_vm_readv`/`writev`, `kcmp`;
//! - the machine's own business (refused to a process without capabilities anyway; denied
//!   here as well, in case the host gave it some): mounts, modules, `kexec`, `reboot`, swap,
//!   clocks, `acct`, `quotactl`, `syslog`, `chroot`, `open_by_handle_at`;
//! - system calls of another ABI (i386 through `int 0x80`, x32): they would bypass the
//!   numbers below.
//!
//! The filter is installed after `no_new_privs` and inherited across `exec` and by every
//! child; it cannot be removed.

use libc::{c_long, sock_filter, sock_fprog};

/// `AUDIT_ARCH_*` of the architectures the numbers below are for.
#[cfg(target_arch = "x86_64")]
const ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const ARCH: u32 = 0xC000_00B7;

/// x32 system calls are the x86_64 numbers with this bit set.
#[cfg(target_arch = "x86_64")]
const X32_BIT: u32 = 0x4000_0000;

/// Denied outright.
const DENIED: &[c_long] = &[
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_lookup_dcookie,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_modify_ldt,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
];

/// Every `CLONE_NEW*` flag (`CLONE_NEWTIME` shares its bit with `CSIGNAL` in `clone`, whose
/// low byte is the exit signal, so it is refused through `unshare` only).
const CLONE_NEW: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;

// Classic BPF, as seccomp reads it (linux/filter.h, linux/seccomp.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
/// Offsets in `struct seccomp_data`: the call's number, the ABI, the low half of argument 0.
const NR: u32 = 0;
const AUDIT_ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;

const fn op(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA);
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | (libc::ENOSYS as u32 & libc::SECCOMP_RET_DATA);

/// The filter program. It ends in three returns: allow, `EPERM`, `ENOSYS`; every test jumps
/// forward to one of them.
fn program() -> Vec<sock_filter> {
    let mut p = vec![
        op(LD_W_ABS, 0, 0, AUDIT_ARCH),
        op(JEQ_K, 1, 0, ARCH),
        op(RET_K, 0, 0, EPERM),
        op(LD_W_ABS, 0, 0, NR),
    ];
    // Placeholders for the jumps, patched once the returns' places are known.
    let mut to_deny = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        to_deny.push(p.len());
        p.push(op(JGE_K, 0, 0, X32_BIT));
    }
    for &nr in DENIED {
        to_deny.push(p.len());
        p.push(op(JEQ_K, 0, 0, u32::try_from(nr).unwrap_or(u32::MAX)));
    }
    let clone3 = p.len();
    p.push(op(
        JEQ_K,
        0,
        0,
        u32::try_from(libc::SYS_clone3).unwrap_or(u32::MAX),
    ));
    // `clone`: allowed unless it asks for a new namespace.
    p.push(op(
        JEQ_K,
        0,
        2,
        u32::try_from(libc::SYS_clone).unwrap_or(u32::MAX),
    ));
    p.push(op(LD_W_ABS, 0, 0, ARG0_LOW));
    to_deny.push(p.len());
    p.push(op(JSET_K, 0, 0, CLONE_NEW));
    let allow = p.len();
    p.push(op(RET_K, 0, 0, ALLOW));
    p.push(op(RET_K, 0, 0, EPERM));
    p.push(op(RET_K, 0, 0, ENOSYS));
    let jump = |from: usize, to: usize| u8::try_from(to - from - 1).unwrap_or(u8::MAX);
    for at in to_deny {
        p[at].jt = jump(at, allow + 1);
    }
    p[clone3].jt = jump(clone3, allow + 2);
    p
}

/// Installs the filter on this thread (the helper has no other); `no_new_privs` must be set.
/// Returns whether it took.
#[allow(
    unsafe_code,
    reason = "prctl(PR_SET_SECCOMP) takes a pointer to the program; libc has no safe wrapper \
              and rustix none for seccomp"
)]
pub(super) fn install() -> bool {
    let mut filter = program();
    let Ok(len) = u16::try_from(filter.len()) else {
        return false;
    };
    let prog = sock_fprog {
        len,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `len` valid instructions that outlive the call; the kernel
    // copies the program before returning.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &raw const prog,
            0,
            0,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program over one call the way the kernel would: the verdict.
    fn verdict(nr: c_long, arch: u32, arg0: u32) -> u32 {
        let p = program();
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = p[pc];
            let jump = |taken: bool| pc + 1 + usize::from(if taken { i.jt } else { i.jf });
            pc = match i.code {
                LD_W_ABS => {
                    acc = match i.k {
                        NR => u32::try_from(nr).unwrap(),
                        AUDIT_ARCH => arch,
                        ARG0_LOW => arg0,
                        k => panic!("load of {k}"),
                    };
                    pc + 1
                }
                JEQ_K => jump(acc == i.k),
                JGE_K => jump(acc >= i.k),
                JSET_K => jump(acc & i.k != 0),
                RET_K => return i.k,
                c => panic!("opcode {c:#x}"),
            };
        }
    }

    #[test]
    fn the_filter_denies_the_listed_calls_and_allows_the_rest() {
        for &nr in DENIED {
            assert_eq!(verdict(nr, ARCH, 0), EPERM, "{nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_mmap,
            libc::SYS_futex,
            libc::SYS_epoll_pwait,
            libc::SYS_landlock_create_ruleset,
        ] {
            assert_eq!(verdict(nr, ARCH, 0), ALLOW, "{nr}");
        }
        assert_eq!(verdict(libc::SYS_clone3, ARCH, 0), ENOSYS);
        // A thread (CLONE_VM | CLONE_THREAD...) and a fork pass; a new namespace does not.
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u32;
        assert_eq!(verdict(libc::SYS_clone, ARCH, thread), ALLOW);
        assert_eq!(verdict(libc::SYS_clone, ARCH, libc::SIGCHLD as u32), ALLOW);
        assert_eq!(
            verdict(
                libc::SYS_clone,
                ARCH,
                libc::SIGCHLD as u32 | libc::CLONE_NEWUSER as u32
            ),
            EPERM
        );
        // Another ABI is refused whatever the number.
        assert_eq!(verdict(libc::SYS_read, 0x4000_0003, 0), EPERM);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(verdict(libc::SYS_read | 0x4000_0000, ARCH, 0), EPERM);
    }
}
