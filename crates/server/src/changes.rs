//! The database's change logs as the source of `[[functions.db]]`, `[[functions.kv]]` and
//! `[[functions.bucket]]` feeds: documents' from the document log, keys' from the log of
//! watched stores, objects' from the log of watched buckets (each as an AWS S3 event record).

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::watch;
use updraft_services::objects::ObjectService;
use updraft_store::{DataStore, DocStore, KvStore};
use updraft_triggers::{Change, ChangeSource, Source};

/// Reads a [`DataStore`]'s change logs for trigger feeds.
pub(crate) struct DataChanges {
    store: Arc<DataStore>,
    objects: Arc<ObjectService>,
}

impl DataChanges {
    pub(crate) fn new(store: Arc<DataStore>, objects: Arc<ObjectService>) -> Arc<Self> {
        Arc::new(Self { store, objects })
    }

    /// Makes `bucket` (creating it for `project` if it does not exist) log its changes.
    async fn follow_bucket(&self, project: &str, bucket: &str) -> Result<(), String> {
        self.objects
            .claim_bucket(project, bucket)
            .await
            .map_err(|e| e.to_string())?;
        self.objects
            .store()
            .watch_bucket(bucket)
            .await
            .map_err(|e| e.to_string())
    }

    /// A bucket's changes as AWS S3 event records.
    async fn bucket_changes(
        &self,
        project: &str,
        bucket: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, String> {
        // A bucket another project now owns (deleted and made again) is not this feed's.
        if self
            .objects
            .store()
            .bucket(bucket)
            .await
            .map_err(|e| e.to_string())?
            .is_some_and(|b| b.project != project)
        {
            return Ok(Vec::new());
        }
        let changes = self
            .objects
            .store()
            .object_changes(bucket, after, limit)
            .await
            .map_err(|e| e.to_string())?;
        let region = self.objects.region().to_owned();
        Ok(changes
            .into_iter()
            .map(|c| {
                let op = if c.event.starts_with("ObjectRemoved") {
                    "removed"
                } else {
                    "created"
                };
                Change {
                    position: c.revision,
                    op: op.to_owned(),
                    body: s3_record(project, bucket, &region, &c),
                    id: c.key,
                    at: c.at,
                    writer: c.writer,
                }
            })
            .collect())
    }
}

/// An object change as the AWS S3 event notification Lambda handlers read
/// (`Records[0].s3.object.key` form-encoded, as S3 sends it).
fn s3_record(
    project: &str,
    bucket: &str,
    region: &str,
    c: &updraft_store::objects::ObjectChange,
) -> Value {
    let mut object = json!({
        "key": form_encode(&c.key),
        "sequencer": format!("{:016X}", c.revision),
    });
    if c.event.starts_with("ObjectCreated") {
        object["size"] = json!(c.size);
        object["eTag"] = json!(c.etag);
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": updraft_dispatch::rfc3339(c.at),
        "eventName": c.event,
        "userIdentity": {"principalId": c.writer.as_deref().unwrap_or(project)},
        "requestParameters": {"sourceIPAddress": ""},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "updraft",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": project},
                "arn": format!("arn:aws:s3:::{bucket}"),
            },
            "object": object,
        },
    }]})
}

/// `application/x-www-form-urlencoded` encoding, as S3 encodes keys in event records: a
/// space is `+`; every byte but unreserved characters and `/` is percent-encoded.
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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
            Source::Bucket(b) => self.follow_bucket(project, b).await,
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
                        writer: None,
                    })
                    .collect())
            }
            Source::Bucket(bucket) => self.bucket_changes(project, bucket, after, limit).await,
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
                            writer: None,
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
