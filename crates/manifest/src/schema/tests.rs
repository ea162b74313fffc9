use super::*;

const GOOD: &str = r#"
[app]
name = "shop"

[[functions]]
name = "hello"
component = "target/wasm32-wasip2/release/hello.wasm"
build = "cargo build --release --target wasm32-wasip2"
env = { GREETING = "hi" }
allowed_outbound_hosts = ["https://api.example.com"]
timeout = "10s"
memory = "64MiB"
max_concurrency = 5
min_instances = 1
idle_timeout = "2m"
instance_reuse = "warm"
max_reuse = 50
max_request_body = "1MiB"
max_response_body = "2MiB"
allow_version_pinning = true

[[functions.http]]
route = "/hello/:name"
methods = ["get"]

[[functions.http]]
route = "/static/..."
alias = "staging"
"#;

fn err(text: &str) -> String {
    Manifest::parse("updraft.toml", text)
        .unwrap_err()
        .to_string()
}

#[test]
fn parses_the_documented_shape() {
    let m = Manifest::parse("updraft.toml", GOOD).unwrap();
    assert_eq!(m.app.name.as_str(), "shop");
    let f = &m.functions[0];
    assert_eq!(f.name.as_str(), "hello");
    assert_eq!(f.timeout_ms, Some(10_000));
    assert_eq!(f.memory_bytes, Some(64 << 20));
    assert_eq!(f.max_concurrency, Some(5));
    assert_eq!(f.min_instances, 1);
    assert_eq!(f.idle_timeout_ms, Some(120_000));
    assert_eq!(f.instance_reuse, InstanceReuse::Warm);
    assert_eq!(f.max_reuse, Some(50));
    assert_eq!(f.max_request_body, Some(1 << 20));
    assert_eq!(f.max_response_body, Some(2 << 20));
    assert_eq!(f.env["GREETING"], "hi");
    assert_eq!(f.http[0].methods, vec![Method("GET".into())]);
    assert!(f.http[1].methods.is_empty());
    assert!(f.http[1].accepts("DELETE"));
    assert!(f.allow_version_pinning);
    assert_eq!(f.http[0].alias(), "live");
    assert_eq!(f.http[1].alias(), "staging");
    // The model round-trips through JSON (it is stored that way).
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
}

#[test]
fn defaults() {
    let m = Manifest::parse(
        "updraft.toml",
        "[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\ncomponent = \"f.wasm\"\n",
    )
    .unwrap();
    let f = &m.functions[0];
    // Unset limits are left to the server's defaults.
    assert_eq!(f.timeout_ms, None);
    assert_eq!(f.memory_bytes, None);
    assert_eq!(f.max_concurrency, None);
    assert_eq!(f.min_instances, 0);
    assert_eq!(f.instance_reuse, InstanceReuse::Fresh);
    assert_eq!(f.max_reuse, None);
    assert!(!f.allow_version_pinning);
}

#[test]
fn route_alias_must_be_a_name() {
    let text = GOOD.replace("alias = \"staging\"", "alias = \"Staging!\"");
    let e = err(&text);
    assert!(e.contains("functions[0].http[1].alias"), "{e}");
    assert!(e.contains("not a valid name"), "{e}");
}

#[test]
fn specs_stored_before_versions_still_decode() {
    // Specs stored by earlier releases have no `alias` or `allow_version_pinning`.
    let m = Manifest::parse("updraft.toml", GOOD).unwrap();
    let mut json = serde_json::to_value(&m.functions[0]).unwrap();
    let obj = json.as_object_mut().unwrap();
    obj.remove("allow_version_pinning");
    obj["http"][1].as_object_mut().unwrap().remove("alias");
    let f: Function = serde_json::from_value(json).unwrap();
    assert!(!f.allow_version_pinning);
    assert_eq!(f.http[1].alias, None);
}

#[test]
fn semantic_error_names_line_and_key() {
    let text = GOOD.replace("route = \"/static/...\"", "route = \"static\"");
    assert_eq!(
        err(&text),
        "updraft.toml:27: functions[0].http[1].route: must start with '/'"
    );
}

