//! CONNECT tunnels: judged like a request (protocol `https`, operation `tunnel`, no http facts:
//! they are inside TLS), connected to exactly the judged address, then spliced byte for byte.
//!
//! Domain fronting: before the first byte goes upstream, the tunnel reads the client's first
//! bytes (waiting at most `http.tunnel_peek_timeout`). When they are a TLS ClientHello whose
//! SNI names a host other than the CONNECT target and that name is outside the site (by the
//! same rule as any target: not a local domain, or a literal external address), the SNI name
//! is judged as its own tunnel input (`target.host` = the SNI name, zone `external`, no ip, no
//! lookup). Unless the policy allows that export too, the tunnel is closed and the upstream
//! never sees a byte. A ClientHello that does not parse, or does not complete in time, is
//! refused (fail closed); a client that sends nothing, or a protocol other than TLS, is
//! relayed as judged by the CONNECT target.
//!
//! A tunnel in which no byte moves either way for `http.idle_timeout` is closed.
//!
//! Not here: plain requests (forward.rs), SNI parsing (proxy/sni.rs), the relay (proxy/copy.rs).

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::body::ProxyBody;
use super::proxy::HttpProxy;
use super::reply;
use super::target::host_port;
use crate::policy::{Operation, Protocol, Zone};
use crate::proxy::Ask;
use crate::proxy::copy::{self, Ended};
use crate::proxy::sni::{self, ClientHello};
use crate::proxy::socket::{ConnectError, connect};
use crate::site::HostKind;
use crate::telemetry::RateLimiter;

pub async fn handle(p: Arc<HttpProxy>, req: Request<Incoming>) -> Response<ProxyBody> {
    let Some(authority) = req
        .uri()
        .authority()
        .filter(|a| a.port_u16().is_some())
        .cloned()
    else {
        p.error("bad_request");
        return reply::error(StatusCode::BAD_REQUEST, "CONNECT needs host:port");
    };
    let (host, port) = host_port(&authority, 443);
    let ask = Ask {
        protocol: Protocol::Https,
        operation: Operation::Tunnel,
        source: &p.gateway.identity,
        host,
        port,
        mqtt: None,
        http: None,
        will: None,
    };
    let addr = match p.judge_or_refuse(ask, "tunnel", &authority).await {
        Ok(addr) => addr,
        Err(refusal) => return refusal,
    };
    let upstream = match connect(addr, p.cfg.connect_timeout.get()).await {
        Ok(s) => s,
        Err(ConnectError::Timeout(_)) => {
            p.error("connect_timeout");
            return reply::error(
                StatusCode::GATEWAY_TIMEOUT,
                format!("connecting to {authority} timed out"),
            );
        }
        Err(e) => {
            p.error("upstream_unreachable");
            return reply::error(StatusCode::BAD_GATEWAY, format!("{authority}: {e}"));
        }
    };
    let guard = p.drain.clone();
    let host = host.to_ascii_lowercase();
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let _guard = guard;
        match upgrade.await {
            // The client's raw socket when hyper hands it back (it does for plain TCP): the
            // splice then copies socket to socket without hyper's I/O layer in between.
            Ok(client) => match client.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let early = parts.read_buf.to_vec();
                    let client = parts.io.into_inner();
                    splice_tcp(&p, client, early, upstream, &host, port).await;
                }
                Err(client) => {
                    splice(&p, TokioIo::new(client), Vec::new(), upstream, &host, port).await
                }
            },
            Err(_) => p.error("tunnel_upgrade"),
        }
    });
    reply::empty(StatusCode::OK)
}

/// As [`splice`] for two plain TCP sockets: the same check, then the kernel-side relay.
async fn splice_tcp(
    p: &HttpProxy,
    mut client: TcpStream,
    early: Vec<u8>,
    mut upstream: TcpStream,
    host: &str,
    port: u16,
) {
    if !check_first_bytes(p, &mut client, early, &mut upstream, host, port).await {
        return;
    }
    let ended = copy::relay_tcp(client, upstream, &p.counters, p.cfg.idle_timeout.get()).await;
    count_end(p, ended);
}

