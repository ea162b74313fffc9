//! Blobs as files: `objects/blobs/<first two hex digits>/<id>` in the data directory, written
//! through `objects/tmp/` (write, fsync, rename, fsync the directory).

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{BlobRead, BlobRef, BlobWriter, ObjectError};
use crate::data::DataStore;
use crate::{StoreError, io_err};

/// The embedded [`super::ObjectStore`]: metadata in `data.db`, blobs as files. Cheap to clone.
#[derive(Clone)]
pub struct FsObjects {
    pub(super) data: DataStore,
    dir: PathBuf,
}

impl FsObjects {
    /// Objects with metadata in `data` and blobs under `dir` (created if missing). Blocking:
    /// call it at start-up.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the directories cannot be created.
    pub fn open(data: DataStore, dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        for sub in ["blobs", "tmp"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        Ok(Self { data, dir })
    }

    /// Where blob `id` lives, if `id` is a blob id (32 lower-case hex digits: never a path).
    pub(super) fn blob_path(&self, id: &str) -> Option<PathBuf> {
        let ok = id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| self.dir.join("blobs").join(&id[..2]).join(id))
    }

    pub(super) async fn new_writer(&self) -> Result<Box<dyn BlobWriter>, ObjectError> {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let tmp = self.dir.join("tmp").join(&id);
        let file = tokio::fs::File::create(&tmp).await.map_err(io_err(&tmp))?;
        let path = self.blob_path(&id).unwrap_or_else(|| tmp.clone());
        Ok(Box::new(FileBlob {
            id,
            file: Some(file),
            tmp,
            path,
            written: 0,
        }))
    }

    pub(super) async fn open_blob(
        &self,
        id: &str,
        offset: u64,
        len: u64,
    ) -> Result<Option<BlobRead>, ObjectError> {
        let Some(path) = self.blob_path(id) else {
            return Ok(None);
        };
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e).into()),
        };
        if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(io_err(&path))?;
        }
        Ok(Some(Box::new(file.take(len))))
    }

    /// Removes blob files (a missing one is fine).
    pub(super) async fn remove_blobs(&self, ids: Vec<String>) {
        for id in ids {
            if let Some(path) = self.blob_path(&id)
                && let Err(e) = tokio::fs::remove_file(&path).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "could not remove a blob");
            }
        }
    }

    /// Blob files and temp files last modified before `older_than_ms`: (id or None for a
    /// temp file, path).
    pub(super) fn old_files(&self, older_than_ms: i64) -> Vec<(Option<String>, PathBuf)> {
        let mut out = Vec::new();
        let old = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .is_some_and(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX) < older_than_ms)
        };
        let entries = |d: &Path| -> Vec<PathBuf> {
            std::fs::read_dir(d)
                .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default()
        };
        for shard in entries(&self.dir.join("blobs")) {
            for path in entries(&shard) {
                let id = path.file_name().and_then(|n| n.to_str()).map(str::to_owned);
                if id.as_deref().and_then(|i| self.blob_path(i)).is_some() && old(&path) {
                    out.push((id, path));
                }
            }
        }
        for path in entries(&self.dir.join("tmp")) {
            if old(&path) {
                out.push((None, path));
            }
        }
        out
    }
}

/// A blob being written.
struct FileBlob {
    id: String,
    file: Option<tokio::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
    written: u64,
}

#[async_trait::async_trait]
impl BlobWriter for FileBlob {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), ObjectError> {
        let Some(file) = self.file.as_mut() else {
            return Err(StoreError::Corrupt("write after finish".to_owned()).into());
        };
        file.write_all(bytes).await.map_err(io_err(&self.tmp))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn written(&self) -> u64 {
        self.written
    }

    async fn finish(mut self: Box<Self>) -> Result<BlobRef, ObjectError> {
        let Some(mut file) = self.file.take() else {
            return Err(StoreError::Corrupt("finished twice".to_owned()).into());
        };
        file.flush().await.map_err(io_err(&self.tmp))?;
        file.sync_all().await.map_err(io_err(&self.tmp))?;
        drop(file);
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_owned();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_err(&dir))?;
        tokio::fs::rename(&self.tmp, &self.path)
            .await
            .map_err(io_err(&self.path))?;
        let d = dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?
            .map_err(io_err(&dir))?;
        Ok(BlobRef {
            id: std::mem::take(&mut self.id),
            size: self.written,
        })
    }
}

impl Drop for FileBlob {
    fn drop(&mut self) {
        // Not finished (or the rename failed): nothing may be left behind.
        if self.file.is_some() || self.tmp.exists() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
