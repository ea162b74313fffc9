//! Token buckets for sign-up, sign-in and refresh: per client address (a burst of a minute's
//! allowance, refilled continuously) and per account (an hour's). Past either, `429` with
//! `over_request_rate_limit`; the same answer whether or not the account exists.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::AuthError;

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Buckets {
    per_second: f64,
    burst: f64,
    map: Mutex<HashMap<String, Bucket>>,
}

/// Most buckets kept per kind; past it, full ones (idle long enough) are dropped.
const MAX_BUCKETS: usize = 100_000;

impl Buckets {
    fn new(burst: u32, window_secs: f64) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_second: burst / window_secs,
            burst,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_BUCKETS {
            let (rate, burst) = (self.per_second, self.burst);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.at).as_secs_f64() * self.per_second).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The rate limits of the auth endpoints.
pub(crate) struct Limits {
    per_ip: Buckets,
    per_account: Buckets,
}

fn limited() -> AuthError {
    AuthError::new(
        429,
        "over_request_rate_limit",
        "too many requests; try again later",
    )
}

impl Limits {
    pub(crate) fn new(per_ip_per_minute: u32, per_account_per_hour: u32) -> Self {
        Self {
            per_ip: Buckets::new(per_ip_per_minute, 60.0),
            per_account: Buckets::new(per_account_per_hour, 3600.0),
        }
    }

    /// One attempt from `ip` in `project`.
    pub(crate) fn client(&self, project: &str, ip: &str) -> Result<(), AuthError> {
        if self.per_ip.take(&format!("{project}\0{ip}")) {
            Ok(())
        } else {
            Err(limited())
        }
    }

    /// One sign-in attempt on `account` (an email, existing or not) of `project`.
    pub(crate) fn account(&self, project: &str, account: &str) -> Result<(), AuthError> {
        if self.per_account.take(&format!("{project}\0{account}")) {
            Ok(())
        } else {
            Err(limited())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let b = Buckets::new(3, 60.0);
        assert!(b.take("a") && b.take("a") && b.take("a"));
        assert!(!b.take("a"));
        assert!(b.take("b"), "buckets are per key");
    }
}
