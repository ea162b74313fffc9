//! `[[collections]]`: an app's JSON document collections, the fields their queries may use, and
//! their access rules (CEL expressions, checked when the app is deployed).
//!
//! ```toml
//! [[collections]]
//! name = "orders"
//! indexes = ["owner", "status", "total"]
//! composite_indexes = [["status", "total"]]   # `status == x` sorted by `total`, from one index
//! [collections.rules]
//! list = "auth != null && doc.owner == auth.uid"
//! get = "auth != null && doc.owner == auth.uid"
//! create = "auth != null && newDoc.owner == auth.uid"
//! update = "auth != null && doc.owner == auth.uid && newDoc.owner == doc.owner"
//! delete = "false"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Step;

/// The operations a collection's rules govern.
pub const RULE_OPERATIONS: [&str; 5] = ["list", "get", "create", "update", "delete"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCollection {
    name: String,
    #[serde(default)]
    indexes: Vec<String>,
    #[serde(default)]
    composite_indexes: Vec<Vec<String>>,
    #[serde(default)]
    rules: BTreeMap<String, String>,
}

/// One `[[collections]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// `name = "orders"`: unique within the project (the same rules as store names).
    pub name: String,
    /// `indexes = ["owner", "total"]`: the fields queries may filter and sort on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<String>,
    /// `composite_indexes = [["status", "total"]]`: 2 to 4 of `indexes` each, so that an
    /// equality filter on the first with a sort on the second is served from one index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub composite_indexes: Vec<Vec<String>>,
    /// `rules = { get = "..." }`: per operation, the CEL expression that must be true for an
    /// end user (or an anonymous caller) to do it. An operation without one is open only to
    /// keys, admins and functions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, String>,
}

/// Whether `field` is a valid field path: dot-separated names of letters, digits and `_`, not
/// starting with a digit, at most 128 bytes.
pub fn is_field_path(field: &str) -> bool {
    (1..=128).contains(&field.len())
        && field.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

fn key(k: &str) -> Step {
    Step::Key(k.to_owned())
}

/// Whether `name` is a valid key-value store (or collection) name: 1 to 63 of `a-z`, `0-9`,
/// `-`, `_`, starting with a letter or digit.
pub fn is_store_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.starts_with(|ch: char| ch.is_ascii_alphanumeric())
}

/// Problems found, each with its key path.
pub(crate) type Problems = Vec<(Vec<Step>, String)>;

/// Checks the `[[collections]]` tables.
pub(crate) fn validate(raw: Vec<RawCollection>) -> (Vec<Collection>, Problems) {
    let mut problems: Problems = Vec::new();
    let mut report = |path: &[Step], message: String| problems.push((path.to_vec(), message));
    let mut out: Vec<Collection> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let at = |k: &str| vec![key("collections"), Step::Index(i), key(k)];
        if !is_store_name(&r.name) {
            report(
                &at("name"),
                format!(
                    "`{}` is not a valid collection name (1 to 63 of a-z, 0-9, `-`, `_`, \
                     starting with a letter or digit)",
                    r.name
                ),
            );
        } else if out.iter().any(|o| o.name == r.name) {
            report(
                &at("name"),
                format!("collection `{}` is declared twice", r.name),
            );
        }
        for (j, f) in r.indexes.iter().enumerate() {
            let mut p = at("indexes");
            p.push(Step::Index(j));
            if !is_field_path(f) {
                report(
                    &p,
                    format!(
                        "`{f}` is not a field path (dot-separated names of letters, digits \
                         and `_`)"
                    ),
                );
            } else if r.indexes[..j].contains(f) {
                report(&p, format!("`{f}` is listed twice"));
            }
        }
        for (j, fields) in r.composite_indexes.iter().enumerate() {
            let mut p = at("composite_indexes");
            p.push(Step::Index(j));
            if !(2..=4).contains(&fields.len()) {
                report(&p, "a composite index has 2 to 4 fields".into());
            } else if let Some(f) = fields.iter().find(|f| !r.indexes.contains(f)) {
                report(
                    &p,
                    format!("`{f}` is not one of the collection's `indexes`; declare it there too"),
                );
            } else if (1..fields.len()).any(|k| fields[..k].contains(&fields[k])) {
                report(&p, "a field is listed twice".into());
            } else if r.composite_indexes[..j].contains(fields) {
                report(&p, "this composite index is listed twice".into());
            }
        }
        for (op, rule) in &r.rules {
            let mut p = at("rules");
            p.push(key(op));
            if !RULE_OPERATIONS.contains(&op.as_str()) {
                report(
                    &p,
                    format!(
                        "`{op}` is not an operation (one of {})",
                        RULE_OPERATIONS.join(", ")
                    ),
                );
            } else if rule.trim().is_empty() {
                report(
                    &p,
                    "a rule must be an expression (leave it out to deny users)".into(),
                );
            }
        }
        out.push(Collection {
            name: r.name,
            indexes: r.indexes,
            composite_indexes: r.composite_indexes,
            rules: r.rules,
        });
    }
    (out, problems)
}
