#![allow(clippy::unwrap_used)]

use super::*;
use crate::{Condition, DocOp, DocStore, DocWrite, KvStore, KvWrite};

async fn put_doc(s: &DataStore, project: &str, id: &str, body: &str) -> u64 {
    let w = DocWrite {
        id: id.into(),
        op: DocOp::Put(body.into()),
        condition: Condition::Any,
    };
    match s.doc_write(project, "c", w, None, 1).await.unwrap() {
        crate::DocOutcome::Written { after, .. } => after.revision,
        other => panic!("{other:?}"),
    }
}

async fn value(s: &DataStore, project: &str, key: &str) -> Option<Vec<u8>> {
    s.kv_get(project, "s", key, 0)
        .await
        .unwrap()
        .map(|e| e.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_every_project_or_one_and_revisions_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = DataStore::open(dir.path().join("live")).unwrap();
    for p in ["p1", "p2"] {
        s.kv_create_store(p, "s").await.unwrap();
        s.kv_write(p, "s", vec![KvWrite::put("k", format!("{p}-v1"))], None, 1)
            .await
            .unwrap();
        s.doc_collection_set(p, "c", "{}", &["n".into()])
            .await
            .unwrap();
        put_doc(&s, p, "d", r#"{"n":1}"#).await;
    }
    let backup = dir.path().join("backup.db");
    s.backup_to(&backup).await.unwrap();
    // A backup over an existing file is refused (nothing overwritten).
    assert!(s.backup_to(&backup).await.is_err());

    // Later changes in both projects.
    for p in ["p1", "p2"] {
        s.kv_write(
            p,
            "s",
            vec![KvWrite::put("k", "v2"), KvWrite::put("new", "x")],
            None,
            1,
        )
        .await
        .unwrap();
        put_doc(&s, p, "d", r#"{"n":2}"#).await;
        put_doc(&s, p, "e", r#"{"n":3}"#).await;
    }
    let before_restore = put_doc(&s, "p2", "f", "{}").await;

    // One project back: the other keeps its changes.
    let copy = dir.path().join("copy1.db");
    std::fs::copy(&backup, &copy).unwrap();
    let r = s.restore_from(&copy, Some("p1")).await.unwrap();
    assert_eq!((r.stores, r.keys, r.collections, r.documents), (1, 1, 1, 1));
    assert_eq!(value(&s, "p1", "k").await.unwrap(), b"p1-v1");
    assert_eq!(value(&s, "p1", "new").await, None);
    assert!(s.doc_get("p1", "c", "e").await.unwrap().is_none());
    assert_eq!(
        s.doc_get("p1", "c", "d").await.unwrap().unwrap().body,
        r#"{"n":1}"#
    );
    assert_eq!(value(&s, "p2", "k").await.unwrap(), b"v2");
    assert!(s.doc_get("p2", "c", "e").await.unwrap().is_some());
    // Revisions keep rising.
    assert!(put_doc(&s, "p1", "g", "{}").await > before_restore);

    // Every project back, and it survives a restart.
    let copy = dir.path().join("copy2.db");
    std::fs::copy(&backup, &copy).unwrap();
    s.restore_from(&copy, None).await.unwrap();
    drop(s);
    let s = DataStore::open(dir.path().join("live")).unwrap();
    assert_eq!(value(&s, "p2", "k").await.unwrap(), b"p2-v1");
    assert!(s.doc_get("p2", "c", "f").await.unwrap().is_none());
    assert!(s.doc_get("p1", "c", "g").await.unwrap().is_none());
    assert!(put_doc(&s, "p2", "h", "{}").await > before_restore);
    let usage = s.kv_usage("p2").await.unwrap();
    assert_eq!(usage.keys, 1, "the usage row came back with the keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_backup_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let s = DataStore::open(dir.path().join("live")).unwrap();
    s.kv_create_store("p", "s").await.unwrap();
    s.kv_write("p", "s", vec![KvWrite::put("k", "v")], None, 1)
        .await
        .unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not sqlite at all, just bytes").unwrap();
    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); PRAGMA user_version = 99;")
        .unwrap();
    for (path, why) in [(&junk, "not a backup"), (&other, "schema version 99")] {
        let e = s.restore_from(path, None).await.unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid(_)) && e.to_string().contains(why),
            "{e}"
        );
    }
    assert_eq!(value(&s, "p", "k").await.unwrap(), b"v");
}
