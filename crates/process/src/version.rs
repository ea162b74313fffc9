//! One deployed version of a process function as a [`Runtime`]: a pool of warm execution
//! environments, each serving one invocation at a time.
//!
//! An invocation takes an idle environment or starts one (a cold start, its init measured and
//! capped), writes Lambda's `START`, `END` and `REPORT` lines around the handler's own, and
//! gives the environment back unless it failed (timed out, went past its memory, crashed) or
//! served `max_reuse` invocations. The dispatcher's concurrency limit bounds how many run at
//! once, so `max_concurrency` is also the most processes a version has. Idle environments are
//! stopped after `idle_timeout`, down to `min_instances`.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use updraft_dispatch::{
    Body, BoxFuture, Invocation, InvocationSink, InvokeError, LifecycleStats, LoadError, Reuse,
    Runtime, Settings, Stream,
};

use crate::Shared;
use crate::env::{Environment, Spec};
use crate::shapes::{ACCOUNT, REGION};

/// A process function's deployed version.
pub struct ProcessVersion(Arc<Inner>);

/// What a version's invocations share (a streamed response's end is handled by a task that
/// holds it).
pub(crate) struct Inner {
    shared: Arc<Shared>,
    digest: String,
    pub(crate) settings: Settings,
    spec: tokio::sync::OnceCell<Arc<Spec>>,
    idle: Mutex<Vec<Environment>>,
    /// The version number, learnt from the first invocation (0 until then).
    pub(crate) number: AtomicU32,
    started: AtomicU64,
    cold_starts: AtomicU64,
    evictions: AtomicU64,
    /// Environments taken for an invocation and not given back yet.
    pub(crate) in_use: AtomicUsize,
    /// Environments whose invocation is answered and that will be back in the pool as soon as
    /// their runtime asks for the next one.
    pub(crate) finishing: AtomicUsize,
    /// Woken when one of them is.
    pub(crate) returned: tokio::sync::Notify,
}

/// How long an invocation waits for a finishing environment before starting a process: past
/// the flush's grace, so that one is always back by then.
const FINISHING_WAIT: Duration = Duration::from_millis(20);

impl ProcessVersion {
    pub(crate) fn new(shared: Arc<Shared>, digest: String, settings: Settings) -> Self {
        Self(Arc::new(Inner {
            shared,
            digest,
            settings,
            spec: tokio::sync::OnceCell::new(),
            idle: Mutex::new(Vec::new()),
            number: AtomicU32::new(0),
            started: AtomicU64::new(0),
            cold_starts: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            in_use: AtomicUsize::new(0),
            finishing: AtomicUsize::new(0),
            returned: tokio::sync::Notify::new(),
        }))
    }
}

impl Inner {
    fn process(&self) -> Option<&updraft_dispatch::ProcessSettings> {
        self.settings.process.as_ref()
    }

    /// The project the function belongs to.
    pub(crate) fn project(&self) -> &str {
        self.process().map_or("", |p| p.project.as_str())
    }

    fn function_name(&self) -> &str {
        self.process().map_or("", |p| p.function.as_str())
    }

    /// `AWS_LAMBDA_FUNCTION_VERSION`: the number, or `$LATEST` before the first invocation
    /// told it (an environment started for `min_instances`).
    pub(crate) fn version_label(&self) -> String {
        match self.number.load(Ordering::Relaxed) {
            0 => "$LATEST".to_owned(),
            n => n.to_string(),
        }
    }

