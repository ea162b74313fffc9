//! The runtimes the registry builds versions with: the wasm engine, and process (Lambda)
//! functions, picked per version by its settings.

use std::sync::Arc;

use updraft_dispatch::{BoxFuture, LoadError, Runtime, RuntimeProvider, Settings};
use updraft_engine::WasmRuntime;
use updraft_process::ProcessRuntimes;

/// Both runtimes behind one [`RuntimeProvider`].
pub(crate) struct Runtimes {
    pub(crate) wasm: Arc<WasmRuntime>,
    pub(crate) process: Arc<ProcessRuntimes>,
}

impl RuntimeProvider for Runtimes {
    fn prepare(&self, digest: &str, settings: Settings) -> Arc<dyn Runtime> {
        if settings.process.is_some() {
            self.process.prepare(digest, settings)
        } else {
            self.wasm.prepare(digest, settings)
        }
    }

    /// An artifact is a bundle or a component: a bundle already unpacked is ready; anything
    /// else is offered to the engine, and what it refuses as not a component is unpacked as a
    /// bundle (its own errors are the engine's if that fails too).
    fn ensure_prepared(&self, digest: &str) -> BoxFuture<'_, Result<(), LoadError>> {
        let digest = digest.to_owned();
        Box::pin(async move {
            if self.process.is_prepared(&digest) {
                return Ok(());
            }
            match self.wasm.ensure_prepared(&digest).await {
                Err(e) if e.user_error => {
                    self.process.ensure_prepared(&digest).await.map_err(|_| e)
                }
                other => other,
            }
        })
    }

    fn forget(&self, digest: &str) {
        self.wasm.forget(digest);
        self.process.forget(digest);
    }
}
