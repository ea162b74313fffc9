//! Outbound by address, not only by name: which resolved addresses a guest may connect to.
//!
//! A name in `allowed_outbound_hosts` is a promise about a name, and DNS is the attacker's to
//! answer: `evil.example.com` may resolve to `127.0.0.1`, the cloud metadata service or the
//! server's own control API. So after resolution, loopback, link-local, private, unique-local,
//! shared (CGNAT), unspecified, multicast and broadcast addresses, and the server's own listen
//! addresses, are refused unless an allowed entry names that very address literally
//! (`http://10.0.0.5:8080`). The connection is then made to an address that was vetted, never
//! by resolving the name again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use updraft_manifest::OutboundHost;

/// Why an address is not for guests by default, if it isn't.
pub(crate) fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => restricted_v4(v4),
            None => restricted_v6(v6),
        },
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address (cloud metadata services live here)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if a == 0 {
        Some("an unspecified (\"this host\") address")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("a multicast or broadcast address")
    } else {
        None
    }
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique-local (private) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// The addresses of `resolved` a guest may connect to for a request to `scheme://host:port`
/// (in order), or why there are none.
pub(crate) fn vet(
    resolved: &[SocketAddr],
    allowed: &[OutboundHost],
    own: &[SocketAddr],
    scheme: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, String> {
    let mut refused = None;
    let vetted: Vec<SocketAddr> = resolved
        .iter()
        .copied()
        .filter(|addr| {
            let named = allowed.iter().any(|a| {
                a.literal_ip().is_some_and(|ip| same_ip(ip, addr.ip()))
                    && a.allows(scheme, &addr.ip().to_string(), port)
            });
            let why = if is_own(addr, own) {
                Some("one of this server's own listen addresses")
            } else {
                restricted(addr.ip())
            };
            match why {
                Some(why) if !named => {
                    refused.get_or_insert((addr.ip(), why));
                    false
                }
                _ => true,
            }
        })
        .collect();
    if vetted.is_empty() {
        return Err(match refused {
            Some((ip, why)) => format!(
                "it resolves to {ip}, {why}; list that address literally in \
                 allowed_outbound_hosts to allow it"
            ),
            None => "its name resolves to no address".to_owned(),
        });
    }
    Ok(vetted)
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `addr` is one the server listens on (an unspecified listen address stands for every
/// local address on its port; the loopback and private ones are refused anyway).
fn is_own(addr: &SocketAddr, own: &[SocketAddr]) -> bool {
    own.iter().any(|o| {
        o.port() == addr.port()
            && (same_ip(o.ip(), addr.ip()) || (o.ip().is_unspecified() && addr.ip().is_loopback()))
    })
}

#[cfg(test)]
mod tests;
