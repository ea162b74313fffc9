//! The S3 listener's service: `s3s`'s, plus one courtesy. A request refused before its body
//! was read (`AccessDenied`, `NoSuchBucket`, a bad signature) still has its body on the wire;
//! answering at once makes the server close the connection under a client that is still
//! sending, and a client that sends its body before reading the answer (most HTTP libraries
//! without `Expect: 100-continue`, wasm guests among them) then reports a broken connection
//! instead of S3's error. So after an error answer the rest of the body is read and dropped
//! first, up to [`DRAIN_BYTES`] and [`DRAIN_TIME`]; past those the connection is closed as
//! before.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// Most bytes of a refused request's body read before answering.
pub(crate) const DRAIN_BYTES: u64 = 8 << 20;
/// Longest a refused request's body is read before answering.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(2);

/// A request body the service reads while the listener keeps a hold on it.
struct Shared(Arc<Mutex<Option<Incoming>>>);

impl Body for Shared {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
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

/// `s3s`'s service, draining refused requests' bodies (see the module docs).
#[derive(Clone)]
pub struct S3Listener(pub(crate) s3s::service::S3Service);

impl hyper::service::Service<http::Request<Incoming>> for S3Listener {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            let slot = Arc::new(Mutex::new(None));
            let req = req.map(|body| {
                if let Ok(mut s) = slot.lock() {
                    *s = Some(body);
                }
                s3s::Body::http_body(Shared(slot.clone()))
            });
            let resp = inner.call(req).await;
            let failed = !resp.as_ref().is_ok_and(|r| r.status().is_success());
            let rest = slot.lock().ok().and_then(|mut s| s.take());
            if let (true, Some(body)) = (failed, rest)
                && !body.is_end_stream()
            {
                let _ = tokio::time::timeout(DRAIN_TIME, drain(body)).await;
            }
            resp
        })
    }
}

/// Reads and drops up to [`DRAIN_BYTES`] of `body`.
async fn drain(mut body: Incoming) {
    let mut read = 0u64;
    while read < DRAIN_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            _ => return,
        }
    }
}
