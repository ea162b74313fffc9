use super::*;
use serde_json::json;

#[test]
fn every_change_has_an_action_and_traffic_has_none() {
    let post = Method::POST;
    assert_eq!(action(&post, "/v1/apps"), Some("deploy"));
    assert_eq!(
        action(&Method::DELETE, "/v1/functions/{name}/aliases/{alias}"),
        Some("alias.delete")
    );
    assert_eq!(
        action(&Method::PUT, "/v1/secrets/{name}"),
        Some("secret.set")
    );
    assert_eq!(action(&post, "/v1/queues/{q}/messages"), None);
    assert_eq!(action(&post, "/v1/functions/{name}/invoke"), None);
    assert_eq!(action(&Method::GET, "/v1/apps"), None);
    // Something new is recorded, never skipped.
    assert_eq!(action(&post, "/v1/brand-new"), Some("other"));
}

#[test]
fn details_never_carry_keys_and_name_what_was_made() {
    let created = json!({"id": "key_1", "key": "upd_secret", "role": "viewer", "project": "p"});
    let d = detail("key.create", 201, &created);
    assert_eq!(d, "role viewer");
    assert_eq!(target("/v1/keys", "key.create", &created), "keys/key_1");
    let queue = json!({"queue": {"name": "orders"}, "access_key": "uq_secret"});
    assert_eq!(
        target("/v1/queues", "queue.create", &queue),
        "queues/orders"
    );
    assert!(detail("queue.create", 201, &queue).is_empty());
    let deploy = json!({"app": "shop", "published": {"a": 3}, "removed": ["b"]});
    assert_eq!(detail("deploy", 200, &deploy), "published a v3; removed b");
    let failed = json!({"error": {"code": "conflict", "message": "x\u{1b}[31m".repeat(200)}});
    let d = detail("deploy", 409, &failed);
    assert!(
        d.chars().count() <= MAX_DETAIL + 1 && !d.contains('\u{1b}'),
        "{d}"
    );
    assert_eq!(outcome(201), "ok");
    assert_eq!(outcome(403), "denied");
    assert_eq!(outcome(409), "failed");
}
