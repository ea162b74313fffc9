//! JSON document collections for apps: declared in the manifest (`[[collections]]`, with the
//! fields queries may use and CEL access rules per operation), stored in the [`DocStore`], and
//! served over HTTP at `/_updraft/db/v1` ([`router`]).
//!
//! Who may do what: keys of the project (a viewer reads, a deployer writes) and the admin key
//! pass every rule; end users (a verified access token) and anonymous callers may do an
//! operation only when the collection's rule for it is `true` for the document. A query is
//! checked against every document it returns: one the `list` rule denies refuses the whole
//! query (403), so a rule is never turned into a silent filter.

mod changes;
mod error;
mod http;
mod import;
mod json;
mod meter;
mod query;
mod rules;
#[cfg(test)]
mod tests;

pub use changes::ChangeEvent;
pub use error::DocError;
pub use http::router;
pub use import::MAX_IMPORT_LINES;
pub use meter::DocCounts;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use updraft_manifest::Collection;
use updraft_store::{Condition, DocOp, DocOutcome, DocQuery, DocStore, DocWrite};

use json::{data, merge, new_id, view};
use rules::Rules;

/// Limits of the document service (`[documents]` in the server's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocConfig {
    /// Largest document, in bytes of its JSON.
    pub max_document_bytes: usize,
    /// Documents in a page when the query names no `limit`.
    pub page: usize,
    /// Most documents in one page.
    pub max_page: usize,
    /// Bytes one project may store (key-value data and documents together).
    pub max_project_bytes: u64,
    /// How long the change log keeps a change (how far back a subscriber can resume).
    pub changes_max_age: std::time::Duration,
    /// Change streams one project may have open at once.
    pub max_streams: usize,
    /// Change streams one end user may have open at once (so one account can't take the
    /// project's all).
    pub max_streams_per_user: usize,
}

impl Default for DocConfig {
    fn default() -> Self {
        Self {
            max_document_bytes: 1 << 20,
            page: 100,
            max_page: 1000,
            max_project_bytes: 1 << 30,
            changes_max_age: std::time::Duration::from_secs(7 * 86_400),
            max_streams: 10_000,
            max_streams_per_user: 100,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Who {
    /// A key of the project or the admin key: rules do not apply.
    Key {
        /// Whether it may write (a deployer or better).
        write: bool,
    },
    /// A function, with the credential the platform gave it: reads and writes the collections
    /// it is granted, rules not applying; nothing else.
    Function {
        /// The function.
        name: String,
        /// The collections its manifest grants.
        collections: Vec<String>,
    },
    /// A signed-in end user: the verified access token's claims, with `uid` added.
    User(Value),
    /// No credentials.
    Anonymous,
}

/// The caller of a request: set by the mount.
#[derive(Debug, Clone)]
pub struct DocCaller {
    /// The project (from the host).
    pub project: String,
    /// Who.
    pub who: Who,
}

impl DocCaller {
    /// The `auth` a rule sees (`None` for keys, which rules do not apply to).
    fn auth(&self) -> Option<Value> {
        match &self.who {
            Who::Key { .. } | Who::Function { .. } => None,
            Who::User(claims) => Some(claims.clone()),
            Who::Anonymous => Some(Value::Null),
        }
    }
}

/// A collection as the service holds it.
#[derive(Debug)]
struct Loaded {
    spec: Collection,
    rules: Rules,
}

/// The document service. Share it behind an `Arc`.
pub struct DocService {
    store: Arc<dyn DocStore>,
    config: DocConfig,
    loaded: RwLock<HashMap<(String, String), Arc<Loaded>>>,
    /// Documents read and written, until taken.
    meter: meter::Meter,
    /// Set when the server stops: change streams end.
    closing: tokio::sync::watch::Sender<bool>,
    /// Open change streams per project.
    streams: std::sync::Mutex<HashMap<String, usize>>,
}

/// Tries of a read-check-write that lost a race with another writer.
const RETRIES: usize = 5;

impl DocService {
    /// The service over `store` with `config`'s limits.
    pub fn new(store: Arc<dyn DocStore>, config: DocConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            config,
            loaded: RwLock::default(),
            meter: meter::Meter::default(),
            closing: tokio::sync::watch::Sender::new(false),
            streams: std::sync::Mutex::default(),
        })
    }

    /// Deletes change-log entries past `changes_max_age`; returns how many.
    ///
    /// # Errors
    /// [`DocError::Storage`].
    pub async fn trim_changes(&self) -> Result<u64, DocError> {
        let age = i64::try_from(self.config.changes_max_age.as_millis()).unwrap_or(i64::MAX);
        Ok(self
            .store
            .doc_trim_changes(updraft_store::now_ms().saturating_sub(age))
            .await?)
    }

    /// Ends every change stream (the server is stopping).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// The limits.
    pub fn config(&self) -> &DocConfig {
        &self.config
    }

    /// Checks an app's collections before its deploy: every rule compiles.
    ///
    /// # Errors
    /// The first problem, naming the collection and rule.
    pub fn check(collections: &[Collection]) -> Result<(), String> {
        for c in collections {
            Rules::compile(c)?;
        }
        Ok(())
    }

    /// Creates or updates the project's collections as an app declares them.
    ///
    /// # Errors
    /// A message naming what failed.
    pub async fn apply(&self, project: &str, collections: &[Collection]) -> Result<(), String> {
        for c in collections {
            let rules = Rules::compile(c)?;
            let spec = serde_json::to_string(c).map_err(|e| e.to_string())?;
            // Composites go to the store as `a,b` (a comma is never in a field path).
            let indexes: Vec<String> = c
                .indexes
                .iter()
                .cloned()
                .chain(c.composite_indexes.iter().map(|f| f.join(",")))
                .collect();
            self.store
                .doc_collection_set(project, &c.name, &spec, &indexes)
                .await
                .map_err(|e| format!("collection `{}`: {e}", c.name))?;
            let loaded = Arc::new(Loaded {
                spec: c.clone(),
                rules,
            });
            self.loaded
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert((project.to_owned(), c.name.clone()), loaded);
        }
        Ok(())
    }

    /// Deletes a project's collections and documents.
    ///
    /// # Errors
    /// [`DocError::Storage`].
    pub async fn delete_project(&self, project: &str) -> Result<(), DocError> {
        self.store.doc_delete_project(project).await?;
        self.loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(p, _), _| p != project);
        Ok(())
    }

