//! SQLite-specific: retention by size and age. What every telemetry backend must do is in the
//! conformance suite (`crate::conformance::telemetry`).

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
