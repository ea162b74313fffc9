use super::*;

fn rec(function: &str, request_id: &str, line: &str) -> LogRecord {
    LogRecord {
        id: 0,
        project: crate::DEFAULT_PROJECT.into(),
        function: function.into(),
        version: Some(1),
        request_id: request_id.into(),
        ts_ms: crate::now_ms(),
        stream: "stdout".into(),
        line: line.into(),
    }
}

#[test]
fn lines_are_written_queried_and_kept_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..10 {
        store
            .logs()
            .write(rec("a", &format!("r{}", i % 2), &format!("line {i}")));
    }
    store.logs().write(rec("b", "r9", "other"));
    store.logs().flush();
    let q = |q: LogQuery| store.query_logs(crate::DEFAULT_PROJECT, &q).unwrap();
    let all = q(LogQuery {
        function: Some("a".into()),
        limit: 100,
        ..Default::default()
    });
    assert_eq!(all.len(), 10);
    assert_eq!(all[0].line, "line 0");
    let last3 = q(LogQuery {
        function: Some("a".into()),
        limit: 3,
        ..Default::default()
    });
    assert_eq!(
        last3.iter().map(|r| r.line.as_str()).collect::<Vec<_>>(),
        ["line 7", "line 8", "line 9"]
    );
    let r1 = q(LogQuery {
        request_id: Some("r1".into()),
        limit: 100,
        ..Default::default()
    });
    assert_eq!(r1.len(), 5);
    let after = q(LogQuery {
        after_id: Some(all[7].id),
        limit: 100,
        ..Default::default()
    });
    assert_eq!(after.len(), 3, "two of `a` and one of `b`");
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store
            .query_logs(
                crate::DEFAULT_PROJECT,
                &LogQuery {
                    limit: 100,
                    ..Default::default()
                }
            )
            .unwrap()
            .len(),
        11
    );
}

#[test]
fn ids_are_given_when_queued_and_followers_see_lines_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.logs().write(rec("a", "r1", "before"));
    let mut follow = store.logs().subscribe();
    store.logs().write(rec("a", "r1", "after"));
    let seen = follow.try_recv().unwrap();
    assert_eq!(seen.line, "after");
    store.logs().flush();
    let stored = store
        .query_logs(
            crate::DEFAULT_PROJECT,
            &LogQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[1].id, seen.id,
        "followers get the id the line is stored under"
    );
    assert!(stored[0].id < stored[1].id);
    drop(store);
    // Ids keep increasing across a restart.
    let store = Store::open(dir.path()).unwrap();
    let mut follow = store.logs().subscribe();
    store.logs().write(rec("a", "r2", "later"));
    assert!(follow.try_recv().unwrap().id > seen.id);
}

#[test]
fn the_size_budget_deletes_the_oldest_lines() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        log_max_bytes: 50_000,
        ..Retention::default()
    };
    let store = Store::open_with(dir.path(), retention).unwrap();
    // 3,000 lines of 100 bytes + 100 overhead = 600,000 bytes; 50,000 keeps ~250.
    for i in 0..3_000 {
        store.logs().write(rec("a", "r", &format!("{i:0>100}")));
    }
    store.logs().flush();
    let kept = store
        .query_logs(
            crate::DEFAULT_PROJECT,
            &LogQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(kept.len() <= 250, "kept {}", kept.len());
    assert!(!kept.is_empty());
    assert_eq!(
        kept.last().unwrap().line,
        format!("{:0>100}", 2_999),
        "newest kept"
    );
}

#[test]
fn expired_lines_and_records_are_deleted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut old = rec("a", "r", "old");
    old.ts_ms -= 3 * 86_400_000;
    store.logs().write(old);
    store.logs().write(rec("a", "r", "new"));
    store.logs().flush();
    drop(store);
    let retention = Retention {
        log_max_age: std::time::Duration::from_secs(86_400),
        ..Retention::default()
    };
    let store = Store::open_with(dir.path(), retention).unwrap();
    store.logs().flush();
    let kept = store
        .query_logs(
            crate::DEFAULT_PROJECT,
            &LogQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        kept.iter().map(|r| r.line.as_str()).collect::<Vec<_>>(),
        ["new"]
    );
}

#[test]
fn time_and_request_filters_find_lines_without_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let t0 = crate::now_ms() - 10 * 3_600_000;
    // 600 lines one minute apart; every third from a request whose id carries its time.
    let id_at = |ms: i64| format!("{ms:012x}{:020x}", 7);
    for i in 0..600i64 {
        let ts = t0 + i * 60_000;
        let mut r = rec("a", &id_at(ts), &format!("line {i}"));
        r.ts_ms = ts;
        store.logs().write(r);
    }
    store.logs().flush();
    let q = |q: LogQuery| store.query_logs(crate::DEFAULT_PROJECT, &q).unwrap();
    let since = q(LogQuery {
        since_ms: Some(t0 + 590 * 60_000),
        limit: 100,
        ..Default::default()
    });
    assert_eq!(since.len(), 10);
    assert_eq!(since[0].line, "line 590");
    for i in [0i64, 1, 299, 599] {
        let got = q(LogQuery {
            function: Some("a".into()),
            request_id: Some(id_at(t0 + i * 60_000)),
            limit: 100,
            ..Default::default()
        });
        assert_eq!(got.len(), 1, "{i}");
        assert_eq!(got[0].line, format!("line {i}"));
    }
    // A since past every line finds none; one before all finds all.
    assert!(
        q(LogQuery {
            since_ms: Some(crate::now_ms() + 1),
            limit: 10,
            ..Default::default()
        })
        .is_empty()
    );
    assert_eq!(
        q(LogQuery {
            since_ms: Some(0),
            limit: 1000,
            ..Default::default()
        })
        .len(),
        600
    );
}
