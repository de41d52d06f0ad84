//! The HTTP egress gateway: a forward proxy for absolute-form HTTP/1.1 requests and CONNECT
//! tunnels. This file is one client connection on the shared listener: per-connection limits
//! (header size, header read timeout), graceful shutdown, and error accounting.
//!
//! Not here: accepting (proxy/listener.rs), one request (forward.rs), one tunnel (tunnel.rs),
//! judging a target (proxy/judge.rs), upstream connections (upstream.rs). Limits answer as RFC 9110 says: oversize heads get 431
//! and malformed ones 400 (hyper writes both), a client too slow to send its head is closed.
//! An idle client connection waiting for its next request is bounded by `header_timeout` too
//! (for hyper, waiting for a head is one state); `idle_timeout` bounds pooled upstream ones
//! and silent CONNECT tunnels.

mod body;
mod forward;
mod headers;
mod reply;
mod target;
mod transparent;
mod tunnel;
mod upstream;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::counter::Counter;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::HttpConfig;
use crate::drain::Watch;
use crate::proxy::listener::{self, Accepted, Listener};
use crate::proxy::{Gateway, Judged, copy};
use crate::telemetry::metrics::ErrorLabels;
use body::BodyCounters;
pub use transparent::serve_towards;
use upstream::UpstreamClient;

const PROTOCOL: &str = "http";

/// The forward proxy's shared state.
pub struct HttpProxy {
    gateway: Arc<Gateway>,
    cfg: HttpConfig,
    /// Where this proxy listens (to refuse requests addressed to itself).
    local: SocketAddr,
    client: UpstreamClient,
    up: BodyCounters,
    down: BodyCounters,
    /// The same byte counters, for tunnels.
    counters: copy::Counters,
    /// Held while the proxy lives (every connection and tunnel holds the proxy): draining
    /// waits for the last of them.
    drain: Watch,
}

impl HttpProxy {
    pub fn new(
        gateway: Arc<Gateway>,
        cfg: HttpConfig,
        local: SocketAddr,
        drain: Watch,
    ) -> Arc<Self> {
        let m = &gateway.metrics;
        let counters = |direction: &'static str, kind: &'static str| BodyCounters {
            bytes: m
                .bytes
                .get_or_create(&crate::telemetry::metrics::BytesLabels {
                    protocol: PROTOCOL,
                    direction,
                })
                .clone(),
            aborted: error_counter(&gateway, kind),
        };
        let up = counters("upstream", "client_aborted");
        let down = counters("downstream", "upstream_aborted");
        let client = upstream::client(cfg.connect_timeout.get(), cfg.idle_timeout.get());
        let counters = copy::Counters {
            up: up.bytes.clone(),
            down: down.bytes.clone(),
        };
        Arc::new(Self {
            gateway,
            cfg,
            local,
            client,
            up,
            down,
            counters,
            drain,
        })
    }

    /// How long a tunnel may stay silent both ways before it is closed.
    pub fn idle_timeout(&self) -> std::time::Duration {
        self.cfg.idle_timeout.get()
    }

    fn error(&self, kind: &'static str) {
        self.gateway.metrics.error(PROTOCOL, kind);
    }

    /// True when `addr` is this proxy's own listener (a request to itself would loop).
    fn is_self(&self, addr: SocketAddr) -> bool {
        addr.port() == self.local.port()
            && (addr.ip() == self.local.ip()
                || (self.local.ip().is_unspecified()
                    && self.gateway.site.zone_of_ip(addr.ip()) == crate::policy::Zone::Local))
    }

    /// Judges `ask` and turns every refusal into the client's answer (403, 502, 504, 508), so
    /// requests and tunnels refuse alike. `what` names the operation in the 403 body.
    async fn judge_or_refuse(
        &self,
        ask: crate::proxy::Ask<'_>,
        what: &'static str,
        authority: &http::uri::Authority,
    ) -> Result<SocketAddr, http::Response<body::ProxyBody>> {
        use http::StatusCode;
        let addr = match self
            .gateway
            .judge(ask, self.cfg.connect_timeout.get())
            .await
        {
            Judged::Allowed { addr, .. } => addr,
            Judged::Denied(decision) => return Err(reply::denied(what, &decision)),
            Judged::Unresolvable(msg) => {
                self.error("dns");
                return Err(reply::error(StatusCode::BAD_GATEWAY, msg));
            }
            Judged::LookupTimeout(msg) => {
                self.error("dns_timeout");
                return Err(reply::error(StatusCode::GATEWAY_TIMEOUT, msg));
            }
        };
        if self.is_self(addr) {
            self.error("loop");
            return Err(reply::error(
                StatusCode::LOOP_DETECTED,
                format!("{authority} is this proxy itself"),
            ));
        }
        Ok(addr)
    }
}

fn error_counter(gateway: &Gateway, kind: &'static str) -> Counter {
    gateway
        .metrics
        .errors
        .get_or_create(&ErrorLabels {
            protocol: PROTOCOL,
            kind,
        })
        .clone()
}

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
        stream, mut drain, ..
    } = accepted;
    let svc_proxy = proxy.clone();
    let svc = service_fn(move |req| {
        let p = svc_proxy.clone();
        async move { Ok::<_, Infallible>(forward::handle(p, req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(proxy.cfg.header_timeout.get())
        .max_header_size(proxy.cfg.max_header_bytes.as_usize());
    let conn = builder
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = drain.signaled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        let kind = if e.is_timeout() {
            "header_timeout"
        } else if e.is_parse_too_large() {
            "header_too_large"
        } else if e.is_parse() {
            "bad_request"
        } else if e.is_incomplete_message() {
            "client_closed"
        } else {
            "client_io"
        };
        proxy.error(kind);
    }
}
