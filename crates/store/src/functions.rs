//! Functions, their immutable versions and their aliases.
//!
//! A deploy of a changed function publishes a new version (1, 2, 3... per function, never
//! reused): the artifact digest, the function's validated manifest entry, the app manifest it
//! came from, who deployed it and when. Aliases are named, mutable pointers to a version,
//! optionally with a canary version taking a share of the traffic. Retention marks old versions
//! deleted (the row stays as a tombstone, so "deleted" can be told apart from "never existed")
//! and deletes artifacts nothing references any more.
//!
//! Long file: every metadata transaction on functions, versions and aliases (deploy, retention,
//! alias moves, deletes) and the row codecs they share.

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use updraft_manifest::{Function, LIVE};

use crate::{Store, StoreError, now_ms};

/// A function as stored: its owner, every version it ever had, and its aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRecord {
    /// The project (tenant).
    pub project: String,
    /// Its name.
    pub name: String,
    /// The app that deployed it.
    pub app: String,
    /// Every version, oldest first, deleted ones included (with `deleted_at` set).
    pub versions: Vec<VersionRecord>,
    /// Its aliases, by name.
    pub aliases: Vec<AliasRecord>,
}

impl FunctionRecord {
    /// Version `n`, deleted or not.
    pub fn version(&self, n: u32) -> Option<&VersionRecord> {
        self.versions.iter().find(|v| v.version == n)
    }

    /// The newest version (never deleted: retention keeps at least one).
    pub fn latest(&self) -> Option<&VersionRecord> {
        self.versions.iter().rev().find(|v| v.deleted_at.is_none())
    }

    /// The alias called `name`.
    pub fn alias(&self, name: &str) -> Option<&AliasRecord> {
        self.aliases.iter().find(|a| a.name == name)
    }

    /// The version `live` serves most traffic to.
    pub fn live(&self) -> Option<&VersionRecord> {
        self.alias(LIVE).and_then(|a| self.version(a.version))
    }
}

/// One immutable version of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Its number: 1, 2, 3... per function.
    pub version: u32,
    /// Digest of its component artifact.
    pub digest: String,
    /// Its `[[functions]]` entry, validated.
    pub spec: Function,
    /// Who deployed it.
    pub deployer: String,
    /// When (ms since the epoch).
    pub created_at: i64,
    /// When retention deleted it; its code and settings are gone, the number is not reused.
    pub deleted_at: Option<i64>,
    /// What happened to it last (a canary rolled back or promoted, and why).
    pub note: Option<String>,
}

/// A named pointer to a version, with an optional canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    /// Its name (`live`, `staging`...).
    pub name: String,
    /// The version it points at (the stable one when there is a canary).
    pub version: u32,
    /// A second version taking a share of the traffic.
    pub canary: Option<Canary>,
    /// Last change (ms since the epoch).
    pub updated_at: i64,
}

impl AliasRecord {
    /// Whether the alias points at version `n`, as its stable version or its canary.
    pub fn references(&self, n: u32) -> bool {
        self.version == n || self.canary.as_ref().is_some_and(|c| c.version == n)
    }
}

/// A canary: a version taking `weight` percent of an alias's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    /// The canary version.
    pub version: u32,
    /// Percent of the alias's requests it serves (0 to 100).
    pub weight: u8,
    /// Set the weight to 0 when the canary does worse than the stable version.
    #[serde(default)]
    pub auto_rollback: bool,
    /// Promote the canary to 100% after this long if it stayed healthy (ms).
    #[serde(default)]
    pub promote_after_ms: Option<u64>,
    /// When the canary started taking traffic (ms since the epoch).
    pub started_at: i64,
}

/// One function of a deploy: its manifest entry and the digest of its uploaded component.
#[derive(Debug, Clone)]
pub struct DeployedFunction {
    /// Its `[[functions]]` entry.
    pub spec: Function,
    /// Digest of its component artifact (must already be stored).
    pub digest: String,
}

