use super::*;

#[test]
fn empty_file_means_defaults() {
    assert_eq!(
        FileConfig::parse("c.toml", "").unwrap(),
        FileConfig::default()
    );
}

#[test]
fn parses_every_section() {
    let c = FileConfig::parse(
        "c.toml",
        r#"
[defaults]
timeout = "5s"
memory = "64MiB"
idle_timeout = "1m"
[maxima]
memory = "256MiB"
min_instances = 2
[concurrency]
global_max = 50
queue_timeout = "250ms"
[http]
max_headers = 20
[pool]
max_instances = 64
memory_keep_resident = "4MiB"
[versions]
keep = 3
[canary]
window = "10s"
min_requests = 5
max_error_rate_increase = 10.0
max_latency_ratio = 1.5
latency_margin = "20ms"
check_interval = "200ms"
"#,
    )
    .unwrap();
    assert_eq!(c.limits.timeout, Duration::from_secs(5));
    assert_eq!(c.limits.memory, 64 << 20);
    assert_eq!(c.limits.max_memory, 256 << 20);
    assert_eq!(c.limits.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.global_max_concurrency, Some(50));
    assert_eq!(c.queue_timeout, Duration::from_millis(250));
    assert_eq!(c.http.max_headers, 20);
    assert_eq!(c.pool.max_instances, 64);
    assert_eq!(c.pool.memory_keep_resident, 4 << 20);
    assert_eq!(c.keep_versions, 3);
    assert_eq!(
        c.canary,
        CanaryConfig {
            window: Duration::from_secs(10),
            min_requests: 5,
            max_error_rate_increase: 10.0,
            max_latency_ratio: 1.5,
            latency_margin: Duration::from_millis(20),
            check_interval: Duration::from_millis(200),
        }
    );
}

#[test]
fn bad_files_name_the_key() {
    let e = FileConfig::parse("c.toml", "[defaults]\ntimeout = \"soon\"\n").unwrap_err();
    assert!(
        e.to_string().starts_with("c.toml: defaults.timeout:"),
        "{e}"
    );
    let e = FileConfig::parse("c.toml", "[pool]\nsize = 3\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `size`"), "{e}");
    let e = FileConfig::parse("c.toml", "[defaults]\nmemory = \"2GiB\"\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("defaults.memory: 2GiB is above maxima.memory (1GiB)"),
        "{e}"
    );
    let e = FileConfig::parse("c.toml", "[versions]\nkeep = 0\n").unwrap_err();
    assert!(
        e.to_string().contains("versions.keep: must be at least 1"),
        "{e}"
    );
    let e = FileConfig::parse("c.toml", "[canary]\nmax_error_rate_increase = 150.0\n").unwrap_err();
    assert!(
        e.to_string().contains("canary.max_error_rate_increase"),
        "{e}"
    );
    for bad in ["apps.example.com:8080", "*.example.com", "a..b", ""] {
        let text = format!("[projects]\nbase_domain = \"{bad}\"\n");
        let e = FileConfig::parse("c.toml", &text).unwrap_err();
        assert!(e.to_string().contains("projects.base_domain"), "{bad}: {e}");
    }
}

#[test]
fn base_domain_defaults_to_localhost_and_is_lower_cased() {
    assert_eq!(
        FileConfig::parse("c.toml", "").unwrap().base_domain,
        "localhost"
    );
    let c = FileConfig::parse(
        "c.toml",
        "[projects]\nbase_domain = \"Apps.Example.com.\"\n",
    )
    .unwrap();
    assert_eq!(c.base_domain, "apps.example.com");
}

#[test]
fn resolves_defaults_and_checks_maxima() {
    let limits = Limits {
        max_memory: 64 << 20,
        ..Limits::default()
    };
    let m = updraft_manifest::Manifest::parse(
        "updraft.toml",
        "[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\ncomponent = \"f.wasm\"\nmemory = \"128MiB\"\ninstance_reuse = \"warm\"\n",
    )
    .unwrap();
    let f = &m.functions[0];
    let e = limits.resolve(f);
    assert_eq!(e.timeout, limits.timeout);
    assert_eq!(e.max_reuse, Some(limits.max_reuse));
    assert_eq!(
        limits.check(0, f),
        vec!["functions[0].memory: 128MiB is more than this server allows (at most 64MiB)"]
    );
}

