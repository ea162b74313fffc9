//! Fair sharing of the CPU between short and long runs of wasm.
//!
//! Every run (an invocation, or an instantiation) starts *interactive*, on the server's own
//! runtime, where it yields its worker thread at every epoch tick. It becomes *long-running*
//! once it has run for more than `long_run_after` ticks, or once its function's runs together
//! have seen that many ticks within one [`WINDOW`] while another function is running too (a
//! function busy with a stream of short requests costs its neighbours as much as one long run;
//! with no neighbour, moving it would only slow it: its runs that wait on host calls, such as
//! a durable key-value write, would resume behind every other thread). A long run is moved, between two polls,
//! to the [`Background`] runtime: `long_run_threads` threads that run at the lowest OS priority
//! (`SCHED_IDLE`, on Linux). There it still yields every tick, so long runs share those threads
//! evenly; and because the OS prefers every other thread of the machine to them, the request
//! handling, the control API and short runs take a core the moment they need one, while long
//! runs use whatever is left (all of it on an idle machine).
//!
//! Cooperative yielding alone could not give this: it decides which task a worker thread runs
//! next, but not when the OS lets that thread run. With a spinning guest on every worker, a
//! short request still waited for the OS to preempt one.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

/// The window a function's ticks are counted over.
pub(crate) const WINDOW: Duration = Duration::from_millis(100);

/// How soon after a resume a tick is taken to have passed while the run waited, in
/// nanoseconds. A resumed guest meets its passed deadline within microseconds (at its first
/// call or loop); kept short so that a guest computing between frequent waits still has most
/// of its ticks counted.
const RESUME_GRACE_NS: u64 = 100_000;

/// The low-priority runtime long runs move to, started on first use.
pub(crate) struct Background {
    threads: usize,
    runtime: OnceLock<Option<tokio::runtime::Runtime>>,
}

impl Background {
    pub(crate) fn new(threads: usize) -> Arc<Self> {
        Arc::new(Self {
            threads: threads.max(1),
            runtime: OnceLock::new(),
        })
    }

    fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
        self.runtime
            .get_or_init(|| {
                let built = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(self.threads)
                    .thread_name("updraft-long-run")
                    .on_thread_start(lower_priority)
                    .enable_all()
                    .build();
                match built {
                    Ok(rt) => Some(rt),
                    Err(e) => {
                        tracing::warn!(error = %e, "no background runtime; long runs stay where they are");
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Runs `run` here until it returns or `long` is set while it waits, then moves it to the
    /// background runtime and waits for it there. `None` if the background runtime shut down
    /// under it (the server is stopping); a panic in `run` is resumed here.
    pub(crate) async fn run<F, T>(&self, run: F, long: &AtomicBool) -> Option<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let mut run = Box::pin(run);
        let here = std::future::poll_fn(|cx| match run.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending if long.load(Ordering::Acquire) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        if let Some(v) = here {
            return Some(v);
        }
        let Some(rt) = self.runtime() else {
            return Some(run.await);
        };
        match rt.spawn(run).await {
            Ok(v) => Some(v),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Dropping a runtime blocks on its threads, which an async context forbids.
        if let Some(Some(rt)) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Puts the calling thread at the lowest priority: on Linux the `SCHED_IDLE` policy, which any
/// other thread waking up preempts at once (nice 19 if that is refused); elsewhere the nice
/// value is per process, so the thread is left as it is.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = sched_idle() {
        tracing::debug!(error = %e, "SCHED_IDLE refused; using nice 19 for a long-run thread");
        if let Err(e) = rustix::process::setpriority_process(None, 19) {
            tracing::warn!(error = %e, "could not lower the priority of a long-run thread");
        }
    }
}

/// Switches the calling thread to `SCHED_IDLE`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn sched_idle() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 names the calling thread; `param` is a valid, initialised `sched_param`
    // that the call only reads during the call. No memory is shared or retained.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Which functions started runs lately, engine-wide: a function's load counts against it only
/// while another function competes for the threads.
pub(crate) struct Activity {
    windows: Mutex<ActivityWindows>,
    next_id: std::sync::atomic::AtomicUsize,
}

struct ActivityWindows {
    start: Instant,
    /// Functions (by [`FunctionLoad`] id) that started runs in the current window.
    current: Vec<usize>,
    previous: Vec<usize>,
}

/// Most functions one window remembers (more than two is all the rule needs).
const ACTIVITY_KEPT: usize = 8;

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            windows: Mutex::new(ActivityWindows {
                start: Instant::now(),
                current: Vec::new(),
                previous: Vec::new(),
            }),
            next_id: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The windows, rolled on to `now`; `None` if another thread holds them (never waits).
    fn at(&self, now: Instant) -> Option<std::sync::MutexGuard<'_, ActivityWindows>> {
        let mut w = match self.windows.try_lock() {
            Ok(w) => w,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let elapsed = now.saturating_duration_since(w.start);
        if elapsed >= WINDOW {
            let current = std::mem::take(&mut w.current);
            w.previous = if elapsed >= 2 * WINDOW {
                Vec::new()
            } else {
                current
            };
            w.start = now;
        }
        Some(w)
    }

    fn started(&self, id: usize, now: Instant) {
        if let Some(mut w) = self.at(now)
            && !w.current.contains(&id)
            && w.current.len() < ACTIVITY_KEPT
        {
            w.current.push(id);
        }
    }

    /// Whether a function other than `id` started runs in this window or the last (when the
    /// windows are busy elsewhere: assumed so, the cautious answer).
    fn others(&self, id: usize, now: Instant) -> bool {
        match self.at(now) {
            Some(w) => w.current.iter().chain(&w.previous).any(|f| *f != id),
            None => true,
        }
    }
}

/// Where a run stands: how many ticks it has seen, and after how many it counts as long; and
/// the ticks of all runs of its function.
pub(crate) struct RunClock {
    ticks: u32,
    long_after: u32,
    function: Arc<FunctionLoad>,
    /// Set once the run is long; read by [`Background::run`] between polls.
    long: Arc<AtomicBool>,
    /// When the run was last polled (see [`stamped`]), in [`stamp`]s.
    polled: Arc<AtomicU64>,
}

/// Nanoseconds from the first call in this process to `at`, plus one: never zero, which
/// [`RunClock`]'s `polled` keeps for "not resumed".
fn stamp(at: Instant) -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(base).as_nanos())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// Runs `run`, recording in `polled` (from [`RunClock::poll_mark`]) when it is resumed, so that
/// the epoch callback can tell a tick the guest ran through from one that passed while it
/// waited (see [`RunClock::waited_through`]). The first poll records nothing (zero): a run
/// that finishes in one poll has its ticks counted as before.
pub(crate) async fn stamped<F: Future>(run: F, polled: Arc<AtomicU64>) -> F::Output {
    let mut run = std::pin::pin!(run);
    let mut first = true;
    std::future::poll_fn(|cx| {
        let at = if std::mem::take(&mut first) {
            0
        } else {
            stamp(Instant::now())
        };
        polled.store(at, Ordering::Relaxed);
        run.as_mut().poll(cx)
    })
    .await
}

impl RunClock {
    pub(crate) fn new(long_after: u32, function: Arc<FunctionLoad>) -> Self {
        Self {
            ticks: 0,
            long_after,
            function,
            long: Arc::new(AtomicBool::new(false)),
            polled: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether the tick seen at `now` passed while the run waited rather than ran: it was
    /// resumed less than [`RESUME_GRACE_NS`] ago. Such a tick is neither counted nor a reason to
    /// yield: a guest resuming from a wait (a key-value write, a timer, an outbound request)
    /// finds its epoch deadline already passed, and yielding then would cost it a trip
    /// through the scheduler for nothing; counting it would make a function whose requests
    /// wait look busy (and move its runs to the idle-priority threads) when it barely
    /// computes. A guest that computes on after resuming still yields at the next tick.
    pub(crate) fn waited_through(&self, now: Instant) -> bool {
        let polled = self.polled.load(Ordering::Relaxed);
        polled != 0 && stamp(now).saturating_sub(polled) < RESUME_GRACE_NS
    }

    /// A new run starts interactive.
    pub(crate) fn restart(&mut self) {
        self.ticks = 0;
        self.long.store(false, Ordering::Release);
        self.function
            .activity
            .started(self.function.id, Instant::now());
    }

    /// Where [`stamped`] records when this instance's runs are polled.
    pub(crate) fn poll_mark(&self) -> Arc<AtomicU64> {
        self.polled.clone()
    }

    /// The flag [`Background::run`] watches for this instance's runs.
    pub(crate) fn long_flag(&self) -> Arc<AtomicBool> {
        self.long.clone()
    }

    /// Counts a tick at `now`; true (and the flag set) once the run is long, or its function
    /// busy.
    pub(crate) fn tick(&mut self, now: Instant) -> bool {
        if self.long.load(Ordering::Relaxed) {
            return true;
        }
        self.ticks = self.ticks.saturating_add(1);
        let busy = self.function.tick(now) > self.long_after
            && self.function.activity.others(self.function.id, now);
        let long = busy || self.ticks > self.long_after;
        if long {
            self.long.store(true, Ordering::Release);
        }
        long
    }
}

/// Ticks all runs of one function saw, in the current and the previous [`WINDOW`].
pub(crate) struct FunctionLoad {
    windows: Mutex<Windows>,
    /// This function, to the engine's [`Activity`].
    id: usize,
    activity: Arc<Activity>,
}

struct Windows {
    start: Instant,
    current: u32,
    previous: u32,
}

impl FunctionLoad {
    pub(crate) fn new(activity: Arc<Activity>) -> Arc<Self> {
        let id = activity.next_id.fetch_add(1, Ordering::Relaxed);
        Arc::new(Self {
            windows: Mutex::new(Windows {
                start: Instant::now(),
                current: 0,
                previous: 0,
            }),
            id,
            activity,
        })
    }

    /// Counts a tick at `now`; returns the most ticks seen in one window, the current or the
    /// previous one (so the count does not fall to nothing at each window's start). Never
    /// waits: a tick that finds another run of the function counting is not counted, rather
    /// than have a short run wait on a long run's low-priority thread.
    fn tick(&self, now: Instant) -> u32 {
        let mut w = match self.windows.try_lock() {
            Ok(w) => w,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return 0,
        };
        let elapsed = now.saturating_duration_since(w.start);
        if elapsed >= WINDOW {
            w.previous = if elapsed >= 2 * WINDOW { 0 } else { w.current };
            w.current = 0;
            w.start = now;
        }
        w.current = w.current.saturating_add(1);
        w.current.max(w.previous)
    }
}

#[cfg(test)]
mod tests;