/// Checks the first bytes (`early`: what the client sent along with its CONNECT), then
/// relays both ways until either side closes or the tunnel idles out.
async fn splice<C: AsyncRead + AsyncWrite + Unpin>(
    p: &HttpProxy,
    mut client: C,
    early: Vec<u8>,
    mut upstream: TcpStream,
    host: &str,
    port: u16,
) {
    if !check_first_bytes(p, &mut client, early, &mut upstream, host, port).await {
        return;
    }
    let ended = copy::relay(client, upstream, &p.counters, p.cfg.idle_timeout.get()).await;
    count_end(p, ended);
}

fn count_end(p: &HttpProxy, ended: Ended) {
    match ended {
        Ended::Closed => {}
        Ended::Idle => p.error("tunnel_idle_timeout"),
        // A reset in the middle of a tunnel is normal life for TCP; it is counted, not logged.
        Ended::Failed(_) => p.error("tunnel_io"),
    }
}

/// Reads the client's first bytes (waiting at most `tunnel_peek_timeout`), refuses a tunnel
/// whose ClientHello is malformed or names an external host the policy does not allow, and
/// otherwise sends those bytes upstream. False when the tunnel must end.
async fn check_first_bytes<C: AsyncRead + Unpin>(
    p: &HttpProxy,
    client: &mut C,
    early: Vec<u8>,
    upstream: &mut TcpStream,
    host: &str,
    port: u16,
) -> bool {
    let mut first = early;
    first.reserve(4096);
    let deadline = tokio::time::Instant::now() + p.cfg.tunnel_peek_timeout.get();
    let hello = loop {
        if !first.is_empty() && !matches!(sni::parse(&first), ClientHello::Incomplete) {
            break sni::parse(&first);
        }
        match tokio::time::timeout_at(deadline, client.read_buf(&mut first)).await {
            // Nothing (more) in time: judge what we have.
            Err(_) => break sni::parse(&first),
            Ok(Ok(0)) if first.is_empty() => return false,
            Ok(Ok(0)) => break sni::parse(&first),
            Ok(Ok(_)) => match sni::parse(&first) {
                ClientHello::Incomplete if first.len() < sni::MAX_HELLO + 5 * 8 => continue,
                other => break other,
            },
            Ok(Err(_)) => {
                p.error("tunnel_io");
                return false;
            }
        }
    };
    match hello {
        ClientHello::Incomplete if !first.is_empty() => {
            p.error("tls_incomplete");
            return false;
        }
        ClientHello::Malformed(why) => {
            tracing::debug!(target = %format_args!("{host}:{port}"), why, "tunnel refused: malformed ClientHello");
            p.error("tls_malformed");
            return false;
        }
        ClientHello::Hello { sni: Some(name) } if !sni_permitted(p, host, port, &name) => {
            p.error("sni_refused");
            return false;
        }
        _ => {}
    }
    if !first.is_empty() {
        if upstream.write_all(&first).await.is_err() {
            p.error("tunnel_io");
            return false;
        }
        p.counters.up.inc_by(first.len() as u64);
    }
    true
}

/// Domain-fronting check: an SNI naming the CONNECT host, or a host inside the site, is fine;
/// any other name is an export of its own and must be allowed as one.
fn sni_permitted(p: &HttpProxy, host: &str, port: u16, sni_name: &str) -> bool {
    if sni_name == host {
        return true;
    }
    let external = match p.gateway.site.classify(sni_name) {
        HostKind::LocalName => false,
        HostKind::Address(_, zone) => zone == Zone::External,
        HostKind::ExternalName => true,
    };
    if !external {
        return true;
    }
    let ask = Ask {
        protocol: Protocol::Https,
        operation: Operation::Tunnel,
        source: &p.gateway.identity,
        host: sni_name,
        port,
        mqtt: None,
        http: None,
        will: None,
    };
    // Judged as the external name it claims, never looked up.
    let decision = p.gateway.decide_at(&ask, None, Zone::External);
    if !decision.allowed() {
        // Fronting attempts can come in floods; like every deny log, this one is rate-limited.
        static FRONTING_LOG: RateLimiter = RateLimiter::new(20);
        if FRONTING_LOG.allow() {
            tracing::warn!(
                tunnel = %format_args!("{host}:{port}"),
                sni = sni_name,
                decision_id = decision.decision_id.as_deref(),
                "tunnel closed: TLS server name is an external host (domain fronting)"
            );
        }
    }
    decision.allowed()
}
