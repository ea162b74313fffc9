//! Body wrappers: the request body cap, and the response body that holds its invocation's
//! resources (concurrency permits) and enforces the response cap while it streams.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::limit::Permits;
use crate::runtime::{BodyError, InvocationSink, Runtime, Stream};

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
    limit: u64,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            remaining: limit,
            limit,
        }
    }

    /// Counts `frame`'s data; false once the total passes the cap.
    fn spend(&mut self, frame: &Frame<Bytes>) -> bool {
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
    pub(crate) inner: crate::Body,
    pub(crate) budget: Budget,
    pub(crate) exceeded: Arc<AtomicBool>,
}

impl Body for LimitedRequest {
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

/// A guest's response body on its way to the client. It holds the invocation's concurrency
/// permits until it ends (the guest runs until then), tells the runtime when it is done, and
/// cuts the stream off past the response cap.
pub(crate) struct Tracked {
    pub(crate) inner: crate::Body,
    pub(crate) budget: Budget,
    pub(crate) log: Arc<dyn InvocationSink>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) _permits: Permits,
}

impl Body for Tracked {
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
            let limit = self.budget.limit;
            self.log.line(
                Stream::Platform,
                &format!(
                    "response body cut off: it exceeded the function's max_response_body of {}",
                    updraft_manifest::format_size(limit)
                ),
            );
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

impl Drop for Tracked {
    fn drop(&mut self) {
        self.runtime.finished();
    }
}