    pub(crate) fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
            self.function_name()
        )
    }

    /// The bundle unpacked, the runtime client installed, the environment worked out.
    pub(crate) async fn spec(&self) -> Result<Arc<Spec>, LoadError> {
        self.spec
            .get_or_try_init(|| async {
                let p = self.process().ok_or_else(|| LoadError {
                    message: "not a process function".into(),
                    user_error: false,
                })?;
                let task_root = self.shared.unpacked(&self.digest).await?;
                check_handler(p.runtime, p.handler.as_deref(), &task_root)?;
                let launch = self
                    .shared
                    .clients
                    .launch(p.runtime, p.handler.as_deref(), &task_root)
                    .await
                    .map_err(|message| LoadError {
                        user_error: p.runtime == updraft_manifest::FunctionRuntime::Provided,
                        message,
                    })?;
                let enforced = self.shared.enforced().await;
                let sandbox = self.shared.helper().map(|helper| {
                    let mut read = launch.read.clone();
                    read.push(task_root.clone());
                    let plan = crate::sandbox::Plan::new(read, self.shared.config.tmp_bytes);
                    (helper.to_path_buf(), plan)
                });
                // The kernel's cap: its memory and its `/tmp` (tmpfs pages are memory).
                let cap = self
                    .settings
                    .memory_bytes
                    .saturating_add(self.shared.config.tmp_bytes);
                Ok(Arc::new(Spec {
                    cgroup: self.shared.cgroups.clone().map(|c| (c, cap)),
                    private_tmp: sandbox.is_some() && enforced.private_tmp,
                    sandbox,
                    env: self.environment(&task_root),
                    launch,
                    task_root,
                    init_timeout: self.shared.config.init_timeout,
                    max_payload: self.shared.config.max_payload,
                    tmp_root: self.shared.dir.join("tmp"),
                    redact: self.settings.redact.clone(),
                }))
            })
            .await
            .cloned()
    }

    /// Lambda's variables, then the function's own (`env`, granted secrets, platform
    /// credentials). Nothing of the server's own environment leaks in.
    fn environment(&self, task_root: &std::path::Path) -> Vec<(String, String)> {
        let p = self.process();
        let name = self.function_name().to_owned();
        let project = self.project();
        let memory_mb = (self.settings.memory_bytes >> 20).to_string();
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("LANG".into(), "en_US.UTF-8".into()),
            ("TZ".into(), ":UTC".into()),
            ("LAMBDA_TASK_ROOT".into(), task_root.display().to_string()),
            ("LAMBDA_RUNTIME_DIR".into(), task_root.display().to_string()),
            (
                "_HANDLER".into(),
                p.and_then(|p| p.handler.clone()).unwrap_or_default(),
            ),
            (
                "AWS_EXECUTION_ENV".into(),
                format!(
                    "AWS_Lambda_{}",
                    p.map_or("provided", |p| p.runtime.as_str())
                ),
            ),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), memory_mb),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME".into(),
                format!("/aws/lambda/{name}"),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_DEFAULT_REGION".into(), REGION.into()),
            ("UPDRAFT_PROJECT".into(), project.into()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
        ];
        // The function's own variables win (its S3 grant sets AWS_REGION too).
        for (k, v) in &self.settings.env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        env
    }

    /// An idle live environment, or a new one.
    pub(crate) async fn take(
        &self,
        spec: &Spec,
        sink: &Arc<dyn InvocationSink>,
    ) -> Result<(Environment, Option<Duration>), InvokeError> {
        // An environment still closing its last invocation (a moment: until its runtime asks
        // for the next one) is worth waiting for rather than starting another process.
        let waited = tokio::time::Instant::now() + FINISHING_WAIT;
        loop {
            let returned = self.returned.notified();
            let env = lock(&self.idle).pop();
            match env {
                Some(env) if env.alive() => {
                    self.in_use.fetch_add(1, Ordering::AcqRel);
                    return Ok((env, None));
                }
                Some(_) => continue,
                None if self.finishing.load(Ordering::Acquire) > 0 => {
                    if tokio::time::timeout_at(waited, returned).await.is_err() {
                        break;
                    }
                }
                None => break,
            }
        }
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        let stream = format!(
            "{}/[{}]{:016x}",
            jiff::Timestamp::now().strftime("%Y/%m/%d"),
            self.number.load(Ordering::Relaxed),
            n ^ rand::random::<u64>()
        );
        self.cold_starts.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        match Environment::start(spec, &stream, &self.version_label()).await {
            Ok(env) => {
                self.in_use.fetch_add(1, Ordering::AcqRel);
                sink.cold_start(started.elapsed());
                let init = env.init;
                Ok((env, Some(init)))
            }
            Err(e) => {
                sink.line(
                    Stream::Platform,
                    &format!("INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: {}", ms(started.elapsed()), e.error_type),
                );
                Err(InvokeError::Handler {
                    error_type: e.error_type,
                    message: e.message,
                })
            }
        }
    }

    pub(crate) fn give_back(&self, env: Environment) {
        let max = match self.settings.reuse {
            Reuse::Warm { max_reuse } => max_reuse,
            Reuse::Fresh => 1,
        };
        self.in_use.fetch_sub(1, Ordering::AcqRel);
        if env.alive() && env.served < max {
            lock(&self.idle).push(env);
        }
    }
}

