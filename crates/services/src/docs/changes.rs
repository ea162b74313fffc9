//! Live changes: a collection's committed writes as a stream of events, replayed from the
//! change log after the subscriber's last event (`Last-Event-ID`) and then followed as they
//! commit, filtered by the subscriber's `where` and, for users, by the `list` rule (a user only
//! receives documents it may read). Every change has a revision, increasing in commit order: a
//! subscriber that resumes after revision `r` receives every later change once, none twice.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use updraft_store::{DocChange, Filter};

use super::query::{Params, matches};
use super::{DocCaller, DocError, DocService, Loaded, Who};

/// Changes read from the log at a time.
const PAGE: usize = 500;

/// One event for the subscriber.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    /// Its id (the change's revision); resume after it with `Last-Event-ID`.
    pub id: u64,
    /// `ready` (first, with the position), `created`, `updated` or `deleted`.
    pub event: &'static str,
    /// JSON.
    pub data: String,
}

impl DocService {
    /// Starts a subscription to collection `coll`: events arrive on the receiver until it is
    /// dropped. `after`: the last revision the subscriber has (`None`: from now on).
    ///
    /// # Errors
    /// [`DocError`]: no such collection, a bad filter, a user without a `list` rule.
    pub async fn changes(
        self: &Arc<Self>,
        caller: DocCaller,
        coll: &str,
        params: &Params,
        after: Option<u64>,
    ) -> Result<mpsc::Receiver<ChangeEvent>, DocError> {
        let c = self.collection_for(&caller, coll).await?;
        if caller.auth().is_some() && !c.rules.has("list") {
            Self::allow(&caller, &c, "list", "", None, None)?;
        }
        let filters = params.to_query(&c.spec, &self.config)?.filters;
        // Subscribe before reading the position: whatever commits after it is announced.
        let live = self.store.doc_subscribe();
        let start = match after {
            Some(a) => a,
            None => self.store.doc_position().await?,
        };
        let slot = self.open_stream(&caller)?;
        let (tx, rx) = mpsc::channel(64);
        let gone = tx.clone();
        let svc = self.clone();
        let coll = coll.to_owned();
        let mut closing = self.closing.subscribe();
        tokio::spawn(async move {
            // Held until the subscription ends: the project's stream count.
            let _slot = slot;
            let sub = Subscription {
                svc,
                caller,
                coll,
                c,
                filters,
                tx,
            };
            tokio::select! {
                () = sub.run(live, start) => {}
                _ = closing.wait_for(|c| *c) => {}
                // The subscriber went away (noticed at once, not at the next change).
                () = gone.closed() => {}
            }
        });
        Ok(rx)
    }
}

/// One open stream of a project (and of its user); dropping it frees the places.
pub(super) struct StreamSlot {
    svc: Arc<DocService>,
    /// The counters it holds a place in: the project's, and the user's if a user opened it.
    counted: Vec<String>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .svc
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in &self.counted {
            if let Some(n) = open.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

impl DocService {
    /// A place for one more stream of the caller's project within `[documents] max_streams`,
    /// and for an end user within `max_streams_per_user`.
    fn open_stream(self: &Arc<Self>, caller: &DocCaller) -> Result<StreamSlot, DocError> {
        let mut open = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let project = caller.project.clone();
        let n = open.get(&project).copied().unwrap_or(0);
        if n >= self.config.max_streams {
            return Err(DocError::TooMany(format!(
                "the project has {n} open change streams, the most it may (`[documents] \
                 max_streams`); close one or retry later"
            )));
        }
        let mut counted = vec![project];
        if let Who::User(claims) = &caller.who {
            let uid = claims["uid"].as_str().unwrap_or_default();
            // NUL can't be in a project name: no user key is ever a project's.
            let key = format!("{}\0user\0{uid}", caller.project);
            let mine = open.get(&key).copied().unwrap_or(0);
            if mine >= self.config.max_streams_per_user {
                return Err(DocError::TooMany(format!(
                    "you have {mine} open change streams, the most one user may (`[documents] \
                     max_streams_per_user`); close one or retry later"
                )));
            }
            counted.push(key);
        }
        for key in &counted {
            *open.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(StreamSlot {
            svc: self.clone(),
            counted,
        })
    }
}

struct Subscription {
    svc: Arc<DocService>,
    caller: DocCaller,
    coll: String,
    c: Arc<Loaded>,
    filters: Vec<Filter>,
    tx: mpsc::Sender<ChangeEvent>,
}

impl Subscription {
    async fn run(self, mut live: broadcast::Receiver<Arc<DocChange>>, mut last: u64) {
        let ready = ChangeEvent {
            id: last,
            event: "ready",
            data: json!({ "position": last }).to_string(),
        };
        if self.tx.send(ready).await.is_err() {
            return;
        }
        loop {
            // What the log has after `last`.
            loop {
                let page = match self
                    .svc
                    .store
                    .doc_changes(&self.caller.project, &self.coll, last, PAGE)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the change log for a subscriber");
                        return;
                    }
                };
                for change in &page {
                    if !self.deliver(change).await {
                        return;
                    }
                    last = change.revision;
                }
                if page.len() < PAGE {
                    break;
                }
            }
            // Then as they commit, until the subscriber falls too far behind (read the log
            // again) or goes away.
            loop {
                match live.recv().await {
                    Ok(change) => {
                        if change.revision <= last
                            || change.project != self.caller.project
                            || change.collection != self.coll
                        {
                            continue;
                        }
                        if !self.deliver(&change).await {
                            return;
                        }
                        last = change.revision;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }

    /// Sends `change` if the subscriber may see it; `false` once the subscriber is gone.
    async fn deliver(&self, change: &DocChange) -> bool {
        let parse = |s: &Option<String>| {
            s.as_deref()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
        };
        let (after, before) = (parse(&change.after), parse(&change.before));
        let Some(shown) = after.as_ref().or(before.as_ref()) else {
            return true;
        };
        if !matches(&self.filters, shown) {
            return true;
        }
        let readable = |doc: &Value| {
            DocService::allow(&self.caller, &self.c, "list", &change.id, Some(doc), None).is_ok()
        };
        if !readable(shown) {
            return true;
        }
        let before = match (&self.caller.who, before) {
            (Who::Key { .. } | Who::Function { .. }, b) => b,
            (_, Some(b)) if readable(&b) => Some(b),
            _ => None,
        };
        let data = json!({
            "op": change.op.as_str(),
            "id": change.id,
            "revision": change.revision,
            "at": change.at,
            "data": after,
            "before": before,
        });
        self.tx
            .send(ChangeEvent {
                id: change.revision,
                event: change.op.as_str(),
                data: data.to_string(),
            })
            .await
            .is_ok()
    }
}
