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

/// A store with a key-value store `s` (watched) and a collection `c` of project `p`.
async fn mixed_store(dir: &std::path::Path) -> DataStore {
    use crate::docs::DocStore;
    let s = DataStore::open(dir).unwrap();
    s.kv_create_store("p", "s").await.unwrap();
    s.kv_watch("p", "s").await.unwrap();
    s.doc_collection_set("p", "c", "{}", &["n".to_owned()])
        .await
        .unwrap();
    s
}

/// Round `i` of a mixed load, one durable write at a time: key-value puts, increments and
/// deletes, a document put and delete, and trims of both change logs.
async fn mixed_round(s: &DataStore, i: i32) {
    use crate::Condition;
    use crate::docs::{DocOp, DocStore, DocWrite};
    let kv = |w| s.kv_write("p", "s", vec![w], Some(1 << 20), 1);
    kv(super::KvWrite::put("k", "v")).await.unwrap();
    kv(super::KvWrite::increment("n", 1)).await.unwrap();
    kv(super::KvWrite::delete("n")).await.unwrap();
    let doc = |op| DocWrite {
        id: format!("d{i}"),
        op,
        condition: Condition::Any,
    };
    let body = format!(r#"{{"n":{i}}}"#);
    s.doc_write("p", "c", doc(DocOp::Put(body)), Some(1 << 20), 1)
        .await
        .unwrap();
    s.doc_write("p", "c", doc(DocOp::Delete), None, 1)
        .await
        .unwrap();
    s.kv_trim_changes(0).await.unwrap();
    s.doc_trim_changes(0).await.unwrap();
}

/// The writer keeps every statement of a mixed load prepared: with too small a statement
/// cache, each round of key-value and document writes evicted the others' statements and
/// prepared them again (the upsert's run count would restart with each preparation).
#[tokio::test]
async fn a_mixed_load_keeps_the_writers_statements_prepared() {
    const ROUNDS: i32 = 20;
    let dir = tempfile::tempdir().unwrap();
    let s = mixed_store(dir.path()).await;
    for i in 0..ROUNDS {
        mixed_round(&s, i).await;
    }
    let runs = s
        .write(|ctx| {
            let stmt = ctx.conn.prepare_cached(super::sqlite::UPSERT)?;
            Ok::<_, crate::StoreError>(stmt.get_status(rusqlite::StatementStatus::Run))
        })
        .await
        .unwrap();
    assert!(runs >= ROUNDS, "the upsert was prepared again: {runs} runs");
}

/// What the writer's statement cache is worth under a mixed load: 500 rounds (2,500 durable
/// writes, one at a time) with rusqlite's default of 16 statements and with ours, alternating;
/// the process's CPU time as well as wall time, which the fsyncs dominate.
///
///   cargo test -p updraft-store --release --lib mixed_write_time -- --ignored --nocapture
#[tokio::test]
#[ignore = "a measurement"]
async fn mixed_write_time() {
    for capacity in [16, crate::data::STATEMENTS, 16, crate::data::STATEMENTS] {
        let dir = tempfile::tempdir().unwrap();
        let s = mixed_store(dir.path()).await;
        s.write(move |ctx| {
            ctx.conn.set_prepared_statement_cache_capacity(capacity);
            Ok(())
        })
        .await
        .unwrap();
        let (start, cpu) = (std::time::Instant::now(), cpu_ns());
        for i in 0..500 {
            mixed_round(&s, i).await;
        }
        eprintln!(
            "{capacity} statements: {:.2} s, {} µs of CPU per write",
            start.elapsed().as_secs_f64(),
            (cpu_ns() - cpu) / 2_500_000
        );
    }
}

/// Nanoseconds of CPU (user and system) this process has used, its ended threads' included
/// (0 where `/proc` has no `stat`); `/proc` counts in ticks of 10 ms.
fn cpu_ns() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // The fields after the command name, which is in parentheses: utime and stime are the
    // 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after.split_whitespace().skip(11);
    let mut next = || {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (next() + next()) * 10_000_000
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
