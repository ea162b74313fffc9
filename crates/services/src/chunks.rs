//! Bytes from a reader as a stream of chunks, for HTTP bodies (objects, site files).

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncRead;

/// A reader's bytes as a stream of chunks of at most 64 KiB (for any HTTP body); by default
/// an object's blob.
pub struct ReadStream<R = updraft_store::objects::BlobRead> {
    read: R,
    buf: Vec<u8>,
}

impl<R> ReadStream<R> {
    /// The chunks of `read`.
    pub fn new(read: R) -> Self {
        Self {
            read,
            buf: vec![0; 64 << 10],
        }
    }
}

impl<R: AsyncRead + Unpin> futures::Stream for ReadStream<R> {
    type Item = std::io::Result<bytes::Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut rb = tokio::io::ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.read).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(None),
            Poll::Ready(Ok(())) => {
                Poll::Ready(Some(Ok(bytes::Bytes::copy_from_slice(rb.filled()))))
            }
        }
    }
}