#[test]
fn unknown_key_names_line_and_key() {
    let text = GOOD.replace("memory = \"64MiB\"", "memroy = \"64MiB\"");
    let e = err(&text);
    assert!(
        e.starts_with("updraft.toml:12: functions[0].memroy: unknown field `memroy`"),
        "{e}"
    );
}

#[test]
fn syntax_error_has_line() {
    let e = err("[app]\nname = \"a\"\n[[functions]]\nname = \n");
    assert!(e.starts_with("updraft.toml:4:"), "{e}");
}

#[test]
fn missing_key_is_reported() {
    let e = err("[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\n");
    assert!(
        e.contains("functions[0].component: must be the path of a .wasm component"),
        "{e}"
    );
}

#[test]
fn several_problems_are_all_reported() {
    let text = r#"
[app]
name = "Shop"

[[functions]]
name = "a"
component = "a.wasm"
timeout = "forever"
memory = "12XB"
max_concurrency = 0
env = { "1BAD" = "x" }
allowed_outbound_hosts = ["api.example.com"]

[[functions.http]]
route = "/x"
methods = ["FETCH"]

[[functions]]
name = "a"
component = "b.wasm"

[[functions.http]]
route = "/x"
"#;
    let e = err(text);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 9, "{e}");
    assert!(lines[0].starts_with("updraft.toml:3: app.name: `Shop` is not a valid name"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("updraft.toml:8: functions[0].timeout:"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("updraft.toml:9: functions[0].memory:"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("updraft.toml:10: functions[0].max_concurrency:"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("updraft.toml:11: functions[0].env.1BAD:"))
    );
    assert!(lines.iter().any(|l| l.starts_with(
        "updraft.toml:12: functions[0].allowed_outbound_hosts[0]: `api.example.com`"
    )));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("updraft.toml:16: functions[0].http[0].methods[0]:"))
    );
    assert!(lines.contains(
        &"updraft.toml:19: functions[1].name: function `a` is already defined by functions[0]"
    ));
    assert!(lines.contains(
        &"updraft.toml:23: functions[1].http[0].route: `/x` conflicts with `/x` at functions[0].http[0]"
    ));
}

#[test]
fn same_shape_with_disjoint_methods_is_fine() {
    let text = r#"
[app]
name = "a"
[[functions]]
name = "r"
component = "r.wasm"
[[functions.http]]
route = "/items/:id"
methods = ["GET"]
[[functions]]
name = "w"
component = "w.wasm"
[[functions.http]]
route = "/items/:item"
methods = ["PUT", "DELETE"]
"#;
    assert!(Manifest::parse("updraft.toml", text).is_ok());
}

#[test]
fn names() {
    assert!(Name::new("hello-world2").is_ok());
    assert!(Name::new("Hello").is_err());
    assert!(Name::new("2x").is_err());
    assert!(Name::new("a-").is_err());
    assert!(Name::new("").is_err());
    assert!(Name::new(&"a".repeat(64)).is_err());
}

#[test]
fn instance_settings_are_checked() {
    let base = "[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\ncomponent = \"f.wasm\"\n";
    let e = err(&format!("{base}instance_reuse = \"sometimes\"\n"));
    assert!(
        e.contains(
            "updraft.toml:6: functions[0].instance_reuse: `sometimes` is not an instance reuse mode"
        ),
        "{e}"
    );
    let e = err(&format!("{base}max_reuse = 10\n"));
    assert!(
        e.contains("functions[0].max_reuse: only applies with instance_reuse = \"warm\""),
        "{e}"
    );
    let e = err(&format!("{base}max_concurrency = 2\nmin_instances = 3\n"));
    assert!(
        e.contains("updraft.toml:7: functions[0].min_instances: must be between 0 and 2"),
        "{e}"
    );
    let e = err(&format!("{base}idle_timeout = \"0s\"\n"));
    assert!(
        e.contains("functions[0].idle_timeout: must be between 1ms and 1d"),
        "{e}"
    );
    let e = err(&format!("{base}max_request_body = \"5GiB\"\n"));
    assert!(
        e.contains("functions[0].max_request_body: must be between 0B and 4GiB"),
        "{e}"
    );
}

