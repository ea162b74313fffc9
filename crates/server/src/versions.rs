//! Versions and aliases through the control API: listing, moving aliases (with canaries),
//! rollback, and the guard that rolls back or promotes canaries on its own.
//!
//! Every alias move goes through [`move_alias`]: under the [`crate::deploy::Deployed`] lock it
//! checks the routes the move would bring (moving `live` brings that version's routes),
//! persists, rebuilds the function's gateway entry and publishes the new snapshot. Requests
//! already running keep the version they started on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use updraft_api::{
    Code, RollbackRequest, RollbackResponse, SetAlias, VersionDetail, VersionInfo, VersionList,
};
use updraft_dispatch::Summary;
use updraft_manifest::{LIVE, Name, format_duration};
use updraft_store::{
    AliasRecord, Canary, DEFAULT_PROJECT, FunctionRecord, StoreError, VersionRecord,
};

use crate::State;
use crate::deploy::{self, Entry, alias_info, check_routes, entry, event, forget, swap};
use crate::error::ApiError;

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        Code::FunctionNotFound,
        format!("no function named `{name}`"),
    )
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NoSuchVersion { .. } => ApiError::new(Code::VersionNotFound, e.to_string()),
        StoreError::VersionDeleted { .. } => ApiError::new(
            Code::VersionNotFound,
            format!("{e}; `updraft versions` lists the versions that can serve"),
        ),
        StoreError::NoSuchFunction { function } => not_found(&function),
        e => e.into(),
    }
}

/// The `aliases` column of a version: `live`, `live (canary 10%)`.
fn alias_labels(record: &FunctionRecord, n: u32) -> Vec<String> {
    let mut labels = Vec::new();
    for a in &record.aliases {
        if a.version == n {
            labels.push(match &a.canary {
                Some(c) => format!("{} ({}%)", a.name, 100 - u32::from(c.weight)),
                None => a.name.clone(),
            });
        }
        if let Some(c) = a.canary.as_ref().filter(|c| c.version == n) {
            labels.push(format!("{} (canary {}%)", a.name, c.weight));
        }
    }
    labels
}

fn version_info(record: &FunctionRecord, v: &VersionRecord) -> VersionInfo {
    VersionInfo {
        version: v.version,
        digest: v.digest.clone(),
        created_at: v.created_at,
        deployer: v.deployer.clone(),
        aliases: alias_labels(record, v.version),
        deleted_at: v.deleted_at,
        note: v.note.clone(),
    }
}

fn version_list(record: &FunctionRecord) -> VersionList {
    VersionList {
        function: record.name.clone(),
        versions: record
            .versions
            .iter()
            .rev()
            .map(|v| version_info(record, v))
            .collect(),
        aliases: record.aliases.iter().map(alias_info).collect(),
    }
}

async fn record(state: &Arc<State>, name: &str) -> Result<FunctionRecord, ApiError> {
    let guard = state.deployed.inner.lock().await;
    guard
        .get(name)
        .map(|e| e.record.clone())
        .ok_or_else(|| not_found(name))
}

/// `GET /v1/functions/{name}/versions`.
pub(crate) async fn list(state: &Arc<State>, name: &str) -> Result<VersionList, ApiError> {
    Ok(version_list(&record(state, name).await?))
}

/// `GET /v1/functions/{name}/versions/{n}`: one version with the manifest it was deployed with.
pub(crate) async fn get(state: &Arc<State>, name: &str, n: u32) -> Result<VersionDetail, ApiError> {
    let record = record(state, name).await?;
    let version = record.version(n).ok_or_else(|| {
        store_error(StoreError::NoSuchVersion {
            function: name.to_owned(),
            version: n,
        })
    })?;
    let s = state.clone();
    let f = name.to_owned();
    let manifest =
        tokio::task::spawn_blocking(move || s.store.version_manifest(DEFAULT_PROJECT, &f, n))
            .await??;
    Ok(VersionDetail {
        info: version_info(&record, version),
        manifest: manifest.unwrap_or_default(),
        spec: serde_json::to_value(&version.spec)
            .map_err(|e| ApiError::internal("encoding a spec", e))?,
    })
}

