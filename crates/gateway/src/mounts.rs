//! What the composition root mounts on the data plane beside function routes: the platform's
//! own APIs under [`SERVICES_PREFIX`](crate::SERVICES_PREFIX) and the projects' static sites.

use http::{Request, Response};
use hyper::body::Incoming;
use updraft_dispatch::Body;

/// The platform's own data-plane APIs, served under [`SERVICES_PREFIX`](crate::SERVICES_PREFIX) (the gateway does not
/// know what they are: the composition root mounts them).
pub trait Mounted: Send + Sync + 'static {
    /// Answers one request.
    fn call(
        &self,
        req: Request<Incoming>,
    ) -> std::pin::Pin<Box<dyn Future<Output = Response<Body>> + Send + 'static>>;
}

/// Answers requests no function route matches from the project's static site, if it has one
/// (the composition root wires the site service).
pub trait SiteFallback: Send + Sync + 'static {
    /// The answer of `project`'s site to a request without its body, or `None` if the
    /// project has no site.
    fn serve(
        &self,
        project: &str,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Option<std::pin::Pin<Box<dyn Future<Output = Response<Body>> + Send + 'static>>>;
}
