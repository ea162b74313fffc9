//! Documents as JSON: the API's envelope, ids, and merge patches.

use rand::Rng;
use serde_json::{Value, json};
use updraft_store::DocRecord;

/// A document as the API shows it.
pub(super) fn view(r: &DocRecord) -> Value {
    json!({
        "id": r.id,
        "revision": r.revision,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "data": serde_json::from_str::<Value>(&r.body).unwrap_or(Value::Null),
    })
}

pub(super) fn data(r: &DocRecord) -> Value {
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

/// A new document id: 20 characters of `[A-Za-z0-9]` (119 bits).
pub(super) fn new_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// RFC 7396 JSON merge patch.
pub(super) fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}
