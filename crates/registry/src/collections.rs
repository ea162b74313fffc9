//! An app's document collections (`[[collections]]`), applied at deploy by the service that
//! owns them: checked before anything changes (a rule that does not compile fails the deploy
//! with 400 `invalid_manifest`), applied before the app's functions are published.
//!
//! A function granted collections (`collections = ["orders"]`) gets, in its environment, the
//! document API's URL at the platform host (`UPDRAFT_DB_URL`) and a credential the sink mints
//! for exactly those collections (`UPDRAFT_DB_TOKEN`), and may call that host.

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

    /// The credential function `function` of `project` uses the document API with: it may
    /// read and write `collections` (and nothing else), rules not applying.
    fn credential(&self, project: &str, function: &str, collections: &[String]) -> String;
}

/// The document API's URL as granted functions reach it.
pub const DB_URL: &str = "http://updraft.internal/_updraft/db/v1";

/// The environment a function granted `collections` gets from `sink` (none without a grant).
pub(crate) fn grant_env(
    sink: Option<&dyn CollectionSink>,
    project: &str,
    function: &str,
    collections: &[String],
) -> Vec<(String, String)> {
    match sink {
        Some(sink) if !collections.is_empty() => vec![
            ("UPDRAFT_DB_URL".to_owned(), DB_URL.to_owned()),
            (
                "UPDRAFT_DB_TOKEN".to_owned(),
                sink.credential(project, function, collections),
            ),
        ],
        _ => Vec::new(),
    }
}
