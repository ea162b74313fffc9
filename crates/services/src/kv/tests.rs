//! The service's rules over a real store: limits, grants, quota, paging.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use updraft_dispatch::kv::{KeyValueProvider, KvError};
use updraft_store::kv::DataStore;

use super::{KeyValueService, KvConfig, Provider, is_store_name};

fn service(dir: &tempfile::TempDir, config: KvConfig) -> Arc<KeyValueService> {
    KeyValueService::new(Arc::new(DataStore::open(dir.path()).unwrap()), config)
}

#[tokio::test]
async fn functions_reach_only_granted_stores_within_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let kv = service(
        &dir,
        KvConfig {
            max_key_bytes: 8,
            max_value_bytes: 4,
            max_project_bytes: 30,
            ..KvConfig::default()
        },
    );
    let provider = Provider(kv.clone());
    provider
        .ensure_stores("p", &["a".into(), "b".into()])
        .await
        .unwrap();
    let f = provider.for_function("p", "f", &["a".into()]);
    assert_eq!(f.open("a"), Ok(()));
    assert_eq!(f.open("b"), Err(KvError::AccessDenied));
    assert_eq!(f.get("b", "k").await, Err(KvError::AccessDenied));
    f.set_many("a", vec![("k".into(), b"v".to_vec())])
        .await
        .unwrap();
    assert_eq!(
        f.get("a", "k").await.unwrap().map(|(v, _)| v),
        Some(b"v".to_vec())
    );
    // Limits: key length, value size, quota; each a plain message.
    let e = f.set_many("a", vec![("123456789".into(), vec![])]).await;
    assert!(
        matches!(e, Err(KvError::Other(ref m)) if m.contains("max_key_bytes")),
        "{e:?}"
    );
    let e = f.set_many("a", vec![("k".into(), vec![0; 5])]).await;
    assert!(
        matches!(e, Err(KvError::Other(ref m)) if m.contains("max_value_bytes")),
        "{e:?}"
    );
    let e = f.set_many("a", vec![(String::new(), vec![])]).await;
    assert!(
        matches!(e, Err(KvError::Other(ref m)) if m.contains("empty")),
        "{e:?}"
    );
    for i in 0..3 {
        f.set_many("a", vec![(format!("key{i}"), b"1234".to_vec())])
            .await
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
    }
    let e = f
        .set_many("a", vec![("key9".into(), b"1234".to_vec())])
        .await;
    assert!(
        matches!(e, Err(KvError::Other(ref m)) if m.contains("quota")),
        "{e:?}"
    );
    // Another project's function with the same store name sees nothing of these.
    provider.ensure_stores("q", &["a".into()]).await.unwrap();
    let other = provider.for_function("q", "f", &["a".into()]);
    assert_eq!(other.get("a", "k").await, Ok(None));
    let counts = kv.take_usage(Some("p"));
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].reads, counts[0].writes), (1, 4), "{counts:?}");
    assert!(
        kv.take_usage(Some("p")).is_empty(),
        "taken counts start again from zero"
    );
}

#[tokio::test]
async fn swaps_fail_once_the_key_changed_and_listing_pages() {
    let dir = tempfile::tempdir().unwrap();
    let kv = service(
        &dir,
        KvConfig {
            page: 2,
            ..KvConfig::default()
        },
    );
    let provider = Provider(kv);
    provider.ensure_stores("p", &["s".into()]).await.unwrap();
    let f = provider.for_function("p", "f", &["s".into()]);
    assert!(f.swap("s", "k", None, b"1".to_vec()).await.unwrap());
    assert!(!f.swap("s", "k", None, b"2".to_vec()).await.unwrap());
    let (_, rev) = f.get("s", "k").await.unwrap().unwrap();
    assert!(f.swap("s", "k", Some(rev), b"3".to_vec()).await.unwrap());
    assert!(!f.swap("s", "k", Some(rev), b"4".to_vec()).await.unwrap());
    for k in ["a", "b", "c"] {
        f.set_many("s", vec![(k.into(), vec![])]).await.unwrap();
    }
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = f.list("s", after).await.unwrap();
        assert!(page.keys.len() <= 2);
        all.extend(page.keys);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(all, ["a", "b", "c", "k"]);
    assert_eq!(f.increment("s", "n", 5).await, Ok(5));
    assert!(matches!(
        f.increment("s", "a", 1).await,
        Err(KvError::Other(_))
    ));
}

#[test]
fn store_names() {
    for ok in ["default", "a", "sessions-2", "x_y", "0"] {
        assert!(is_store_name(ok), "{ok}");
    }
    for bad in ["", "-a", "A", "a/b", "../x", "a b", &"a".repeat(64)] {
        assert!(!is_store_name(bad), "{bad}");
    }
}
