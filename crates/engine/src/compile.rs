//! Validation, compilation and the on-disk compiled-code cache.
//!
//! Invariant: a `<digest>.cwasm` file in the cache directory was written by this process or an
//! earlier one with the same engine configuration (the directory name is a hash of it), by
//! writing a temporary file, syncing it and renaming it into place, and its SHA-256 was recorded
//! beside it (`<digest>.cwasm.sha256`) when it was written. Loading reads the file, checks it
//! against that record and only then deserializes it: a file that was modified, truncated or put
//! there by anything else is discarded and recompiled from the artifact, with a log line. That is
//! what makes [`Component::deserialize`] sound; see the `SAFETY` note there.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::Engine;

/// The export every HTTP function must have, without its version.
const HTTP_HANDLER: &str = "wasi:http/incoming-handler@0.2";

/// The lower-case hex SHA-256 of `bytes`: the content address of an artifact.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why uploaded bytes cannot run as an Updraft function. Every variant's message is written for
/// the developer who uploaded them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    /// The bytes do not start with the WebAssembly magic number.
    #[error("not a WebAssembly binary: it does not start with the `\\0asm` magic bytes")]
    NotWasm,
    /// A core module rather than a component.
    #[error(
        "this is a core WebAssembly module, not a component: build for the wasm32-wasip2 target, \
         or wrap the module with `wasm-tools component new`"
    )]
    CoreModule,
    /// Wasmtime could not validate or compile the component.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component lacks the `wasi:http/incoming-handler` export.
    #[error(
        "the component does not export `wasi:http/incoming-handler` (it exports: {exports}); \
         Updraft runs components in the `wasi:http/proxy` world"
    )]
    NoHttpHandler {
        /// The exports it does have, comma-separated.
        exports: String,
    },
    /// The component imports something Updraft does not provide.
    #[error("the component cannot be linked: {0}")]
    Link(String),
    /// The component imports an interface of a capability the function was not granted.
    #[error(
        "the component imports `{import}`, which this function is not granted ({capability}): \
         {hint}"
    )]
    NotGranted {
        /// The import.
        import: String,
        /// The capability that provides it.
        capability: &'static str,
        /// How to grant it.
        hint: &'static str,
    },
    /// Reading or writing the compiled-code cache failed.
    #[error("compiled-code cache {path}: {source}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A compiled-code file does not match the SHA-256 recorded when it was written.
    #[error(
        "compiled code {} does not match the SHA-256 recorded when it was written \
         (recorded {expected}, found {actual})",
        path.display()
    )]
    Tampered {
        /// The file.
        path: PathBuf,
        /// The recorded SHA-256.
        expected: String,
        /// The file's SHA-256.
        actual: String,
    },
    /// The artifact for a digest could not be read.
    #[error("reading artifact {digest}: {message}")]
    Artifact {
        /// The artifact's digest.
        digest: String,
        /// What failed.
        message: String,
    },
}

impl ComponentError {
    /// Whether the error is the uploader's fault (a 4xx) rather than the server's (a 5xx).
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            Self::Cache { .. } | Self::Artifact { .. } | Self::Tampered { .. }
        )
    }
}

/// A validated, compiled component, ready for [`Engine::prepare`].
#[derive(Clone)]
pub struct CompiledComponent {
    pub(crate) component: Component,
    /// Content address of the artifact it was compiled from.
    pub digest: String,
    /// Whether this call compiled it (false: loaded from the cache).
    pub compiled_now: bool,
    /// Milliseconds spent compiling or loading.
    pub elapsed_ms: u64,
}

/// Compilation counters since the engine started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Components compiled by Cranelift.
    pub compilations: u64,
    /// Components loaded from the compiled-code cache without compiling.
    pub cache_loads: u64,
}

#[derive(Default)]
pub(crate) struct Stats {
    compilations: AtomicU64,
    cache_loads: AtomicU64,
}

