//! The [`KvStore`] suite.

use std::sync::Arc;

use super::{Found, KvSubject, Outcome};
use crate::{Condition, KvOp, KvOutcome, KvStore, KvUsage, KvWrite, StoreError};

const NOW: i64 = 1_000_000;

async fn with_store(subject: &dyn KvSubject) -> Result<Arc<dyn KvStore>, StoreError> {
    let kv = subject.fresh().await;
    kv.kv_create_store("a", "s").await?;
    Ok(kv)
}

async fn get(kv: &dyn KvStore, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(kv.kv_get("a", "s", key, NOW).await?.map(|e| e.value))
}

async fn put(kv: &dyn KvStore, key: &str, value: &str) -> Result<Vec<KvOutcome>, StoreError> {
    kv.kv_write("a", "s", vec![KvWrite::put(key, value)], None, NOW)
        .await
}

/// Stores are created once, listed with what they hold, and deleted with their keys.
pub async fn stores_are_created_listed_and_deleted(subject: &dyn KvSubject) -> Outcome {
    let kv = subject.fresh().await;
    assert!(kv.kv_create_store("a", "s").await?);
    assert!(!kv.kv_create_store("a", "s").await?);
    assert!(kv.kv_create_store("a", "t").await?);
    assert!(kv.kv_has_store("a", "t").await?);
    assert!(!kv.kv_has_store("b", "t").await?);
    put(&*kv, "k", "vv").await?;
    let stores = kv.kv_stores("a").await?;
    assert_eq!(
        stores.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["s", "t"]
    );
    assert_eq!((stores[0].keys, stores[0].bytes), (1, 3));
    assert_eq!((stores[1].keys, stores[1].bytes), (0, 0));
    assert!(kv.kv_delete_store("a", "s").await?);
    assert!(!kv.kv_delete_store("a", "s").await?);
    assert_eq!(kv.kv_usage("a").await?, KvUsage::default());
    // A store made again under the name starts empty.
    kv.kv_create_store("a", "s").await?;
    assert_eq!(get(&*kv, "k").await?, None);
    Ok(())
}

/// A write to a store that does not exist fails, naming it.
pub async fn writes_need_an_existing_store(subject: &dyn KvSubject) -> Outcome {
    let kv = subject.fresh().await;
    let e = kv
        .kv_write("a", "nope", vec![KvWrite::put("k", "v")], None, NOW)
        .await;
    assert!(
        matches!(e, Err(StoreError::NoSuchKvStore { ref store }) if store == "nope"),
        "{e:?}"
    );
    Ok(())
}

/// Values and revisions survive a reopen; revisions keep increasing after it.
pub async fn values_survive_reopen(subject: &dyn KvSubject) -> Outcome {
    let kv = with_store(subject).await?;
    let first = put(&*kv, "k", "one").await?;
    let kv = subject.reopen(kv).await;
    assert_eq!(get(&*kv, "k").await?, Some(b"one".to_vec()));
    let second = put(&*kv, "k", "two").await?;
    let (KvOutcome::Written { revision: r1 }, KvOutcome::Written { revision: r2 }) =
        (&first[0], &second[0])
    else {
        return Err(format!("{first:?} {second:?}").into());
    };
    assert!(r2 > r1, "revision went from {r1} to {r2}");
    Ok(())
}

/// Conditions hold against revisions, a revision is never reused after a delete, and a batch
/// whose condition fails changes nothing.
pub async fn conditions_guard_writes_and_batches_are_atomic(subject: &dyn KvSubject) -> Outcome {
    let kv = with_store(subject).await?;
    let w = |k: &str, v: &str, c| KvWrite::put(k, v).when(c);
    let out = kv
        .kv_write("a", "s", vec![w("k", "1", Condition::Absent)], None, NOW)
        .await?;
    let KvOutcome::Written { revision } = out[0] else {
        return Err(format!("{out:?}").into());
    };
    // Absent fails now, naming the current revision.
    let out = kv
        .kv_write("a", "s", vec![w("k", "2", Condition::Absent)], None, NOW)
        .await?;
    assert_eq!(
        out,
        [KvOutcome::ConditionFailed {
            current: Some(revision)
        }]
    );
    // Delete and write again: the old revision no longer matches.
    kv.kv_write("a", "s", vec![KvWrite::delete("k")], None, NOW)
        .await?;
    put(&*kv, "k", "3").await?;
    let out = kv
        .kv_write(
            "a",
            "s",
            vec![w("k", "4", Condition::Revision(revision))],
            None,
            NOW,
        )
        .await?;
    assert!(matches!(out[0], KvOutcome::ConditionFailed { current: Some(r) } if r > revision));
    // A batch: the first write applies in the batch, the second's condition fails, so neither
    // is kept.
    let out = kv
        .kv_write(
            "a",
            "s",
            vec![
                KvWrite::put("x", "new"),
                w("k", "5", Condition::Revision(revision)),
            ],
            None,
            NOW,
        )
        .await?;
    assert_eq!(out.len(), 2);
    assert!(matches!(out[1], KvOutcome::ConditionFailed { .. }));
    assert_eq!(get(&*kv, "x").await?, None);
    assert_eq!(get(&*kv, "k").await?, Some(b"3".to_vec()));
    assert_eq!(kv.kv_usage("a").await?.keys, 1);
    Ok(())
}

