//! `[http]`: the data plane listener's header caps, timeouts, connection cap and HTTP/2
//! settings (the control listener takes the same, with its own connection cap).

use std::time::Duration;

use updraft_gateway::ListenConfig;
use updraft_manifest::{parse_duration, parse_size};

use super::raw::RawHttp;

/// Checks the `[http]` table against the defaults `dh`; errors name the key.
pub(super) fn parse(raw: &RawHttp, dh: &ListenConfig) -> Result<ListenConfig, String> {
    let positive = |key: &str, v: Option<usize>, default: usize| match v {
        Some(0) => Err(format!("{key}: must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let duration = |key: &str, v: &Option<String>, default: Duration| match v {
        None => Ok(default),
        Some(s) => match parse_duration(s) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(format!("{key}: must be more than 0")),
            Err(e) => Err(format!("{key}: {e}")),
        },
    };
    let mut http = ListenConfig::default();
    http.max_headers = positive("http.max_headers", raw.max_headers, dh.max_headers)?;
    http.max_header_bytes = match &raw.max_header_bytes {
        None => dh.max_header_bytes,
        Some(s) => {
            usize::try_from(parse_size(s).map_err(|e| format!("http.max_header_bytes: {e}"))?)
                .unwrap_or(usize::MAX)
        }
    };
    http.header_read_timeout = duration(
        "http.header_read_timeout",
        &raw.header_read_timeout,
        dh.header_read_timeout,
    )?;
    http.max_connections = positive(
        "http.max_connections",
        raw.max_connections,
        dh.max_connections,
    )?;
    http.h2_keep_alive_interval = duration(
        "http.h2_keep_alive_interval",
        &raw.h2_keep_alive_interval,
        dh.h2_keep_alive_interval,
    )?;
    http.h2_keep_alive_timeout = duration(
        "http.h2_keep_alive_timeout",
        &raw.h2_keep_alive_timeout,
        dh.h2_keep_alive_timeout,
    )?;
    http.h2_max_concurrent_streams = match raw.h2_max_concurrent_streams {
        Some(0) => return Err("http.h2_max_concurrent_streams: must be at least 1".to_owned()),
        Some(n) => n,
        None => dh.h2_max_concurrent_streams,
    };
    Ok(http)
}