/// A short hash of everything in the engine configuration that affects compiled code.
pub(crate) fn engine_hash(engine: &wasmtime::Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

impl Engine {
    /// Compilation counters since this engine started.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            compilations: self.stats.compilations.load(Ordering::Relaxed),
            cache_loads: self.stats.cache_loads.load(Ordering::Relaxed),
        }
    }

    fn cache_path(&self, digest: &str) -> PathBuf {
        self.cache_dir.join(format!("{digest}.cwasm"))
    }

    /// Where the SHA-256 of `digest`'s compiled code is recorded.
    fn record_path(&self, digest: &str) -> PathBuf {
        self.cache_dir.join(format!("{digest}.cwasm.sha256"))
    }

    /// Whether compiled code for `digest` is in the cache.
    pub fn is_cached(&self, digest: &str) -> bool {
        self.cache_path(digest).is_file()
    }

    /// Deletes the compiled code for `digest` (its artifact is gone). Components already loaded
    /// from it keep running; a missing entry is not an error.
    ///
    /// # Errors
    /// [`ComponentError::Cache`] if the file exists and cannot be removed.
    pub fn forget(&self, digest: &str) -> Result<(), ComponentError> {
        for path in [self.cache_path(digest), self.record_path(digest)] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ComponentError::Cache { path, source: e });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Validates `bytes` as an Updraft function component, compiles it and stores the compiled
    /// code in the cache under `digest`. CPU-heavy (seconds for large components): call it from
    /// a blocking thread, never on the request path.
    ///
    /// # Errors
    /// [`ComponentError`] naming what is wrong with the bytes, or a cache I/O error.
    pub fn compile(&self, digest: &str, bytes: &[u8]) -> Result<CompiledComponent, ComponentError> {
        let start = Instant::now();
        check_kind(bytes)?;
        let compiled = self
            .wasmtime
            .precompile_component(bytes)
            .map_err(|e| ComponentError::Invalid(format!("{e:#}")))?;
        let path = self.cache_path(digest);
        let record = self.record_path(digest);
        // The record first: a crash between the two leaves a record without code (compiled
        // again), never code without its record.
        write_atomically(&record, hex::encode(Sha256::digest(&compiled)).as_bytes())
            .and_then(|()| write_atomically(&path, &compiled))
            .map_err(|source| ComponentError::Cache {
                path: path.clone(),
                source,
            })?;
        let component = self.deserialize(&compiled)?;
        if let Err(e) = self.check_component(&component) {
            let _ = self.forget(digest);
            return Err(e);
        }
        self.stats.compilations.fetch_add(1, Ordering::Relaxed);
        Ok(CompiledComponent {
            component,
            digest: digest.to_owned(),
            compiled_now: true,
            elapsed_ms: elapsed_ms(start),
        })
    }

    /// Loads the component for `digest` from the compiled-code cache, compiling it from the
    /// artifact's bytes (`read`) only when the cache has no entry (e.g. after an engine upgrade).
    ///
    /// # Errors
    /// [`ComponentError`] if neither the cache nor the artifact yields a valid component.
    pub fn load(
        &self,
        digest: &str,
        read: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<CompiledComponent, ComponentError> {
        let start = Instant::now();
        let path = self.cache_path(digest);
        if path.is_file() {
            match self
                .read_cached(digest)
                .and_then(|code| self.deserialize(&code))
            {
                Ok(component) => {
                    self.stats.cache_loads.fetch_add(1, Ordering::Relaxed);
                    return Ok(CompiledComponent {
                        component,
                        digest: digest.to_owned(),
                        compiled_now: false,
                        elapsed_ms: elapsed_ms(start),
                    });
                }
                Err(e) => {
                    tracing::warn!(
                        digest,
                        error = %e,
                        "discarding compiled code that failed its check; compiling again from \
                         the artifact"
                    );
                    let _ = self.forget(digest);
                }
            }
        }
        let bytes = read().map_err(|message| ComponentError::Artifact {
            digest: digest.to_owned(),
            message,
        })?;
        self.compile(digest, &bytes)
    }

    /// The compiled code cached for `digest`, if it matches the SHA-256 recorded when it was
    /// written.
    fn read_cached(&self, digest: &str) -> Result<Vec<u8>, ComponentError> {
        let (path, record) = (self.cache_path(digest), self.record_path(digest));
        let cache_err = |path: &Path| {
            let path = path.to_owned();
            move |source| ComponentError::Cache { path, source }
        };
        let expected = std::fs::read_to_string(&record).map_err(cache_err(&record))?;
        let code = std::fs::read(&path).map_err(cache_err(&path))?;
        let actual = hex::encode(Sha256::digest(&code));
        if actual != expected.trim() {
            return Err(ComponentError::Tampered {
                path,
                expected: expected.trim().to_owned(),
                actual,
            });
        }
        Ok(code)
    }

    fn deserialize(&self, code: &[u8]) -> Result<Component, ComponentError> {
        // SAFETY: `Component::deserialize` trusts that the bytes are code that Wasmtime
        // produced for a compatible engine. They are either what `precompile_component` just
        // returned, or a cache file whose SHA-256 matches the one recorded when this engine
        // configuration (the directory's name) wrote it (`read_cached`).
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.wasmtime, code) };
        component.map_err(|e| ComponentError::Invalid(format!("{e:#}")))
    }

    /// Checks the export and that the linker satisfies every import.
    fn check_component(&self, component: &Component) -> Result<(), ComponentError> {
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(&self.wasmtime)
            .map(|(name, _)| name.to_owned())
            .collect();
        if !exports.iter().any(|e| e.starts_with(HTTP_HANDLER)) {
            return Err(ComponentError::NoHttpHandler {
                exports: if exports.is_empty() {
                    "nothing".to_owned()
                } else {
                    exports.join(", ")
                },
            });
        }
        let linker = self.linkers.get(crate::capability::Grants::ALL)?;
        let pre = linker.instantiate_pre(component).map_err(|e| {
            // Name the import Updraft lacks, when that is the problem.
            let missing = ty
                .imports(&self.wasmtime)
                .map(|(name, _)| name.to_owned())
                .find(|name| format!("{e:#}").contains(name.as_str()));
            match missing {
                Some(name) => ComponentError::Link(format!(
                    "it imports `{name}`, which Updraft does not provide ({e:#})"
                )),
                None => ComponentError::Link(format!("{e:#}")),
            }
        })?;
        wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre)
            .map_err(|e| ComponentError::Link(format!("{e:#}")))?;
        Ok(())
    }
}

/// Rejects bytes that are not a component before handing them to Cranelift.
fn check_kind(bytes: &[u8]) -> Result<(), ComponentError> {
    use wasmtime::wasmparser::Parser;
    if Parser::is_component(bytes) {
        Ok(())
    } else if Parser::is_core_wasm(bytes) {
        Err(ComponentError::CoreModule)
    } else {
        Err(ComponentError::NotWasm)
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the whole new one:
/// write to a temporary file in the same directory, fsync it, rename it over, fsync the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}
