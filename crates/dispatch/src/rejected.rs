//! Responses the platform makes without running the function: throttled (429) or over a quota
//! (429). They carry a [`Rejected`] extension, so event delivery can tell them from a guest that
//! answers 429 itself (which is the guest's failure, and counts as an attempt).

use std::time::Duration;

use http::{HeaderValue, Response, header};
use updraft_api::Code;

use crate::{Body, error_response};

/// Marks a response the platform made without running the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejected {
    /// Why: [`Code::Throttled`] or [`Code::QuotaExceeded`].
    pub code: Code,
    /// When trying again can succeed: a slot may free up at once (throttled), a quota only when
    /// its window ends.
    pub retry_after: Duration,
}

/// The error response for a rejection, with `Retry-After` (whole seconds, at least 1) and the
/// [`Rejected`] extension.
pub(crate) fn rejection(
    code: Code,
    message: String,
    request_id: &str,
    retry_after: Duration,
) -> Response<Body> {
    let mut resp = error_response(code, message, request_id);
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp.extensions_mut().insert(Rejected { code, retry_after });
    resp
}