/// Concurrent increments lose nothing; non-integers and overflow are refused.
pub async fn increments_are_atomic_and_checked(subject: &dyn KvSubject) -> Outcome {
    let kv = with_store(subject).await?;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                kv.kv_write("a", "s", vec![KvWrite::increment("n", 1)], None, NOW)
                    .await?;
            }
            Ok::<_, StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    assert_eq!(get(&*kv, "n").await?, Some(b"400".to_vec()));
    let out = kv
        .kv_write("a", "s", vec![KvWrite::increment("n", -401)], None, NOW)
        .await?;
    assert!(matches!(out[0], KvOutcome::Incremented { value: -1, .. }));
    put(&*kv, "t", "text").await?;
    let e = kv
        .kv_write("a", "s", vec![KvWrite::increment("t", 1)], None, NOW)
        .await;
    assert!(matches!(e, Err(StoreError::NotAnInteger { .. })), "{e:?}");
    put(&*kv, "big", &i64::MAX.to_string()).await?;
    let e = kv
        .kv_write("a", "s", vec![KvWrite::increment("big", 1)], None, NOW)
        .await;
    assert!(
        matches!(e, Err(StoreError::IntegerOverflow { .. })),
        "{e:?}"
    );
    Ok(())
}

/// Expired keys read as absent at once, are skipped by listings, can be written as absent,
/// and purging deletes them and their usage.
pub async fn expired_keys_are_absent_and_purged(subject: &dyn KvSubject) -> Outcome {
    let kv = with_store(subject).await?;
    let expiring = |k: &str, at| KvWrite {
        key: k.to_owned(),
        op: KvOp::Put {
            value: b"v".to_vec(),
            expires_at: Some(at),
        },
        condition: Condition::Any,
    };
    kv.kv_write(
        "a",
        "s",
        vec![expiring("old", NOW - 1), expiring("new", NOW + 1_000)],
        None,
        NOW - 10,
    )
    .await?;
    put(&*kv, "kept", "v").await?;
    assert_eq!(get(&*kv, "old").await?, None);
    let e = kv.kv_get("a", "s", "new", NOW).await?.found()?;
    assert_eq!(e.expires_at, Some(NOW + 1_000));
    assert_eq!(
        kv.kv_list("a", "s", "", None, 10, NOW).await?,
        ["kept", "new"]
    );
    let out = kv
        .kv_write(
            "a",
            "s",
            vec![KvWrite::put("old", "again").when(Condition::Absent)],
            None,
            NOW,
        )
        .await?;
    assert!(matches!(out[0], KvOutcome::Written { .. }));
    assert_eq!(kv.kv_purge_expired(NOW + 1_000, 100).await?, 1);
    assert_eq!(kv.kv_usage("a").await?.keys, 2);
    assert_eq!(get(&*kv, "old").await?, Some(b"again".to_vec()));
    Ok(())
}

/// Listing is in byte order, by prefix, page by page after a cursor, with odd keys intact.
pub async fn listing_pages_by_prefix(subject: &dyn KvSubject) -> Outcome {
    let kv = with_store(subject).await?;
    let keys = [
        "a",
        "a/b",
        "a/c d",
        "a/é",
        "a/\u{10FFFF}",
        "a0",
        "a%2F",
        "b",
        "",
        "a+1",
    ];
    for k in keys {
        put(&*kv, k, "v").await?;
    }
    let all = kv.kv_list("a", "s", "", None, 100, NOW).await?;
    let mut sorted: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    sorted.sort();
    assert_eq!(all, sorted);
    assert_eq!(
        kv.kv_list("a", "s", "a/", None, 100, NOW).await?,
        ["a/b", "a/c d", "a/é", "a/\u{10FFFF}"]
    );
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = kv.kv_list("a", "s", "a", after.as_deref(), 3, NOW).await?;
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        pages.extend(page);
    }
    let with_a: Vec<String> = sorted.into_iter().filter(|k| k.starts_with('a')).collect();
    assert_eq!(pages, with_a);
    Ok(())
}

