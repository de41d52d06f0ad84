//! A judged byte tunnel for an intercepted connection that is not HTTP or MQTT: TLS (protocol
//! `https`) or anything else (protocol `tcp`), operation `tunnel`, judged on the original
//! address and port (`target.ip`, its zone) before a byte goes anywhere. `target.host` is the
//! name sluice's DNS answered for that address, else the address. A TLS server name (SNI) is
//! only a claim: an external address is an export whatever it names; an SNI naming another
//! external host is judged as an export of its own too (domain fronting), as in CONNECT.
//!
//! Allowed: connect to exactly the original destination and splice both ways until either
//! side closes or no byte moves for `http.idle_timeout` (proxy/copy.rs). Denied: the connection is closed.
//! Not here: sniffing (sniff.rs).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use super::{PROTOCOL, Transparent};
use crate::policy::{Operation, Protocol, Zone};
use crate::proxy::Ask;
use crate::proxy::copy::{self, Counters, Ended};
use crate::proxy::revalidate;
use crate::proxy::socket::{self, ConnectError};
use crate::telemetry::metrics::BytesLabels;

pub async fn run(
    t: &Arc<Transparent>,
    client: TcpStream,
    original: SocketAddr,
    host: &str,
    sni: Option<&str>,
) {
    let gw = &t.gateway;
    let protocol = if sni.is_some() {
        Protocol::Https
    } else {
        Protocol::Tcp
    };
    let zone = gw.site.zone_of_ip(original.ip());
    let ask = Ask {
        protocol,
        operation: Operation::Tunnel,
        source: &gw.identity,
        host,
        port: original.port(),
        mqtt: None,
        http: None,
        will: None,
    };
    let ip = Some(original.ip());
    if !gw.decide_at(&ask, ip, zone).allowed() {
        return;
    }
    let fronted = sni.filter(|n| *n != host && gw.site.leaves(n));
    if let Some(name) = fronted {
        let fronted = Ask { host: name, ..ask };
        if !gw.decide_at(&fronted, ip, Zone::External).allowed() {
            gw.metrics.error(PROTOCOL, "sni_refused");
            return;
        }
    }
    let upstream = match socket::connect(original, t.cfg.connect_timeout.get()).await {
        Ok(s) => s,
        Err(ConnectError::Timeout(_)) => {
            gw.metrics.error(PROTOCOL, "connect_timeout");
            return;
        }
        Err(_) => {
            gw.metrics.error(PROTOCOL, "upstream_unreachable");
            return;
        }
    };
    let m = &gw.metrics;
    let counter = |direction| {
        m.bytes
            .get_or_create(&BytesLabels {
                protocol: protocol.as_str(),
                direction,
            })
            .clone()
    };
    let counters = Counters {
        up: counter("upstream"),
        down: counter("downstream"),
    };
    let relay = copy::relay_tcp(client, upstream, &counters, t.http.idle_timeout());
    // Judged again as at the start (the original address, then a fronted server name) each
    // time a newer policy generation is in force; a denied tunnel is closed.
    let mut watch = gw.policy_watch();
    let rejudge = || gw.decide_tunnel(&ask, ip, zone, fronted.map(|n| (n, ip)));
    tokio::select! {
        ended = relay => match ended {
            Ended::Closed => {}
            Ended::Idle => m.error(PROTOCOL, "tunnel_idle_timeout"),
            // A reset in the middle of a tunnel is normal life for TCP: counted, not logged.
            Ended::Failed(_) => m.error(PROTOCOL, "tunnel_io"),
        },
        decision = watch.denied(rejudge) => {
            revalidate::revoked(gw, protocol.as_str(), &original.to_string(), &decision);
        }
    }
}
