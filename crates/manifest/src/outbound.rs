//! `allowed_outbound_hosts` entries: which hosts a function may call over HTTP.
//!
//! An entry is `scheme://host[:port]`:
//! - `scheme` is `http`, `https` or `*`;
//! - `host` is an exact name or IP (`api.example.com`, `127.0.0.1`), `*.example.com` (any
//!   subdomain, not the apex) or `*` (any host);
//! - `port` is a number or `*`; when omitted, the scheme's default port (80 or 443).
//!
//! Anything after the authority (a path) is an error: the policy is per host, not per URL.

use std::fmt;

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundHost {
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
    raw: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    Subdomain(String),
}

/// Why an `allowed_outbound_hosts` entry is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}`: {reason}")]
pub struct OutboundHostError {
    entry: String,
    reason: &'static str,
}

impl OutboundHost {
    /// Parses an entry such as `https://api.example.com` or `http://127.0.0.1:8080`.
    ///
    /// # Errors
    /// [`OutboundHostError`] saying what is wrong with the entry.
    pub fn parse(s: &str) -> Result<Self, OutboundHostError> {
        let err = |reason| OutboundHostError {
            entry: s.to_owned(),
            reason,
        };
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| err("must be scheme://host[:port], e.g. \"https://api.example.com\""))?;
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_owned()),
            _ => return Err(err("scheme must be http, https or *")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err(err("must not have a path; list the host only"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 literal such as [::1] keeps its colons inside brackets.
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (rest, None),
        };
        let port = match port {
            None => default_port(scheme.as_deref()),
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| err("port must be a number or *"))?,
            ),
        };
        let host = host.to_ascii_lowercase();
        // An IP literal is kept in its canonical form, without the brackets of IPv6, so that it
        // matches however a URL spells it.
        let host = canonical_host(&host);
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(err("a wildcard host must look like *.example.com"));
            }
            HostPattern::Subdomain(suffix.to_owned())
        } else if host.is_empty() || host.contains('*') {
            return Err(err("host must be a name, an IP address, *.domain or *"));
        } else {
            HostPattern::Exact(host)
        };
        Ok(Self {
            scheme,
            host,
            port,
            raw: s.to_owned(),
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry. `port` is the
    /// effective port (the scheme's default when the URL has none).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if let Some(s) = &self.scheme
            && !s.eq_ignore_ascii_case(scheme)
        {
            return false;
        }
        if let Some(p) = self.port
            && p != port
        {
            return false;
        }
        let host = canonical_host(&host.to_ascii_lowercase());
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => *h == host,
            HostPattern::Subdomain(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1),
        }
    }
}

impl OutboundHost {
    /// The IP address this entry names literally (`http://10.0.0.5:8080`, `http://[::1]`), if it
    /// names one: such an entry also allows connecting to that address when it is a private or
    /// loopback one.
    pub fn literal_ip(&self) -> Option<std::net::IpAddr> {
        match &self.host {
            HostPattern::Exact(h) => h.parse().ok(),
            _ => None,
        }
    }
}

/// `host` without IPv6 brackets and, when it is an IP address, in its canonical form.
fn canonical_host(host: &str) -> String {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_owned(),
    }
}

fn default_port(scheme: Option<&str>) -> Option<u16> {
    match scheme {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    }
}

impl fmt::Display for OutboundHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests;
