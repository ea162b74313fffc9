//! Execution environments: one child process, its Runtime API, its private temp directory and
//! its log lines.
//!
//! A process runs in its own process group (the deadline and the memory watchdog kill the
//! whole group), with an environment made only of Lambda's variables and the function's own,
//! its code directory (read-only) as working directory, and a fresh `TMPDIR` removed when it
//! exits. Its stdout and stderr go, line by line, to the invocation in progress; lines written
//! while none is (its init) are held and given to the next one, as Lambda shows init logs
//! before `START`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;
use updraft_dispatch::{InvocationSink, Stream};

use crate::api::{Job, Mailbox, Outcome};
use crate::clients::Launch;

/// Init-time lines held for the first invocation, at most.
const MAX_HELD_LINES: usize = 1000;
/// How long an answered invocation waits for the runtime to ask for the next one (and so to
/// have written all its output) before its log is closed anyway.
const FLUSH_GRACE: Duration = Duration::from_millis(10);
/// How often a busy environment's memory is looked at.
const MEMORY_TICK: Duration = Duration::from_millis(10);

/// What every environment of one version is started with.
pub(crate) struct Spec {
    pub(crate) launch: Launch,
    pub(crate) task_root: PathBuf,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) init_timeout: Duration,
    pub(crate) max_payload: usize,
    pub(crate) tmp_root: PathBuf,
    pub(crate) redact: Vec<String>,
    /// The helper and plan to run it through (`None`: run it directly).
    pub(crate) sandbox: Option<(PathBuf, crate::sandbox::Plan)>,
    /// Whether the sandbox gives it a private `/tmp` (else a directory of its own under
    /// `tmp_root` is its `TMPDIR`).
    pub(crate) private_tmp: bool,
    /// Where its memory cgroup goes and the cap, in bytes (`None`: no cgroup on this host).
    pub(crate) cgroup: Option<(Arc<crate::cgroup::Cgroups>, u64)>,
}

/// Why an environment did not start.
#[derive(Debug, Clone)]
pub(crate) struct StartError {
    pub(crate) error_type: String,
    pub(crate) message: String,
}

/// How one invocation on an environment ended.
#[derive(Debug)]
pub(crate) enum Ran {
    Done(Outcome),
    Timeout,
    OutOfMemory(u64),
    Exited(String),
}

/// Where an environment's output lines go.
struct Logs {
    current: Mutex<Option<Arc<dyn InvocationSink>>>,
    held: Mutex<Vec<(Stream, String)>>,
    redact: Vec<String>,
}

impl Logs {
    fn line(&self, stream: Stream, line: &str) {
        let mut line = line.to_owned();
        for secret in self.redact.iter().filter(|s| !s.is_empty()) {
            if line.contains(secret.as_str()) {
                line = line.replace(secret.as_str(), "***");
            }
        }
        let current = lock(&self.current).clone();
        match current {
            Some(sink) => sink.line(stream, &line),
            None => {
                let mut held = lock(&self.held);
                if held.len() < MAX_HELD_LINES {
                    held.push((stream, line));
                }
            }
        }
    }

    fn attach(&self, sink: Arc<dyn InvocationSink>) {
        for (stream, line) in std::mem::take(&mut *lock(&self.held)) {
            sink.line(stream, &line);
        }
        *lock(&self.current) = Some(sink);
    }

