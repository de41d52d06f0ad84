//! The transparent listener: every outbound TCP connection of the pod that the rules of
//! `sluice iptables` redirect here. It reads the connection's original destination, refuses
//! one whose destination is sluice itself (never a loop), sniffs the first client bytes for at
//! most `intercept.sniff_timeout` and hands the connection to its path: HTTP/1.x to the HTTP
//! path (every request judged), MQTT to the MQTT session (CONNECT, Will, PUBLISH, SUBSCRIBE
//! judged), TLS and everything else to a judged byte tunnel (tunnel.rs). Every path connects to
//! the original destination and nowhere else.
//!
//! Not here: the rules (cmd/iptables.rs), DNS (proxy/dns), the protocols' own logic.

pub mod bind;
mod original_dst;
mod sniff;
pub mod start;
mod tunnel;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::intercept::InterceptConfig;
use crate::drain::Watch;
use crate::proxy::Gateway;
use crate::proxy::dns::names::AnsweredNames;
use crate::proxy::http::HttpProxy;
use crate::proxy::listener::{self, Accepted, Listener};
pub use bind::{InterceptError, bind_tcp};
pub use original_dst::original_destination;
pub use sniff::{Sniffed, classify};

/// The label of the listener's own counters (`errors{protocol="transparent"}`).
const PROTOCOL: &str = "transparent";

/// What every intercepted connection shares.
pub struct Transparent {
    pub gateway: Arc<Gateway>,
    pub cfg: InterceptConfig,
    /// The HTTP path (its limits are `http:`'s, or the defaults when `http: null`).
    pub http: Arc<HttpProxy>,
    /// Names sluice's DNS gave out, by address.
    pub names: Arc<AnsweredNames>,
    /// Every port sluice listens on: a destination on loopback with one of them is sluice.
    pub own_ports: Vec<u16>,
}

/// Serves every listener on the shared accept loop until `drain` is signaled.
pub fn spawn(
    t: Arc<Transparent>,
    listeners: Vec<TcpListener>,
    drain: Watch,
) -> Vec<JoinHandle<()>> {
    let m = &t.gateway.metrics;
    let labels = crate::telemetry::metrics::ProtocolLabels { protocol: PROTOCOL };
    listeners
        .into_iter()
        .map(|tcp| {
            let counted = t.gateway.clone();
            let listener = Listener {
                name: format!(
                    "intercept {}",
                    tcp.local_addr()
                        .map_or_else(|_| "?".into(), |a| a.to_string())
                ),
                tcp,
                max_connections: t.cfg.max_connections,
                accounting: listener::Accounting {
                    error: Arc::new(move |kind| counted.metrics.error(PROTOCOL, kind)),
                    accepted: Some(m.connections.get_or_create(&labels).clone()),
                    open: Some(m.connections_open.get_or_create(&labels).clone()),
                },
            };
            let t = t.clone();
            listener::spawn(listener, drain.clone(), move |a| serve(t.clone(), a))
        })
        .collect()
}

/// One intercepted connection, from its original destination to its path's end.
async fn serve(t: Arc<Transparent>, accepted: Accepted) {
    let m = &t.gateway.metrics;
    let (stream, peer) = (&accepted.stream, accepted.peer);
    let original = match original_destination(stream) {
        Ok(a) => unmapped(a),
        Err(e) => {
            m.error(PROTOCOL, "no_original_destination");
            tracing::debug!(%peer, "intercepted connection without an original destination: {e}");
            return;
        }
    };
    if t.is_self(original, stream.local_addr().ok()) {
        m.error(PROTOCOL, "loop");
        tracing::debug!(%peer, %original, "refused: the original destination is sluice itself");
        return;
    }
    let host = t
        .names
        .name_of(original.ip())
        .unwrap_or_else(|| original.ip().to_string());
    match sniff::sniff(stream, t.cfg.sniff_timeout.get()).await {
        Sniffed::Closed => {}
        Sniffed::BadTls(why) => {
            m.error(PROTOCOL, "tls_malformed");
            tracing::debug!(%peer, %original, why, "refused: malformed TLS ClientHello");
        }
        Sniffed::Http => {
            let proxy = t.http.clone();
            crate::proxy::http::serve_towards(proxy, accepted, original, host).await
        }
        Sniffed::Mqtt => {
            let cfg = t.cfg.mqtt_towards(original);
            crate::proxy::mqtt::serve_towards(t.gateway.clone(), cfg, accepted).await
        }
        Sniffed::Tls { sni } => {
            tunnel::run(&t, accepted.stream, original, &host, sni.as_deref()).await
        }
        Sniffed::Opaque => tunnel::run(&t, accepted.stream, original, &host, None).await,
    }
}

impl Transparent {
    /// True when `original` is one of sluice's own listeners (the listener itself, or loopback
    /// on one of its ports): relaying it would loop or reach sluice's internals.
    fn is_self(&self, original: SocketAddr, local: Option<SocketAddr>) -> bool {
        Some(original) == local
            || ((original.ip().is_loopback() || original.ip().is_unspecified())
                && self.own_ports.contains(&original.port()))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn unmapped(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}
