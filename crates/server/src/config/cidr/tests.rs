#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn ranges_contain_what_they_should() {
    let r = Cidr::parse("10.0.0.0/8").unwrap();
    assert!(r.contains("10.1.2.3".parse().unwrap()));
    assert!(!r.contains("11.0.0.1".parse().unwrap()));
    assert!(r.contains("::ffff:10.0.0.1".parse().unwrap()));
    let one = Cidr::parse("127.0.0.1").unwrap();
    assert!(one.contains("127.0.0.1".parse().unwrap()));
    assert!(!one.contains("127.0.0.2".parse().unwrap()));
    let v6 = Cidr::parse("fd00::/8").unwrap();
    assert!(v6.contains("fd12::1".parse().unwrap()));
    assert!(!v6.contains("fe80::1".parse().unwrap()));
    for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x"] {
        assert!(Cidr::parse(bad).is_err(), "{bad}");
    }
}
