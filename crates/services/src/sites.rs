//! Static sites (`[site]` in `updraft.toml`): publishing a project's site version and serving
//! its files on the project's host where no function route matches.
//!
//! A deploy names every file by SHA-256; the CLI uploads only those the server lacks
//! ([`SiteService::missing`], [`SiteService::upload`]), then [`SiteService::publish`] records
//! the version (if anything changed) and swaps it in: each request reads one version from
//! start to end, so a deploy under load never mixes two. Rollback makes an older version live.
//!
//! What a request gets is [`SiteService::serve`]'s: redirects, files (`index.html` for directories),
//! rewrites, the SPA fallback, the 404 page; strong ETags and 304s, one byte range, cache
//! headers by kind (immutable for fingerprinted assets, revalidated for the rest), content
//! types by extension, precompressed `.br`/`.gz` siblings and on-the-fly gzip.
//!
//! This module must not know about routes or functions: the gateway asks it only after the
//! route table had no match.

mod cache;
mod serve;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use futures::StreamExt as _;
use updraft_manifest::Site;
use updraft_store::sites::{SiteError, SiteFile, SiteStore, SiteVersion};
use updraft_store::{ArtifactStore as _, FsArtifacts, StoreError};

pub use serve::Request as SiteRequest;

/// Limits of static sites (`[sites]` in the server's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitesConfig {
    /// Largest file of a site, in bytes.
    pub max_file_bytes: u64,
    /// Most files one site version may have.
    pub max_files: usize,
    /// Memory kept for small site files and their gzipped forms (files up to 1 MiB, or a
    /// sixteenth of this if less); 0 reads every file from disk.
    pub cache_bytes: u64,
}

impl Default for SitesConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 256 << 20,
            max_files: 20_000,
            cache_bytes: 64 << 20,
        }
    }
}

/// Why a site call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SitesError {
    /// Bad input; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// Another app owns the project's site.
    #[error("{0}")]
    Conflict(String),
    /// No such site or version.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<SiteError> for SitesError {
    fn from(e: SiteError) -> Self {
        match e {
            SiteError::OwnedByOtherApp(_) => Self::Conflict(e.to_string()),
            SiteError::NotFound(m) => Self::NotFound(m),
            SiteError::Store(e) => Self::Storage(e.to_string()),
        }
    }
}

impl From<StoreError> for SitesError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidDigest(_) | StoreError::DigestMismatch { .. } => {
                Self::Invalid(e.to_string())
            }
            other => Self::Storage(other.to_string()),
        }
    }
}

/// The live site of each project, and where their files are.
pub struct SiteService {
    store: Arc<dyn SiteStore>,
    files: FsArtifacts,
    config: SitesConfig,
    live: RwLock<HashMap<String, Arc<SiteVersion>>>,
    cache: cache::FileCache,
}

