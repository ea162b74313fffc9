//! Content-addressed artifact files: `artifacts/<sha256>.wasm`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::params;
use sha2::{Digest, Sha256};

use crate::{Store, StoreError, io_err, now_ms};

impl Store {
    /// Where the artifact with this digest lives (whether or not it exists).
    pub fn artifact_path(&self, digest: &str) -> PathBuf {
        self.dir().join("artifacts").join(format!("{digest}.wasm"))
    }

    /// Whether an artifact with this digest is stored.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] if the lookup fails.
    pub fn has_artifact(&self, digest: &str) -> Result<bool, StoreError> {
        let known = self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT EXISTS(SELECT 1 FROM artifacts WHERE digest = ?1)",
                params![digest],
                |r| r.get::<_, bool>(0),
            )?)
        })?;
        Ok(known && self.artifact_path(digest).is_file())
    }

    /// Stores `bytes` under `digest` after checking that they hash to it. Durable on return.
    ///
    /// # Errors
    /// [`StoreError::DigestMismatch`] if the bytes hash to something else; I/O or SQLite errors.
    pub fn put_artifact(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.to_owned(),
                actual,
            });
        }
        let path = self.artifact_path(digest);
        if !path.is_file() {
            write_atomically(&path, bytes)?;
        }
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        self.with_conn(|c| {
            c.execute(
                "INSERT OR IGNORE INTO artifacts (digest, size, created_at) VALUES (?1, ?2, ?3)",
                params![digest, size, now_ms()],
            )?;
            Ok(())
        })
    }
}

/// Writes a file so that a crash leaves either nothing or the whole file: temporary file in the
/// same directory, fsync, rename, fsync the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

#[cfg(test)]
mod tests;
