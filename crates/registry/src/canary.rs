//! Guarded canaries: the judge that compares a canary's health with its stable version's,
//! and the guard that rolls back or promotes canaries on its own.

use std::collections::HashMap;
use std::time::Duration;

use updraft_dispatch::Summary;
use updraft_manifest::format_duration;
use updraft_store::{AliasRecord, Canary};

use crate::Registry;
use crate::build::Entry;

/// When a guarded canary is rolled back: it has served at least `min_requests` in the last
/// `window`, and its error rate is more than `max_error_rate_increase` points above the stable
/// version's, or its p99 latency is more than `max_latency_ratio` times the stable version's
/// and at least `latency_margin` slower.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryConfig {
    /// The sliding window both versions are compared over.
    pub window: Duration,
    /// Canary requests in the window before it is judged (and before it may be promoted).
    pub min_requests: u64,
    /// Percentage points of error rate above the stable version's that fail the canary.
    pub max_error_rate_increase: f64,
    /// Canary p99 over stable p99 that fails the canary (with `latency_margin`).
    pub max_latency_ratio: f64,
    /// Least p99 difference that counts as slower.
    pub latency_margin: Duration,
    /// How often canaries are checked.
    pub check_interval: Duration,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            min_requests: 20,
            max_error_rate_increase: 5.0,
            max_latency_ratio: 2.0,
            latency_margin: Duration::from_millis(50),
            check_interval: Duration::from_secs(1),
        }
    }
}

/// What the guard decided for one canary.
enum Verdict {
    RollBack(String),
    Promote(String),
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Judges a canary on its health and the stable version's.
fn judge(
    config: &CanaryConfig,
    alias: &AliasRecord,
    canary: &Canary,
    stable: Summary,
    tested: Summary,
    now_ms: i64,
) -> Option<Verdict> {
    let window = format_duration(config.window);
    if canary.auto_rollback && tested.requests >= config.min_requests {
        let limit = stable.error_rate() + config.max_error_rate_increase / 100.0;
        if tested.error_rate() > limit {
            return Some(Verdict::RollBack(format!(
                "error rate {} over {} requests vs {} for stable version {} in the last {window} \
                 (limit: +{:.1} points)",
                pct(tested.error_rate()),
                tested.requests,
                pct(stable.error_rate()),
                alias.version,
                config.max_error_rate_increase
            )));
        }
        if let (Some(t), Some(s)) = (tested.p99, stable.p99)
            && stable.requests >= config.min_requests
            && t.as_secs_f64() > s.as_secs_f64() * config.max_latency_ratio
            && t.saturating_sub(s) >= config.latency_margin
        {
            return Some(Verdict::RollBack(format!(
                "p99 latency {} vs {} for stable version {} in the last {window} \
                 (limit: {:.1}x and +{})",
                ms(t),
                ms(s),
                alias.version,
                config.max_latency_ratio,
                ms(config.latency_margin)
            )));
        }
    }
    let after = canary.promote_after_ms?;
    let age = u64::try_from(now_ms - canary.started_at).unwrap_or(0);
    if age < after || (canary.auto_rollback && tested.requests < config.min_requests) {
        return None;
    }
    Some(Verdict::Promote(format!(
        "healthy for {} ({} requests in the last {window}, {} errors)",
        format_duration(Duration::from_millis(after)),
        tested.requests,
        pct(tested.error_rate())
    )))
}

impl Registry {
    /// One pass of the canary guard (call it every `check_interval`): rolls back canaries doing
    /// worse than their stable version and promotes healthy ones whose time has come.
    pub async fn guard_canaries(&self) {
        let guarded =
            |c: &&Canary| c.weight > 0 && (c.auto_rollback || c.promote_after_ms.is_some());
        // Only functions with a guarded canary are looked at (and cloned out of the lock).
        let entries: Vec<Entry> = self
            .deployed
            .lock()
            .await
            .entries
            .values()
            .flat_map(HashMap::values)
            .filter(|e| {
                e.record
                    .aliases
                    .iter()
                    .any(|a| a.canary.as_ref().filter(guarded).is_some())
            })
            .cloned()
            .collect();
        let now = updraft_store::now_ms();
        for e in entries {
            for alias in &e.record.aliases {
                let Some(canary) = alias.canary.as_ref().filter(guarded) else {
                    continue;
                };
                let (Some(stable), Some(tested)) =
                    (e.version(alias.version), e.version(canary.version))
                else {
                    continue;
                };
                let window = self.config.canary.window;
                let verdict = judge(
                    &self.config.canary,
                    alias,
                    canary,
                    stable.health.summary(window),
                    tested.health.summary(window),
                    now,
                );
                let (moved, note, message) = match verdict {
                    None => continue,
                    Some(Verdict::RollBack(why)) => {
                        let moved = AliasRecord {
                            canary: Some(Canary {
                                weight: 0,
                                auto_rollback: false,
                                promote_after_ms: None,
                                ..canary.clone()
                            }),
                            ..alias.clone()
                        };
                        let note =
                            format!("canary of {} rolled back automatically: {why}", alias.name);
                        let message = format!(
                            "canary version {} of {} rolled back automatically (weight set to 0): {why}",
                            canary.version, alias.name
                        );
                        (moved, note, message)
                    }
                    Some(Verdict::Promote(why)) => {
                        let moved = AliasRecord {
                            version: canary.version,
                            canary: None,
                            ..alias.clone()
                        };
                        let note = format!("promoted to 100% of {}: {why}", alias.name);
                        let message = format!(
                            "canary version {} promoted to 100% of {}: {why}",
                            canary.version, alias.name
                        );
                        (moved, note, message)
                    }
                };
                // A rollback keeps the canary at weight 0; a promotion drops it.
                let action = if moved.canary.is_some() {
                    "canary.rollback"
                } else {
                    "canary.promote"
                };
                match self
                    .move_alias(
                        &e.record.project,
                        &e.record.name,
                        moved,
                        Some((canary.version, note)),
                        Some(alias),
                    )
                    .await
                {
                    Ok(Some(_)) => {
                        self.event(&e.record.project, &e.record.name, &message);
                        let entry = updraft_store::AuditRecord {
                            project: e.record.project.clone(),
                            ts_ms: updraft_store::now_ms(),
                            actor: "system".to_owned(),
                            action: action.to_owned(),
                            target: format!("functions/{}/aliases/{}", e.record.name, alias.name),
                            outcome: "ok".to_owned(),
                            detail: message.chars().take(300).collect(),
                            ..Default::default()
                        };
                        if let Err(err) = self.stores.metadata.append_audit(&entry).await {
                            tracing::error!(error = %err, "could not write an audit entry");
                        }
                    }
                    Ok(None) => {}
                    Err(err) => tracing::error!(
                        project = %e.record.project,
                        function = %e.record.name,
                        error = %err.message,
                        "the canary guard could not move an alias"
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