impl SiteService {
    /// The service over `store` (versions) and `files` (their bytes).
    pub fn new(store: Arc<dyn SiteStore>, files: FsArtifacts, config: SitesConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            files,
            cache: cache::FileCache::new(config.cache_bytes),
            config,
            live: RwLock::new(HashMap::new()),
        })
    }

    /// Loads the live versions (at start-up).
    ///
    /// # Errors
    /// The store's.
    pub async fn load(&self) -> Result<(), SitesError> {
        let live = self.store.live_sites().await?;
        if let Ok(mut map) = self.live.write() {
            *map = live
                .into_iter()
                .map(|v| (v.project.clone(), Arc::new(v)))
                .collect();
        }
        Ok(())
    }

    /// The live version of `project`'s site.
    pub fn live(&self, project: &str) -> Option<Arc<SiteVersion>> {
        self.live.read().ok()?.get(project).cloned()
    }

    fn swap(&self, project: &str, version: Option<SiteVersion>) {
        if let Ok(mut map) = self.live.write() {
            match version {
                Some(v) => map.insert(project.to_owned(), Arc::new(v)),
                None => map.remove(project),
            };
        }
    }

    /// The digests of `digests` not stored yet.
    ///
    /// # Errors
    /// [`SitesError::Invalid`] for a digest that is not a SHA-256.
    pub async fn missing(&self, digests: &[String]) -> Result<Vec<String>, SitesError> {
        let mut out = Vec::new();
        for d in digests {
            if !self.files.exists(d).await? {
                out.push(d.clone());
            }
        }
        Ok(out)
    }

    /// Stores a file whose SHA-256 is `digest` from `body`.
    ///
    /// # Errors
    /// [`SitesError::Invalid`] if the bytes do not hash to `digest` or pass
    /// `max_file_bytes` (nothing is stored).
    pub async fn upload<S, E>(&self, digest: &str, mut body: S) -> Result<u64, SitesError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let mut w = self.files.writer(digest).await?;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| SitesError::Invalid(format!("the body broke off: {e}")))?;
            if w.written() + chunk.len() as u64 > self.config.max_file_bytes {
                return Err(SitesError::Invalid(format!(
                    "the file is larger than {} bytes ([sites] max_file_bytes)",
                    self.config.max_file_bytes
                )));
            }
            w.write(&chunk).await?;
        }
        Ok(w.commit().await?)
    }

    /// Publishes `files` with `config` as `project`'s site, owned by `app`; the version
    /// served from now on.
    ///
    /// # Errors
    /// [`SitesError::Invalid`] for a bad path, a file not uploaded, too many files or a
    /// `not_found` page the site lacks; [`SitesError::Conflict`] if another app owns the
    /// project's site.
    pub async fn publish(
        &self,
        project: &str,
        app: &str,
        config: Site,
        files: BTreeMap<String, SiteFile>,
        deployer: &str,
    ) -> Result<SiteVersion, SitesError> {
        if files.len() > self.config.max_files {
            return Err(SitesError::Invalid(format!(
                "the site has {} files, more than {} ([sites] max_files)",
                files.len(),
                self.config.max_files
            )));
        }
        for (path, f) in &files {
            check_path(path)?;
            if !self.files.exists(&f.digest).await? {
                return Err(SitesError::Invalid(format!(
                    "site file `{path}` ({}) was not uploaded",
                    f.digest
                )));
            }
        }
        if let Some(page) = &config.not_found
            && !files.contains_key(&format!("/{page}"))
        {
            return Err(SitesError::Invalid(format!(
                "[site] not_found names `{page}`, which is not a file of the site"
            )));
        }
        let v = self
            .store
            .publish_site(project, app, config, files, deployer)
            .await?;
        self.swap(project, Some(v.clone()));
        Ok(v)
    }

    /// Makes version `to` (default: the one before the live one) of `project`'s site live.
    ///
    /// # Errors
    /// [`SitesError::NotFound`] if there is no such version.
    pub async fn rollback(
        &self,
        project: &str,
        to: Option<u32>,
    ) -> Result<SiteVersion, SitesError> {
        let to = match to {
            Some(n) => n,
            None => {
                let live = self.live(project).map(|v| v.version);
                let versions = self.store.site_versions(project).await?;
                versions
                    .iter()
                    .map(|v| v.version)
                    .find(|n| live.is_some_and(|l| *n < l))
                    .ok_or_else(|| {
                        SitesError::NotFound(format!(
                            "project `{project}` has no site version before the live one"
                        ))
                    })?
            }
        };
        let v = self.store.set_live_site(project, to).await?;
        self.swap(project, Some(v.clone()));
        Ok(v)
    }

    /// Stops serving `project`'s site if `app` owns it.
    ///
    /// # Errors
    /// The store's.
    pub async fn unpublish(&self, project: &str, app: &str) -> Result<bool, SitesError> {
        // Every deploy of an app without `[site]` asks: answer from memory unless there is a
        // live site of this app to take down.
        if self.live(project).is_none_or(|v| v.app != app) {
            return Ok(false);
        }
        let gone = self.store.unpublish_site(project, app).await?;
        if gone {
            self.swap(project, None);
        }
        Ok(gone)
    }

    /// The app that owns `project`'s site, if it has had one.
    ///
    /// # Errors
    /// The store's.
    pub async fn owner(&self, project: &str) -> Result<Option<String>, SitesError> {
        Ok(self
            .store
            .site_versions(project)
            .await?
            .into_iter()
            .next()
            .map(|v| v.app))
    }

    /// `project`'s kept versions, newest first.
    ///
    /// # Errors
    /// The store's.
    pub async fn versions(&self, project: &str) -> Result<Vec<SiteVersion>, SitesError> {
        Ok(self.store.site_versions(project).await?)
    }

    /// Deletes stored files no kept version names that were stored more than `grace_ms`
    /// ago (uploads not deployed yet are younger). Returns how many.
    ///
    /// # Errors
    /// The store's.
    pub async fn collect_files(&self, grace_ms: i64) -> Result<usize, SitesError> {
        let used = self.store.site_digests().await?;
        let cutoff = updraft_store::now_ms() - grace_ms;
        let mut n = 0;
        for (digest, stored) in self.files.list().await? {
            if stored < cutoff && !used.contains(&digest) {
                self.files.delete(&digest).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A site path: `/` then segments without `.`/`..`, empty segments, backslashes or control
/// characters, at most 1024 bytes.
fn check_path(path: &str) -> Result<(), SitesError> {
    let bad = |why: &str| Err(SitesError::Invalid(format!("site path `{path}` {why}")));
    let Some(rest) = path.strip_prefix('/') else {
        return bad("must start with `/`");
    };
    if path.len() > 1024 {
        return bad("is longer than 1024 bytes");
    }
    for seg in rest.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return bad("has an empty, `.` or `..` segment");
        }
        if seg.chars().any(|c| c.is_control() || c == '\\') {
            return bad("has a control character or `\\`");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
