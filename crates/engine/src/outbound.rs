//! Outbound HTTP policy: a guest may only reach the hosts in its `allowed_outbound_hosts`, and
//! only at addresses [`vet`] accepts (no loopback, private or link-local address, nor the
//! server's own, unless listed literally); the connection goes to the vetted address
//! ([`send`]).
//!
//! A denied request fails inside the guest with `wasi:http`'s `HTTP-request-denied` error code
//! (the guest sees an ordinary, catchable error) and leaves a platform line in the invocation's
//! log naming the URL and the setting to change. An allowed request carries the invocation's
//! W3C `traceparent` (see [`crate::InvocationSink::traceparent`]) unless the guest set its own.
//!
//! A guest granted the platform's APIs (`collections = [...]` or `buckets = [...]`) reaches
//! them at `http://updraft.internal/_updraft/...` ([`PLATFORM_HOST`]) and the S3 API at
//! `http://s3.updraft.internal` or `http://<bucket>.s3.updraft.internal` ([`S3_HOST`]): those
//! requests go to the server's own data-plane listener (the first of [`OwnAddresses`]) or its
//! S3 listener (the third) without DNS, whatever `allowed_outbound_hosts` says; other paths on
//! the data-plane host, and guests without a grant, are denied. The credential the guest
//! sends decides what it may do there.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use updraft_manifest::OutboundHost;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use updraft_dispatch::{PLATFORM_HOST, S3_HOST, Stream};

use crate::logs::LogSlot;

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// The W3C trace-context header.
const TRACEPARENT: &str = "traceparent";

/// How long a denied request's body is drained before the denial is returned.
const DRAIN_DENIED_BODY: std::time::Duration = std::time::Duration::from_secs(1);

mod send;
mod vet;

/// The server's own listen addresses, which guests may not call (filled in once bound): the
/// data plane, which granted guests reach as [`PLATFORM_HOST`], the control API, and the S3
/// listener if there is one, which they reach as [`S3_HOST`].
pub type OwnAddresses = Arc<std::sync::RwLock<Vec<std::net::SocketAddr>>>;

pub(crate) struct OutboundPolicy {
    pub(crate) allowed: Arc<[OutboundHost]>,
    pub(crate) own: OwnAddresses,
    /// Requests of this instance in flight (until their response body ends), and the cap.
    pub(crate) in_flight: Arc<AtomicUsize>,
    pub(crate) max_in_flight: usize,
    pub(crate) log: Arc<LogSlot>,
    /// Whether the guest may call the platform's APIs at [`PLATFORM_HOST`].
    pub(crate) platform: bool,
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The scheme, host (without IPv6 brackets) and effective port of an outbound URL.
fn parts(uri: &http::Uri) -> Option<(&str, &str, u16)> {
    let scheme = uri.scheme_str().unwrap_or("https");
    let host = uri.host()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "http" { 80 } else { 443 });
    Some((scheme, host, port))
}

impl OutboundPolicy {
    fn allows(&self, uri: &http::Uri) -> bool {
        parts(uri).is_some_and(|(scheme, host, port)| {
            self.allowed.iter().any(|a| a.allows(scheme, host, port))
        })
    }

    /// Whether a request to one of the platform's hosts may go, or why not.
    fn platform_allows(&self, uri: &http::Uri, to: Own) -> Result<(), &'static str> {
        if !self.platform {
            return Err(
                "the platform's APIs need a grant (`collections = [...]` or `buckets = [...]` in \
                 the function's manifest entry)",
            );
        }
        if uri.scheme_str() != Some("http") || uri.port_u16().is_some() {
            return Err(
                "the platform's APIs are at http://updraft.internal and http://s3.updraft.internal \
                 (plain HTTP, no port)",
            );
        }
        if to == Own::DataPlane && !uri.path().starts_with("/_updraft/") {
            return Err("only the platform's APIs (paths under /_updraft/) are served there");
        }
        Ok(())
    }
}

/// Which of the server's own listeners a platform host names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    /// [`PLATFORM_HOST`]: the data plane.
    DataPlane,
    /// [`S3_HOST`] or `<bucket>.` it: the S3 listener.
    S3,
}

impl Own {
    /// The platform host `uri` names, if it names one.
    fn of(uri: &http::Uri) -> Option<Self> {
        let (_, host, _) = parts(uri)?;
        // `<bucket>.` before the S3 host, compared without case (and without allocating: this
        // runs for every outbound request).
        let s3_suffix = host.len() > S3_HOST.len() + 1
            && host
                .get(host.len() - S3_HOST.len()..)
                .is_some_and(|t| t.eq_ignore_ascii_case(S3_HOST))
            && host.as_bytes()[host.len() - S3_HOST.len() - 1] == b'.';
        if host.eq_ignore_ascii_case(PLATFORM_HOST) {
            Some(Self::DataPlane)
        } else if host.eq_ignore_ascii_case(S3_HOST) || s3_suffix {
            Some(Self::S3)
        } else {
            None
        }
    }

