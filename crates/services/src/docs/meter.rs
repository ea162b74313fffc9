//! Metering of the document API: documents read and written, per project and function (the
//! function whose credential called; `""` for keys, users and anonymous callers), taken by
//! the server every few seconds into the usage sums.

use std::collections::HashMap;
use std::sync::Mutex;

use updraft_store::{DocOutcome, DocRecord, DocWrite};

use super::{DocCaller, DocError, DocService, Who};

/// Counts since they were last taken.
#[derive(Default)]
pub(super) struct Meter(Mutex<HashMap<(String, String), (u64, u64)>>);

/// Documents read and written by one project's function since the last take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocCounts {
    /// The project.
    pub project: String,
    /// The function (`""`: keys, users, anonymous callers).
    pub function: String,
    /// Documents read.
    pub reads: u64,
    /// Documents written or deleted.
    pub writes: u64,
}

impl Meter {
    pub(super) fn add(&self, caller: &DocCaller, reads: u64, writes: u64) {
        let function = match &caller.who {
            Who::Function { name, .. } => name.clone(),
            _ => String::new(),
        };
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = all.entry((caller.project.clone(), function)).or_default();
        e.0 += reads;
        e.1 += writes;
    }
}

impl DocService {
    /// Documents read and written since the last call (the counters start again from zero).
    pub fn take_usage(&self) -> Vec<DocCounts> {
        let mut all = self
            .meter
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<DocCounts> = all
            .drain()
            .map(|((project, function), (reads, writes))| DocCounts {
                project,
                function,
                reads,
                writes,
            })
            .collect();
        out.sort_by(|a, b| (&a.project, &a.function).cmp(&(&b.project, &b.function)));
        out
    }

    /// Reads document `id` for `caller`, counted.
    pub(super) async fn read_one(
        &self,
        caller: &DocCaller,
        coll: &str,
        id: &str,
    ) -> Result<Option<DocRecord>, DocError> {
        let found = self.store.doc_get(&caller.project, coll, id).await?;
        self.meter.add(caller, 1, 0);
        Ok(found)
    }

    /// Applies `write` for `caller` within the project's quota, counted when it wrote.
    pub(super) async fn write(
        &self,
        caller: &DocCaller,
        collection: &str,
        write: DocWrite,
    ) -> Result<DocOutcome, DocError> {
        let out = self
            .store
            .doc_write(
                &caller.project,
                collection,
                write,
                Some(self.config.max_project_bytes),
                updraft_store::now_ms(),
            )
            .await?;
        if !matches!(out, DocOutcome::ConditionFailed { .. }) {
            self.meter.add(caller, 0, 1);
        }
        Ok(out)
    }
}
