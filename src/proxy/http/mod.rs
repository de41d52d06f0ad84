//! The HTTP egress gateway: a forward proxy for absolute-form HTTP/1.1 requests and CONNECT
//! tunnels. This file is one client connection on the shared listener: per-connection limits
//! (header size, header read timeout), graceful shutdown, and error accounting.
//!
//! Not here: accepting (proxy/listener.rs), one request (forward.rs), one tunnel (tunnel.rs),
//! the proxy's shared state (proxy.rs), judging a target (proxy/judge.rs), upstream connections
//! (upstream.rs). Limits answer as RFC 9110 says: oversize heads get 431 and malformed ones 400
//! (hyper writes both), a client too slow to send its head is closed.
//! An idle client connection waiting for its next request is bounded by `header_timeout` too
//! (for hyper, waiting for a head is one state); `idle_timeout` bounds pooled upstream ones
//! and silent CONNECT tunnels.

mod body;
mod forward;
mod headers;
mod proxy;
mod reply;
pub(crate) mod target;
mod transparent;
mod tunnel;
pub(crate) mod upstream;

use std::convert::Infallible;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::drain::Watch;
use crate::proxy::listener::{self, Accepted, Listener};
pub use proxy::HttpProxy;
use proxy::PROTOCOL;
pub use transparent::serve_towards;

/// Serves `tcp` until `drain` is signaled; then stops accepting and asks every open
/// connection to finish its current request. Draining waits for the proxy's connections and
/// tunnels (each holds the proxy, which holds a drain watch).
pub fn spawn(proxy: Arc<HttpProxy>, tcp: TcpListener, drain: Watch) -> JoinHandle<()> {
    let m = &proxy.gateway.metrics;
    let labels = crate::telemetry::metrics::ProtocolLabels { protocol: PROTOCOL };
    let counted = proxy.gateway.clone();
    let listener = Listener {
        name: PROTOCOL.to_string(),
        tcp,
        max_connections: proxy.cfg.max_connections,
        accounting: listener::Accounting {
            error: Arc::new(move |kind| counted.metrics.error(PROTOCOL, kind)),
            accepted: Some(m.connections.get_or_create(&labels).clone()),
            open: Some(m.connections_open.get_or_create(&labels).clone()),
        },
    };
    listener::spawn(listener, drain, move |a| serve_connection(proxy.clone(), a))
}

async fn serve_connection(proxy: Arc<HttpProxy>, accepted: Accepted) {
    let Accepted {
        stream,
        mut drain,
        mut pressure,
        ..
    } = accepted;
    let svc_proxy = proxy.clone();
    // Requests under way on this connection: one that has none may give its slot up to
    // clients queued behind a full listener.
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let svc_busy = busy.clone();
    let svc = service_fn(move |req| {
        let p = svc_proxy.clone();
        let busy = Busy::start(&svc_busy);
        async move {
            let response = forward::handle(p, req).await;
            drop(busy);
            Ok::<_, Infallible>(response)
        }
    });
    let conn = client_connection(&proxy)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let result = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            _ = drain.signaled() => {
                conn.as_mut().graceful_shutdown();
                break conn.await;
            }
            _ = pressure.shed() => {
                if busy.load(std::sync::atomic::Ordering::Acquire) == 0 {
                    proxy.error("shed");
                    return;
                }
                pressure.reset();
            }
        }
    };
    if let Err(e) = result {
        proxy.error(client_error_kind(&e));
    }
}

/// Counts one request under way on a connection until dropped.
struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Busy {
    fn start(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A client connection's HTTP/1 settings: the header limits of `http.*`.
fn client_connection(proxy: &HttpProxy) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(proxy.cfg.header_timeout.get())
        .max_header_size(proxy.cfg.max_header_bytes.as_usize());
    builder
}

/// How a client connection ended badly, as the `errors{protocol="http",kind}` label.
fn client_error_kind(e: &hyper::Error) -> &'static str {
    if e.is_timeout() {
        "header_timeout"
    } else if e.is_parse_too_large() {
        "header_too_large"
    } else if e.is_parse() {
        "bad_request"
    } else if e.is_incomplete_message() {
        "client_closed"
    } else {
        "client_io"
    }
}