    /// Forgets the collections loaded so far (after their store changed under the service: a
    /// restore); they are loaded again on next use.
    pub fn reload(&self) {
        self.loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The collection `name` of the caller's project, if the caller may use it at all (a
    /// function only its granted ones: checked before the collection is looked up, so it
    /// can't probe which exist).
    async fn collection_for(
        &self,
        caller: &DocCaller,
        name: &str,
    ) -> Result<Arc<Loaded>, DocError> {
        if let Who::Function {
            name: f,
            collections,
        } = &caller.who
            && !collections.iter().any(|c| c == name)
        {
            return Err(DocError::Denied(format!(
                "function `{f}` is not granted collection `{name}` (add it to `collections` in \
                 the function's manifest entry)"
            )));
        }
        self.collection(&caller.project, name).await
    }

    /// The collection, loaded from the store on first use.
    async fn collection(&self, project: &str, name: &str) -> Result<Arc<Loaded>, DocError> {
        let k = (project.to_owned(), name.to_owned());
        if let Some(l) = self
            .loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&k)
        {
            return Ok(l.clone());
        }
        let stored = self.store.doc_collections(project).await?;
        let Some((_, spec)) = stored.into_iter().find(|(n, _)| n == name) else {
            return Err(DocError::NoCollection(name.to_owned()));
        };
        let spec: Collection = serde_json::from_str(&spec)
            .map_err(|e| DocError::Storage(format!("collection `{name}`: {e}")))?;
        let rules = Rules::compile(&spec).map_err(DocError::Storage)?;
        let loaded = Arc::new(Loaded { spec, rules });
        self.loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(k, loaded.clone());
        Ok(loaded)
    }

    /// The collections of the caller's project, with their indexes and which operations
    /// have rules (keys only).
    ///
    /// # Errors
    /// [`DocError`].
    pub async fn collections(&self, caller: &DocCaller) -> Result<Value, DocError> {
        if !matches!(caller.who, Who::Key { .. }) {
            return Err(DocError::Denied(
                "listing collections needs a key of the project".into(),
            ));
        }
        let mut out = Vec::new();
        for (name, spec) in self.store.doc_collections(&caller.project).await? {
            let spec: Value = serde_json::from_str(&spec).unwrap_or(Value::Null);
            out.push(json!({"name": name, "indexes": spec["indexes"], "rules": spec["rules"]}));
        }
        Ok(json!({ "collections": out }))
    }

