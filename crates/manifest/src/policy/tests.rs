#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::json;

fn parse(s: &str) -> Result<RoutePolicy, String> {
    let v: toml::Table = toml::from_str(&format!("auth = {s}")).map_err(|e| e.to_string())?;
    RoutePolicy::parse(&v["auth"])
}

#[test]
fn policies_parse_and_claims_match_by_path() {
    assert_eq!(parse("\"user\""), Ok(RoutePolicy::User));
    assert_eq!(parse("\"key\""), Ok(RoutePolicy::Key));
    let p = parse("{ claims = { role = [\"admin\", \"owner\"], \"app_metadata.plan\" = \"pro\", is_anonymous = false } }")
        .unwrap();
    let good = json!({"role": "admin", "app_metadata": {"plan": "pro"}, "is_anonymous": false});
    assert_eq!(p.unmet(&good), None);
    let bad =
        json!({"role": "authenticated", "app_metadata": {"plan": "pro"}, "is_anonymous": false});
    assert_eq!(p.unmet(&bad), Some("role"));
    let missing = json!({"role": "admin", "is_anonymous": false});
    assert_eq!(p.unmet(&missing), Some("app_metadata.plan"));
    for bad in [
        "\"users\"",
        "{ roles = {} }",
        "{ claims = {} }",
        "{ claims = { role = [] } }",
        "{ claims = { role = 1 } }",
        "3",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
