//! Bundles: a process function's code as one zip file, the artifact `updraft deploy` uploads
//! (content-addressed like a component, so an unchanged function uploads nothing).
//!
//! [`pack`] makes the same bytes from the same files (sorted names, a fixed timestamp, only
//! the executable bit of each file's mode kept), so the digest changes only when the code
//! does. [`unpack`] is the server's side: every entry must stay inside the destination (no
//! `..`, no absolute paths, no symlinks), within [`Limits`], and the tree appears at once (it
//! is unpacked beside it, then renamed) and read-only.

use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// The first bytes of every zip file (a local file header).
pub const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// Whether `bytes` look like a bundle (a zip file) rather than a WebAssembly component.
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.starts_with(ZIP_MAGIC)
}

/// Why a bundle cannot be made or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing files failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The bytes are not a usable zip file, or an entry is refused.
    #[error("{0}")]
    Invalid(String),
}

impl BundleError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

/// How large an unpacked bundle may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of all files together, unpacked (Lambda: 250 MB).
    pub max_bytes: u64,
    /// Files and directories.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 250 << 20,
            max_entries: 20_000,
        }
    }
}

/// Names left out of a bundle wherever they are: version control, Updraft's own build
/// directory and Python's bytecode caches.
const SKIPPED: [&str; 4] = [".git", ".updraft", "__pycache__", ".aws-sam"];