/// How a deploy publishes.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Who is deploying (recorded on each new version).
    pub deployer: String,
    /// Publish changed functions as a canary of `live` with this template (`version` and
    /// `started_at` are filled in) instead of switching `live`.
    pub canary: Option<Canary>,
    /// Versions to keep per function (at least 1); older ones no alias points at are deleted.
    pub keep: usize,
}

/// What a deploy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployOutcome {
    /// Functions of the app that the deploy removed.
    pub removed: Vec<String>,
    /// Functions that got a new version, with its number.
    pub published: Vec<(String, u32)>,
    /// Versions retention deleted, as (function, version).
    pub pruned: Vec<(String, u32)>,
    /// Artifacts deleted because no version references them any more (their compiled code
    /// can go too).
    pub orphaned: Vec<String>,
}

/// What retention and deletions changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Versions deleted, as (function, version).
    pub versions: Vec<(String, u32)>,
    /// Artifacts deleted.
    pub orphaned: Vec<String>,
}

impl Store {
    /// Deploys app `app` of `project` with exactly `functions`, in one transaction: functions of
    /// the app that are not in the list are deleted; each function whose digest or spec differs
    /// from its newest version gets a new version, and `live` moves to it (or, with
    /// `options.canary`, takes it as a canary). Aliases named by routes that do not exist yet
    /// are created at the new version. Then retention runs on the app's functions.
    ///
    /// # Errors
    /// [`StoreError::FunctionOwnedByOtherApp`] when a name is taken by another app; SQLite and
    /// I/O errors.
    pub(crate) fn deploy_app(
        &self,
        project: &str,
        app: &str,
        manifest: &str,
        functions: &[DeployedFunction],
        options: &DeployOptions,
    ) -> Result<DeployOutcome, StoreError> {
        let outcome = self.with_conn(|c| {
            let tx = c.transaction()?;
            let now = now_ms();
            for f in functions {
                let owner: Option<String> = tx
                    .query_row(
                        "SELECT app FROM functions WHERE project = ?1 AND name = ?2",
                        params![project, f.spec.name.as_str()],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(owner) = owner
                    && owner != app
                {
                    return Err(StoreError::FunctionOwnedByOtherApp {
                        function: f.spec.name.to_string(),
                        app: owner,
                    });
                }
            }
            let known: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM projects WHERE id = ?1",
                    params![project],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_none() {
                return Err(StoreError::NoSuchProject {
                    project: project.to_owned(),
                });
            }
            tx.execute(
                "INSERT INTO apps (project, name, manifest, deployed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project, name) DO UPDATE SET manifest = ?3, deployed_at = ?4",
                params![project, app, manifest, now],
            )?;
            let existing: Vec<String> = {
                let mut stmt =
                    tx.prepare("SELECT name FROM functions WHERE project = ?1 AND app = ?2")?;
                let rows = stmt.query_map(params![project, app], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut outcome = DeployOutcome::default();
            let mut candidates = BTreeSet::new();
            for name in existing {
                if !functions.iter().any(|f| f.spec.name.as_str() == name) {
                    candidates.extend(remove_function(&tx, project, &name)?);
                    outcome.removed.push(name);
                }
            }
            for f in functions {
                let name = f.spec.name.as_str();
                if let Some(version) = publish(&tx, project, app, manifest, f, options, now)? {
                    outcome.published.push((name.to_owned(), version));
                }
                for (version, digest) in prune(&tx, project, name, options.keep, now)? {
                    outcome.pruned.push((name.to_owned(), version));
                    candidates.insert(digest);
                }
            }
            outcome.orphaned = drop_orphans(&tx, candidates)?;
            tx.commit()?;
            Ok(outcome)
        })?;
        Ok(outcome)
    }

    /// Every function of `project`, by name.
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`] for undecodable rows.
    pub(crate) fn functions(&self, project: &str) -> Result<Vec<FunctionRecord>, StoreError> {
        self.with_conn(|c| {
            let names: Vec<String> = {
                let mut stmt = c.prepare_cached(
                    "SELECT name FROM functions WHERE project = ?1 ORDER BY name",
                )?;
                let rows = stmt.query_map(params![project], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            names
                .iter()
                .filter_map(|n| load_function(c, project, n).transpose())
                .collect()
        })
    }

    /// Every function of every project (for loading at start-up).
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`] for undecodable rows.
    pub(crate) fn all_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        self.with_conn(|c| {
            let keys: Vec<(String, String)> = {
                let mut stmt =
                    c.prepare_cached("SELECT project, name FROM functions ORDER BY project, name")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            keys.iter()
                .filter_map(|(p, n)| load_function(c, p, n).transpose())
                .collect()
        })
    }

    /// One function.
    ///
    /// # Errors
    /// SQLite errors, or [`StoreError::Corrupt`] for an undecodable row.
    pub(crate) fn function(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        self.with_conn(|c| load_function(c, project, name))
    }

    /// The app manifest version `version` of `function` was deployed with.
    ///
    /// # Errors
    /// SQLite errors.
    pub(crate) fn version_manifest(
        &self,
        project: &str,
        function: &str,
        version: u32,
    ) -> Result<Option<String>, StoreError> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT manifest FROM versions WHERE project = ?1 AND function = ?2 AND version = ?3",
                params![project, function, version],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// Creates or moves alias `alias` of `function`, then runs retention (versions the alias
    /// no longer points at may be past the newest `keep`). Returns the function as now stored.
    ///
    /// # Errors
    /// [`StoreError::NoSuchFunction`], [`StoreError::NoSuchVersion`] or
    /// [`StoreError::VersionDeleted`] for a version the alias cannot point at; SQLite errors.
    pub(crate) fn set_alias(
        &self,
        project: &str,
        function: &str,
        alias: &AliasRecord,
        keep: usize,
    ) -> Result<(FunctionRecord, Pruned), StoreError> {
        let (record, pruned) = self.with_conn(|c| {
            let tx = c.transaction()?;
            let now = now_ms();
            let record = load_function(&tx, project, function)?.ok_or_else(|| {
                StoreError::NoSuchFunction {
                    function: function.to_owned(),
                }
            })?;
            let targets =
                std::iter::once(alias.version).chain(alias.canary.as_ref().map(|c| c.version));
            for n in targets {
                match record.version(n) {
                    None => {
                        return Err(StoreError::NoSuchVersion {
                            function: function.to_owned(),
                            version: n,
                        });
                    }
                    Some(v) if v.deleted_at.is_some() => {
                        return Err(StoreError::VersionDeleted {
                            function: function.to_owned(),
                            version: n,
                        });
                    }
                    Some(_) => {}
                }
            }
            write_alias(&tx, project, function, alias, now)?;
            let mut pruned = Pruned::default();
            let mut candidates = BTreeSet::new();
            for (version, digest) in prune(&tx, project, function, keep, now)? {
                pruned.versions.push((function.to_owned(), version));
                candidates.insert(digest);
            }
            pruned.orphaned = drop_orphans(&tx, candidates)?;
            let record = load_function(&tx, project, function)?.ok_or_else(|| {
                StoreError::NoSuchFunction {
                    function: function.to_owned(),
                }
            })?;
            tx.commit()?;
            Ok((record, pruned))
        })?;
        Ok((record, pruned))
    }

    /// Deletes alias `alias` of `function`. Returns whether it existed.
    ///
    /// # Errors
    /// SQLite errors.
    pub(crate) fn delete_alias(
        &self,
        project: &str,
        function: &str,
        alias: &str,
    ) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let n = c.execute(
                "DELETE FROM aliases WHERE project = ?1 AND function = ?2 AND name = ?3",
                params![project, function, alias],
            )?;
            Ok(n > 0)
        })
    }

    /// Records what happened to a version (shown by `updraft versions`).
    ///
    /// # Errors
    /// SQLite errors.
    pub(crate) fn set_version_note(
        &self,
        project: &str,
        function: &str,
        version: u32,
        note: &str,
    ) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.execute(
                "UPDATE versions SET note = ?4 WHERE project = ?1 AND function = ?2 AND version = ?3",
                params![project, function, version, note],
            )?;
            Ok(())
        })
    }

    /// Deletes a function with its versions and aliases, and the artifacts only it used.
    /// Returns `None` if it did not exist.
    ///
    /// # Errors
    /// SQLite errors.
    pub(crate) fn delete_function(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<Pruned>, StoreError> {
        let pruned = self.with_conn(|c| {
            let tx = c.transaction()?;
            let exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM functions WHERE project = ?1 AND name = ?2)",
                params![project, name],
                |r| r.get(0),
            )?;
            if !exists {
                return Ok(None);
            }
            let candidates = remove_function(&tx, project, name)?;
            let orphaned = drop_orphans(&tx, candidates)?;
            tx.commit()?;
            Ok(Some(Pruned {
                versions: Vec::new(),
                orphaned,
            }))
        })?;
        Ok(pruned)
    }
}

