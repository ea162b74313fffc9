//! A version's recent health: requests, server errors and a latency histogram over a sliding
//! window of one-second slots, kept only while someone watches (a guarded canary compares its
//! canary and stable versions with it).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Histogram buckets per doubling of latency (so a bucket is ~19% wide).
const PER_OCTAVE: u32 = 4;
/// Octaves covered, from 1 µs: 2^31 µs is ~36 minutes, past any timeout.
const OCTAVES: u32 = 31;
const BUCKETS: usize = (PER_OCTAVE * OCTAVES) as usize;

/// Requests, server errors and latencies of one version over a sliding window.
pub struct Health {
    watched: AtomicBool,
    keep_secs: u64,
    slots: Mutex<VecDeque<Slot>>,
}

struct Slot {
    second: u64,
    requests: u64,
    errors: u64,
    latency: [u32; BUCKETS],
}

/// What a version did over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Requests that ran (throttled ones are not counted).
    pub requests: u64,
    /// Of them, answered with a 5xx (guest errors, traps, timeouts, oversized responses).
    pub errors: u64,
    /// 99th-percentile time to the response head (bucket upper bound, ~19% resolution).
    pub p99: Option<Duration>,
}

impl Summary {
    /// Errors per request (0 with no requests).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

fn now_secs() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs()
}

fn bucket(latency: Duration) -> usize {
    let us = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    // floor(log2(us) * PER_OCTAVE), computed from the top bits.
    let octave = 63 - us.leading_zeros();
    let frac = if octave >= 2 {
        ((us >> (octave - 2)) & 0b11) as u32
    } else {
        ((us << (2 - octave)) & 0b11) as u32
    };
    usize::try_from(octave * PER_OCTAVE + frac)
        .unwrap_or(BUCKETS - 1)
        .min(BUCKETS - 1)
}

fn bucket_upper(i: usize) -> Duration {
    let i = u32::try_from(i).unwrap_or(u32::MAX);
    let (octave, frac) = (i / PER_OCTAVE, i % PER_OCTAVE);
    let base = 1u64 << octave.min(62);
    Duration::from_micros(base + base * u64::from(frac + 1) / u64::from(PER_OCTAVE))
}

impl Health {
    /// A record keeping up to `window` of history once watched.
    pub fn new(window: Duration) -> Self {
        Self {
            watched: AtomicBool::new(false),
            keep_secs: window.as_secs().max(1),
            slots: Mutex::new(VecDeque::new()),
        }
    }

    /// Starts or stops recording; starting forgets what an earlier watch recorded.
    pub fn watch(&self, on: bool) {
        if on && !self.watched.swap(true, Ordering::Relaxed) {
            crate::lock(&self.slots).clear();
        } else if !on {
            self.watched.store(false, Ordering::Relaxed);
        }
    }

    /// Records one request (no-op unless watched).
    pub fn record(&self, error: bool, latency: Duration) {
        if !self.watched.load(Ordering::Relaxed) {
            return;
        }
        let second = now_secs();
        let mut slots = crate::lock(&self.slots);
        if slots.back().is_none_or(|s| s.second != second) {
            slots.push_back(Slot {
                second,
                requests: 0,
                errors: 0,
                latency: [0; BUCKETS],
            });
        }
        while slots
            .front()
            .is_some_and(|s| s.second + self.keep_secs <= second)
        {
            slots.pop_front();
        }
        if let Some(slot) = slots.back_mut() {
            slot.requests += 1;
            slot.errors += u64::from(error);
            slot.latency[bucket(latency)] += 1;
        }
    }

    /// What happened over the last `window` (at most the window this record keeps).
    pub fn summary(&self, window: Duration) -> Summary {
        let now = now_secs();
        let span = window.as_secs().clamp(1, self.keep_secs);
        let slots = crate::lock(&self.slots);
        let mut sum = Summary::default();
        let mut hist = [0u64; BUCKETS];
        for s in slots.iter().filter(|s| s.second + span > now) {
            sum.requests += s.requests;
            sum.errors += s.errors;
            for (h, n) in hist.iter_mut().zip(s.latency.iter()) {
                *h += u64::from(*n);
            }
        }
        if sum.requests > 0 {
            // The smallest bucket with at least 99% of requests at or below it.
            let target = sum.requests - sum.requests / 100;
            let mut seen = 0;
            for (i, n) in hist.iter().enumerate() {
                seen += n;
                if seen >= target {
                    sum.p99 = Some(bucket_upper(i));
                    break;
                }
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests;
