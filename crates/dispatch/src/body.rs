//! Bodies: the type every request and response body has on the invocation path, its error,
//! and the request body cap.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// A request or response body: streamed, boxed, with the dispatcher's error type.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BodyError>;

/// Why a body stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// More bytes came than the limit allows (a request over `max_request_body`, a response
    /// over `max_response_body`).
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The peer or the guest failed mid-stream.
    #[error("{0}")]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

impl BodyError {
    /// Wraps another body's error.
    pub fn failed(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Failed(e.into())
    }
}

/// The `content-length` a message declares, if any.
pub fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A byte cap on a body, counted frame by frame.
pub(crate) struct Budget {
    remaining: u64,
    pub(crate) limit: u64,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            remaining: limit,
            limit,
        }
    }

    /// Counts `frame`'s data; false once the total passes the cap.
    pub(crate) fn spend(&mut self, frame: &Frame<Bytes>) -> bool {
        let n = frame.data_ref().map_or(0, |d| d.len() as u64);
        match self.remaining.checked_sub(n) {
            Some(left) => {
                self.remaining = left;
                true
            }
            None => {
                self.remaining = 0;
                false
            }
        }
    }
}

/// A request body that fails once more than its budget has come through, and says so in
/// `exceeded` so the dispatcher can answer 413 whatever the guest made of the error.
pub(crate) struct LimitedRequest {
    pub(crate) inner: Body,
    pub(crate) budget: Budget,
    pub(crate) exceeded: Arc<AtomicBool>,
}

impl http_body::Body for LimitedRequest {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if !self.budget.spend(&frame) {
            self.exceeded.store(true, Ordering::Relaxed);
            let limit = self.budget.limit;
            return Poll::Ready(Some(Err(BodyError::TooLarge { limit })));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