#[test]
fn parses_metering_logs_pricing_quotas_and_tracing() {
    let c = FileConfig::parse(
        "c.toml",
        r#"
[metering]
enabled = false
retention = "40d"
[logs]
enabled = false
max_age = "2d"
max_size = "10MiB"
[pricing]
per_million_requests = 1.5
free_gb_seconds = 100
[quotas.default]
invocations_per_day = 10
[tracing]
otlp_endpoint = "http://127.0.0.1:4318/v1/traces"
"#,
    )
    .unwrap();
    assert!(!c.metering && !c.logs);
    assert_eq!(
        c.retention.invocation_max_age,
        Duration::from_secs(40 * 86_400)
    );
    assert_eq!(c.retention.log_max_age, Duration::from_secs(2 * 86_400));
    assert_eq!(c.retention.log_max_bytes, 10 << 20);
    assert_eq!(c.prices.per_million_requests, 1.5);
    assert_eq!(c.prices.per_gb_second, default_prices().per_gb_second);
    assert_eq!(c.prices.free_gb_seconds, 100.0);
    assert_eq!(c.prices.source, "c.toml [pricing]");
    assert_eq!(c.project_quotas["default"].invocations_per_day, Some(10));
    assert_eq!(
        c.tracing.otlp_endpoint.as_deref(),
        Some("http://127.0.0.1:4318/v1/traces")
    );
    let d = FileConfig::default();
    assert!(d.metering && d.logs && d.tracing.otlp_endpoint.is_none());
    assert_eq!(d.prices.per_million_requests, 0.20);

    for (text, message) in [
        (
            "[metering]\nretention = \"7d\"\n",
            "metering.retention: must be at least 32d",
        ),
        (
            "[pricing]\nper_gb_second = -1.0\n",
            "pricing.per_gb_second: must be a number",
        ),
        (
            "[quotas.default]\ninvocations_per_day = 0\n",
            "quotas.default: limits must be at least 1",
        ),
        (
            "[quotas.default]\nrequests = 5\n",
            "unknown field `requests`",
        ),
        (
            "[tracing]\notlp_endpoint = \"grpc://x\"\n",
            "tracing.otlp_endpoint: `grpc://x` is not",
        ),
        (
            "[logs]\nmax_age = \"1w\"\n",
            "logs.max_age: `1w` has an unknown unit",
        ),
    ] {
        let e = FileConfig::parse("c.toml", text).unwrap_err().to_string();
        assert!(e.contains(message), "{text}: {e}");
    }
}