/// Whether the handler's file is in the code, so that a typo fails the deploy rather than
/// every invocation (`app.handler` needs `app.py`, a package `app/`, or `app.js`/`.mjs`/`.cjs`).
fn check_handler(
    runtime: updraft_manifest::FunctionRuntime,
    handler: Option<&str>,
    root: &std::path::Path,
) -> Result<(), LoadError> {
    use updraft_manifest::FunctionRuntime;
    let Some((module, _)) = handler.and_then(|h| h.rsplit_once('.')) else {
        return Ok(());
    };
    let candidates: Vec<String> = match runtime {
        FunctionRuntime::Python => {
            let m = module.replace('.', "/");
            vec![
                format!("{m}.py"),
                format!("{m}/__init__.py"),
                format!("{m}.pyc"),
            ]
        }
        FunctionRuntime::Nodejs => ["js", "mjs", "cjs"]
            .iter()
            .map(|ext| format!("{module}.{ext}"))
            .collect(),
        _ => return Ok(()),
    };
    if candidates.iter().any(|c| root.join(c).is_file()) {
        return Ok(());
    }
    let mut top: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    top.truncate(20);
    Err(LoadError {
        message: format!(
            "handler `{}`: the code has no {} (at its root: {})",
            handler.unwrap_or_default(),
            candidates.join(" or "),
            if top.is_empty() {
                "nothing".to_owned()
            } else {
                top.join(", ")
            }
        ),
        user_error: true,
    })
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `Root=1-...;Parent=...;Sampled=1` from a W3C `traceparent`.
pub(crate) fn trace_id(traceparent: &str) -> String {
    let parts: Vec<&str> = traceparent.split('-').collect();
    match parts.as_slice() {
        [_, trace, parent, flags] if trace.len() == 32 => format!(
            "Root=1-{}-{};Parent={parent};Sampled={}",
            &trace[..8],
            &trace[8..],
            u8::from(flags.ends_with('1'))
        ),
        _ => String::new(),
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runtime for ProcessVersion {
    fn invoke(
        &self,
        invocation: Invocation,
        sink: Arc<dyn InvocationSink>,
    ) -> BoxFuture<'_, Result<http::Response<Body>, InvokeError>> {
        Box::pin(self.0.clone().run(invocation, sink))
    }

    fn evict_if_idle(&self) -> bool {
        let idle_timeout = self.0.settings.idle_timeout;
        let keep = self.0.settings.min_instances as usize;
        let mut idle = lock(&self.0.idle);
        idle.retain(Environment::alive);
        // The pool is in the order environments were given back: the first has been idle
        // longest (invocations take the last, the warmest).
        let before = idle.len();
        while idle.len() > keep && idle[0].idle_since.elapsed() >= idle_timeout {
            idle.remove(0);
        }
        let dropped = before - idle.len();
        if dropped > 0 && idle.is_empty() {
            self.0.evictions.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    fn stats(&self) -> LifecycleStats {
        let ready = lock(&self.0.idle).len();
        LifecycleStats {
            // Scaled to zero when no process is left, idle or busy.
            loaded: ready + self.0.in_use.load(Ordering::Acquire) > 0,
            ready_instances: ready,
            cold_starts: self.0.cold_starts.load(Ordering::Relaxed),
            evictions: self.0.evictions.load(Ordering::Relaxed),
            reuse_disabled: false,
        }
    }

    fn load(&self) -> BoxFuture<'_, Result<(), LoadError>> {
        Box::pin(async { self.0.spec().await.map(|_| ()) })
    }

    fn warm_up(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async {
            let spec = self.0.spec().await.map_err(|e| e.message)?;
            let want = self.0.settings.min_instances as usize;
            while lock(&self.0.idle).len() < want {
                let stream = format!("warm/{:016x}", rand::random::<u64>());
                let env = Environment::start(&spec, &stream, &self.0.version_label())
                    .await
                    .map_err(|e| format!("{}: {}", e.error_type, e.message))?;
                lock(&self.0.idle).push(env);
            }
            Ok(())
        })
    }

    fn min_instances(&self) -> u32 {
        self.0.settings.min_instances
    }

    fn cold_start_note(&self) -> &'static str {
        "started a new execution environment (init included)"
    }
}