/// Points alias `alias.name` of `name` where `alias` says, recording `note` on a version.
/// With `expected`, does nothing (returns `None`) unless the alias is still exactly that: a
/// background decision must not undo a change made since.
pub(crate) async fn move_alias(
    state: &Arc<State>,
    name: &str,
    alias: AliasRecord,
    note: Option<(u32, String)>,
    expected: Option<&AliasRecord>,
) -> Result<Option<FunctionRecord>, ApiError> {
    let mut guard = state.deployed.inner.lock().await;
    let current = guard.get(name).cloned().ok_or_else(|| not_found(name))?;
    if let Some(expected) = expected
        && current.record.alias(&expected.name) != Some(expected)
    {
        return Ok(None);
    }
    if alias.name == LIVE
        && let Some(v) = current.record.version(alias.version)
        && v.deleted_at.is_none()
    {
        let routes = BTreeMap::from([(name.to_owned(), v.spec.http.clone())]);
        check_routes(&guard, &routes)?;
    }
    let s = state.clone();
    let f = name.to_owned();
    let keep = state.keep_versions;
    let (record, pruned) = tokio::task::spawn_blocking(move || {
        let (_, pruned) = s
            .store
            .set_alias(DEFAULT_PROJECT, &f, &alias, keep)
            .map_err(store_error)?;
        if let Some((v, note)) = note {
            s.store.set_version_note(DEFAULT_PROJECT, &f, v, &note)?;
        }
        let record = s
            .store
            .function(DEFAULT_PROJECT, &f)?
            .ok_or_else(|| not_found(&f))?;
        Ok::<_, ApiError>((record, pruned))
    })
    .await??;
    let rebuilt = entry(state, record.clone(), Some(&current), None);
    swap(state, &mut guard, name, Some(rebuilt))?;
    deploy::reconcile(state, &guard, &[]).await;
    forget(state, &pruned.orphaned);
    for (f, v) in &pruned.versions {
        event(
            state,
            f,
            &format!(
                "deleted version {v} (retention keeps the last {})",
                state.keep_versions
            ),
        );
    }
    deploy::warm_up(guard.get(name));
    Ok(Some(record))
}

/// `PUT /v1/functions/{name}/aliases/{alias}`.
pub(crate) async fn set(
    state: &Arc<State>,
    name: &str,
    alias: &str,
    req: SetAlias,
) -> Result<updraft_api::AliasInfo, ApiError> {
    let bad = |msg: String| ApiError::new(Code::BadRequest, msg);
    Name::new(alias).map_err(|e| bad(format!("alias: {e}")))?;
    let (version, canary) = match (&req.version, &req.weights) {
        (Some(_), Some(_)) => return Err(bad("give `version` or `weights`, not both".into())),
        (None, None) => {
            return Err(bad(
                "give `version` (and optionally `canary`) or `weights`".into()
            ));
        }
        (Some(v), None) => (*v, req.canary.as_ref().map(|c| (c.version, c.weight))),
        (None, Some(weights)) => {
            if req.canary.is_some() {
                return Err(bad(
                    "give `canary` with `version`, not with `weights`".into()
                ));
            }
            let sum: u32 = weights.values().map(|w| u32::from(*w)).sum();
            if sum != 100 {
                return Err(bad(format!("weights must sum to 100; these sum to {sum}")));
            }
            let mut ws: Vec<(u32, u8)> = weights.iter().map(|(v, w)| (*v, *w)).collect();
            ws.sort_unstable();
            match ws.as_slice() {
                [(v, _)] => (*v, None),
                // The newer version is the canary.
                [(stable, _), (canary, w)] => (*stable, Some((*canary, *w))),
                _ => {
                    return Err(bad(
                        "an alias splits traffic between at most 2 versions".into()
                    ));
                }
            }
        }
    };
    let policy = updraft_api::CanaryPolicy {
        weight: canary.map_or(0, |(_, w)| w),
        auto_rollback: req.auto_rollback,
        promote_after_ms: req.promote_after_ms,
    };
    let canary = match canary {
        Some((c, _)) if c == version => {
            return Err(bad(format!(
                "the canary must be another version than the stable one ({version})"
            )));
        }
        Some((c, _)) => Some(Canary {
            version: c,
            started_at: updraft_store::now_ms(),
            ..deploy::canary_template(&policy)?
        }),
        None if req.auto_rollback || req.promote_after_ms.is_some() => {
            return Err(bad(
                "auto_rollback and promote_after apply to a canary; give one".into(),
            ));
        }
        None => None,
    };
    let record = AliasRecord {
        name: alias.to_owned(),
        version,
        canary,
        updated_at: 0,
    };
    let described = describe(&record);
    let record = move_alias(state, name, record, None, None)
        .await?
        .ok_or_else(|| ApiError::internal("moving an alias", "no change made"))?;
    event(state, name, &format!("alias {described}"));
    record
        .alias(alias)
        .map(alias_info)
        .ok_or_else(|| ApiError::internal("moving an alias", "alias missing after the move"))
}

/// `live → version 8` or `live → version 8, canary version 9 at 10% (auto-rollback)`.
fn describe(a: &AliasRecord) -> String {
    let mut s = format!("{} → version {}", a.name, a.version);
    if let Some(c) = &a.canary {
        s.push_str(&format!(", canary version {} at {}%", c.version, c.weight));
        if c.auto_rollback {
            s.push_str(" (auto-rollback)");
        }
        if let Some(ms) = c.promote_after_ms {
            s.push_str(&format!(
                " (promoted after {} if healthy)",
                format_duration(Duration::from_millis(ms))
            ));
        }
    }
    s
}