    /// Denies unless the caller may do `op` to document `id` (as it is, `doc`; as it would
    /// be, `new_doc`).
    fn allow(
        caller: &DocCaller,
        c: &Loaded,
        op: &str,
        id: &str,
        doc: Option<&Value>,
        new_doc: Option<&Value>,
    ) -> Result<(), DocError> {
        let write = !matches!(op, "get" | "list");
        match (&caller.who, caller.auth()) {
            (Who::Key { write: false }, _) if write => Err(DocError::Denied(
                "this key may only read; writes need a deployer key or better".into(),
            )),
            (Who::Key { .. } | Who::Function { .. }, _) => Ok(()),
            (_, Some(auth)) if c.rules.allows(op, &auth, id, doc, new_doc) => Ok(()),
            _ if !c.rules.has(op) => Err(DocError::Denied(format!(
                "collection `{}` has no `{op}` rule, so only keys of the project may {op}",
                c.spec.name
            ))),
            _ => Err(DocError::Denied(format!(
                "the `{op}` rule of collection `{}` does not allow this",
                c.spec.name
            ))),
        }
    }

    fn check_size(&self, body: &str) -> Result<(), DocError> {
        if body.len() > self.config.max_document_bytes {
            return Err(DocError::TooLarge(format!(
                "the document is {} bytes of JSON; documents may have at most {} \
                 (`[documents] max_document_bytes`)",
                body.len(),
                self.config.max_document_bytes
            )));
        }
        Ok(())
    }

    /// Document `id`.
    ///
    /// # Errors
    /// [`DocError`].
    pub async fn get(&self, caller: &DocCaller, coll: &str, id: &str) -> Result<Value, DocError> {
        let c = self.collection_for(caller, coll).await?;
        let found = self.read_one(caller, coll, id).await?;
        let d = found.as_ref().map(data);
        // A missing document is checked too: a user the rule would deny learns nothing.
        Self::allow(caller, &c, "get", id, d.as_ref(), None)?;
        found
            .map(|r| view(&r))
            .ok_or_else(|| DocError::NoDocument(id.to_owned()))
    }

    /// Creates a document with a new id.
    ///
    /// # Errors
    /// [`DocError`].
    pub async fn create(
        &self,
        caller: &DocCaller,
        coll: &str,
        body: Value,
    ) -> Result<Value, DocError> {
        let (out, _) = self
            .put(caller, coll, &new_id(), body, Condition::Absent)
            .await?;
        Ok(out)
    }

    /// Creates or replaces document `id` (as `condition` allows); returns it and whether it
    /// was created.
    ///
    /// # Errors
    /// [`DocError`].
    pub async fn put(
        &self,
        caller: &DocCaller,
        coll: &str,
        id: &str,
        body: Value,
        condition: Condition,
    ) -> Result<(Value, bool), DocError> {
        self.update(caller, coll, id, condition, false, |_| Ok(body.clone()))
            .await
    }

    /// Merges `patch` (RFC 7396) into document `id`.
    ///
    /// # Errors
    /// [`DocError`]; [`DocError::NoDocument`] if it does not exist.
    pub async fn patch(
        &self,
        caller: &DocCaller,
        coll: &str,
        id: &str,
        patch: Value,
        condition: Condition,
    ) -> Result<Value, DocError> {
        let (out, _) = self
            .update(caller, coll, id, condition, true, |old| {
                let mut doc = old.cloned().unwrap_or(Value::Null);
                merge(&mut doc, &patch);
                Ok(doc)
            })
            .await?;
        Ok(out)
    }

