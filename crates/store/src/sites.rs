//! Static sites: each project serves at most one site, owned by the app that declares it
//! (`[site]`). A deploy that changes the site's files or rules records a new numbered version
//! and makes it live in one commit; rollback makes an older one live again. Versions name
//! their files by SHA-256; the bytes live in a content-addressed file store
//! ([`crate::FsArtifacts::files`]), so an unchanged file is never uploaded or stored twice.
//!
//! [`SiteStore`] is implemented on `data.db` ([`crate::DataStore`]): tables `site_versions`
//! and `site_live`; the newest [`KEEP_SITE_VERSIONS`] versions of a project are kept.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use updraft_manifest::Site;

use crate::data::DataStore;
use crate::{StoreError, now_ms};

/// Versions kept per project (older ones, never the live one, are dropped).
pub const KEEP_SITE_VERSIONS: u32 = 10;

pub use updraft_api::SiteFile;

/// A version of a project's site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteVersion {
    /// The project.
    pub project: String,
    /// The app that owns the site.
    pub app: String,
    /// Its number: 1, 2, 3...
    pub version: u32,
    /// The `[site]` table it was deployed with.
    pub config: Site,
    /// Its files by path (`/index.html`, `/assets/app.js`).
    pub files: BTreeMap<String, SiteFile>,
    /// When it was recorded (ms since the epoch).
    pub created_at: i64,
    /// Who deployed it.
    pub deployer: String,
}

/// What a site operation can fail with besides storage.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// Another app of the project owns the site.
    #[error("the project's site belongs to app `{0}`; a project has one site")]
    OwnedByOtherApp(String),
    /// No such version (or no site).
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where site versions are kept.
#[async_trait::async_trait]
pub trait SiteStore: Send + Sync + 'static {
    /// Records `config` and `files` as the next version of `project`'s site and makes it live,
    /// unless they equal the live version's (then the live version is the answer).
    async fn publish_site(
        &self,
        project: &str,
        app: &str,
        config: Site,
        files: BTreeMap<String, SiteFile>,
        deployer: &str,
    ) -> Result<SiteVersion, SiteError>;
    /// Makes version `version` of `project`'s site live.
    async fn set_live_site(&self, project: &str, version: u32) -> Result<SiteVersion, SiteError>;
    /// Stops serving `project`'s site if `app` owns it (its versions stay for rollback).
    async fn unpublish_site(&self, project: &str, app: &str) -> Result<bool, SiteError>;
    /// The live version of every project's site.
    async fn live_sites(&self) -> Result<Vec<SiteVersion>, SiteError>;
    /// The live version of `project`'s site, if any.
    async fn live_site(&self, project: &str) -> Result<Option<SiteVersion>, SiteError>;
    /// `project`'s kept versions, newest first.
    async fn site_versions(&self, project: &str) -> Result<Vec<SiteVersion>, SiteError>;
    /// Every file digest a kept version names.
    async fn site_digests(&self) -> Result<std::collections::HashSet<String>, SiteError>;
}

const COLS: &str = "project, app, version, config, files, created_at, deployer";
/// [`COLS`] of `site_versions v` joined with `site_live l`.
const V_COLS: &str = "v.project, v.app, v.version, v.config, v.files, v.created_at, v.deployer";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SiteVersion> {
    let parse_err = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    let config: String = r.get(3)?;
    let files: String = r.get(4)?;
    Ok(SiteVersion {
        project: r.get(0)?,
        app: r.get(1)?,
        version: r.get(2)?,
        config: serde_json::from_str(&config).map_err(|e| parse_err(3, e))?,
        files: serde_json::from_str(&files).map_err(|e| parse_err(4, e))?,
        created_at: r.get(5)?,
        deployer: r.get(6)?,
    })
}

fn live_of(c: &rusqlite::Connection, project: &str) -> Result<Option<SiteVersion>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {V_COLS} FROM site_versions v JOIN site_live l
         ON l.project = v.project AND l.version = v.version WHERE v.project = ?1"
    ))?
    .query_row([project], row)
    .optional()?)
}

fn owner_of(c: &rusqlite::Connection, project: &str) -> Result<Option<String>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT app FROM site_versions WHERE project = ?1 ORDER BY version DESC LIMIT 1",
    )?
    .query_row([project], |r| r.get(0))
    .optional()?)
}

fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait::async_trait]
impl SiteStore for DataStore {
    async fn publish_site(
        &self,
        project: &str,
        app: &str,
        config: Site,
        files: BTreeMap<String, SiteFile>,
        deployer: &str,
    ) -> Result<SiteVersion, SiteError> {
        let (project, app, deployer) = (project.to_owned(), app.to_owned(), deployer.to_owned());
        let (config_text, files_text) = (json(&config)?, json(&files)?);
        self.write(move |ctx| {
            let c = ctx.conn;
            if let Some(owner) = owner_of(c, &project)?
                && owner != app
            {
                return Ok(Err(SiteError::OwnedByOtherApp(owner)));
            }
            if let Some(live) = live_of(c, &project)?
                && live.config == config
                && live.files == files
            {
                return Ok(Ok(live));
            }
            let version: u32 = c
                .prepare_cached(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM site_versions WHERE project = ?1",
                )?
                .query_row([&project], |r| r.get(0))?;
            let created_at = now_ms();
            c.prepare_cached(&format!(
                "INSERT INTO site_versions ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))?
            .execute(params![
                project,
                app,
                version,
                config_text,
                files_text,
                created_at,
                deployer
            ])?;
            c.prepare_cached(
                "INSERT OR REPLACE INTO site_live (project, version) VALUES (?1, ?2)",
            )?
            .execute(params![project, version])?;
            c.prepare_cached("DELETE FROM site_versions WHERE project = ?1 AND version <= ?2")?
                .execute(params![
                    project,
                    i64::from(version) - i64::from(KEEP_SITE_VERSIONS)
                ])?;
            Ok(Ok(SiteVersion {
                project,
                app,
                version,
                config,
                files,
                created_at,
                deployer,
            }))
        })
        .await?
    }

    async fn set_live_site(&self, project: &str, version: u32) -> Result<SiteVersion, SiteError> {
        let project = project.to_owned();
        self.write(move |ctx| {
            let c = ctx.conn;
            let found = c
                .prepare_cached(&format!(
                    "SELECT {COLS} FROM site_versions WHERE project = ?1 AND version = ?2"
                ))?
                .query_row(params![project, version], row)
                .optional()?;
            let Some(v) = found else {
                return Ok(Err(SiteError::NotFound(format!(
                    "project `{project}` has no site version {version} (the newest \
                     {KEEP_SITE_VERSIONS} are kept)"
                ))));
            };
            c.prepare_cached(
                "INSERT OR REPLACE INTO site_live (project, version) VALUES (?1, ?2)",
            )?
            .execute(params![project, version])?;
            Ok(Ok(v))
        })
        .await?
    }

    async fn unpublish_site(&self, project: &str, app: &str) -> Result<bool, SiteError> {
        let (project, app) = (project.to_owned(), app.to_owned());
        Ok(self
            .write(move |ctx| {
                if owner_of(ctx.conn, &project)?.as_deref() != Some(app.as_str()) {
                    return Ok(false);
                }
                Ok(ctx
                    .conn
                    .execute("DELETE FROM site_live WHERE project = ?1", [&project])?
                    > 0)
            })
            .await?)
    }

    async fn live_sites(&self) -> Result<Vec<SiteVersion>, SiteError> {
        Ok(self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {V_COLS} FROM site_versions v JOIN site_live l
                 ON l.project = v.project AND l.version = v.version"
            ))?;
            let rows = stmt.query_map([], row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?)
    }

    async fn live_site(&self, project: &str) -> Result<Option<SiteVersion>, SiteError> {
        Ok(self.read(|c| live_of(c, project))?)
    }

    async fn site_versions(&self, project: &str) -> Result<Vec<SiteVersion>, SiteError> {
        Ok(self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLS} FROM site_versions WHERE project = ?1 ORDER BY version DESC"
            ))?;
            let rows = stmt.query_map([project], row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?)
    }

    async fn site_digests(&self) -> Result<std::collections::HashSet<String>, SiteError> {
        Ok(self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT files FROM site_versions")?;
            let mut out = std::collections::HashSet::new();
            for files in stmt.query_map([], |r| r.get::<_, String>(0))? {
                let files: BTreeMap<String, SiteFile> = serde_json::from_str(&files?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                out.extend(files.into_values().map(|f| f.digest));
            }
            Ok(out)
        })?)
    }
}

#[cfg(test)]
mod tests;