    fn detach(&self) {
        *lock(&self.current) = None;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One running process.
pub(crate) struct Environment {
    pid: Option<rustix::process::Pid>,
    mailbox: Mailbox,
    exit: watch::Receiver<Option<String>>,
    logs: Arc<Logs>,
    /// Its own temp directory on the host, removed when it is dropped (`None`: a private
    /// `/tmp` that goes with its mount namespace).
    tmp: Option<PathBuf>,
    /// How long its init took.
    pub(crate) init: Duration,
    /// Invocations it served.
    pub(crate) served: u32,
    /// When it last finished one.
    pub(crate) idle_since: Instant,
    /// Killed by us: gone even before its exit is seen.
    killed: bool,
    /// Its poll count when the current invocation was posted.
    polled: u64,
    /// Its peak resident memory (`VmHWM`) as last read, and when.
    peak: (u64, Option<Instant>),
    /// Its cgroup's peak, in bytes, once the kernel killed it at the cgroup's cap (0: not).
    oom_peak: Arc<AtomicU64>,
}

/// How often the peak is read from `/proc/<pid>/status`: that read costs the server about a
/// tenth of a warm invocation's CPU, so back-to-back invocations share one (the RSS they
/// report is read at their end, and the peak is never below it).
const PEAK_REFRESH: Duration = Duration::from_millis(100);

impl Drop for Environment {
    fn drop(&mut self) {
        self.kill();
        if let Some(tmp) = &self.tmp {
            let _ = std::fs::remove_dir_all(tmp);
        }
    }
}

impl Environment {
    /// Starts a process and waits for its init (its first `invocation/next`), at most
    /// `spec.init_timeout`. `stream` names the log stream (`AWS_LAMBDA_LOG_STREAM_NAME`),
    /// `version` the version it runs (`AWS_LAMBDA_FUNCTION_VERSION`).
    pub(crate) async fn start(
        spec: &Spec,
        stream: &str,
        version: &str,
    ) -> Result<Self, StartError> {
        let fail = |error_type: &str, message: String| StartError {
            error_type: error_type.to_owned(),
            message,
        };
        let started = Instant::now();
        let mailbox = Mailbox::start(spec.max_payload).await.map_err(|e| {
            fail(
                "Runtime.Unavailable",
                format!("starting the Runtime API: {e}"),
            )
        })?;
        let (tmp, tmp_dir) = if spec.private_tmp {
            (None, PathBuf::from("/tmp"))
        } else {
            let dir = spec
                .tmp_root
                .join(format!("env-{:016x}", rand::random::<u64>()));
            make_private_dir(&dir).map_err(|e| {
                fail(
                    "Runtime.Unavailable",
                    format!("creating {}: {e}", dir.display()),
                )
            })?;
            (Some(dir.clone()), dir)
        };
        let remove_tmp = || {
            if let Some(tmp) = &tmp {
                let _ = std::fs::remove_dir_all(tmp);
            }
        };
        let cgroup = match &spec.cgroup {
            Some((cgroups, cap)) => match cgroups.create(*cap) {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    remove_tmp();
                    return Err(fail(
                        "Runtime.Unavailable",
                        format!("creating its memory cgroup: {e}"),
                    ));
                }
            },
            None => None,
        };
        let mut cmd = match &spec.sandbox {
            Some((helper, plan)) => {
                let mut plan = plan.clone();
                plan.write.extend(tmp.iter().cloned());
                plan.cgroup = cgroup.as_ref().map(|c| c.name());
                let json = serde_json::to_string(&plan).unwrap_or_default();
                let mut c = tokio::process::Command::new(helper);
                c.arg(crate::sandbox::HELPER_ARG)
                    .arg(json)
                    .arg(&spec.launch.program);
                c
            }
            None => tokio::process::Command::new(&spec.launch.program),
        };
        cmd.args(&spec.launch.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", mailbox.addr.to_string())
            .env("AWS_LAMBDA_LOG_STREAM_NAME", stream)
            .env("AWS_LAMBDA_FUNCTION_VERSION", version)
            .env("TMPDIR", &tmp_dir)
            .env("HOME", &tmp_dir)
            .current_dir(&spec.task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(extra) = &spec.launch.python_path {
            let path = std::env::join_paths([spec.task_root.as_path(), extra.as_path()])
                .unwrap_or_default();
            cmd.env("PYTHONPATH", path);
        }
        let mut child = cmd.spawn().map_err(|e| {
            remove_tmp();
            fail(
                "Runtime.InvalidEntrypoint",
                format!("could not start {}: {e}", spec.launch.program.display()),
            )
        })?;
        if let Some(id) = child.id() {
            mailbox.allow(id);
            // Moved in while the helper locks itself down (it waits for this before `exec`;
            // without the helper, the function itself is moved, just after it started).
            if let Some(c) = cgroup.clone() {
                let joined = tokio::task::spawn_blocking(move || c.join(id)).await;
                if let Err(e) = joined.map_err(std::io::Error::other).and_then(|r| r) {
                    let _ = child.start_kill();
                    remove_tmp();
                    return Err(fail(
                        "Runtime.Unavailable",
                        format!("moving it into its memory cgroup: {e}"),
                    ));
                }
            }
        }
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        let logs = Arc::new(Logs {
            current: Mutex::new(None),
            held: Mutex::new(Vec::new()),
            redact: spec.redact.clone(),
        });
        if let Some(out) = child.stdout.take() {
            tokio::spawn(read_lines(out, Stream::Stdout, logs.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(read_lines(err, Stream::Stderr, logs.clone()));
        }
        let (exit_tx, exit) = watch::channel(None);
        let oom_peak = Arc::new(AtomicU64::new(0));
        let oom = oom_peak.clone();
        // Not aborted with the environment: it reaps the killed process and removes its cgroup.
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => describe(s),
                Err(e) => format!("could not be waited for: {e}"),
            };
            // Seen before its exit is: a kernel kill at the cap is an invocation out of memory.
            if let Some(c) = &cgroup
                && c.oom_killed()
            {
                oom.store(c.peak().max(1), Ordering::Release);
            }
            exit_tx.send_replace(Some(status));
            if let Some(c) = cgroup {
                c.remove().await;
            }
        });
        let mut env = Self {
            pid,
            mailbox,
            exit,
            logs,
            tmp,
            init: Duration::ZERO,
            served: 0,
            idle_since: Instant::now(),
            killed: false,
            polled: 0,
            peak: (0, None),
            oom_peak,
        };
        let mut ready = env.mailbox.polls.clone();
        let mut init_error = env.mailbox.init_error.clone();
        let mut exit = env.exit.clone();
        tokio::select! {
            r = ready.wait_for(|n| *n > 0) => {
                if r.is_err() {
                    return Err(fail("Runtime.Unavailable", "the Runtime API stopped".into()));
                }
            }
            e = async { init_error.wait_for(Option::is_some).await.ok().and_then(|r| r.clone()) } => {
                let e = e.unwrap_or_else(|| crate::api::InitError {
                    error_type: "Runtime.Unknown".into(),
                    message: String::new(),
                });
                return Err(fail(&e.error_type, e.message));
            }
            status = async { exit.wait_for(Option::is_some).await.ok().and_then(|r| r.clone()) } => {
                let status = status.unwrap_or_default();
                let tail = env.held_tail();
                return Err(fail("Runtime.ExitError", format!("the runtime exited during init ({status}){tail}")));
            }
            () = tokio::time::sleep(spec.init_timeout) => {
                return Err(fail(
                    "Runtime.InitTimeout",
                    format!("init did not finish within {:?}", spec.init_timeout),
                ));
            }
        }
        env.init = started.elapsed();
        Ok(env)
    }

    /// The last held init lines, for an init failure's message.
    fn held_tail(&self) -> String {
        let held = lock(&self.logs.held);
        let lines: Vec<&str> = held
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(|(_, l)| l.as_str())
            .collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!(": {}", lines.join(" | "))
        }
    }

    /// Whether the process is still running.
    pub(crate) fn alive(&self) -> bool {
        !self.killed && self.exit.borrow().is_none()
    }

    /// Sends its output to `sink` from now on (init lines first).
    pub(crate) fn attach(&self, sink: Arc<dyn InvocationSink>) {
        self.logs.attach(sink);
    }

    /// Stops sending its output anywhere.
    pub(crate) fn detach(&self) {
        self.logs.detach();
    }

    /// Runs `job` until it is answered, `deadline` passes (the process is killed), its memory
    /// goes past `memory_bytes` (killed) or it exits.
    pub(crate) async fn run(
        &mut self,
        job: Job,
        deadline: tokio::time::Instant,
        memory_bytes: u64,
    ) -> Ran {
        self.polled = *self.mailbox.polls.borrow();
        let Some(rx) = self.mailbox.post(job) else {
            return Ran::Exited("the runtime was not waiting for an invocation".into());
        };
        let mut exit = self.exit.clone();
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + MEMORY_TICK, MEMORY_TICK);
        tokio::pin!(rx);
        let ran = loop {
            tokio::select! {
                outcome = &mut rx => match outcome {
                    Ok(o) => break Ran::Done(o),
                    Err(_) => break Ran::Exited("the Runtime API stopped".into()),
                },
                _ = exit.wait_for(Option::is_some) => {
                    // It may have answered just before exiting.
                    if let Ok(o) = rx.try_recv() {
                        break Ran::Done(o);
                    }
                    let oom = self.oom_peak.load(Ordering::Acquire);
                    if oom > 0 {
                        break Ran::OutOfMemory(oom);
                    }
                    break Ran::Exited(self.exit.borrow().clone().unwrap_or_default());
                }
                () = tokio::time::sleep_until(deadline) => break Ran::Timeout,
                _ = tick.tick() => {
                    let rss = self.rss();
                    if rss > memory_bytes {
                        break Ran::OutOfMemory(rss);
                    }
                }
            }
        };
        self.served = self.served.saturating_add(1);
        // An answered invocation is over when the runtime asks for the next one: the caller
        // flushes then, off the response's path.
        if !matches!(ran, Ran::Done(_)) {
            self.kill();
        }
        self.idle_since = Instant::now();
        ran
    }