/// Publishes `f` as a new version if it differs from the newest one. Returns its number.
fn publish(
    tx: &Transaction<'_>,
    project: &str,
    app: &str,
    manifest: &str,
    f: &DeployedFunction,
    options: &DeployOptions,
    now: i64,
) -> Result<Option<u32>, StoreError> {
    let name = f.spec.name.as_str();
    let spec = serde_json::to_string(&f.spec)
        .map_err(|e| StoreError::Corrupt(format!("encoding function spec: {e}")))?;
    tx.execute(
        "INSERT OR IGNORE INTO functions (project, name, app, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![project, name, app, now],
    )?;
    let newest: Option<(u32, String, String)> = tx
        .query_row(
            "SELECT version, digest, spec FROM versions WHERE project = ?1 AND function = ?2
             ORDER BY version DESC LIMIT 1",
            params![project, name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((_, digest, stored)) = &newest
        && *digest == f.digest
        && decode_spec(stored)? == f.spec
    {
        return Ok(None);
    }
    let version = newest.map_or(1, |(n, _, _)| n + 1);
    tx.execute(
        "INSERT INTO versions (project, function, version, digest, spec, manifest, deployer, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![project, name, version, f.digest, spec, manifest, options.deployer, now],
    )?;
    let live = load_aliases(tx, project, name)?
        .into_iter()
        .find(|a| a.name == LIVE);
    let live = match (live, &options.canary) {
        (Some(live), Some(template)) => AliasRecord {
            canary: Some(Canary {
                version,
                started_at: now,
                ..template.clone()
            }),
            ..live
        },
        _ => AliasRecord {
            name: LIVE.to_owned(),
            version,
            canary: None,
            updated_at: now,
        },
    };
    write_alias(tx, project, name, &live, now)?;
    for trigger in &f.spec.http {
        tx.execute(
            "INSERT OR IGNORE INTO aliases (project, function, name, version, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![project, name, trigger.alias(), version, now],
        )?;
    }
    Ok(Some(version))
}

fn write_alias(
    tx: &Transaction<'_>,
    project: &str,
    function: &str,
    alias: &AliasRecord,
    now: i64,
) -> Result<(), StoreError> {
    let canary = alias
        .canary
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("encoding a canary: {e}")))?;
    tx.execute(
        "INSERT INTO aliases (project, function, name, version, canary, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (project, function, name) DO UPDATE SET version = ?4, canary = ?5, updated_at = ?6",
        params![project, function, alias.name, alias.version, canary, now],
    )?;
    Ok(())
}