#[test]
fn sandbox_limits_parse_with_defaults_and_clear_errors() {
    let c = FileConfig::parse("s.toml", "[sandbox]\nmax_resources = 50\n").unwrap();
    assert_eq!(c.sandbox.max_resources, 50);
    assert_eq!(c.sandbox.max_outbound_requests, 32);
    assert_eq!(c.sandbox.max_field_bytes, 128 << 10);
    let e = FileConfig::parse("s.toml", "[sandbox]\nmax_outbound_requests = 0\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("sandbox.max_outbound_requests: must be at least 1"),
        "{e}"
    );
    let e = FileConfig::parse("s.toml", "[sandbox]\nmax_field_bytes = \"12\"\n").unwrap_err();
    assert!(e.to_string().contains("sandbox.max_field_bytes"), "{e}");
    assert_eq!(c.sandbox.long_run_after, Duration::from_millis(20));
    assert!(c.sandbox.long_run_threads >= 1);
    let c = FileConfig::parse(
        "s.toml",
        "[sandbox]\nlong_run_after = \"5ms\"\nlong_run_threads = 3\n",
    )
    .unwrap();
    assert_eq!(c.sandbox.long_run_after, Duration::from_millis(5));
    assert_eq!(c.sandbox.long_run_threads, 3);
    for (text, message) in [
        (
            "long_run_after = \"0s\"",
            "sandbox.long_run_after: must be at least 1ms",
        ),
        ("long_run_after = \"soon\"", "sandbox.long_run_after"),
        (
            "long_run_threads = 0",
            "sandbox.long_run_threads: must be at least 1",
        ),
    ] {
        let e = FileConfig::parse("s.toml", &format!("[sandbox]\n{text}\n")).unwrap_err();
        assert!(e.to_string().contains(message), "{text}: {e}");
    }
    let c = FileConfig::parse(
        "s.toml",
        "[http]\nheader_read_timeout = \"2s\"\nmax_connections = 7\n",
    )
    .unwrap();
    assert_eq!(
        c.http.header_read_timeout,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(
        (c.http.max_connections, c.control_http.max_connections),
        (7, 1000)
    );
    assert_eq!(
        c.control_http.header_read_timeout,
        std::time::Duration::from_secs(2)
    );
    let e = FileConfig::parse("s.toml", "[http]\nmax_connections = 0\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("http.max_connections: must be at least 1"),
        "{e}"
    );
}

#[test]
fn auth_settings_parse_and_bad_ones_are_named() {
    let c = FileConfig::parse(
        "c.toml",
        "[auth]\naccess_token_ttl = \"15m\"\nsignup = false\nper_ip_per_minute = 5\n",
    )
    .unwrap();
    assert_eq!(c.auth.access_token_ttl, Duration::from_secs(900));
    assert!(!c.auth.signup_enabled);
    assert_eq!(c.auth.per_ip_per_minute, 5);
    assert_eq!(c.auth.per_account_per_hour, 30);
    for (text, key) in [
        (
            "[auth]\naccess_token_ttl = \"0s\"\n",
            "auth.access_token_ttl",
        ),
        ("[auth]\nper_ip_per_minute = 0\n", "auth.per_ip_per_minute"),
        ("[auth]\nsign_up = true\n", "unknown field `sign_up`"),
    ] {
        let e = FileConfig::parse("c.toml", text).unwrap_err();
        assert!(e.to_string().contains(key), "{text}: {e}");
    }
}

#[test]
fn smtp_settings_are_checked() {
    let c = FileConfig::parse(
        "c.toml",
        "[auth.smtp]\nhost = \"mail.example.com\"\nfrom = \"no-reply@example.com\"\n",
    )
    .unwrap();
    let smtp = c.auth.smtp.unwrap();
    assert_eq!(smtp.port, 587);
    assert!(smtp.credentials.is_none());
    for (text, want) in [
        ("host = \"h\"\nfrom = \"not an address\"", "auth.smtp.from"),
        (
            "host = \"h\"\nfrom = \"a@b.c\"\nsecurity = \"ssl\"",
            "auth.smtp.security",
        ),
        (
            "host = \"h\"\nfrom = \"a@b.c\"\nusername = \"u\"",
            "go together",
        ),
        (
            "host = \"h\"\nfrom = \"a@b.c\"\nusername = \"u\"\npassword_env = \"UPDRAFT_NO_SUCH_VAR\"",
            "is not set",
        ),
        (
            "host = \"h\"\nfrom = \"a@b.c\"\npassword = \"inline\"",
            "unknown field `password`",
        ),
    ] {
        let e = FileConfig::parse("c.toml", &format!("[auth.smtp]\n{text}\n")).unwrap_err();
        assert!(e.to_string().contains(want), "{text}: {e}");
    }
}

#[test]
fn key_value_limits_parse_with_defaults_and_clear_errors() {
    let c = FileConfig::parse("s.toml", "").unwrap();
    assert_eq!(c.key_value, updraft_services::kv::KvConfig::default());
    let c = FileConfig::parse(
        "s.toml",
        "[key_value]\nmax_value_bytes = \"4KiB\"\nmax_project_bytes = \"10MiB\"\npage_size = 7\n",
    )
    .unwrap();
    assert_eq!(c.key_value.max_value_bytes, 4096);
    assert_eq!(c.key_value.max_project_bytes, 10 << 20);
    assert_eq!(c.key_value.page, 7);
    assert_eq!(c.key_value.max_key_bytes, 1024);
    for (text, message) in [
        (
            "max_key_bytes = \"8\"",
            "key_value.max_key_bytes: must be at least 16",
        ),
        ("max_value_bytes = \"lots\"", "key_value.max_value_bytes"),
        ("page_size = 0", "key_value.page_size: must be at least 1"),
        ("max_batch = 0", "key_value.max_batch: must be at least 1"),
        ("quota = 1", "unknown field `quota`"),
    ] {
        let e = FileConfig::parse("s.toml", &format!("[key_value]\n{text}\n")).unwrap_err();
        assert!(e.to_string().contains(message), "{text}: {e}");
    }
}

#[test]
fn document_limits_parse_with_defaults_and_clear_errors() {
    let c = FileConfig::parse(
        "s.toml",
        "[documents]\nmax_document_bytes = \"4KiB\"\nchanges_max_age = \"1h\"\n",
    )
    .unwrap();
    assert_eq!(c.documents.max_document_bytes, 4096);
    assert_eq!(c.documents.changes_max_age, Duration::from_secs(3600));
    assert_eq!(c.documents.page, 100);
    for (text, message) in [
        (
            "page_size = 2000",
            "documents.page_size: must not be more than max_page",
        ),
        (
            "max_document_bytes = \"10\"",
            "documents.max_document_bytes: must be at least 64",
        ),
        ("changes_max_age = \"0s\"", "documents.changes_max_age"),
        ("max_page = 0", "documents.max_page: must be at least 1"),
    ] {
        let e = FileConfig::parse("s.toml", &format!("[documents]\n{text}\n")).unwrap_err();
        assert!(e.to_string().contains(message), "{text}: {e}");
    }
}

#[test]
fn process_cgroup_setting_parses_and_bad_ones_are_named() {
    use updraft_process::CgroupParent;
    let parse = |v: &str| FileConfig::parse("p.toml", &format!("[process]\ncgroup = {v:?}\n"));
    assert_eq!(
        FileConfig::parse("p.toml", "").unwrap().process.cgroup,
        CgroupParent::Auto
    );
    assert_eq!(parse("off").unwrap().process.cgroup, CgroupParent::Off);
    assert_eq!(
        parse("/sys/fs/cgroup/updraft.slice")
            .unwrap()
            .process
            .cgroup,
        CgroupParent::Under("/sys/fs/cgroup/updraft.slice".into())
    );
    let e = parse("../escape").unwrap_err().to_string();
    assert!(e.contains("process.cgroup"), "{e}");
}
