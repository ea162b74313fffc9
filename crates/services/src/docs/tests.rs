//! Rules and merge patches in isolation.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use updraft_manifest::Collection;

use super::json::merge;
use super::rules::Rules;

fn rules(pairs: &[(&str, &str)]) -> Result<Rules, String> {
    Rules::compile(&Collection {
        name: "c".into(),
        indexes: vec![],
        composite_indexes: vec![],
        rules: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    })
}

#[test]
fn rules_allow_only_on_true() {
    let r = rules(&[
        ("get", "auth != null && doc.owner == auth.uid"),
        ("create", "newDoc.n > 3 && id.startsWith('x')"),
        ("update", "doc.missing.field == 1"),
    ])
    .unwrap();
    let ann = json!({"uid": "ann", "role": "authenticated"});
    let doc = json!({"owner": "ann"});
    assert!(r.allows("get", &ann, "d", Some(&doc), None));
    assert!(!r.allows("get", &json!({"uid": "bob"}), "d", Some(&doc), None));
    assert!(!r.allows("get", &Value::Null, "d", Some(&doc), None));
    // A missing document reads as null: the rule fails closed.
    assert!(!r.allows("get", &ann, "d", None, None));
    assert!(r.allows("create", &ann, "x1", None, Some(&json!({"n": 4}))));
    assert!(!r.allows("create", &ann, "y1", None, Some(&json!({"n": 4}))));
    // An evaluation error denies.
    assert!(!r.allows("update", &ann, "d", Some(&doc), Some(&doc)));
    // No rule: denied.
    assert!(!r.has("delete") && !r.allows("delete", &ann, "d", Some(&doc), None));
    // A rule that does not parse names itself.
    let e = rules(&[("list", "doc.owner ==")]).unwrap_err();
    assert!(e.contains("rule `list`"), "{e}");
}

#[test]
fn merge_patches_follow_rfc_7396() {
    let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
    merge(&mut doc, &json!({"a": "z", "c": {"f": null}}));
    assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
    merge(&mut doc, &json!({"c": [1, 2]}));
    assert_eq!(doc, json!({"a": "z", "c": [1, 2]}));
}
