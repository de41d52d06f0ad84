//! The forward proxy's shared state (config, the pooled upstream client, byte counters, the
//! drain watch) and what requests and tunnels share: judging a target and turning every
//! refusal into the client's answer, the loop check, error counting.
//!
//! Not here: the client connection (mod.rs), one request (forward.rs), one tunnel (tunnel.rs).

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;

use super::body::{self, BodyCounters};
use super::reply;
use super::upstream::{self, UpstreamClient};
use crate::config::HttpConfig;
use crate::drain::Watch;
use crate::proxy::{Gateway, Judged, copy};
use crate::telemetry::metrics::ErrorLabels;

pub(super) const PROTOCOL: &str = "http";

/// The forward proxy's shared state.
pub struct HttpProxy {
    pub(super) gateway: Arc<Gateway>,
    pub(super) cfg: HttpConfig,
    /// Where this proxy listens (to refuse requests addressed to itself).
    local: SocketAddr,
    pub(super) client: UpstreamClient,
    pub(super) up: BodyCounters,
    pub(super) down: BodyCounters,
    /// The same byte counters, for tunnels.
    pub(super) counters: copy::Counters,
    /// Held while the proxy lives (every connection and tunnel holds the proxy): draining
    /// waits for the last of them.
    pub(super) drain: Watch,
    /// Open CONNECT tunnels, bounded by `http.max_connections` too: a tunnel outlives the HTTP
    /// connection it came on, whose slot is freed when hyper hands the socket over.
    pub(super) tunnels: Arc<tokio::sync::Semaphore>,
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
        let tunnels = Arc::new(tokio::sync::Semaphore::new(cfg.max_connections.max(1)));
        Arc::new(Self {
            gateway,
            cfg,
            local,
            client,
            up,
            down,
            tunnels,
            counters,
            drain,
        })
    }

    /// How long a tunnel may stay silent both ways before it is closed.
    pub fn idle_timeout(&self) -> std::time::Duration {
        self.cfg.idle_timeout.get()
    }

    pub(super) fn error(&self, kind: &'static str) {
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
    pub(super) async fn judge_or_refuse(
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
