#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::serve::{cache_control, decode_for_tests, range_for_tests};
use updraft_api::media_type as content_type;

#[test]
fn paths_decode_and_never_climb() {
    assert_eq!(
        decode_for_tests("/a%20b/c.html").as_deref(),
        Some("/a b/c.html")
    );
    for bad in [
        "/../etc/passwd",
        "/a/%2e%2e/b",
        "/a\\b",
        "/%00",
        "/%zz",
        "/a/%2E%2E",
    ] {
        assert_eq!(decode_for_tests(bad), None, "{bad}");
    }
}

#[test]
fn ranges_are_one_satisfiable_span_or_the_whole_file() {
    assert_eq!(range_for_tests("bytes=0-9", 100), Some(Ok((0, 9))));
    assert_eq!(range_for_tests("bytes=90-", 100), Some(Ok((90, 99))));
    assert_eq!(range_for_tests("bytes=-10", 100), Some(Ok((90, 99))));
    assert_eq!(range_for_tests("bytes=50-500", 100), Some(Ok((50, 99))));
    assert_eq!(range_for_tests("bytes=100-", 100), Some(Err(())));
    assert_eq!(range_for_tests("bytes=0-1,5-6", 100), None);
    assert_eq!(range_for_tests("bytes=9-2", 100), None);
    assert_eq!(range_for_tests("lines=1-2", 100), None);
}

#[test]
fn types_and_cache_headers_follow_the_file_kind() {
    assert_eq!(content_type("/app.wasm"), "application/wasm");
    assert_eq!(content_type("/m.mjs"), "text/javascript; charset=utf-8");
    assert_eq!(content_type("/noext"), "application/octet-stream");
    let html = content_type("/index.html");
    assert_eq!(cache_control("/index.html", html), "no-cache");
    let js = content_type("/a.js");
    for fingerprinted in ["/assets/app.3f9a1c2b.js", "/assets/index-BxK3k9aZ1.js"] {
        assert_eq!(
            cache_control(fingerprinted, js),
            "public, max-age=31536000, immutable",
            "{fingerprinted}"
        );
    }
    for plain in ["/app.js", "/my-component.js", "/favicon.ico"] {
        assert_eq!(
            cache_control(plain, js),
            "public, max-age=0, must-revalidate",
            "{plain}"
        );
    }
}

#[test]
fn the_file_cache_keeps_small_files_within_its_bytes() {
    use super::cache::FileCache;
    use bytes::Bytes;
    let c = FileCache::new(64 << 10);
    assert_eq!(c.max_file(), 4 << 10, "a sixteenth of a small cache");
    let big = Bytes::from(vec![0u8; 5 << 10]);
    assert_eq!(c.put("big".into(), big.clone()), big);
    assert!(c.get("big").is_none(), "too large to keep");
    for i in 0..40 {
        c.put(format!("f{i}"), Bytes::from(vec![i as u8; 4 << 10]));
    }
    let kept = (0..40)
        .filter(|i| c.get(&format!("f{i}")).is_some())
        .count();
    assert!(kept > 0 && kept <= 16, "{kept} of 40 kept in 64 KiB");
    assert_eq!(c.get("f39").unwrap()[0], 39, "the newest is always kept");
    assert_eq!(FileCache::new(0).max_file(), 0);
}
