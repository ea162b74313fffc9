//! The data directory's guard: created private (0700), refused when others can write to it, and
//! locked for the server's life, so two servers never share one (both would deliver events,
//! fire schedules and write the same files).
//!
//! The lock is an exclusive `flock` on `<data dir>/server.lock`, which holds the owner's pid for
//! the error a second server prints. The kernel drops it when the process ends, `kill -9`
//! included, so a crash never leaves a stale lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::ServerError;

/// The lock file's name inside the data directory.
pub(crate) const LOCK_FILE: &str = "server.lock";

/// Holds the data directory for as long as it lives.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if needed (mode 0700), checks its mode and takes its lock.
    ///
    /// # Errors
    /// [`ServerError::DataDir`] naming the problem: writable by others, locked by another
    /// server (with its pid), a symlinked lock file, or I/O.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, ServerError> {
        create_private(dir)?;
        check_mode(dir)?;
        let path = dir.join(LOCK_FILE);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(problem(dir, format!("{} is a symlink", path.display())));
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let holder = match pid.trim() {
                    "" => "another updraft server".to_owned(),
                    pid => format!("another updraft server (pid {pid})"),
                };
                return Err(problem(dir, format!("it is in use by {holder}")));
            }
            Err(TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        file.set_len(0).map_err(io(&path))?;
        file.rewind().map_err(io(&path))?;
        writeln!(file, "{}", std::process::id()).map_err(io(&path))?;
        Ok(Self { _file: file })
    }
}

fn create_private(dir: &Path) -> Result<(), ServerError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io(dir))
}

fn check_mode(dir: &Path) -> Result<(), ServerError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .map_err(io(dir))?
            .permissions()
            .mode();
        if mode & 0o022 != 0 {
            return Err(problem(
                dir,
                format!(
                    "it is writable by {} (mode {:o}); run `chmod 700 {}`",
                    if mode & 0o002 != 0 {
                        "everyone"
                    } else {
                        "its group"
                    },
                    mode & 0o777,
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

fn problem(dir: &Path, why: String) -> ServerError {
    ServerError::DataDir {
        path: dir.to_owned(),
        why,
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ServerError + '_ {
    move |e| ServerError::DataDir {
        path: PathBuf::from(path),
        why: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