#[test]
fn quotas_are_parsed_and_checked() {
    let base = "[app]\nname = \"a\"\n\n[[functions]]\nname = \"f\"\ncomponent = \"f.wasm\"\n";
    let m = Manifest::parse(
        "updraft.toml",
        &format!("{base}quota = {{ invocations_per_day = 100, gb_seconds_per_month = 50 }}\n"),
    )
    .unwrap();
    assert_eq!(
        m.functions[0].quota.limits(),
        [
            (QuotaMetric::Invocations, QuotaPeriod::Day, 100),
            (QuotaMetric::GbSeconds, QuotaPeriod::Month, 50)
        ]
    );
    let e = Manifest::parse(
        "updraft.toml",
        &format!("{base}quota = {{ invocations_per_day = 0 }}\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("functions[0].quota: limits must be at least 1"),
        "{e}"
    );
    let e = Manifest::parse(
        "updraft.toml",
        &format!("{base}quota = {{ requests_per_day = 5 }}\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("requests_per_day"), "{e}");
    // Specs stored before quotas existed decode without them.
    let old = serde_json::to_value(&m.functions[0]).unwrap();
    let mut old = old.as_object().unwrap().clone();
    old.remove("quota");
    let f: Function = serde_json::from_value(old.into()).unwrap();
    assert!(f.quota.limits().is_empty());
}

const EVENTS: &str = r#"[app]
name = "shop"

[[functions]]
name = "worker"
component = "w.wasm"

[[functions.schedule]]
cron = "*/5 * * * *"
timezone = "Europe/Berlin"

[[functions.schedule]]
rate = "30s"
max_attempts = 5

[[functions.queue]]
queue = "orders"
batch_size = 10
dead_letter = "orders-failed"

[[functions.topic]]
topic = "signups"
filter = { plan = "pro", region = ["eu", "us"] }
"#;

#[test]
fn event_triggers_parse() {
    let m = Manifest::parse("updraft.toml", EVENTS).unwrap();
    let f = &m.functions[0];
    assert_eq!(f.schedule.len(), 2);
    assert_eq!(f.schedule[0].timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(f.schedule[0].retry.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(f.schedule[1].rate_ms, Some(30_000));
    assert_eq!(f.schedule[1].retry.max_attempts, 5);
    assert_eq!(f.queue[0].batch_size, 10);
    assert_eq!(
        f.queue[0].retry.dead_letter.as_deref(),
        Some("orders-failed")
    );
    assert_eq!(
        f.topic[0].filter.0["region"],
        vec!["eu".to_owned(), "us".to_owned()]
    );
    assert_eq!(f.topic[0].filter.0["plan"], vec!["pro".to_owned()]);
    // The stored spec round-trips.
    let json = serde_json::to_string(f).unwrap();
    assert_eq!(&serde_json::from_str::<Function>(&json).unwrap(), f);
}

#[test]
fn bad_event_triggers_name_line_and_key() {
    let e = err(&EVENTS.replace("*/5 * * * *", "*/5 * * *"));
    assert!(
        e.starts_with(
            "updraft.toml:9: functions[0].schedule[0].cron: `*/5 * * *` is not a cron expression"
        ),
        "{e}"
    );
    let e = err(&EVENTS
        .replace("61", "x")
        .replace("*/5 * * * *", "61 * * * *"));
    assert!(
        e.contains("functions[0].schedule[0].cron: `61 * * * *` is not a valid cron"),
        "{e}"
    );
    let e = err(&EVENTS.replace("Europe/Berlin", "Mars/Olympus"));
    assert!(
        e.contains(":10: functions[0].schedule[0].timezone: `Mars/Olympus`"),
        "{e}"
    );
    let e = err(&EVENTS.replace("rate = \"30s\"", "rate = \"0s\""));
    assert!(e.contains(":13: functions[0].schedule[1].rate:"), "{e}");
    let e = err(&EVENTS.replace("queue = \"orders\"", "queue = \"Orders!\""));
    assert!(
        e.contains(":17: functions[0].queue[0].queue: `Orders!` is not a valid queue name"),
        "{e}"
    );
    let e = err(&EVENTS.replace("batch_size = 10", "batch_size = 0"));
    assert!(
        e.contains("functions[0].queue[0].batch_size: must be between 1 and 100"),
        "{e}"
    );
    let e = err(&EVENTS.replace("max_attempts = 5", "max_attempts = 0"));
    assert!(
        e.contains("functions[0].schedule[1].max_attempts: must be between 1 and 100"),
        "{e}"
    );
    let e = err(&EVENTS.replace("rate = \"30s\"", "rate = \"30s\"\ncron = \"* * * * *\""));
    assert!(e.contains("give `cron` or `rate`, not both"), "{e}");
    let e = err(&EVENTS.replace("region = [\"eu\", \"us\"]", "region = []"));
    assert!(e.contains("filter `region` lists no values"), "{e}");
}

#[test]
fn secrets_are_names_granted_per_function() {
    let m = Manifest::parse(
        "updraft.toml",
        "[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\ncomponent = \"f.wasm\"\nsecrets = [\"STRIPE_KEY\", \"_X1\"]\n",
    )
    .unwrap();
    assert_eq!(m.functions[0].secrets, ["STRIPE_KEY", "_X1"]);
    // A function without secrets serializes as before, so stored specs compare equal.
    let plain = Manifest::parse(GOOD_MINIMAL, GOOD_MINIMAL_TEXT).unwrap();
    let json = serde_json::to_string(&plain.functions[0]).unwrap();
    assert!(!json.contains("secrets"), "{json}");
    for (line, needle) in [
        ("secrets = [\"1X\"]", "`1X` is not a valid secret name"),
        ("secrets = [\"../k\"]", "not a valid secret name"),
        ("secrets = [\"K\", \"K\"]", "`K` is listed twice"),
        (
            "secrets = [\"K\"]\nenv = { K = \"v\" }",
            "`K` is also set in env",
        ),
    ] {
        let e = err(&format!(
            "[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\ncomponent = \"f.wasm\"\n{line}\n"
        ));
        assert!(e.contains(needle), "{line}: {e}");
        assert!(e.contains("functions[0].secrets"), "{e}");
    }
}

const GOOD_MINIMAL: &str = "updraft.toml";
const GOOD_MINIMAL_TEXT: &str =
    "[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\ncomponent = \"f.wasm\"\n";

#[test]
fn db_triggers_and_collection_grants_name_declared_collections() {
    let base = r#"
[app]
name = "shop"

[[collections]]
name = "orders"

[[functions]]
name = "on-order"
component = "x.wasm"
"#;
    let m = Manifest::parse(
        "updraft.toml",
        &format!(
            "{base}collections = [\"orders\"]\n[[functions.db]]\ncollection = \"orders\"\nevents = [\"created\", \"deleted\"]\nbatch_size = 5\nmax_attempts = 2\n"
        ),
    )
    .unwrap();
    let f = &m.functions[0];
    assert_eq!(f.collections, ["orders"]);
    let t = &f.db[0];
    assert_eq!((t.collection.as_str(), t.batch_size), ("orders", 5));
    assert_eq!(t.events, ["created", "deleted"]);
    assert_eq!(t.retry.max_attempts, 2);
    // Left out, events are all three.
    let m = Manifest::parse(
        "updraft.toml",
        &format!("{base}[[functions.db]]\ncollection = \"orders\"\n"),
    )
    .unwrap();
    assert_eq!(m.functions[0].db[0].events, DB_EVENTS);

    let e = err(&format!(
        "{base}collections = [\"orders\", \"nope\", \"../x\", \"orders\"]\n[[functions.db]]\ncollection = \"missing\"\nevents = [\"inserted\"]\nbatch_size = 0\n[[functions.db]]\ncollection = \"missing\"\nevents = []\n"
    ));
    for needle in [
        "functions[0].collections[1]: `nope` is not one of the app's [[collections]]",
        "functions[0].collections[2]: `../x` is not a valid collection name",
        "functions[0].collections[3]: `orders` is listed twice",
        "functions[0].db[0].collection: `missing` is not one of the app's [[collections]]",
        "functions[0].db[0].events: `inserted` is not one of created, updated, deleted",
        "functions[0].db[0].batch_size: must be between 1 and 100",
        "functions[0].db[1].collection: `missing` is watched twice",
        "functions[0].db[1].events: list at least one",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
}

#[test]
fn kv_triggers_name_a_store_and_its_events() {
    let base = "[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\ncomponent = \"x.wasm\"\n";
    let m = Manifest::parse(
        "updraft.toml",
        &format!("{base}[[functions.kv]]\nstore = \"sessions\"\nevents = [\"deleted\"]\n"),
    )
    .unwrap();
    let t = &m.functions[0].kv[0];
    assert_eq!(
        (t.store.as_str(), t.events.as_slice()),
        ("sessions", &["deleted".to_owned()][..])
    );
    let m = Manifest::parse(
        "updraft.toml",
        &format!("{base}[[functions.kv]]\nstore = \"s\"\n"),
    )
    .unwrap();
    assert_eq!(m.functions[0].kv[0].events, KV_EVENTS);
    let e = err(&format!(
        "{base}[[functions.kv]]\nstore = \"../s\"\n[[functions.kv]]\nstore = \"t\"\nevents = [\"created\"]\n[[functions.kv]]\nstore = \"t\"\n"
    ));
    for needle in [
        "functions[0].kv[0].store: `../s` is not a valid store name",
        "functions[0].kv[1].events: `created` is not one of set, deleted",
        "functions[0].kv[2].store: `t` is watched twice",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
}

#[test]
fn composite_indexes_are_pairs_of_declared_fields() {
    let base = "[app]\nname = \"a\"\n[[collections]]\nname = \"orders\"\nindexes = [\"status\", \"total\"]\n";
    let m = Manifest::parse(
        "updraft.toml",
        &format!("{base}composite_indexes = [[\"status\", \"total\"]]\n"),
    )
    .unwrap();
    assert_eq!(m.collections[0].composite_indexes, [["status", "total"]]);
    let e = err(&format!(
        "{base}composite_indexes = [[\"status\"], [\"status\", \"owner\"], [\"total\", \"total\"], [\"status\", \"total\"], [\"status\", \"total\"]]\n"
    ));
    for needle in [
        "collections[0].composite_indexes[0]: a composite index has 2 to 4 fields",
        "collections[0].composite_indexes[1]: `owner` is not one of the collection's `indexes`",
        "collections[0].composite_indexes[2]: a field is listed twice",
        "collections[0].composite_indexes[4]: this composite index is listed twice",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
}

#[test]
fn bucket_triggers_name_a_bucket_its_events_and_a_key_filter() {
    let base = "[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\ncomponent = \"x.wasm\"\n";
    let m = Manifest::parse(
        "updraft.toml",
        &format!(
            "{base}[[functions.bucket]]\nbucket = \"uploads\"\nprefix = \"in/\"\nsuffix = \".jpg\"\n"
        ),
    )
    .unwrap();
    let t = &m.functions[0].bucket[0];
    assert_eq!(
        (t.bucket.as_str(), t.prefix.as_str(), t.suffix.as_str()),
        ("uploads", "in/", ".jpg")
    );
    assert_eq!(t.events, crate::BUCKET_EVENTS);
    let long = "x".repeat(1025);
    let e = err(&format!(
        "{base}[[functions.bucket]]\nbucket = \"../b\"\n[[functions.bucket]]\nbucket = \"bbb\"\nevents = [\"set\"]\n[[functions.bucket]]\nbucket = \"bbb\"\nprefix = \"{long}\"\n"
    ));
    for needle in [
        "functions[0].bucket[0].bucket: bucket name `../b`",
        "functions[0].bucket[1].events: `set` is not one of created, removed",
        "functions[0].bucket[2].bucket: `bbb` is watched twice",
        "functions[0].bucket[2].prefix: at most 1024 bytes",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
}

mod process;
mod storage;
