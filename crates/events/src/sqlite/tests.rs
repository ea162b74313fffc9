//! The event-log conformance suite against the SQLite backend.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::conformance::Subject;
use crate::{EventLog, SqliteLog};

struct Sqlite {
    dir: tempfile::TempDir,
    next: AtomicU32,
}

impl Sqlite {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            next: AtomicU32::new(0),
        }
    }

    fn path(&self, n: u32) -> PathBuf {
        self.dir.path().join(format!("events-{n}.db"))
    }
}

#[async_trait::async_trait]
impl Subject for Sqlite {
    async fn fresh(&self) -> Arc<dyn EventLog> {
        let path = self.path(self.next.fetch_add(1, Ordering::Relaxed));
        Arc::new(SqliteLog::open(&path).unwrap())
    }

    async fn reopen(&self, log: Arc<dyn EventLog>) -> Arc<dyn EventLog> {
        drop(log);
        let path = self.path(self.next.load(Ordering::Relaxed) - 1);
        Arc::new(SqliteLog::open(&path).unwrap())
    }
}

crate::event_log_conformance!(Sqlite::new());

#[tokio::test]
async fn local_wakeups() -> crate::conformance::Outcome {
    crate::conformance::wakeups_reach_registered_waiters(Arc::new(crate::LocalWakeups::default()))
        .await
}
