//! The document conformance suite against the SQLite backend.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::conformance::DocSubject;
use crate::{DataStore, DocStore};

struct Sqlite(tempfile::TempDir);

impl Sqlite {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
}

#[async_trait::async_trait]
impl DocSubject for Sqlite {
    async fn fresh(&self) -> Arc<dyn DocStore> {
        Arc::new(DataStore::open(self.0.path()).unwrap())
    }

    async fn reopen(&self, store: Arc<dyn DocStore>) -> Arc<dyn DocStore> {
        drop(store);
        Arc::new(DataStore::open(self.0.path()).unwrap())
    }
}

mod conformance {
    use super::Sqlite;
    crate::doc_conformance!(Sqlite::new());
}

/// Queries on declared fields are served from their index (no scan of the collection).
#[tokio::test]
async fn queries_use_the_field_indexes() {
    use crate::{DocQuery, Filter, FilterOp};
    let dir = tempfile::tempdir().unwrap();
    let store = DataStore::open(dir.path()).unwrap();
    store
        .doc_collection_set("p", "c", "{}", &["status".into(), "total".into()])
        .await
        .unwrap();
    let query = DocQuery {
        filters: vec![Filter {
            field: "status".into(),
            op: FilterOp::Eq,
            value: serde_json::json!("paid"),
        }],
        order: Some(("status".into(), true)),
        limit: 10,
        ..DocQuery::default()
    };
    for q in [
        query.clone(),
        // A filter on one field, the sort on another: the filter's index.
        DocQuery {
            order: Some(("total".into(), true)),
            ..query.clone()
        },
        DocQuery {
            filters: vec![],
            order: Some(("total".into(), false)),
            ..query
        },
    ] {
        let (sql, args) = super::sqlite::compile("p", "c", &q).unwrap();
        let plan: Vec<String> = store
            .read(|conn| {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get(3))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        let plan = plan.join("; ");
        assert!(plan.contains("USING INDEX docs_by_"), "{plan}");
        let sorted_elsewhere =
            q.order.as_ref().is_some_and(|(o, _)| o == "total") && !q.filters.is_empty();
        assert_eq!(
            plan.contains("TEMP B-TREE"),
            sorted_elsewhere,
            "sorted by the index unless the sort is on another field: {plan}"
        );
        if sorted_elsewhere {
            assert!(
                plan.contains("<expr>=?"),
                "searched by the filter's index: {plan}"
            );
        }
    }
}

/// A composite index on (filter field, sort field) serves an equality filter with that sort
/// without sorting; its pages are the same as without it.
#[tokio::test]
async fn a_composite_index_serves_a_filter_with_a_sort_on_another_field() {
    use crate::{Condition, DocOp, DocQuery, DocStore, DocWrite, Filter, FilterOp};
    let dir = tempfile::tempdir().unwrap();
    let store = DataStore::open(dir.path()).unwrap();
    store
        .doc_collection_set(
            "p",
            "c",
            "{}",
            &["status".into(), "total".into(), "status,total".into()],
        )
        .await
        .unwrap();
    for i in 0..30 {
        let body = serde_json::json!({"status": if i % 2 == 0 { "paid" } else { "new" }, "total": (i * 7) % 30});
        let w = DocWrite {
            id: format!("d{i:02}"),
            op: DocOp::Put(body.to_string()),
            condition: Condition::Any,
        };
        store.doc_write("p", "c", w, None, 1).await.unwrap();
    }
    let with = DocQuery {
        filters: vec![Filter {
            field: "status".into(),
            op: FilterOp::Eq,
            value: serde_json::json!("paid"),
        }],
        order: Some(("total".into(), true)),
        limit: 5,
        composites: vec![vec!["status".into(), "total".into()]],
        ..DocQuery::default()
    };
    let (sql, args) = super::sqlite::compile("p", "c", &with).unwrap();
    let plan: Vec<String> = store
        .read(|conn| {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get(3))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .unwrap();
    let plan = plan.join("; ");
    assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
    assert!(plan.contains("USING INDEX docs_by_"), "{plan}");
    // The same pages with or without it, across a cursor.
    let without = DocQuery {
        composites: vec![],
        ..with.clone()
    };
    let a = store.doc_query("p", "c", &with).await.unwrap();
    let b = store.doc_query("p", "c", &without).await.unwrap();
    let ids = |v: &[crate::DocRecord]| v.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    let last = a.last().unwrap();
    let total = serde_json::from_str::<serde_json::Value>(&last.body).unwrap()["total"].clone();
    let next = |q: &DocQuery| DocQuery {
        after: Some((total.clone(), last.id.clone())),
        ..q.clone()
    };
    assert_eq!(
        ids(&store.doc_query("p", "c", &next(&with)).await.unwrap()),
        ids(&store.doc_query("p", "c", &next(&without)).await.unwrap())
    );
}
