use super::*;

#[test]
fn artifacts_are_content_addressed_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = b"\0asm fake";
    let digest = hex::encode(Sha256::digest(bytes));
    assert!(!store.has_artifact(&digest).unwrap());
    let wrong = "0".repeat(64);
    assert!(matches!(
        store.put_artifact(&wrong, bytes),
        Err(StoreError::DigestMismatch { .. })
    ));
    store.put_artifact(&digest, bytes).unwrap();
    assert!(store.has_artifact(&digest).unwrap());
    assert_eq!(std::fs::read(store.artifact_path(&digest)).unwrap(), bytes);
    // Idempotent.
    store.put_artifact(&digest, bytes).unwrap();
}
