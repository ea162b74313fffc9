//! Body wrappers: the request body cap, and the response body that holds its invocation's
//! resources (concurrency permits) and enforces the response cap while it streams.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use updraft_engine::{HttpError, LogSink, ManagedFunction, Stream};

use crate::limit::Permits;

/// A request body that fails once more than `limit` bytes have come through, and says so in
/// `exceeded` so the gateway can answer 413 whatever the guest made of the error.
pub(crate) struct LimitedRequest<B> {
    pub(crate) inner: B,
    pub(crate) remaining: u64,
    pub(crate) limit: u64,
    pub(crate) exceeded: Arc<AtomicBool>,
}

impl<B> Body for LimitedRequest<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<HttpError>,
{
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let n = data.len() as u64;
            if n > self.remaining {
                self.exceeded.store(true, Ordering::Relaxed);
                self.remaining = 0;
                return Poll::Ready(Some(Err(HttpError::HttpRequestBodySize(Some(self.limit)))));
            }
            self.remaining -= n;
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
/// permits until it ends (the guest runs until then), marks the function used when it is done,
/// and cuts the stream off past the response cap.
pub(crate) struct Tracked {
    pub(crate) inner: crate::Body,
    pub(crate) remaining: u64,
    pub(crate) limit: u64,
    pub(crate) log: Arc<dyn LogSink>,
    pub(crate) function: Arc<ManagedFunction>,
    pub(crate) _permits: Permits,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let n = data.len() as u64;
            if n > self.remaining {
                let msg = format!(
                    "response body cut off: it exceeded the function's max_response_body of {}",
                    updraft_manifest::format_size(self.limit)
                );
                self.log.line(Stream::Platform, &msg);
                self.remaining = 0;
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(self.limit)))));
            }
            self.remaining -= n;
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
        self.function.finished();
    }
}
