use super::*;

#[test]
fn admin_tokens_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.add_admin_token("abc").unwrap();
    assert_eq!(store.admin_tokens().unwrap(), ["abc"]);
}
