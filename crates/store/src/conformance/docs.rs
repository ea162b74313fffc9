//! The [`DocStore`](crate::DocStore) suite.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{DocSubject, Found, Outcome};
use crate::{
    Condition, DocOp, DocOutcome, DocQuery, DocStore, DocWrite, Filter, FilterOp, StoreError,
};

const NOW: i64 = 1_000;

async fn with_collection(subject: &dyn DocSubject) -> Result<Arc<dyn DocStore>, StoreError> {
    let docs = subject.fresh().await;
    docs.doc_collection_set(
        "p",
        "orders",
        "{}",
        &["owner".into(), "total".into(), "ship.city".into()],
    )
    .await?;
    Ok(docs)
}

fn put(id: &str, body: Value) -> DocWrite {
    DocWrite {
        id: id.to_owned(),
        op: DocOp::Put(body.to_string()),
        condition: Condition::Any,
    }
}

async fn write(docs: &dyn DocStore, w: DocWrite) -> Result<DocOutcome, StoreError> {
    docs.doc_write("p", "orders", w, None, NOW).await
}

/// Writes are read back, keep their creation time, and survive a reopen; deletes remove.
pub async fn documents_are_written_read_and_kept(subject: &dyn DocSubject) -> Outcome {
    let docs = with_collection(subject).await?;
    write(&*docs, put("a", json!({"owner": "u1", "total": 5}))).await?;
    let out = docs
        .doc_write(
            "p",
            "orders",
            put("a", json!({"owner": "u1", "total": 7})),
            None,
            NOW + 5,
        )
        .await?;
    let DocOutcome::Written { after, before } = out else {
        return Err(format!("{out:?}").into());
    };
    assert_eq!(before.found()?.created_at, NOW);
    assert_eq!((after.created_at, after.updated_at), (NOW, NOW + 5));
    let docs = subject.reopen(docs).await;
    let got = docs.doc_get("p", "orders", "a").await?.found()?;
    assert_eq!(
        serde_json::from_str::<Value>(&got.body)?,
        json!({"owner": "u1", "total": 7})
    );
    let out = write(
        &*docs,
        DocWrite {
            id: "a".into(),
            op: DocOp::Delete,
            condition: Condition::Any,
        },
    )
    .await?;
    assert!(
        matches!(out, DocOutcome::Deleted { before: Some(_) }),
        "{out:?}"
    );
    assert_eq!(docs.doc_get("p", "orders", "a").await?, None);
    // A collection that was never declared takes no writes.
    let e = docs
        .doc_write("p", "nope", put("x", json!({})), None, NOW)
        .await;
    assert!(
        matches!(e, Err(StoreError::NoSuchCollection { .. })),
        "{e:?}"
    );
    Ok(())
}

/// Create-if-absent and write-if-at-revision hold; a failed condition changes nothing; the
/// quota counts documents.
pub async fn conditions_and_revisions_guard_writes(subject: &dyn DocSubject) -> Outcome {
    let docs = with_collection(subject).await?;
    let mut w = put("a", json!({"v": 1}));
    w.condition = Condition::Absent;
    let DocOutcome::Written { after, .. } = write(&*docs, w.clone()).await? else {
        return Err("first create failed".into());
    };
    let out = write(&*docs, w).await?;
    assert_eq!(
        out,
        DocOutcome::ConditionFailed {
            current: Some(after.revision)
        }
    );
    let mut w = put("a", json!({"v": 2}));
    w.condition = Condition::Revision(after.revision);
    assert!(matches!(
        write(&*docs, w.clone()).await?,
        DocOutcome::Written { .. }
    ));
    assert!(matches!(
        write(&*docs, w).await?,
        DocOutcome::ConditionFailed { .. }
    ));
    let e = docs
        .doc_write(
            "p",
            "orders",
            put("b", json!({"big": "x".repeat(100)})),
            Some(50),
            NOW,
        )
        .await;
    assert!(matches!(e, Err(StoreError::QuotaExceeded { .. })), "{e:?}");
    assert_eq!(docs.doc_get("p", "orders", "b").await?, None);
    Ok(())
}