/// `DELETE /v1/functions/{name}/aliases/{alias}`.
pub(crate) async fn delete(state: &Arc<State>, name: &str, alias: &str) -> Result<(), ApiError> {
    if alias == LIVE {
        return Err(ApiError::new(
            Code::BadRequest,
            "`live` cannot be deleted: every function has it (move it instead)",
        ));
    }
    let mut guard = state.deployed.inner.lock().await;
    let current = guard.get(name).cloned().ok_or_else(|| not_found(name))?;
    if current.record.alias(alias).is_none() {
        return Err(ApiError::new(
            Code::AliasNotFound,
            format!("function `{name}` has no alias `{alias}`"),
        ));
    }
    if let Some(route) = current
        .record
        .live()
        .and_then(|v| v.spec.http.iter().find(|t| t.alias() == alias))
    {
        return Err(ApiError::new(
            Code::Conflict,
            format!(
                "route `{}` serves alias `{alias}`; deploy without it first",
                route.route
            ),
        ));
    }
    let s = state.clone();
    let (f, a) = (name.to_owned(), alias.to_owned());
    let record = tokio::task::spawn_blocking(move || {
        s.store.delete_alias(DEFAULT_PROJECT, &f, &a)?;
        s.store.function(DEFAULT_PROJECT, &f)
    })
    .await??
    .ok_or_else(|| not_found(name))?;
    let rebuilt = entry(state, record, Some(&current), None);
    swap(state, &mut guard, name, Some(rebuilt))?;
    deploy::reconcile(state, &guard, &[]).await;
    event(state, name, &format!("alias {alias} deleted"));
    Ok(())
}

/// `POST /v1/functions/{name}/rollback`: drops the alias's canary if it has one; otherwise
/// points it at `to`, or at the newest version older than the one it serves.
pub(crate) async fn rollback(
    state: &Arc<State>,
    name: &str,
    req: RollbackRequest,
) -> Result<RollbackResponse, ApiError> {
    let alias_name = req.alias.unwrap_or_else(|| LIVE.to_owned());
    let record = record(state, name).await?;
    let current = record.alias(&alias_name).cloned().ok_or_else(|| {
        ApiError::new(
            Code::AliasNotFound,
            format!("function `{name}` has no alias `{alias_name}`"),
        )
    })?;
    let (target, message, note) = match (req.to, &current.canary) {
        (None, Some(c)) => (
            current.version,
            format!(
                "{alias_name}: dropped canary version {}; version {} serves all traffic",
                c.version, current.version
            ),
            Some((
                c.version,
                format!("canary of {alias_name} rolled back by hand"),
            )),
        ),
        (Some(n), None) if n == current.version => {
            return Err(ApiError::new(
                Code::Conflict,
                format!("{alias_name} already serves version {n}"),
            ));
        }
        (to, _) => {
            let target = match to {
                Some(n) => n,
                None => record
                    .versions
                    .iter()
                    .rev()
                    .find(|v| v.version < current.version && v.deleted_at.is_none())
                    .map(|v| v.version)
                    .ok_or_else(|| {
                        ApiError::new(
                            Code::Conflict,
                            format!(
                                "{alias_name} serves version {}, and no older version is kept to roll back to",
                                current.version
                            ),
                        )
                    })?,
            };
            (
                target,
                format!(
                    "{alias_name}: version {} → version {target}",
                    current.version
                ),
                Some((
                    current.version,
                    format!("rolled back: {alias_name} moved to version {target}"),
                )),
            )
        }
    };
    let moved = AliasRecord {
        name: alias_name.clone(),
        version: target,
        canary: None,
        updated_at: 0,
    };
    let record = move_alias(state, name, moved, note, Some(&current))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                Code::Conflict,
                format!("{alias_name} changed while rolling back; try again"),
            )
        })?;
    event(state, name, &format!("rollback: {message}"));
    let alias = record
        .alias(&alias_name)
        .map(alias_info)
        .ok_or_else(|| ApiError::internal("rolling back", "alias missing after the move"))?;
    Ok(RollbackResponse {
        alias,
        from: current.version,
        message,
    })
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
    config: &crate::config::CanaryConfig,
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

/// One pass of the canary guard: rolls back canaries doing worse than their stable version and
/// promotes healthy ones whose time has come.
pub(crate) async fn guard_canaries(state: &Arc<State>) {
    let guarded = |c: &&Canary| c.weight > 0 && (c.auto_rollback || c.promote_after_ms.is_some());
    // Only functions with a guarded canary are looked at (and cloned out of the lock).
    let entries: Vec<Entry> = state
        .deployed
        .inner
        .lock()
        .await
        .values()
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
            let window = state.canary.window;
            let verdict = judge(
                &state.canary,
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
                    let note = format!("canary of {} rolled back automatically: {why}", alias.name);
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
            match move_alias(
                state,
                &e.record.name,
                moved,
                Some((canary.version, note)),
                Some(alias),
            )
            .await
            {
                Ok(Some(_)) => event(state, &e.record.name, &message),
                Ok(None) => {}
                Err(err) => tracing::error!(
                    function = %e.record.name,
                    error = %err.message,
                    "the canary guard could not move an alias"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests;
