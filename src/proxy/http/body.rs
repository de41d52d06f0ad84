//! Streaming bodies through the proxy: each frame is passed on as it arrives (nothing buffers a
//! whole body), its bytes counted, and a peer vanishing mid-body counted and reported as a
//! typed error so the request path can tell it from an upstream failure.
//!
//! Not here: framing (hyper's) or any look at the bytes themselves.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use prometheus_client::metrics::counter::Counter;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response the proxy gives.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// Which peer stopped sending in the middle of a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aborted {
    /// The client vanished while sending its request body.
    Client,
    /// The upstream vanished while sending its response body.
    Upstream,
}

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Client => "client closed the connection in the middle of the request body",
            Self::Upstream => "upstream closed the connection in the middle of the response body",
        })
    }
}

impl std::error::Error for Aborted {}

/// The metrics a body updates, fetched once per proxy so a frame costs one atomic add.
#[derive(Clone, Debug)]
pub struct BodyCounters {
    pub bytes: Counter,
    pub aborted: Counter,
}

/// A body passed through frame by frame, counted.
#[derive(Debug)]
pub struct Counted {
    inner: Incoming,
    counters: BodyCounters,
    side: Aborted,
}

impl Counted {
    pub fn new(inner: Incoming, counters: BodyCounters, side: Aborted) -> Self {
        Self {
            inner,
            counters,
            side,
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.counters.bytes.inc_by(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(_))) => {
                self.counters.aborted.inc();
                Poll::Ready(Some(Err(Box::new(self.side))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Counted {
    pub fn boxed(self) -> ProxyBody {
        BodyExt::boxed(self)
    }
}

/// True when `err` (or anything in its source chain) is an [`Aborted`] of `side`.
pub fn aborted_by(err: &(dyn std::error::Error + 'static), side: Aborted) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<Aborted>() == Some(&side) {
            return true;
        }
        cur = e.source();
    }
    false
}