/// A write past the quota fails and stores nothing; deletes are always allowed.
pub async fn the_quota_is_checked_in_the_write(subject: &dyn KvSubject) -> Outcome {
    let kv = with_store(subject).await?;
    kv.kv_write("a", "s", vec![KvWrite::put("k", "12345")], Some(10), NOW)
        .await?;
    assert_eq!(kv.kv_usage("a").await?, KvUsage { keys: 1, bytes: 6 });
    let e = kv
        .kv_write("a", "s", vec![KvWrite::put("j", "12345")], Some(10), NOW)
        .await;
    assert!(
        matches!(
            e,
            Err(StoreError::QuotaExceeded {
                limit: 10,
                needed: 12
            })
        ),
        "{e:?}"
    );
    assert_eq!(get(&*kv, "j").await?, None);
    // Replacing with a smaller value frees bytes.
    kv.kv_write("a", "s", vec![KvWrite::put("k", "1")], Some(1), NOW)
        .await?;
    assert_eq!(kv.kv_usage("a").await?.bytes, 2);
    kv.kv_write("a", "s", vec![KvWrite::delete("k")], Some(0), NOW)
        .await?;
    assert_eq!(kv.kv_usage("a").await?, KvUsage::default());
    Ok(())
}

/// Projects with the same store and key names see only their own.
pub async fn projects_do_not_see_each_other(subject: &dyn KvSubject) -> Outcome {
    let kv = with_store(subject).await?;
    kv.kv_create_store("b", "s").await?;
    put(&*kv, "k", "mine").await?;
    assert_eq!(kv.kv_get("b", "s", "k", NOW).await?, None);
    assert!(kv.kv_list("b", "s", "", None, 10, NOW).await?.is_empty());
    assert_eq!(kv.kv_usage("b").await?, KvUsage::default());
    kv.kv_delete_project("b").await?;
    assert_eq!(get(&*kv, "k").await?, Some(b"mine".to_vec()));
    assert!(kv.kv_stores("b").await?.is_empty());
    Ok(())
}

/// A watched store logs each set and delete (of a live key) with its revision, in order; an
/// unwatched one logs nothing; a failed batch logs nothing; large values are logged by size.
pub async fn watched_stores_log_their_changes(subject: &dyn KvSubject) -> Outcome {
    let kv = with_store(subject).await?;
    kv.kv_create_store("a", "quiet").await?;
    put(&*kv, "before", "x").await?;
    assert!(matches!(
        kv.kv_watch("a", "missing").await,
        Err(StoreError::NoSuchKvStore { .. })
    ));
    kv.kv_watch("a", "s").await?;
    let written = put(&*kv, "k", "v1").await?;
    let KvOutcome::Written { revision: r1 } = written[0] else {
        return Err("expected a write".into());
    };
    kv.kv_write(
        "a",
        "s",
        vec![KvWrite {
            key: "n".into(),
            op: KvOp::Increment(5),
            condition: Condition::Any,
        }],
        None,
        NOW,
    )
    .await?;
    kv.kv_write(
        "a",
        "s",
        vec![KvWrite::delete("k"), KvWrite::delete("never")],
        None,
        NOW,
    )
    .await?;
    let big = vec![b'x'; crate::kv::MAX_LOGGED_VALUE + 1];
    kv.kv_write("a", "s", vec![KvWrite::put("big", big)], None, NOW)
        .await?;
    // A batch whose condition fails logs nothing.
    kv.kv_write(
        "a",
        "s",
        vec![
            KvWrite::put("z", "1"),
            KvWrite {
                key: "k".into(),
                op: KvOp::Delete,
                condition: Condition::Revision(999_999),
            },
        ],
        None,
        NOW,
    )
    .await?;
    kv.kv_write("a", "quiet", vec![KvWrite::put("q", "1")], None, NOW)
        .await?;

    let log = kv.kv_changes("a", "s", 0, 100).await?;
    let seen: Vec<(&str, bool, Option<&[u8]>)> = log
        .iter()
        .map(|c| (c.key.as_str(), c.deleted, c.value.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("k", false, Some(&b"v1"[..])),
            ("n", false, Some(&b"5"[..])),
            ("k", true, None),
            ("big", false, None),
        ]
    );
    assert_eq!(log[0].revision, r1);
    assert!(log.windows(2).all(|w| w[0].revision < w[1].revision));
    assert_eq!(log[3].size, crate::kv::MAX_LOGGED_VALUE as u64 + 1);
    assert_eq!(
        kv.kv_changes("a", "s", log[1].revision, 100).await?.len(),
        2
    );
    assert!(kv.kv_changes("a", "quiet", 0, 100).await?.is_empty());
    assert_eq!(kv.kv_trim_changes(NOW + 1).await?, 4);
    assert!(kv.kv_changes("a", "s", 0, 100).await?.is_empty());
    Ok(())
}
