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