    /// Waits (briefly) for the runtime to ask for its next invocation: as on Lambda, the
    /// invocation is over then, and what it wrote before asking belongs to this one.
    pub(crate) async fn flush(&mut self) {
        let polled = self.polled;
        let mut polls = self.mailbox.polls.clone();
        let _ = tokio::time::timeout(FLUSH_GRACE, polls.wait_for(|n| *n > polled)).await;
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.idle_since = Instant::now();
    }

    /// Whether the process exited.
    pub(crate) fn exited(&self) -> watch::Receiver<Option<String>> {
        self.exit.clone()
    }

    /// Its resident memory now, in bytes, or zero once gone: `/proc/<pid>/statm`, cheaper to
    /// read than `status` (the watchdog reads it every tick).
    pub(crate) fn rss(&self) -> u64 {
        let Some(pid) = self.pid else { return 0 };
        std::fs::read_to_string(format!("/proc/{}/statm", pid.as_raw_nonzero()))
            .ok()
            .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| pages * rustix::param::page_size() as u64)
    }

    /// Its peak resident memory, in bytes: `VmHWM`, read at most every [`PEAK_REFRESH`], and
    /// never less than its RSS now.
    pub(crate) fn peak(&mut self) -> u64 {
        let stale = self.peak.1.is_none_or(|at| at.elapsed() >= PEAK_REFRESH);
        if stale && let Some(pid) = self.pid {
            let status = std::fs::read_to_string(format!("/proc/{}/status", pid.as_raw_nonzero()));
            let hwm = status.ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            });
            if let Some(kb) = hwm {
                // `VmHWM` is never below `VmRSS`: no second read.
                self.peak = (self.peak.0.max(kb * 1024), Some(Instant::now()));
                return self.peak.0;
            }
        }
        let rss = self.rss();
        self.peak.0 = self.peak.0.max(rss);
        self.peak.0
    }

    /// Kills the whole process group.
    pub(crate) fn kill(&mut self) {
        if let Some(pid) = self.pid
            && self.alive()
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        self.killed = true;
    }
}

async fn read_lines(pipe: impl AsyncRead + Unpin, stream: Stream, logs: Arc<Logs>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        logs.line(stream, &line);
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "signal: killed".to_owned(),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "unknown status".to_owned(),
    }
}

/// A directory only its owner may use.
fn make_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}
