//! Names, hosts and key encodings of the S3 service (its behaviour is tested end to end with
//! boto3 in the CLI's tests).

#![allow(clippy::unwrap_used)]

use s3s::host::S3Host as _;

use super::access::Hosts;
use updraft_api::check_bucket_name;

#[test]
fn bucket_names_follow_s3s_rules() {
    for ok in ["abc", "my-bucket.v2", "a1b", &"x".repeat(63)] {
        assert!(check_bucket_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "ab",
        &"x".repeat(64),
        "Upper",
        "under_score",
        "-start",
        "end-",
        "a..b",
        "a.-b",
        "192.168.1.1",
        "../etc",
        "a/b",
    ] {
        assert!(check_bucket_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn virtual_hosts_name_the_bucket_and_other_hosts_are_path_style() {
    let h = Hosts {
        domains: vec!["s3.localhost".into(), "s3.updraft.internal".into()],
    };
    let vh = h.parse_host_header("thumbs.s3.updraft.internal").unwrap();
    assert_eq!(vh.bucket(), Some("thumbs"));
    let vh = h.parse_host_header("photos.s3.localhost:3002").unwrap();
    assert_eq!(vh.bucket(), Some("photos"));
    let vh = h.parse_host_header("s3.localhost").unwrap();
    assert_eq!(vh.bucket(), None);
    let vh = h.parse_host_header("127.0.0.1:3002").unwrap();
    assert_eq!(vh.bucket(), None);
    let vh = h.parse_host_header("[::1]:3002").unwrap();
    assert_eq!(vh.bucket(), None);
    let vh = h.parse_host_header("evils3.localhost").unwrap();
    assert_eq!(vh.bucket(), None, "the bucket label must end at a dot");
}

#[test]
fn url_encoding_of_keys_keeps_slashes_and_unreserved_characters() {
    assert_eq!(
        super::list::encode_for_tests("a b/c+d%é~"),
        "a%20b/c%2Bd%25%C3%A9~"
    );
}

#[test]
fn secrets_are_derived_from_the_id_and_the_server_key() {
    let k = |seed: &[u8]| super::S3Keys::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seed));
    let (a, b) = (k(b"one"), k(b"two"));
    let id = a.new_id();
    assert!(id.starts_with("AKUP") && id.len() == 20, "{id}");
    assert_ne!(id, a.new_id());
    assert_eq!(a.secret(&id), a.secret(&id));
    assert_eq!(a.secret(&id).len(), 40);
    assert_ne!(a.secret(&id), b.secret(&id));
}

#[test]
fn function_key_ids_are_derived_from_project_function_and_grants() {
    let k = |seed: &[u8]| super::S3Keys::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seed));
    let (a, b) = (k(b"one"), k(b"two"));
    let grants = ["uploads:read".to_owned(), "thumbs:write".to_owned()];
    let id = a.function_key_id("shop", "thumbnailer", &grants);
    assert!(id.starts_with("AKFN") && id.len() == 20, "{id}");
    assert_eq!(id, a.function_key_id("shop", "thumbnailer", &grants));
    for other in [
        a.function_key_id("shop", "thumbnailer", &grants[..1]),
        a.function_key_id("shop", "resizer", &grants),
        a.function_key_id("other", "thumbnailer", &grants),
        b.function_key_id("shop", "thumbnailer", &grants),
    ] {
        assert_ne!(id, other);
    }
}
