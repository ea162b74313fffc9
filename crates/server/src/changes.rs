//! The database's change logs as the source of `[[functions.db]]` and `[[functions.kv]]`
//! feeds: documents' from the document log, keys' from the log of watched stores.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::watch;
use updraft_store::{DataStore, DocStore, KvStore};
use updraft_triggers::{Change, ChangeSource, Source};

/// Reads a [`DataStore`]'s change logs for trigger feeds.
pub(crate) struct DataChanges {
    store: Arc<DataStore>,
}

impl DataChanges {
    pub(crate) fn new(store: Arc<DataStore>) -> Arc<Self> {
        Arc::new(Self { store })
    }
}

#[async_trait::async_trait]
impl ChangeSource for DataChanges {
    async fn position(&self) -> Result<u64, String> {
        self.store.doc_position().await.map_err(|e| e.to_string())
    }

    async fn follow(&self, project: &str, source: &Source) -> Result<(), String> {
        match source {
            Source::Collection(_) => Ok(()),
            Source::Store(s) => self
                .store
                .kv_watch(project, s)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    async fn changes(
        &self,
        project: &str,
        source: &Source,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, String> {
        match source {
            Source::Collection(collection) => {
                let parse =
                    |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
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
                        body: json!({
                            "collection": collection,
                            "op": c.op.as_str(),
                            "id": c.id,
                            "revision": c.revision,
                            "at": c.at,
                            "data": parse(c.after),
                            "before": parse(c.before),
                        }),
                        id: c.id,
                        at: c.at,
                    })
                    .collect())
            }
            Source::Store(store) => {
                let changes = self
                    .store
                    .kv_changes(project, store, after, limit)
                    .await
                    .map_err(|e| e.to_string())?;
                let b64 = base64::engine::general_purpose::STANDARD;
                Ok(changes
                    .into_iter()
                    .map(|c| {
                        let op = if c.deleted { "deleted" } else { "set" };
                        let mut body = json!({
                            "store": store,
                            "op": op,
                            "key": c.key,
                            "revision": c.revision,
                            "at": c.at,
                        });
                        if !c.deleted {
                            body["size"] = json!(c.size);
                            body["value"] = match &c.value {
                                Some(v) => json!(b64.encode(v)),
                                None => Value::Null,
                            };
                            if c.value.is_none() {
                                body["truncated"] = Value::Bool(true);
                            }
                        }
                        Change {
                            position: c.revision,
                            op: op.to_owned(),
                            id: c.key,
                            at: c.at,
                            body,
                        }
                    })
                    .collect())
            }
        }
    }

    fn watch(&self) -> watch::Receiver<u64> {
        self.store.commits()
    }
}
