use super::*;

fn key() -> SecretKey {
    SecretKey::from_bytes(&[7; 32]).unwrap()
}

#[test]
fn sealed_values_open_only_as_the_secret_they_were_sealed_as() {
    let k = key();
    let sealed = k.seal("shop", "STRIPE_KEY", b"sk_live_123");
    assert!(!sealed.windows(11).any(|w| w == b"sk_live_123"));
    assert_eq!(
        k.open("shop", "STRIPE_KEY", &sealed).as_deref(),
        Some("sk_live_123")
    );
    // Another row, another project, a flipped bit, a truncation, another key: nothing.
    assert_eq!(k.open("shop", "OTHER", &sealed), None);
    assert_eq!(k.open("default", "STRIPE_KEY", &sealed), None);
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(k.open("shop", "STRIPE_KEY", &flipped), None);
    assert_eq!(k.open("shop", "STRIPE_KEY", &sealed[..10]), None);
    assert_eq!(k.open("shop", "STRIPE_KEY", &[]), None);
    let other = SecretKey::from_bytes(&[8; 32]).unwrap();
    assert_eq!(other.open("shop", "STRIPE_KEY", &sealed), None);
    // Two seals of one value differ (random nonces).
    assert_ne!(
        k.seal("shop", "STRIPE_KEY", b"v"),
        k.seal("shop", "STRIPE_KEY", b"v")
    );
}

#[test]
fn the_key_file_is_created_private_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = SecretKey::load_or_create(dir.path(), None).unwrap();
    let path = dir.path().join(KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The same key next time.
    let b = SecretKey::load_or_create(dir.path(), None).unwrap();
    let sealed = a.seal("p", "N", b"x");
    assert_eq!(b.open("p", "N", &sealed).as_deref(), Some("x"));
    // An operator's key file that is missing or malformed is an error, never replaced.
    let theirs = dir.path().join("theirs.key");
    assert!(SecretKey::load_or_create(dir.path(), Some(&theirs)).is_err());
    std::fs::write(&theirs, "not hex").unwrap();
    let Err(e) = SecretKey::load_or_create(dir.path(), Some(&theirs)) else {
        panic!("a malformed key file was accepted");
    };
    assert!(e.to_string().contains("64 hex digits"), "{e}");
    std::fs::write(&theirs, hex::encode([9u8; 32])).unwrap();
    let c = SecretKey::load_or_create(dir.path(), Some(&theirs)).unwrap();
    assert_eq!(c.open("p", "N", &sealed), None);
}
