//! Versions and aliases: listing them, moving aliases (with canaries), rollback.
//!
//! Every alias move goes through [`Registry::move_alias`]: under the registry's lock it checks
//! the routes the move would bring (moving `live` brings that version's routes), persists,
//! rebuilds the function's entry and publishes the new snapshot. Requests already running keep
//! the version they started on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use updraft_api::{Code, RollbackRequest, RollbackResponse, SetAlias, VersionDetail, VersionList};
use updraft_manifest::{LIVE, Name, format_duration};
use updraft_store::{AliasRecord, Canary, FunctionRecord, StoreError};

use crate::build::{check_routes, warm_up};
use crate::deploy::canary_template;
use crate::views::{alias_info, version_info, version_list};
use crate::{Error, Registry};

/// What a rollback did.
pub type RollbackOutcome = RollbackResponse;

impl Registry {
    async fn record(&self, project: &str, name: &str) -> Result<Arc<FunctionRecord>, Error> {
        let deployed = self.deployed.lock().await;
        Ok(deployed.entry(project, name)?.record.clone())
    }

    /// A function's versions (newest first) and aliases.
    ///
    /// # Errors
    /// [`Code::FunctionNotFound`].
    pub async fn versions(&self, project: &str, name: &str) -> Result<VersionList, Error> {
        Ok(version_list(&*self.record(project, name).await?))
    }

    /// One version with the manifest it was deployed with.
    ///
    /// # Errors
    /// [`Code::FunctionNotFound`], [`Code::VersionNotFound`].
    pub async fn version(&self, project: &str, name: &str, n: u32) -> Result<VersionDetail, Error> {
        let record = self.record(project, name).await?;
        let version = record.version(n).ok_or_else(|| {
            Error::from(StoreError::NoSuchVersion {
                function: name.to_owned(),
                version: n,
            })
        })?;
        let manifest = self
            .stores
            .metadata
            .version_manifest(project, name, n)
            .await?;
        Ok(VersionDetail {
            info: version_info(&record, version),
            manifest: manifest.unwrap_or_default(),
            spec: serde_json::to_value(&version.spec)
                .map_err(|e| Error::internal("encoding a spec", e))?,
        })
    }

    /// Points alias `alias.name` of `name` where `alias` says, recording `note` on a version.
    /// With `expected`, does nothing (returns `None`) unless the alias is still exactly that: a
    /// background decision must not undo a change made since.
    pub(crate) async fn move_alias(
        &self,
        project: &str,
        name: &str,
        alias: AliasRecord,
        note: Option<(u32, String)>,
        expected: Option<&AliasRecord>,
    ) -> Result<Option<FunctionRecord>, Error> {
        let mut deployed = self.deployed.lock().await;
        let current = deployed.entry(project, name)?.clone();
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
            check_routes(deployed.of(project)?, &routes)?;
        }
        let metadata = &self.stores.metadata;
        let keep = self.config.keep_versions;
        let (_, pruned) = metadata.set_alias(project, name, &alias, keep).await?;
        if let Some((v, note)) = note {
            metadata.set_version_note(project, name, v, &note).await?;
        }
        let record = metadata
            .function(project, name)
            .await?
            .ok_or_else(|| Error::not_found(name))?;
        let rebuilt = self.entry(record.clone(), Some(&current), None).await;
        let mut next = deployed.entries.clone();
        next.entry(project.to_owned())
            .or_default()
            .insert(name.to_owned(), rebuilt);
        self.publish(&mut deployed, next, Vec::new()).await?;
        self.forget(&pruned.orphaned).await;
        for (f, v) in &pruned.versions {
            self.event(
                project,
                f,
                &format!(
                    "deleted version {v} (retention keeps the last {})",
                    self.config.keep_versions
                ),
            );
        }
        warm_up(deployed.of(project)?.get(name));
        Ok(Some(record))
    }

    /// Points alias `alias` of `name` at a version, or splits it between two (a canary).
    ///
    /// # Errors
    /// [`Code::BadRequest`] for a request that makes no sense, [`Code::VersionNotFound`],
    /// [`Code::Conflict`] for routes the move would make collide.
    pub async fn set_alias(
        &self,
        project: &str,
        name: &str,
        alias: &str,
        req: SetAlias,
    ) -> Result<updraft_api::AliasInfo, Error> {
        let bad = |msg: String| Error::new(Code::BadRequest, msg);
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
                ..canary_template(&policy)?
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
        let record = self
            .move_alias(project, name, record, None, None)
            .await?
            .ok_or_else(|| Error::internal("moving an alias", "no change made"))?;
        self.event(project, name, &format!("alias {described}"));
        record
            .alias(alias)
            .map(alias_info)
            .ok_or_else(|| Error::internal("moving an alias", "alias missing after the move"))
    }

    /// Deletes alias `alias` of `name`.
    ///
    /// # Errors
    /// [`Code::BadRequest`] for `live`, [`Code::AliasNotFound`], [`Code::Conflict`] when a route
    /// serves it.
    pub async fn delete_alias(&self, project: &str, name: &str, alias: &str) -> Result<(), Error> {
        if alias == LIVE {
            return Err(Error::new(
                Code::BadRequest,
                "`live` cannot be deleted: every function has it (move it instead)",
            ));
        }
        let mut deployed = self.deployed.lock().await;
        let current = deployed.entry(project, name)?.clone();
        if current.record.alias(alias).is_none() {
            return Err(Error::new(
                Code::AliasNotFound,
                format!("function `{name}` has no alias `{alias}`"),
            ));
        }
        if let Some(route) = current
            .record
            .live()
            .and_then(|v| v.spec.http.iter().find(|t| t.alias() == alias))
        {
            return Err(Error::new(
                Code::Conflict,
                format!(
                    "route `{}` serves alias `{alias}`; deploy without it first",
                    route.route
                ),
            ));
        }
        let metadata = &self.stores.metadata;
        metadata.delete_alias(project, name, alias).await?;
        let record = metadata
            .function(project, name)
            .await?
            .ok_or_else(|| Error::not_found(name))?;
        let rebuilt = self.entry(record, Some(&current), None).await;
        let mut next = deployed.entries.clone();
        next.entry(project.to_owned())
            .or_default()
            .insert(name.to_owned(), rebuilt);
        self.publish(&mut deployed, next, Vec::new()).await?;
        self.event(project, name, &format!("alias {alias} deleted"));
        Ok(())
    }

    /// Rolls an alias back: drops its canary if it has one; otherwise points it at `to`, or at the
    /// newest version older than the one it serves.
    ///
    /// # Errors
    /// [`Code::AliasNotFound`], [`Code::Conflict`] when there is nothing to roll back to.
    pub async fn rollback(
        &self,
        project: &str,
        name: &str,
        req: RollbackRequest,
    ) -> Result<RollbackResponse, Error> {
        let alias_name = req.alias.unwrap_or_else(|| LIVE.to_owned());
        let record = self.record(project, name).await?;
        let current = record.alias(&alias_name).cloned().ok_or_else(|| {
            Error::new(
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
                return Err(Error::new(
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
                            Error::new(
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
        let record = self
            .move_alias(project, name, moved, note, Some(&current))
            .await?
            .ok_or_else(|| {
                Error::new(
                    Code::Conflict,
                    format!("{alias_name} changed while rolling back; try again"),
                )
            })?;
        self.event(project, name, &format!("rollback: {message}"));
        let alias = record
            .alias(&alias_name)
            .map(alias_info)
            .ok_or_else(|| Error::internal("rolling back", "alias missing after the move"))?;
        Ok(RollbackResponse {
            alias,
            from: current.version,
            message,
        })
    }
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
