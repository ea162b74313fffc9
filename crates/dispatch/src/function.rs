//! The deployed-function model invocations see: a [`Function`] with immutable [`Version`]s and
//! the [`Alias`]es that pick among them (a canary by its weight). The registry builds them; a
//! request holds an `Arc` of its version.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::HeaderValue;
use updraft_api::Code;

use crate::{ConcurrencyLimit, Health, Quota, Runtime, VersionMetrics};

/// A deployed function as invocations see it: its versions, the aliases that pick among
/// them, and what admits its invocations.
pub struct Function {
    /// The project (tenant) it belongs to.
    pub project: String,
    /// Its name.
    pub name: String,
    /// Its name as the value of `x-updraft-function` (made once, not per response).
    pub name_header: HeaderValue,
    /// Its versions that can serve (retention-deleted ones are not here).
    pub versions: BTreeMap<u32, Arc<Version>>,
    /// Its aliases, by name.
    pub aliases: HashMap<String, Alias>,
    /// Whether any caller may pick a version or alias with request headers (otherwise only a
    /// caller presenting the admin token may).
    pub allow_pinning: bool,
    /// Quotas every invocation of it must pass: its own and its project's.
    pub quotas: Vec<Arc<Quota>>,
    /// Its `max_concurrency`, shared by all its versions (the value of the version `live`
    /// serves).
    pub limit: Arc<ConcurrencyLimit>,
}

impl Function {
    /// The version `pin` names, or one picked by `alias` (a canary by its weight).
    ///
    /// # Errors
    /// [`Code::VersionNotFound`] or [`Code::AliasNotFound`], with a message.
    pub fn resolve(&self, pin: Option<&Pin>, alias: &str) -> Result<Arc<Version>, (Code, String)> {
        let alias = match pin {
            Some(Pin::Version(n)) => {
                return self.versions.get(n).cloned().ok_or_else(|| {
                    (
                        Code::VersionNotFound,
                        format!(
                            "function `{}` has no version {n} (never deployed, or deleted by retention)",
                            self.name
                        ),
                    )
                });
            }
            Some(Pin::Alias(a)) => a.as_str(),
            None => alias,
        };
        self.aliases
            .get(alias)
            .map(|a| a.pick().clone())
            .ok_or_else(|| {
                (
                    Code::AliasNotFound,
                    format!("function `{}` has no alias `{alias}`", self.name),
                )
            })
    }
}

/// Which version an invocation asked for (`x-updraft-version` / `x-updraft-alias`, or the
/// invoke API's `version` / `alias`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// A version number.
    Version(u32),
    /// An alias name.
    Alias(String),
}

/// A named pointer to a version, optionally splitting traffic with a canary.
#[derive(Clone)]
pub struct Alias {
    /// The (stable) version.
    pub version: Arc<Version>,
    /// A canary version and the percentage (0 to 100) of invocations it gets.
    pub canary: Option<(Arc<Version>, u8)>,
}

impl Alias {
    /// The version for one invocation: the canary with its weight's probability.
    pub fn pick(&self) -> &Arc<Version> {
        match &self.canary {
            Some((canary, weight)) if rand::random_range(0..100u8) < *weight => canary,
            _ => &self.version,
        }
    }
}

/// One immutable version of a function: its runtime (code loaded on demand, dropped when idle)
/// and the settings it was deployed with.
pub struct Version {
    /// Its number.
    pub number: u32,
    /// Its number as the value of `x-updraft-version` (made once, not per response).
    pub number_header: HeaderValue,
    /// What runs it.
    pub runtime: Arc<dyn Runtime>,
    /// Largest request body it accepts, in bytes.
    pub max_request_body: u64,
    /// Largest response body it may send, in bytes.
    pub max_response_body: u64,
    /// Its memory limit, in bytes (what GB-seconds are billed on).
    pub memory_bytes: u64,
    /// Its recent error rate and latency, recorded while a guarded canary watches it.
    pub health: Health,
    /// Its Prometheus series (from [`Metrics::version`](crate::Metrics::version)).
    pub metrics: Arc<VersionMetrics>,
}
