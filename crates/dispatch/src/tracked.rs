//! The response body on its way to the client: it holds its invocation's resources
//! (concurrency permits) until it ends, enforces the response cap while it streams, and tells
//! the runtime when it is done.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::body::{Body, BodyError, Budget};
use crate::limit::Permits;
use crate::runtime::{InvocationSink, Runtime, Stream};

/// A guest's response body on its way to the client. It holds the invocation's concurrency
/// permits until it ends (the guest runs until then), tells the runtime when it is done, and
/// cuts the stream off past the response cap.
pub(crate) struct Tracked {
    pub(crate) inner: Body,
    pub(crate) budget: Budget,
    pub(crate) log: Arc<dyn InvocationSink>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) _permits: Permits,
}

impl http_body::Body for Tracked {
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
