use super::*;

fn rec(function: &str, request_id: &str, line: &str) -> LogRecord {
    LogRecord {
        id: 0,
        project: crate::DEFAULT_PROJECT.into(),
        function: function.into(),
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
