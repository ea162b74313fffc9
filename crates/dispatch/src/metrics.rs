//! Prometheus metrics of the data plane, per function version: invocations by status, errors
//! by class, duration, queue wait and peak memory histograms, cold starts, throttles, quota
//! rejections and invocations in flight.
//!
//! Series live in a registry keyed by project, function and version, so a version's counters
//! survive a redeploy or an alias move that rebuilds its [`crate::Version`]. Updating a series is
//! a few relaxed atomic adds (and one short lock for the status map); rendering walks the
//! registry ([`Metrics::render`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::lock;

/// Duration buckets, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 900.0,
];
/// Memory buckets, in bytes (1 MiB to 4 GiB).
const MEMORY_BUCKETS: &[f64] = &[
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    134_217_728.0,
    268_435_456.0,
    536_870_912.0,
    1_073_741_824.0,
    4_294_967_296.0,
];

/// A histogram with fixed buckets.
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub(crate) fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// The series of one function version.
pub struct VersionMetrics {
    statuses: Mutex<BTreeMap<u16, u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    pub(crate) duration: Histogram,
    pub(crate) queue_wait: Histogram,
    pub(crate) peak_memory: Histogram,
    pub(crate) cold_starts: AtomicU64,
    pub(crate) throttles: AtomicU64,
    pub(crate) quota_rejections: AtomicU64,
    pub(crate) in_flight: AtomicI64,
}

impl VersionMetrics {
    fn new() -> Self {
        Self {
            statuses: Mutex::new(BTreeMap::new()),
            errors: Mutex::new(BTreeMap::new()),
            duration: Histogram::new(DURATION_BUCKETS),
            queue_wait: Histogram::new(DURATION_BUCKETS),
            peak_memory: Histogram::new(MEMORY_BUCKETS),
            cold_starts: AtomicU64::new(0),
            throttles: AtomicU64::new(0),
            quota_rejections: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
        }
    }

    /// Counts a finished invocation.
    pub(crate) fn finished(
        &self,
        status: u16,
        error: Option<&'static str>,
        duration: Duration,
        peak_memory: u64,
    ) {
        *lock(&self.statuses).entry(status).or_default() += 1;
        if let Some(class) = error {
            *lock(&self.errors).entry(class).or_default() += 1;
        }
        self.duration.observe(duration.as_secs_f64());
        self.peak_memory.observe(peak_memory as f64);
    }

    /// Counts a request turned away before it ran (throttled, or over a quota).
    pub(crate) fn rejected(&self, status: u16) {
        *lock(&self.statuses).entry(status).or_default() += 1;
    }
}

type Key = (String, String, u32);

/// Every version's series.
#[derive(Default)]
pub struct Metrics {
    series: Mutex<HashMap<Key, Arc<VersionMetrics>>>,
}

/// One metric family: name, type, help, and how to write a version's samples.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    write: fn(&VersionMetrics, &mut String, &'static str, &str),
}

fn counter(out: &mut String, name: &str, labels: &str, v: u64) {
    let _ = writeln!(out, "{name}{{{labels}}} {v}");
}

const FAMILIES: &[Family] = &[
    Family {
        name: "updraft_invocations_total",
        kind: "counter",
        help: "Requests to a function version, by the HTTP status the caller got.",
        write: |m, out, name, labels| {
            for (status, n) in lock(&m.statuses).iter() {
                counter(out, name, &format!("{labels},status=\"{status}\""), *n);
            }
        },
    },
    Family {
        name: "updraft_invocation_errors_total",
        kind: "counter",
        help: "Failed invocations, by error class.",
        write: |m, out, name, labels| {
            for (class, n) in lock(&m.errors).iter() {
                counter(out, name, &format!("{labels},class=\"{class}\""), *n);
            }
        },
    },
    Family {
        name: "updraft_invocation_duration_seconds",
        kind: "histogram",
        help: "Time from admission until the guest finished.",
        write: |m, out, name, labels| m.duration.render(out, name, labels),
    },
    Family {
        name: "updraft_queue_wait_seconds",
        kind: "histogram",
        help: "Time requests waited for a concurrency slot.",
        write: |m, out, name, labels| m.queue_wait.render(out, name, labels),
    },
    Family {
        name: "updraft_memory_peak_bytes",
        kind: "histogram",
        help: "Peak linear memory of the instance that served each invocation.",
        write: |m, out, name, labels| m.peak_memory.render(out, name, labels),
    },
    Family {
        name: "updraft_cold_starts_total",
        kind: "counter",
        help: "Invocations that had to load the version's code first.",
        write: |m, out, name, labels| {
            counter(out, name, labels, m.cold_starts.load(Ordering::Relaxed));
        },
    },
    Family {
        name: "updraft_throttles_total",
        kind: "counter",
        help: "Requests refused with 429 at the concurrency limit.",
        write: |m, out, name, labels| {
            counter(out, name, labels, m.throttles.load(Ordering::Relaxed));
        },
    },
    Family {
        name: "updraft_quota_rejections_total",
        kind: "counter",
        help: "Requests refused with 429 because a quota was used up.",
        write: |m, out, name, labels| {
            counter(
                out,
                name,
                labels,
                m.quota_rejections.load(Ordering::Relaxed),
            );
        },
    },
    Family {
        name: "updraft_concurrency_in_use",
        kind: "gauge",
        help: "Invocations running now.",
        write: |m, out, name, labels| {
            let _ = writeln!(
                out,
                "{name}{{{labels}}} {}",
                m.in_flight.load(Ordering::Relaxed).max(0)
            );
        },
    },
];

impl Metrics {
    /// The series of `function`'s `version` in `project`, created on first use.
    pub fn version(&self, project: &str, function: &str, version: u32) -> Arc<VersionMetrics> {
        lock(&self.series)
            .entry((project.to_owned(), function.to_owned(), version))
            .or_insert_with(|| Arc::new(VersionMetrics::new()))
            .clone()
    }

    /// Drops the series of versions no longer deployed (`keep` says which are).
    pub fn retain(&self, keep: impl Fn(&str, &str, u32) -> bool) {
        lock(&self.series).retain(|(p, f, v), _| keep(p, f, *v));
    }

    /// Every series (of `project` only, if given) in the Prometheus text exposition format
    /// (version 0.0.4).
    pub fn render(&self, project: Option<&str>) -> String {
        let mut series: Vec<(Key, Arc<VersionMetrics>)> = lock(&self.series)
            .iter()
            .filter(|((p, _, _), _)| project.is_none_or(|only| only == p))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        for family in FAMILIES {
            let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
            for ((project, function, version), m) in &series {
                let labels = format!(
                    "project=\"{}\",function=\"{}\",version=\"{version}\"",
                    escape(project),
                    escape(function)
                );
                (family.write)(m, &mut out, family.name, &labels);
            }
        }
        out
    }
}

/// Escapes a Prometheus label value.
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests;