/// Zips the files under each `(prefix, dir)` into one bundle, `dir`'s files at `prefix/` (the
/// root for an empty prefix). Symlinks are followed; the names in `SKIPPED` and, at the root
/// of the first source, `updraft.toml` are left out.
///
/// # Errors
/// A file that cannot be read.
pub fn pack(sources: &[(String, PathBuf)]) -> Result<Vec<u8>, BundleError> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for (i, (prefix, dir)) in sources.iter().enumerate() {
        collect(dir, prefix, &mut files, i == 0)?;
    }
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, path) in files {
        let meta =
            fs::metadata(&path).map_err(BundleError::io(format!("reading {}", path.display())))?;
        let executable = executable(&meta);
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(DateTime::default())
            .unix_permissions(if executable { 0o755 } else { 0o644 });
        let bytes =
            fs::read(&path).map_err(BundleError::io(format!("reading {}", path.display())))?;
        zip.start_file(name.as_str(), options)
            .map_err(|e| BundleError::Invalid(format!("zipping {name}: {e}")))?;
        zip.write_all(&bytes)
            .map_err(BundleError::io(format!("zipping {name}")))?;
    }
    let out = zip
        .finish()
        .map_err(|e| BundleError::Invalid(format!("finishing the zip: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(unix)]
fn executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn executable(_: &fs::Metadata) -> bool {
    false
}

fn collect(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, PathBuf)>,
    root_of_app: bool,
) -> Result<(), BundleError> {
    let entries =
        fs::read_dir(dir).map_err(BundleError::io(format!("reading {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(BundleError::io(format!("reading {}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if SKIPPED.contains(&name.as_str())
            || (root_of_app && prefix.is_empty() && name == "updraft.toml")
        {
            continue;
        }
        let path = entry.path();
        let full = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let meta =
            fs::metadata(&path).map_err(BundleError::io(format!("reading {}", path.display())))?;
        if meta.is_dir() {
            collect(&path, &full, out, false)?;
        } else if meta.is_file() {
            out.push((full, path));
        }
    }
    Ok(())
}

/// What [`unpack`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// Files written.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Unpacks the bundle `bytes` into `dest` (which must not exist): checked entry by entry,
/// written beside `dest` and renamed into place, files and directories made read-only.
///
/// # Errors
/// [`BundleError::Invalid`] for bytes that are not a zip file, an entry that would land
/// outside `dest`, a symlink, or a bundle past `limits`; I/O errors.
pub fn unpack(bytes: &[u8], dest: &Path, limits: Limits) -> Result<Unpacked, BundleError> {
    let mut zip = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| BundleError::Invalid(format!("the bundle is not a valid zip file: {e}")))?;
    if zip.len() > limits.max_entries {
        return Err(BundleError::Invalid(format!(
            "the bundle has {} entries; at most {} are allowed",
            zip.len(),
            limits.max_entries
        )));
    }
    let parent = dest
        .parent()
        .ok_or_else(|| BundleError::Invalid("no directory to unpack into".into()))?;
    fs::create_dir_all(parent)
        .map_err(BundleError::io(format!("creating {}", parent.display())))?;
    let staging = parent.join(format!(
        ".unpacking-{}-{}",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        rand::random::<u32>()
    ));
    let result = unpack_into(&mut zip, &staging, limits).and_then(|done| {
        seal(&staging)?;
        match fs::rename(&staging, dest) {
            Ok(()) => Ok(done),
            // Unpacked meanwhile by another caller: theirs is the same bytes.
            Err(_) if dest.is_dir() => {
                remove_tree(&staging);
                Ok(done)
            }
            Err(e) => Err(BundleError::io(format!(
                "moving the bundle into {}",
                dest.display()
            ))(e)),
        }
    });
    if result.is_err() {
        remove_tree(&staging);
    }
    result
}

fn unpack_into(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    staging: &Path,
    limits: Limits,
) -> Result<Unpacked, BundleError> {
    fs::create_dir_all(staging)
        .map_err(BundleError::io(format!("creating {}", staging.display())))?;
    let mut done = Unpacked { files: 0, bytes: 0 };
    for i in 0..zip.len() {
        let mut file = zip
            .by_index(i)
            .map_err(|e| BundleError::Invalid(format!("entry {i} of the bundle: {e}")))?;
        let shown = file
            .name()
            .map_or_else(|_| format!("#{i}"), |n| n.into_owned());
        let absolute =
            shown.starts_with(['/', '\\']) || shown.split(['/', '\\']).any(|s| s == "..");
        let Some(relative) = file.enclosed_name().filter(|_| !absolute) else {
            return Err(BundleError::Invalid(format!(
                "entry `{shown}` would be written outside the bundle's directory"
            )));
        };
        if file.is_symlink() {
            return Err(BundleError::Invalid(format!(
                "entry `{shown}` is a symlink; bundles hold files and directories only"
            )));
        }
        let path = staging.join(&relative);
        if file.is_dir() {
            fs::create_dir_all(&path).map_err(BundleError::io(format!("creating {shown}")))?;
            continue;
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(BundleError::io(format!("creating {shown}")))?;
        }
        let mut out =
            fs::File::create(&path).map_err(BundleError::io(format!("writing {shown}")))?;
        // Count what is actually inflated, not what the header claims.
        let budget = limits.max_bytes.saturating_sub(done.bytes);
        let copied = std::io::copy(&mut (&mut file).take(budget + 1), &mut out)
            .map_err(BundleError::io(format!("unpacking {shown}")))?;
        if copied > budget {
            return Err(BundleError::Invalid(format!(
                "the bundle unpacks to more than {} MiB",
                limits.max_bytes >> 20
            )));
        }
        done.bytes += copied;
        done.files += 1;
        set_mode(&path, file.unix_mode().is_some_and(|m| m & 0o111 != 0))?;
    }
    Ok(done)
}

#[cfg(unix)]
fn set_mode(path: &Path, executable: bool) -> Result<(), BundleError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o555 } else { 0o444 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(BundleError::io(format!(
        "setting the mode of {}",
        path.display()
    )))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: bool) -> Result<(), BundleError> {
    Ok(())
}

/// Makes every directory under `root` read-only (files already are).
fn seal(root: &Path) -> Result<(), BundleError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let entries =
            fs::read_dir(root).map_err(BundleError::io(format!("reading {}", root.display())))?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                seal(&entry.path())?;
            }
        }
        fs::set_permissions(root, fs::Permissions::from_mode(0o555))
            .map_err(BundleError::io(format!("sealing {}", root.display())))?;
    }
    Ok(())
}

/// Removes a (maybe sealed) tree, best effort.
pub fn remove_tree(root: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fn open(p: &Path) {
            let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o755));
            if let Ok(entries) = fs::read_dir(p) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        open(&e.path());
                    }
                }
            }
        }
        open(root);
    }
    let _ = fs::remove_dir_all(root);
}

#[cfg(test)]
mod tests;
