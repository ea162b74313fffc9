//! A request body a handler reads while the server keeps a hold on what it leaves.
//!
//! A request answered before its body was read (refused: 401, 403, 404...) still has the body
//! on the wire. Answering at once makes the server close the connection under a client that is
//! still sending, and a client that sends its whole body before reading the answer (most HTTP
//! libraries without `Expect: 100-continue`, wasm guests among them) then reports a broken
//! connection instead of the answer. Servers that answer before reading wrap the body in
//! [`Held`] and, once the answer is ready, let [`Leftover::drain`] read and drop the rest,
//! bounded in bytes and time (a web server's "lingering close"), before sending it.
//!
//! Only for handlers that are done with the body once they answer (the platform's own APIs):
//! a handler that streams its answer while still reading would lose the rest of its body.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf as _;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;

/// Most bytes of an unread body [`Leftover::drain`] reads.
pub const DRAIN_BYTES: u64 = 8 << 20;
/// Longest [`Leftover::drain`] reads.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The body, as the handler reads it.
pub struct Held<B>(Arc<Mutex<Option<B>>>);

/// What the server keeps of the body.
pub struct Leftover<B>(Arc<Mutex<Option<B>>>);

impl<B> Held<B> {
    /// `body`, handed to the handler, and the server's hold on it.
    pub fn new(body: B) -> (Self, Leftover<B>) {
        let slot = Arc::new(Mutex::new(Some(body)));
        (Self(slot.clone()), Leftover(slot))
    }
}

impl<B: Body + Unpin> Body for Held<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let Ok(mut slot) = self.0.lock() else {
            return Poll::Ready(None);
        };
        match slot.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .map(|s| s.as_ref().is_none_or(Body::is_end_stream))
            .unwrap_or(true)
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(Body::size_hint))
            .unwrap_or_default()
    }
}

impl<B: Body + Unpin> Leftover<B> {
    /// Reads and drops what the handler left of the body, up to [`DRAIN_BYTES`] and
    /// [`DRAIN_TIME`].
    pub async fn drain(self) {
        let rest = self.0.lock().ok().and_then(|mut s| s.take());
        let Some(mut body) = rest.filter(|b| !b.is_end_stream()) else {
            return;
        };
        let read = async {
            let mut n = 0u64;
            while n < DRAIN_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        n += frame.data_ref().map_or(0, |d| d.remaining() as u64);
                    }
                    _ => return,
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, read).await;
    }
}