/// Marks deleted the versions of `function` past the newest `keep` that no alias points at.
/// Returns them with their digests.
fn prune(
    tx: &Transaction<'_>,
    project: &str,
    function: &str,
    keep: usize,
    now: i64,
) -> Result<Vec<(u32, String)>, StoreError> {
    let aliases = load_aliases(tx, project, function)?;
    let live: Vec<(u32, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT version, digest FROM versions
             WHERE project = ?1 AND function = ?2 AND deleted_at IS NULL ORDER BY version DESC",
        )?;
        let rows = stmt.query_map(params![project, function], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let doomed: Vec<(u32, String)> = live
        .into_iter()
        .skip(keep.max(1))
        .filter(|(n, _)| !aliases.iter().any(|a| a.references(*n)))
        .collect();
    for (n, _) in &doomed {
        tx.execute(
            "UPDATE versions SET deleted_at = ?4
             WHERE project = ?1 AND function = ?2 AND version = ?3",
            params![project, function, n, now],
        )?;
    }
    Ok(doomed)
}

/// Deletes a function's rows. Returns the digests its versions that were not deleted yet used
/// (a deleted version's artifact was already reported when it was deleted).
fn remove_function(
    tx: &Transaction<'_>,
    project: &str,
    name: &str,
) -> Result<BTreeSet<String>, StoreError> {
    let digests: BTreeSet<String> = {
        let mut stmt = tx.prepare_cached(
            "SELECT DISTINCT digest FROM versions
             WHERE project = ?1 AND function = ?2 AND deleted_at IS NULL",
        )?;
        let rows = stmt.query_map(params![project, name], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for sql in [
        "DELETE FROM aliases WHERE project = ?1 AND function = ?2",
        "DELETE FROM versions WHERE project = ?1 AND function = ?2",
        "DELETE FROM functions WHERE project = ?1 AND name = ?2",
    ] {
        tx.execute(sql, params![project, name])?;
    }
    Ok(digests)
}

/// The digests among `candidates` that no remaining version uses (their bytes can go).
fn drop_orphans(
    tx: &Transaction<'_>,
    candidates: BTreeSet<String>,
) -> Result<Vec<String>, StoreError> {
    let mut orphaned = Vec::new();
    for digest in candidates {
        let used: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM versions WHERE digest = ?1 AND deleted_at IS NULL)",
            params![digest],
            |r| r.get(0),
        )?;
        if !used {
            // Data directories from before the artifact store kept a row per artifact.
            tx.execute("DELETE FROM artifacts WHERE digest = ?1", params![digest])?;
            orphaned.push(digest);
        }
    }
    Ok(orphaned)
}

fn decode_spec(text: &str) -> Result<Function, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("function spec: {e}")))
}

