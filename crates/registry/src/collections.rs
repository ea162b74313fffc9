//! An app's document collections (`[[collections]]`), applied at deploy by the service that
//! owns them: checked before anything changes (a rule that does not compile fails the deploy
//! with 400 `invalid_manifest`), applied before the app's functions are published.

use updraft_dispatch::BoxFuture;
use updraft_manifest::Collection;

/// Where collections go (the document service, wired by the server).
pub trait CollectionSink: Send + Sync + 'static {
    /// Checks `collections` (their rules compile).
    ///
    /// # Errors
    /// The first problem, naming the collection and rule.
    fn check(&self, collections: &[Collection]) -> Result<(), String>;

    /// Creates or updates `project`'s collections as declared.
    ///
    /// # Errors
    /// A message naming what failed.
    fn apply<'a>(
        &'a self,
        project: &'a str,
        collections: &'a [Collection],
    ) -> BoxFuture<'a, Result<(), String>>;
}
