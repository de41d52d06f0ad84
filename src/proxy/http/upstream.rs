//! Connections to upstreams, made only to the address the policy judged.
//!
//! The request URI handed to the pooled client carries the judged socket address itself
//! (`http://10.4.0.9:8080/path`), so the pool is keyed by judged address and [`JudgedConnector`]
//! never resolves a name: a second lookup, which an attacker's DNS could answer differently
//! (rebinding), cannot happen. Not here: judging (proxy/judge.rs), opening the socket
//! (proxy/socket.rs) or the Host header (forward.rs).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::body::Counted;
use crate::proxy::socket::{ConnectError, connect};

/// A connector for URIs whose authority is a literal socket address (never a name).
#[derive(Clone, Debug)]
pub struct JudgedConnector {
    pub timeout: Duration,
}

impl tower_service::Service<Uri> for JudgedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = self.timeout;
        let addr = uri
            .authority()
            .and_then(|a| a.as_str().parse::<SocketAddr>().ok());
        Box::pin(async move {
            let addr = addr.ok_or(ConnectError::NotJudged)?;
            connect(addr, timeout).await.map(TokioIo::new)
        })
    }
}

pub type UpstreamClient = Client<JudgedConnector, Counted>;

/// The pooled HTTP/1.1 client; idle pooled connections close after `idle_timeout`.
pub fn client(connect_timeout: Duration, idle_timeout: Duration) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(idle_timeout)
        .pool_timer(TokioTimer::new())
        .set_host(false)
        .build(JudgedConnector {
            timeout: connect_timeout,
        })
}

/// The connect failure inside a client error, if that is what it was.
pub fn connect_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a ConnectError> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(c) = e.downcast_ref::<ConnectError>() {
            return Some(c);
        }
        cur = e.source();
    }
    None
}

/// The URI the pooled client is given: the judged address plus the origin-form target.
pub fn judged_uri(addr: SocketAddr, path_and_query: &str) -> Result<Uri, http::Error> {
    Uri::builder()
        .scheme("http")
        .authority(addr.to_string())
        .path_and_query(path_and_query)
        .build()
}
