//! The document database's change log as the source of `[[functions.db]]` feeds.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{broadcast, watch};
use updraft_store::DocStore;
use updraft_triggers::{Change, ChangeSource};

/// Reads a [`DocStore`]'s change log for trigger feeds.
pub(crate) struct DocChanges {
    store: Arc<dyn DocStore>,
    latest: watch::Receiver<u64>,
}

impl DocChanges {
    /// Follows `store`'s commits (a task turns them into the latest position).
    pub(crate) fn new(store: Arc<dyn DocStore>) -> Arc<Self> {
        let mut commits = store.doc_subscribe();
        let (tx, latest) = watch::channel(0);
        tokio::spawn(async move {
            loop {
                match commits.recv().await {
                    Ok(c) => {
                        tx.send_replace(c.revision);
                    }
                    // Missed some: the feeds read the log anyway; tell them something moved.
                    Err(broadcast::error::RecvError::Lagged(_)) => tx.send_modify(|_| {}),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Arc::new(Self { store, latest })
    }
}

#[async_trait::async_trait]
impl ChangeSource for DocChanges {
    async fn position(&self) -> Result<u64, String> {
        self.store.doc_position().await.map_err(|e| e.to_string())
    }

    async fn changes(
        &self,
        project: &str,
        collection: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, String> {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
        let changes = self
            .store
            .doc_changes(project, collection, after, limit)
            .await
            .map_err(|e| e.to_string())?;
        Ok(changes
            .into_iter()
            .map(|c| Change {
                position: c.revision,
                op: c.op.as_str().to_owned(),
                id: c.id,
                at: c.at,
                after: parse(c.after),
                before: parse(c.before),
            })
            .collect())
    }

    fn watch(&self) -> watch::Receiver<u64> {
        self.latest.clone()
    }
}