/// Filters of every kind on declared fields, sorting both ways with ties broken by id, and
/// keyset pages that neither skip nor repeat.
pub async fn queries_filter_sort_and_page_on_declared_fields(subject: &dyn DocSubject) -> Outcome {
    let docs = with_collection(subject).await?;
    let rows = [
        (
            "d1",
            json!({"owner": "ann", "total": 10, "ship": {"city": "x"}}),
        ),
        ("d2", json!({"owner": "bob", "total": 20})),
        ("d3", json!({"owner": "ann", "total": 20})),
        ("d4", json!({"owner": "anna", "total": 5.5})),
        ("d5", json!({"owner": null, "total": 1})),
        ("d6", json!({"total": 30})),
    ];
    for (id, body) in rows {
        write(&*docs, put(id, body)).await?;
    }
    let ids = |q: DocQuery| {
        let docs = docs.clone();
        async move {
            Ok::<Vec<String>, StoreError>(
                docs.doc_query("p", "orders", &q)
                    .await?
                    .into_iter()
                    .map(|d| d.id)
                    .collect(),
            )
        }
    };
    let f = |field: &str, op, value| Filter {
        field: field.into(),
        op,
        value,
    };
    let q = |filters: Vec<Filter>| DocQuery {
        filters,
        limit: 100,
        ..DocQuery::default()
    };
    assert_eq!(
        ids(q(vec![f("owner", FilterOp::Eq, json!("ann"))])).await?,
        ["d1", "d3"]
    );
    assert_eq!(
        ids(q(vec![f("total", FilterOp::Ge, json!(20))])).await?,
        ["d2", "d3", "d6"]
    );
    assert_eq!(
        ids(q(vec![f("total", FilterOp::Lt, json!(10))])).await?,
        ["d4", "d5"]
    );
    assert_eq!(
        ids(q(vec![f("owner", FilterOp::In, json!(["bob", "anna"]))])).await?,
        ["d2", "d4"]
    );
    assert_eq!(
        ids(q(vec![f("owner", FilterOp::Prefix, json!("ann"))])).await?,
        ["d1", "d3", "d4"]
    );
    assert_eq!(
        ids(q(vec![f("owner", FilterOp::Eq, Value::Null)])).await?,
        ["d5", "d6"]
    );
    assert_eq!(
        ids(q(vec![f("owner", FilterOp::Ne, json!("ann"))])).await?,
        ["d2", "d4"]
    );
    assert_eq!(
        ids(q(vec![
            f("owner", FilterOp::Eq, json!("ann")),
            f("total", FilterOp::Gt, json!(10))
        ]))
        .await?,
        ["d3"]
    );
    assert_eq!(
        ids(q(vec![f("ship.city", FilterOp::Eq, json!("x"))])).await?,
        ["d1"]
    );
    // Sorted pages, both ways: every document once, in order.
    for desc in [false, true] {
        let mut seen = Vec::new();
        let mut after: Option<(Value, String)> = None;
        loop {
            let page = docs
                .doc_query(
                    "p",
                    "orders",
                    &DocQuery {
                        order: Some(("total".into(), desc)),
                        after: after.clone(),
                        limit: 2,
                        ..DocQuery::default()
                    },
                )
                .await?;
            let Some(last) = page.last() else { break };
            let v: Value = serde_json::from_str(&last.body)?;
            after = Some((v["total"].clone(), last.id.clone()));
            seen.extend(page.into_iter().map(|d| d.id));
        }
        let mut want = vec!["d5", "d4", "d1", "d2", "d3", "d6"];
        if desc {
            // Ties (d2, d3 at 20) break by id in the same direction.
            want.reverse();
        }
        assert_eq!(seen, want, "desc = {desc}");
    }
    // A field that is not a path is refused, not written into SQL.
    let e = docs
        .doc_query(
            "p",
            "orders",
            &q(vec![f("a') OR 1=1 --", FilterOp::Eq, json!(1))]),
        )
        .await;
    assert!(matches!(e, Err(StoreError::Corrupt(_))), "{e:?}");
    Ok(())
}

/// Another project's collection of the same name, and another collection, are separate.
pub async fn projects_and_collections_do_not_see_each_other(subject: &dyn DocSubject) -> Outcome {
    let docs = with_collection(subject).await?;
    docs.doc_collection_set("q", "orders", "{}", &[]).await?;
    docs.doc_collection_set("p", "other", "{}", &[]).await?;
    write(&*docs, put("a", json!({"owner": "x"}))).await?;
    assert_eq!(docs.doc_get("q", "orders", "a").await?, None);
    assert_eq!(docs.doc_get("p", "other", "a").await?, None);
    let all = DocQuery {
        limit: 10,
        ..DocQuery::default()
    };
    assert!(docs.doc_query("q", "orders", &all).await?.is_empty());
    assert_eq!(
        docs.doc_collections("p")
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        ["orders", "other"]
    );
    docs.doc_delete_project("q").await?;
    assert!(docs.doc_collections("q").await?.is_empty());
    assert_eq!(docs.doc_query("p", "orders", &all).await?.len(), 1);
    Ok(())
}

/// Every committed write is in the change log and announced, in revision order, with what it
/// replaced; a failed condition logs nothing; the position is the last revision.
pub async fn changes_are_logged_and_announced_in_commit_order(subject: &dyn DocSubject) -> Outcome {
    let docs = with_collection(subject).await?;
    let mut live = docs.doc_subscribe();
    let start = docs.doc_position().await?;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let docs = docs.clone();
        tasks.push(tokio::spawn(async move {
            write(&*docs, put(&format!("d{}", i % 5), json!({"n": i}))).await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut w = put("d0", json!({}));
    w.condition = Condition::Absent;
    write(&*docs, w).await?;
    write(
        &*docs,
        DocWrite {
            id: "d1".into(),
            op: DocOp::Delete,
            condition: Condition::Any,
        },
    )
    .await?;
    let log = docs.doc_changes("p", "orders", start, 100).await?;
    assert_eq!(log.len(), 21, "{log:?}");
    assert!(log.windows(2).all(|w| w[0].revision < w[1].revision));
    assert_eq!(
        log.iter()
            .filter(|c| c.op == crate::ChangeOp::Created)
            .count(),
        5
    );
    let last = log.last().found()?;
    assert_eq!(
        (last.op, last.id.as_str(), last.after.as_deref()),
        (crate::ChangeOp::Deleted, "d1", None)
    );
    assert!(last.before.is_some());
    assert_eq!(docs.doc_position().await?, last.revision);
    for expected in &log {
        let got = live.recv().await?;
        assert_eq!(&*got, expected);
    }
    // Paging the log from the middle.
    let rest = docs
        .doc_changes("p", "orders", log[9].revision, 100)
        .await?;
    assert_eq!(rest, log[10..].to_vec());
    Ok(())
}