    /// Its index in [`OwnAddresses`].
    fn index(self) -> usize {
        match self {
            Self::DataPlane => 0,
            Self::S3 => 2,
        }
    }
}

/// A listener's address as a client connects to it: an unspecified one (`0.0.0.0`, `::`) is
/// reached on loopback.
fn loopback_if_unspecified(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        _ = fut;
        let to_platform = Own::of(request.uri());
        if let Some(to) = to_platform {
            if let Err(why) = self.platform_allows(request.uri(), to) {
                self.log.get().sink().line(
                    Stream::Platform,
                    &format!("outbound request to {} denied: {why}", request.uri()),
                );
                return refuse(request, Error::HttpRequestDenied);
            }
        } else if !self.allows(request.uri()) {
            self.log.get().sink().line(
                Stream::Platform,
                &format!(
                    "outbound request to {} denied: its host is not in allowed_outbound_hosts",
                    request.uri()
                ),
            );
            return refuse(request, Error::HttpRequestDenied);
        }
        if !request.headers().contains_key(TRACEPARENT)
            && let Some(tp) = self.log.get().sink().traceparent()
            && let Ok(value) = http::HeaderValue::from_str(&tp)
        {
            request.headers_mut().insert(TRACEPARENT, value);
        }
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.log.get().sink().line(
                Stream::Platform,
                &format!(
                    "outbound request to {} refused: the invocation already has {} requests in \
                     flight, the limit ([sandbox] max_outbound_requests)",
                    request.uri(),
                    self.max_in_flight
                ),
            );
            return refuse(request, Error::ConnectionLimitReached);
        }
        let counted = InFlight(self.in_flight.clone());
        let (allowed, own, log) = (self.allowed.clone(), self.own.clone(), self.log.clone());
        if let Some(to) = to_platform {
            return Box::new(async move {
                let addr = own
                    .read()
                    .ok()
                    .and_then(|o| o.get(to.index()).copied())
                    .map(loopback_if_unspecified)
                    .ok_or(Error::ConnectionRefused)?;
                let accept = |a: &[std::net::SocketAddr]| Ok(a.to_vec());
                let target = send::Target {
                    host: match to {
                        Own::DataPlane => PLATFORM_HOST,
                        Own::S3 => S3_HOST,
                    },
                    port: addr.port(),
                    tls: false,
                    vet: &accept,
                };
                let (resp, io) = send::send(request, options, &target, &[addr]).await?;
                let io = async move {
                    let done = Box::into_pin(io).await;
                    drop(counted);
                    done
                };
                Ok((resp, Box::new(io) as Box<dyn Future<Output = _> + Send>))
            });
        }
        Box::new(async move {
            let uri = request.uri().clone();
            let (scheme, host, port) = parts(&uri).ok_or(Error::HttpRequestUriInvalid)?;
            let vet = |resolved: &[std::net::SocketAddr]| {
                let own = own.read().map(|o| o.clone()).unwrap_or_default();
                vet::vet(resolved, &allowed, &own, scheme, port)
            };
            let target = send::Target {
                host,
                port,
                tls: scheme == "https",
                vet: &vet,
            };
            let addrs = match send::resolve(&target, options.as_ref()).await {
                Ok(addrs) => addrs,
                Err((e, why)) => {
                    if let Some(why) = why {
                        log.get().sink().line(
                            Stream::Platform,
                            &format!("outbound request to {uri} denied: {why}"),
                        );
                    }
                    // As for any refusal: take the body first, or a guest sending it
                    // concurrently sees "connection reset" instead of this error.
                    return Box::into_pin(refuse(request, e)).await;
                }
            };
            let (resp, io) = send::send(request, options, &target, &addrs).await?;
            // The request counts until its connection is done (its response body read).
            let io = async move {
                let done = Box::into_pin(io).await;
                drop(counted);
                done
            };
            Ok((resp, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// Fails a request with `error` after accepting (and discarding) its body: clients that send
/// the body and await the response concurrently (wstd, for one) would otherwise see the body
/// stream break first and report "connection reset" instead of the refusal.
fn refuse(request: http::Request<WasiBody>, error: Error) -> SendFuture {
    let mut body = request.into_body();
    Box::new(async move {
        let drain = async { while let Some(Ok(_)) = body.frame().await {} };
        let _ = tokio::time::timeout(DRAIN_DENIED_BODY, drain).await;
        Err(error)
    })
}
