use super::*;

#[test]
fn exact_host_and_default_port() {
    let h = OutboundHost::parse("https://api.example.com").unwrap();
    assert!(h.allows("https", "api.example.com", 443));
    assert!(h.allows("https", "API.example.com", 443));
    assert!(!h.allows("http", "api.example.com", 80));
    assert!(!h.allows("https", "api.example.com", 8443));
    assert!(!h.allows("https", "evil.com", 443));
}

#[test]
fn ports_and_wildcards() {
    let h = OutboundHost::parse("http://127.0.0.1:8080").unwrap();
    assert!(h.allows("http", "127.0.0.1", 8080));
    assert!(!h.allows("http", "127.0.0.1", 8081));
    let h = OutboundHost::parse("http://127.0.0.1:*").unwrap();
    assert!(h.allows("http", "127.0.0.1", 1));
    let h = OutboundHost::parse("https://*.example.com").unwrap();
    assert!(h.allows("https", "a.example.com", 443));
    assert!(!h.allows("https", "example.com", 443));
    assert!(!h.allows("https", "badexample.com", 443));
    let h = OutboundHost::parse("*://*:*").unwrap();
    assert!(h.allows("http", "anything", 1234));
}

#[test]
fn errors() {
    assert!(OutboundHost::parse("api.example.com").is_err());
    assert!(OutboundHost::parse("ftp://x").is_err());
    assert!(OutboundHost::parse("https://x/path").is_err());
    assert!(OutboundHost::parse("https://x:port").is_err());
    assert!(OutboundHost::parse("https://a*b").is_err());
    assert!(OutboundHost::parse("https://x/").is_ok());
}

#[test]
fn ipv6_literals_match_however_they_are_spelled() {
    let e = OutboundHost::parse("http://[::1]:8080").unwrap();
    assert!(e.allows("http", "::1", 8080));
    assert!(e.allows("http", "[::1]", 8080));
    assert!(e.allows("http", "0:0:0:0:0:0:0:1", 8080));
    assert!(!e.allows("http", "::2", 8080));
    assert_eq!(e.literal_ip(), Some("::1".parse().unwrap()));
    let e = OutboundHost::parse("https://[2001:DB8::1]").unwrap();
    assert!(e.allows("https", "2001:db8::1", 443));
    assert_eq!(
        OutboundHost::parse("http://127.0.0.1:3000")
            .unwrap()
            .literal_ip(),
        Some("127.0.0.1".parse().unwrap())
    );
    assert_eq!(
        OutboundHost::parse("https://api.example.com")
            .unwrap()
            .literal_ip(),
        None
    );
}