fn load_function(
    c: &rusqlite::Connection,
    project: &str,
    name: &str,
) -> Result<Option<FunctionRecord>, StoreError> {
    let app: Option<String> = c
        .query_row(
            "SELECT app FROM functions WHERE project = ?1 AND name = ?2",
            params![project, name],
            |r| r.get(0),
        )
        .optional()?;
    let Some(app) = app else {
        return Ok(None);
    };
    type Row = (
        u32,
        String,
        String,
        String,
        i64,
        Option<i64>,
        Option<String>,
    );
    let rows: Vec<Row> = {
        let mut stmt = c.prepare_cached(
            "SELECT version, digest, spec, deployer, created_at, deleted_at, note FROM versions
             WHERE project = ?1 AND function = ?2 ORDER BY version",
        )?;
        let rows = stmt.query_map(params![project, name], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let versions = rows
        .into_iter()
        .map(
            |(version, digest, spec, deployer, created_at, deleted_at, note)| {
                Ok(VersionRecord {
                    version,
                    digest,
                    spec: decode_spec(&spec)?,
                    deployer,
                    created_at,
                    deleted_at,
                    note,
                })
            },
        )
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(FunctionRecord {
        project: project.to_owned(),
        name: name.to_owned(),
        app,
        versions,
        aliases: load_aliases(c, project, name)?,
    }))
}

fn load_aliases(
    c: &rusqlite::Connection,
    project: &str,
    function: &str,
) -> Result<Vec<AliasRecord>, StoreError> {
    let rows: Vec<(String, u32, Option<String>, i64)> = {
        let mut stmt = c.prepare_cached(
            "SELECT name, version, canary, updated_at FROM aliases
             WHERE project = ?1 AND function = ?2 ORDER BY name",
        )?;
        let rows = stmt.query_map(params![project, function], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    rows.into_iter()
        .map(|(name, version, canary, updated_at)| {
            let canary = canary
                .map(|c| serde_json::from_str(&c))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("alias `{name}` canary: {e}")))?;
            Ok(AliasRecord {
                name,
                version,
                canary,
                updated_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
