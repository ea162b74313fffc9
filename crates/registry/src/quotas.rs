//! The quotas in force: each function's (`quota = { ... }` in the version `live` serves) and
//! each project's (`[quotas.<project>]` in the server config). One [`Quota`] object per quota
//! lives here for the server's lifetime, so its count survives redeploys; a new one starts
//! from what the invocation records of its current period say.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use updraft_dispatch::{Quota, QuotaScope, period_bounds};
use updraft_manifest::{QuotaMetric, QuotaPeriod, Quotas};
use updraft_store::{TelemetryStore, UsageQuery, now_ms};

/// Scope, project, the function's name (the project's for a project quota), metric, period.
type Key = (QuotaScope, String, String, QuotaMetric, QuotaPeriod);

pub(crate) struct QuotaRegistry {
    projects: BTreeMap<String, Quotas>,
    live: Mutex<HashMap<Key, Arc<Quota>>>,
}

impl QuotaRegistry {
    pub(crate) fn new(projects: BTreeMap<String, Quotas>) -> Self {
        Self {
            projects,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// The quotas a request to `function` of `project` must pass: the function's own
    /// (`spec`), then the project's. A quota new to this server starts from what the
    /// invocation records of its current period say.
    pub(crate) async fn for_function(
        &self,
        store: &dyn TelemetryStore,
        project: &str,
        function: &str,
        spec: &Quotas,
    ) -> Vec<Arc<Quota>> {
        let own = spec
            .limits()
            .into_iter()
            .map(|(m, p, limit)| (QuotaScope::Function, function, m, p, limit));
        let shared = self
            .projects
            .get(project)
            .map(Quotas::limits)
            .unwrap_or_default()
            .into_iter()
            .map(|(m, p, limit)| (QuotaScope::Project, project, m, p, limit));
        let mut out = Vec::new();
        for (scope, name, metric, period, limit) in own.chain(shared) {
            let key = (scope, project.to_owned(), name.to_owned(), metric, period);
            if let Some(q) = lock(&self.live).get(&key) {
                q.set_limit(limit);
                out.push(q.clone());
                continue;
            }
            let now = now_ms();
            let filter = (scope == QuotaScope::Function).then_some(function);
            let used = used_so_far(store, project, filter, metric, period, now).await;
            let q = Arc::new(Quota::new(scope, name, metric, period, limit, used, now));
            // Changes are serialised by the registry, so nobody added it meanwhile; if someone
            // did, theirs is kept.
            out.push(lock(&self.live).entry(key).or_insert(q).clone());
        }
        out
    }

    /// Every quota of `project`, or only those a request to its `function` must pass.
    pub(crate) fn all(&self, project: &str, function: Option<&str>) -> Vec<Arc<Quota>> {
        let live = lock(&self.live);
        let mut out: Vec<Arc<Quota>> = live
            .iter()
            .filter(|((_, p, ..), _)| p == project)
            .map(|(_, q)| q)
            .filter(|q| q.scope == QuotaScope::Project || function.is_none_or(|f| q.name == f))
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            (
                a.scope.as_str(),
                &a.name,
                a.metric.as_str(),
                a.period.as_str(),
            )
                .cmp(&(
                    b.scope.as_str(),
                    &b.name,
                    b.metric.as_str(),
                    b.period.as_str(),
                ))
        });
        out
    }
}

/// What the records say is used of a quota in the period containing `now`.
async fn used_so_far(
    store: &dyn TelemetryStore,
    project: &str,
    function: Option<&str>,
    metric: QuotaMetric,
    period: QuotaPeriod,
    now: i64,
) -> f64 {
    let (since_ms, until_ms) = period_bounds(period, now);
    let q = UsageQuery {
        function: function.map(str::to_owned),
        since_ms,
        until_ms,
        bucket_ms: None,
    };
    match store.usage(project, &q).await {
        Ok(u) => match metric {
            QuotaMetric::Invocations => u.totals.invocations as f64,
            QuotaMetric::GbSeconds => u.totals.gb_seconds(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not read usage for a quota; counting from 0");
            0.0
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
