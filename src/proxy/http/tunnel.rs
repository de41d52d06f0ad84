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

use std::net::IpAddr;
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
use crate::proxy::revalidate;
use crate::proxy::sni::{self, ClientHello};
use crate::proxy::socket::{ConnectError, connect};
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
    let ask = tunnel_ask(&p, host, port);
    let addr = match p.judge_or_refuse(ask, "tunnel", &authority).await {
        Ok(addr) => addr,
        Err(refusal) => return refusal,
    };
    let Ok(slot) = p.tunnels.clone().try_acquire_owned() else {
        p.error("tunnel_limit");
        return reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open tunnels (http.max_connections)",
        );
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
    let up = Upstream {
        stream: upstream,
        host: host.to_string(),
        port,
        addr: addr.ip(),
    };
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let _guard = guard;
        let _slot = slot;
        match upgrade.await {
            // The client's raw socket when hyper hands it back (it does for plain TCP): the
            // splice then copies socket to socket without hyper's I/O layer in between.
            Ok(client) => match client.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let early = parts.read_buf.to_vec();
                    let client = parts.io.into_inner();
                    splice_tcp(&p, client, early, up).await;
                }
                Err(client) => splice(&p, TokioIo::new(client), Vec::new(), up).await,
            },
            Err(_) => p.error("tunnel_upgrade"),
        }
    });
    reply::empty(StatusCode::OK)
}

/// As [`splice`] for two plain TCP sockets: the same check, then the kernel-side relay.
async fn splice_tcp(p: &HttpProxy, mut client: TcpStream, early: Vec<u8>, mut up: Upstream) {
    let First::Relay { fronted } =
        check_first_bytes(p, &mut client, early, &mut up.stream, &up.host, up.port).await
    else {
        return;
    };
    let idle = p.cfg.idle_timeout.get();
    let relay = copy::relay_tcp(client, up.stream, &p.counters, idle);
    follow_policy(p, relay, &up.host, up.port, up.addr, fronted.as_deref()).await;
}

/// Checks the first bytes (`early`: what the client sent along with its CONNECT), then
/// relays both ways until either side closes, the tunnel idles out, or a newer policy
/// generation denies it.
async fn splice<C: AsyncRead + AsyncWrite + Unpin>(
    p: &HttpProxy,
    mut client: C,
    early: Vec<u8>,
    mut up: Upstream,
) {
    let First::Relay { fronted } =
        check_first_bytes(p, &mut client, early, &mut up.stream, &up.host, up.port).await
    else {
        return;
    };
    let relay = copy::relay(client, up.stream, &p.counters, p.cfg.idle_timeout.get());
    follow_policy(p, relay, &up.host, up.port, up.addr, fronted.as_deref()).await;
}

/// The tunnel's upstream end: the socket and what it was judged on.
struct Upstream {
    stream: TcpStream,
    host: String,
    port: u16,
    addr: IpAddr,
}

/// Runs the relay until it ends or a newer policy generation denies the tunnel (judged again
/// as at its start: the target, then a fronted server name); a denied tunnel is closed by
/// dropping the relay with both sockets.
async fn follow_policy(
    p: &HttpProxy,
    relay: impl Future<Output = Ended>,
    host: &str,
    port: u16,
    addr: IpAddr,
    fronted: Option<&str>,
) {
    let gw = &p.gateway;
    let mut watch = gw.policy_watch();
    let rejudge = || {
        let (ip, zone) = gw.located(host, addr);
        gw.decide_tunnel(
            &tunnel_ask(p, host, port),
            ip,
            zone,
            fronted.map(|n| (n, None)),
        )
    };
    tokio::select! {
        ended = relay => count_end(p, ended),
        decision = watch.denied(rejudge) => {
            revalidate::revoked(gw, Protocol::Https.as_str(), &format!("{host}:{port}"), &decision);
        }
    }
}

fn tunnel_ask<'a>(p: &'a HttpProxy, host: &'a str, port: u16) -> Ask<'a> {
    Ask {
        protocol: Protocol::Https,
        operation: Operation::Tunnel,
        source: &p.gateway.identity,
        host,
        port,
        mqtt: None,
        http: None,
        will: None,
    }
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
/// otherwise sends those bytes upstream.
async fn check_first_bytes<C: AsyncRead + Unpin>(
    p: &HttpProxy,
    client: &mut C,
    early: Vec<u8>,
    upstream: &mut TcpStream,
    host: &str,
    port: u16,
) -> First {
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
            Ok(Ok(0)) if first.is_empty() => return First::End,
            Ok(Ok(0)) => break sni::parse(&first),
            Ok(Ok(_)) => match sni::parse(&first) {
                ClientHello::Incomplete if first.len() < sni::MAX_HELLO + 5 * 8 => continue,
                other => break other,
            },
            Ok(Err(_)) => {
                p.error("tunnel_io");
                return First::End;
            }
        }
    };
    let mut fronted = None;
    match hello {
        ClientHello::Incomplete if !first.is_empty() => {
            p.error("tls_incomplete");
            return First::End;
        }
        ClientHello::Malformed(why) => {
            tracing::debug!(target = %format_args!("{host}:{port}"), why, "tunnel refused: malformed ClientHello");
            p.error("tls_malformed");
            return First::End;
        }
        ClientHello::Hello { sni: Some(name) } => match sni_permitted(p, host, port, &name) {
            Fronting::Refused => {
                p.error("sni_refused");
                return First::End;
            }
            Fronting::Allowed => fronted = Some(name),
            Fronting::None => {}
        },
        _ => {}
    }
    if !first.is_empty() {
        if upstream.write_all(&first).await.is_err() {
            p.error("tunnel_io");
            return First::End;
        }
        p.counters.up.inc_by(first.len() as u64);
    }
    First::Relay { fronted }
}

/// What the first bytes decided.
enum First {
    End,
    /// Relay; `fronted` is a server name judged as an export of its own.
    Relay {
        fronted: Option<String>,
    },
}

/// The SNI check's outcome.
enum Fronting {
    /// The name is the CONNECT host or inside the site.
    None,
    /// Another external host, and the policy allows that export too.
    Allowed,
    Refused,
}

/// Domain-fronting check: an SNI naming the CONNECT host, or a host inside the site, is fine;
/// any other name is an export of its own and must be allowed as one.
fn sni_permitted(p: &HttpProxy, host: &str, port: u16, sni_name: &str) -> Fronting {
    if sni_name.eq_ignore_ascii_case(host) {
        return Fronting::None;
    }
    if !p.gateway.site.leaves(sni_name) {
        return Fronting::None;
    }
    let ask = tunnel_ask(p, sni_name, port);
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
    if decision.allowed() {
        Fronting::Allowed
    } else {
        Fronting::Refused
    }
}
