use super::*;

fn entries(list: &[&str]) -> Vec<OutboundHost> {
    list.iter()
        .map(|e| OutboundHost::parse(e).unwrap())
        .collect()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn private_and_local_ranges_are_restricted_public_ones_are_not() {
    for ip in [
        "127.0.0.1",
        "127.1.2.3",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ] {
        assert!(restricted(ip.parse().unwrap()).is_some(), "{ip}");
    }
    for ip in [
        "1.1.1.1",
        "8.8.8.8",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700::1111",
    ] {
        assert_eq!(restricted(ip.parse().unwrap()), None, "{ip}");
    }
}

#[test]
fn a_name_resolving_to_loopback_is_refused_unless_the_address_is_listed() {
    let by_name = entries(&["http://*.example.com:*"]);
    let err = vet(&[addr("127.0.0.1:3001")], &by_name, &[], "http", 3001).unwrap_err();
    assert!(err.contains("127.0.0.1, a loopback address"), "{err}");
    let literal = entries(&["http://*.example.com:*", "http://127.0.0.1:3001"]);
    assert_eq!(
        vet(&[addr("127.0.0.1:3001")], &literal, &[], "http", 3001).unwrap(),
        vec![addr("127.0.0.1:3001")]
    );
    // The literal entry is for its port only.
    assert!(vet(&[addr("127.0.0.1:3000")], &literal, &[], "http", 3000).is_err());
}

#[test]
fn restricted_addresses_are_dropped_and_public_ones_kept_in_order() {
    let list = entries(&["https://api.example.com"]);
    let got = vet(
        &[
            addr("10.0.0.1:443"),
            addr("93.184.216.34:443"),
            addr("[fe80::1]:443"),
        ],
        &list,
        &[],
        "https",
        443,
    )
    .unwrap();
    assert_eq!(got, vec![addr("93.184.216.34:443")]);
}

#[test]
fn the_servers_own_listen_addresses_are_refused_even_when_public() {
    let list = entries(&["http://*:*"]);
    let own = [addr("203.0.113.7:3001")];
    let err = vet(&[addr("203.0.113.7:3001")], &list, &own, "http", 3001).unwrap_err();
    assert!(err.contains("own listen addresses"), "{err}");
    assert!(vet(&[addr("203.0.113.7:80")], &list, &own, "http", 80).is_ok());
}

#[test]
fn ipv6_literal_entries_match() {
    let list = entries(&["http://[::1]:8080"]);
    assert_eq!(
        vet(&[addr("[::1]:8080")], &list, &[], "http", 8080).unwrap(),
        vec![addr("[::1]:8080")]
    );
}
