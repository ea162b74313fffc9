//! SQLite-specific: migrations of old data directories. What every metadata backend must do is
//! in the conformance suite (`crate::conformance::metadata`).

#![allow(clippy::unwrap_used)]

use super::*;
use crate::DEFAULT_PROJECT as P;
use updraft_manifest::Manifest;

fn manifest(app: &str, fns: &[(&str, &str)]) -> Manifest {
    let mut text = format!("[app]\nname = \"{app}\"\n");
    for (f, extra) in fns {
        text.push_str(&format!(
            "[[functions]]\nname = \"{f}\"\ncomponent = \"{f}.wasm\"\n{extra}\n"
        ));
    }
    Manifest::parse("updraft.toml", &text).unwrap()
}

#[test]
fn databases_from_before_versions_are_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("updraft.db");
    let spec = serde_json::to_string(&manifest("shop", &[("a", "")]).functions[0]).unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(crate::db::MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO projects VALUES ('default', 1);
             INSERT INTO artifacts VALUES ('d1', 1, 1);
             INSERT INTO apps VALUES ('default', 'shop', 'manifest text', 1);
             INSERT INTO functions VALUES ('default', 'a', 'shop', 'd1', '{spec}', 7);"
        ))
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let f = store.function(P, "a").unwrap().unwrap();
    assert_eq!(f.app, "shop");
    assert_eq!(f.versions.len(), 1);
    assert_eq!(f.versions[0].digest, "d1");
    assert_eq!(f.versions[0].created_at, 7);
    assert_eq!(f.alias(LIVE).unwrap().version, 1);
    assert_eq!(
        store.version_manifest(P, "a", 1).unwrap().as_deref(),
        Some("manifest text")
    );
}
