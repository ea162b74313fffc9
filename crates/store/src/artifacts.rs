//! The embedded artifact store: content-addressed files, `artifacts/<sha256>.wasm` (and, for
//! static sites' files, `sites/files/<sha256>.blob`: [`FsArtifacts::files`]).
//!
//! A write goes to a temporary file in the same directory while it is hashed; commit checks
//! the digest, fsyncs the file, renames it into place and fsyncs the directory, so a crash
//! leaves either no artifact or the whole one, never a partial one under its name.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::{ArtifactStore, ArtifactWriter, StoreError, io_err};

/// Artifacts as files in a directory.
#[derive(Debug, Clone)]
pub struct FsArtifacts {
    dir: PathBuf,
    /// The file name's ending after the digest.
    suffix: &'static str,
}

impl FsArtifacts {
    /// The artifacts under `dir` (created if missing). Blocking: call it at start-up.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Self {
            dir,
            suffix: ".wasm",
        })
    }

    /// Content-addressed files of any kind under `dir` (`<sha256>.blob`; created if
    /// missing). Blocking: call it at start-up.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the directory cannot be created.
    pub fn files(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Self {
            dir,
            suffix: ".blob",
        })
    }

    /// Where the artifact with this digest lives (whether or not it exists).
    ///
    /// # Errors
    /// [`StoreError::InvalidDigest`] unless `digest` is 64 lower-case hex characters (so a
    /// digest can never name a path outside the directory).
    pub fn path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        check_digest(digest)?;
        Ok(self.dir.join(format!("{digest}{}", self.suffix)))
    }
}

/// Checks that `digest` is a SHA-256 in lower-case hex.
pub(crate) fn check_digest(digest: &str) -> Result<(), StoreError> {
    let ok = digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidDigest(digest.to_owned()))
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::Backend(Box::new(e))))
}

#[async_trait::async_trait]
impl ArtifactStore for FsArtifacts {
    async fn exists(&self, digest: &str) -> Result<bool, StoreError> {
        let path = self.path(digest)?;
        blocking(move || Ok(path.is_file())).await
    }

    async fn writer(&self, digest: &str) -> Result<Box<dyn ArtifactWriter>, StoreError> {
        let path = self.path(digest)?;
        let digest = digest.to_owned();
        blocking(move || {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
            let tmp = dir.join(format!(
                ".tmp-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
            Ok(Box::new(FileWriter {
                file: Some(file),
                tmp,
                path,
                digest,
                hasher: Sha256::new(),
                written: 0,
            }) as Box<dyn ArtifactWriter>)
        })
        .await
    }

    async fn read(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(digest)?;
        let digest = digest.to_owned();
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NoSuchArtifact { digest })
            }
            Err(e) => Err(io_err(&path)(e)),
        })
        .await
    }

    async fn delete(&self, digest: &str) -> Result<(), StoreError> {
        let path = self.path(digest)?;
        blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        })
        .await
    }

    async fn list(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let (dir, suffix) = (self.dir.clone(), self.suffix);
        blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
                let entry = entry.map_err(io_err(&dir))?;
                let name = entry.file_name();
                // Temp files of writes in progress start with a dot; only `<digest><suffix>`
                // counts.
                let Some(digest) = name.to_str().and_then(|n| n.strip_suffix(suffix)) else {
                    continue;
                };
                if check_digest(digest).is_err() {
                    continue;
                }
                let stored_ms = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                out.push((digest.to_owned(), stored_ms));
            }
            Ok(out)
        })
        .await
    }
}

/// A file being written: a temporary file, hashed as it grows.
struct FileWriter {
    file: Option<std::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
    digest: String,
    hasher: Sha256,
    written: u64,
}

#[async_trait::async_trait]
impl ArtifactWriter for FileWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        let Some(file) = self.file.as_mut() else {
            return Err(StoreError::Corrupt("write after commit".to_owned()));
        };
        // Small chunks: a write to the page cache does not block for long.
        file.write_all(bytes).map_err(io_err(&self.tmp))
    }

    fn written(&self) -> u64 {
        self.written
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, StoreError> {
        let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if actual != self.digest {
            return Err(StoreError::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            });
        }
        let file = self.file.take();
        let (tmp, path) = (self.tmp.clone(), self.path.clone());
        let written = self.written;
        blocking(move || {
            let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
            if let Some(f) = file {
                f.sync_all().map_err(io_err(&tmp))?;
            }
            std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(&dir))?;
            Ok(written)
        })
        .await
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        // Not committed (or the rename failed): nothing may be left behind.
        if self.tmp.exists() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests;
