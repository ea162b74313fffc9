//! Uploaded artifacts that no version uses (uploaded and never deployed, or left behind by a
//! failed deploy) are deleted once older than a grace period, so uploads can't fill the disk.

use std::collections::HashSet;
use std::time::Duration;

use crate::{Error, Registry};

impl Registry {
    /// Deletes the stored artifacts no version uses that were stored more than `grace` ago
    /// (a re-upload renews it), with their compiled code. Runs under the registry's lock, so
    /// no deploy can start using one meanwhile. Returns how many went.
    ///
    /// # Errors
    /// [`Error`] if the stores can't be read.
    pub async fn collect_unused_artifacts(&self, grace: Duration) -> Result<usize, Error> {
        let _deploying = self.deployed.lock().await;
        let used: HashSet<String> = self
            .stores
            .metadata
            .referenced_artifacts()
            .await?
            .into_iter()
            .collect();
        let cutoff = updraft_store::now_ms()
            .saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        let unused: Vec<String> = self
            .stores
            .artifacts
            .list()
            .await?
            .into_iter()
            .filter(|(digest, stored_ms)| *stored_ms < cutoff && !used.contains(digest))
            .map(|(digest, _)| digest)
            .collect();
        if !unused.is_empty() {
            tracing::info!(
                count = unused.len(),
                "deleting artifacts no version uses, stored more than {grace:?} ago"
            );
            self.forget(&unused).await;
        }
        Ok(unused.len())
    }
}
