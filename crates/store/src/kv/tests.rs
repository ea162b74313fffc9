//! The key-value conformance suite against the SQLite backend, and its own details.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::{DataStore, KvStore, prefix_end};
use crate::conformance::KvSubject;

struct Sqlite(tempfile::TempDir);

impl Sqlite {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
}

#[async_trait::async_trait]
impl KvSubject for Sqlite {
    async fn fresh(&self) -> Arc<dyn KvStore> {
        Arc::new(DataStore::open(self.0.path()).unwrap())
    }

    async fn reopen(&self, store: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
        drop(store);
        Arc::new(DataStore::open(self.0.path()).unwrap())
    }
}

mod conformance {
    use super::Sqlite;
    crate::kv_conformance!(Sqlite::new());
}

#[test]
fn prefix_ends_are_the_next_string_past_the_prefix() {
    assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
    assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
    assert_eq!(prefix_end(""), None);
    assert_eq!(prefix_end("\u{10FFFF}"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn write_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let kv = Arc::new(DataStore::open(dir.path()).unwrap());
    kv.kv_create_store("p", "s").await.unwrap();
    for conc in [1usize, 32] {
        let start = std::time::Instant::now();
        let n = 4000 / conc;
        let mut tasks = Vec::new();
        for c in 0..conc {
            let kv = kv.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..n {
                    kv.kv_write(
                        "p",
                        "s",
                        vec![super::KvWrite::put(format!("k{c}-{i}"), vec![b'x'; 64])],
                        Some(1 << 30),
                        0,
                    )
                    .await
                    .unwrap();
                    kv.kv_get("p", "s", "k", 0).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let el = start.elapsed();
        eprintln!(
            "conc {conc}: {} writes/s",
            (n * conc) as f64 / el.as_secs_f64()
        );
    }
}

/// The writer keeps every statement of a mixed load prepared: with too small a statement
/// cache, each round of key-value and document writes evicted the others' statements and
/// prepared them again (the upsert's run count would restart with each preparation).
#[tokio::test]
async fn a_mixed_load_keeps_the_writers_statements_prepared() {
    use crate::docs::{DocOp, DocStore, DocWrite};
    use crate::{Condition, StoreError};
    const ROUNDS: i32 = 20;
    let dir = tempfile::tempdir().unwrap();
    let s = DataStore::open(dir.path()).unwrap();
    s.kv_create_store("p", "s").await.unwrap();
    s.kv_watch("p", "s").await.unwrap();
    s.doc_collection_set("p", "c", "{}", &["n".to_owned()])
        .await
        .unwrap();
    for i in 0..ROUNDS {
        let kv = |w| s.kv_write("p", "s", vec![w], Some(1 << 20), 1);
        kv(super::KvWrite::put("k", "v")).await.unwrap();
        kv(super::KvWrite::increment("n", 1)).await.unwrap();
        kv(super::KvWrite::delete("n")).await.unwrap();
        let doc = |id: String, op| DocWrite {
            id,
            op,
            condition: Condition::Any,
        };
        let body = format!(r#"{{"n":{i}}}"#);
        s.doc_write(
            "p",
            "c",
            doc(format!("d{i}"), DocOp::Put(body)),
            Some(1 << 20),
            1,
        )
        .await
        .unwrap();
        s.doc_write("p", "c", doc(format!("d{i}"), DocOp::Delete), None, 1)
            .await
            .unwrap();
        s.kv_trim_changes(0).await.unwrap();
        s.doc_trim_changes(0).await.unwrap();
    }
    let runs = s
        .write(|ctx| {
            let stmt = ctx.conn.prepare_cached(super::sqlite::UPSERT)?;
            Ok::<_, StoreError>(stmt.get_status(rusqlite::StatementStatus::Run))
        })
        .await
        .unwrap();
    assert!(runs >= ROUNDS, "the upsert was prepared again: {runs} runs");
}

/// The live file is this process's alone (SQLite's `unix-excl`): its WAL index lives in
/// memory, so no `-shm` file appears, and reads beside writes see each committed write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_file_keeps_its_wal_index_in_memory_and_reads_see_each_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = DataStore::open(dir.path()).unwrap();
    s.kv_create_store("p", "s").await.unwrap();
    for i in 0..50 {
        let value = i.to_string();
        s.kv_write(
            "p",
            "s",
            vec![super::KvWrite::put("k", value.clone())],
            None,
            1,
        )
        .await
        .unwrap();
        let got = s.kv_get("p", "s", "k", 1).await.unwrap().unwrap();
        assert_eq!(got.value, value.into_bytes());
    }
    assert!(dir.path().join("data.db-wal").exists());
    assert!(!dir.path().join("data.db-shm").exists());
    // A backup (`VACUUM INTO` on a connection of its own) still works, and reads and writes
    // after it.
    s.backup_to(&dir.path().join("snap.db")).await.unwrap();
    assert!(s.kv_get("p", "s", "k", 1).await.unwrap().is_some());
    s.kv_write("p", "s", vec![super::KvWrite::put("k", "after")], None, 1)
        .await
        .unwrap();
}
