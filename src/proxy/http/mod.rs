//! The HTTP egress gateway: a forward proxy for absolute-form HTTP/1.1 requests and CONNECT
//! tunnels. This file is the listener: accept loop, connection limit, per-connection limits
//! (header size, header read timeout), graceful shutdown, and error accounting.
//!
//! Not here: one request (forward.rs), one tunnel (tunnel.rs), judging a target (target.rs),
//! upstream connections (upstream.rs). Limits answer as RFC 9110 says: oversize heads get 431
//! and malformed ones 400 (hyper writes both), a client too slow to send its head is closed.
//! An idle client connection waiting for its next request is bounded by `header_timeout` too
//! (for hyper, waiting for a head is one state); `idle_timeout` bounds pooled upstream ones
//! and silent CONNECT tunnels.

mod body;
mod forward;
mod headers;
pub(crate) mod idle;
mod reply;
mod target;
mod transparent;
mod tunnel;
mod upstream;
#[cfg(target_os = "linux")]
pub(crate) mod zerocopy;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::counter::Counter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::config::HttpConfig;
use crate::drain::InFlight;
use crate::proxy::Gateway;
use crate::telemetry::metrics::{ErrorLabels, ProtocolLabels};
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
    in_flight: InFlight,
}

impl HttpProxy {
    pub fn new(
        gateway: Arc<Gateway>,
        cfg: HttpConfig,
        local: SocketAddr,
        in_flight: InFlight,
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
        Arc::new(Self {
            gateway,
            cfg,
            local,
            client,
            up,
            down,
            in_flight,
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
        ask: target::Ask<'_>,
        what: &'static str,
        authority: &http::uri::Authority,
    ) -> Result<SocketAddr, http::Response<body::ProxyBody>> {
        use http::StatusCode;
        let addr = match target::judge(&self.gateway, ask, self.cfg.connect_timeout.get()).await {
            target::Judged::Allowed(addr) => addr,
            target::Judged::Denied {
                verdict,
                decision_id,
            } => return Err(reply::denied(what, &verdict, &decision_id)),
            target::Judged::Unresolvable(msg) => {
                self.error("dns");
                return Err(reply::error(StatusCode::BAD_GATEWAY, msg));
            }
            target::Judged::LookupTimeout(msg) => {
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

/// Serves `listener` until `shutdown` turns true; then stops accepting and asks every open
/// connection to finish its current request. The task ends when the accept loop has stopped;
/// open work is tracked by the proxy's [`InFlight`].
pub fn spawn(
    proxy: Arc<HttpProxy>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(accept_loop(proxy, listener, shutdown))
}

async fn accept_loop(
    proxy: Arc<HttpProxy>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(proxy.cfg.max_connections));
    loop {
        let permit = match limit.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // At the limit: further clients wait in the kernel's backlog.
                proxy.error("connection_limit");
                tokio::select! {
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = stopped(&mut shutdown) => return,
                }
            }
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped(&mut shutdown) => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let guard = proxy.in_flight.guard();
                let proxy = proxy.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    serve_connection(proxy, stream, permit, shutdown).await;
                });
            }
            Err(_) => {
                // Out of file descriptors and the like: count, breathe, keep serving.
                proxy.error("accept");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

/// Resolves once shutdown has been signalled (or the signal is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Keeps `connections_open` right however the connection ends.
struct OpenConnection(prometheus_client::metrics::gauge::Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn serve_connection(
    proxy: Arc<HttpProxy>,
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    mut shutdown: watch::Receiver<bool>,
) {
    let labels = ProtocolLabels { protocol: PROTOCOL };
    let m = &proxy.gateway.metrics;
    m.connections.get_or_create(&labels).inc();
    let gauge = m.connections_open.get_or_create(&labels).clone();
    gauge.inc();
    let _open = OpenConnection(gauge);
    let _ = stream.set_nodelay(true);

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
        _ = stopped(&mut shutdown) => {
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
