use super::*;

#[test]
fn series_render_as_prometheus_text_with_cumulative_buckets() {
    let m = Metrics::default();
    let v = m.version("default", "hello", 2);
    v.finished(200, None, Duration::from_millis(3), 2 << 20);
    v.finished(200, None, Duration::from_millis(30), 2 << 20);
    v.finished(504, Some("timeout"), Duration::from_secs(2), 8 << 20);
    v.rejected(429);
    v.throttles.fetch_add(1, Ordering::Relaxed);
    assert!(
        Arc::ptr_eq(&v, &m.version("default", "hello", 2)),
        "a version keeps its series"
    );
    let text = m.render(None);
    assert_eq!(
        m.render(Some("other"))
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count(),
        0
    );
    let has = |line: &str| {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        )
    };
    has("# TYPE updraft_invocations_total counter");
    has(
        r#"updraft_invocations_total{project="default",function="hello",version="2",status="200"} 2"#,
    );
    has(
        r#"updraft_invocations_total{project="default",function="hello",version="2",status="504"} 1"#,
    );
    has(
        r#"updraft_invocations_total{project="default",function="hello",version="2",status="429"} 1"#,
    );
    has(
        r#"updraft_invocation_errors_total{project="default",function="hello",version="2",class="timeout"} 1"#,
    );
    has(
        r#"updraft_invocation_duration_seconds_bucket{project="default",function="hello",version="2",le="0.005"} 1"#,
    );
    has(
        r#"updraft_invocation_duration_seconds_bucket{project="default",function="hello",version="2",le="0.05"} 2"#,
    );
    has(
        r#"updraft_invocation_duration_seconds_bucket{project="default",function="hello",version="2",le="+Inf"} 3"#,
    );
    has(
        r#"updraft_invocation_duration_seconds_count{project="default",function="hello",version="2"} 3"#,
    );
    has(
        r#"updraft_memory_peak_bytes_bucket{project="default",function="hello",version="2",le="4194304"} 2"#,
    );
    has(r#"updraft_throttles_total{project="default",function="hello",version="2"} 1"#);
    let sum = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"updraft_invocation_duration_seconds_sum{project="default",function="hello",version="2"} "#,
            )
        })
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!((sum - 2.033).abs() < 1e-9, "{sum}");
    m.retain(|_, _, v| v != 2);
    assert!(!m.render(None).contains("hello"));
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
}
