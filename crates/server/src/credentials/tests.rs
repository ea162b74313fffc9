#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn key(byte: u8) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, &[byte; 32])
}

#[test]
fn a_minted_credential_verifies_and_a_changed_one_does_not() {
    let grant = Grant {
        project: "shop".into(),
        function: "orders".into(),
        collections: vec!["orders".into()],
        buckets: vec!["uploads:read".into()],
    };
    let token = mint(&key(1), &grant);
    assert_eq!(verify(&key(1), &token), Some(grant.clone()));
    assert_eq!(verify(&key(2), &token), None, "another server's key");
    // A payload granting more, with the old MAC.
    let wider = Grant {
        collections: vec!["orders".into(), "users".into()],
        ..grant
    };
    let forged = mint(&key(9), &wider);
    let (_, mac) = token.rsplit_once('.').unwrap();
    let (payload, _) = forged.rsplit_once('.').unwrap();
    assert_eq!(verify(&key(1), &format!("{payload}.{mac}")), None);
    for bad in [
        "",
        "updfn1.",
        "updfn1.x.y",
        "updfn1.e30",
        &token[..token.len() - 2],
    ] {
        assert_eq!(verify(&key(1), bad), None, "{bad}");
    }
}