    /// Read, check the rule, write at the revision read (again if another writer got in
    /// between, unless the caller named the revision).
    async fn update(
        &self,
        caller: &DocCaller,
        coll: &str,
        id: &str,
        condition: Condition,
        must_exist: bool,
        next: impl Fn(Option<&Value>) -> Result<Value, DocError>,
    ) -> Result<(Value, bool), DocError> {
        query::check_id(id)?;
        let c = self.collection_for(caller, coll).await?;
        for _ in 0..RETRIES {
            let current = self.read_one(caller, coll, id).await?;
            let old = current.as_ref().map(data);
            if must_exist && current.is_none() {
                Self::allow(caller, &c, "update", id, None, None)?;
                return Err(DocError::NoDocument(id.to_owned()));
            }
            let new = next(old.as_ref())?;
            if !new.is_object() {
                return Err(DocError::Invalid("a document must be a JSON object".into()));
            }
            let op = if current.is_some() {
                "update"
            } else {
                "create"
            };
            Self::allow(caller, &c, op, id, old.as_ref(), Some(&new))?;
            let body = new.to_string();
            self.check_size(&body)?;
            let read_at = match current.as_ref() {
                Some(r) => Condition::Revision(r.revision),
                None => Condition::Absent,
            };
            // The caller's condition, checked against what was read; then the write is
            // conditional on exactly that.
            let holds = match condition {
                Condition::Any => true,
                c => c == read_at,
            };
            if !holds {
                return Err(DocError::Precondition(match current {
                    Some(r) => format!("document `{id}` is at revision {}", r.revision),
                    None => format!("document `{id}` does not exist"),
                }));
            }
            let write = DocWrite {
                id: id.to_owned(),
                op: DocOp::Put(body),
                condition: read_at,
            };
            match self.write(caller, coll, write).await? {
                DocOutcome::Written { after, before } => {
                    return Ok((view(&after), before.is_none()));
                }
                DocOutcome::ConditionFailed { .. } if condition == Condition::Any => continue,
                _ => {
                    return Err(DocError::Precondition(format!(
                        "document `{id}` changed while it was written"
                    )));
                }
            }
        }
        Err(DocError::Precondition(format!(
            "document `{id}` kept changing; try again"
        )))
    }

    /// Deletes document `id`.
    ///
    /// # Errors
    /// [`DocError`].
    pub async fn delete(
        &self,
        caller: &DocCaller,
        coll: &str,
        id: &str,
        condition: Condition,
    ) -> Result<(), DocError> {
        let c = self.collection_for(caller, coll).await?;
        let current = self.read_one(caller, coll, id).await?;
        let old = current.as_ref().map(data);
        Self::allow(caller, &c, "delete", id, old.as_ref(), None)?;
        let read_at = match &current {
            Some(r) => Condition::Revision(r.revision),
            None => return Ok(()),
        };
        if condition != Condition::Any && condition != read_at {
            return Err(DocError::Precondition(format!(
                "document `{id}` is at revision {}",
                current.map_or(0, |r| r.revision)
            )));
        }
        let write = DocWrite {
            id: id.to_owned(),
            op: DocOp::Delete,
            condition: read_at,
        };
        match self.write(caller, coll, write).await? {
            DocOutcome::ConditionFailed { .. } => Err(DocError::Precondition(format!(
                "document `{id}` changed while it was deleted"
            ))),
            _ => Ok(()),
        }
    }

    /// One page of a query: `{"docs": [...], "cursor": ...}`.
    ///
    /// # Errors
    /// [`DocError`]; [`DocError::Denied`] if the `list` rule denies any document of the page.
    pub async fn query(
        &self,
        caller: &DocCaller,
        coll: &str,
        params: &query::Params,
    ) -> Result<Value, DocError> {
        let c = self.collection_for(caller, coll).await?;
        if caller.auth().is_some() && !c.rules.has("list") {
            Self::allow(caller, &c, "list", "", None, None)?;
        }
        let mut q: DocQuery = params.to_query(&c.spec, &self.config)?;
        let limit = q.limit;
        q.limit = limit + 1;
        let mut found = self.store.doc_query(&caller.project, coll, &q).await?;
        self.meter.add(caller, (found.len() as u64).max(1), 0);
        let more = found.len() > limit;
        found.truncate(limit);
        let mut docs = Vec::with_capacity(found.len());
        for r in &found {
            let d = data(r);
            if let Err(e) = Self::allow(caller, &c, "list", &r.id, Some(&d), None) {
                return Err(DocError::Denied(format!(
                    "{e}: the query returns document `{}`; narrow it to what the rule allows \
                     (queries are refused, never silently filtered)",
                    r.id
                )));
            }
            docs.push(view(r));
        }
        let cursor = match (more, found.last()) {
            (true, Some(last)) => Some(query::cursor(&q, &data(last), &last.id)),
            _ => None,
        };
        Ok(json!({ "docs": docs, "cursor": cursor }))
    }
}
