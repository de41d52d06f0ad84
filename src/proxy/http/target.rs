//! Judging where a request or tunnel goes, under DESIGN.md's DNS rule: a name outside the
//! site's local domains is judged *before* any lookup (zone external, no ip) and looked up only
//! if allowed; a name inside is resolved once and is local only if its address is local too.
//! The result is the one socket address the proxy may connect to.
//!
//! Not here: connecting (upstream.rs) or what a refusal looks like (reply.rs).

use std::net::SocketAddr;
use std::time::Duration;

use crate::policy::{HttpFacts, Input, Operation, Protocol, Target, Verdict, Zone};
use crate::proxy::Gateway;
use crate::site::HostKind;

/// The outcome of judging one target.
#[derive(Debug)]
pub enum Judged {
    /// Connect to exactly this address.
    Allowed(SocketAddr),
    /// Refused; the decision id is in the log line and goes to the client.
    Denied {
        verdict: Verdict,
        decision_id: String,
    },
    /// The name has no usable address (after the policy allowed looking it up).
    Unresolvable(String),
    /// The lookup itself took longer than the connect timeout.
    LookupTimeout(String),
}

/// What is being judged.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    pub protocol: Protocol,
    pub operation: Operation,
    /// As the client wrote it; IPv6 without brackets.
    pub host: &'a str,
    pub port: u16,
    pub http: Option<HttpFacts<'a>>,
}

/// Judges `ask`; resolves a name at most once; `timeout` bounds the lookup.
pub async fn judge(gw: &Gateway, ask: Ask<'_>, timeout: Duration) -> Judged {
    let (ip, zone) = match gw.site.classify(ask.host) {
        HostKind::Address(ip, zone) => (Some(ip), zone),
        // Judged before any lookup: the lookup itself would be an export.
        HostKind::ExternalName => (None, Zone::External),
        HostKind::LocalName => match resolve(ask.host, ask.port, timeout).await {
            Ok(addr) => (Some(addr.ip()), gw.site.zone_of_ip(addr.ip())),
            Err(j) => return j,
        },
    };
    let input = Input {
        protocol: ask.protocol,
        operation: ask.operation,
        source: &gw.identity,
        target: Target {
            host: ask.host,
            port: ask.port,
            ip,
            zone,
        },
        mqtt: None,
        http: ask.http,
    };
    let verdict = gw.decide_unlogged(&input);
    if !verdict.allowed() {
        let decision_id = crate::telemetry::decision_id();
        gw.log_denied(&input, &verdict, Some(&decision_id));
        return Judged::Denied {
            verdict,
            decision_id,
        };
    }
    match ip {
        Some(ip) => Judged::Allowed(SocketAddr::new(ip, ask.port)),
        // An external name the policy let out: now, and only now, look it up.
        None => match resolve(ask.host, ask.port, timeout).await {
            Ok(addr) => Judged::Allowed(addr),
            Err(j) => j,
        },
    }
}

/// One lookup; the first address is the one judged and used.
async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, Judged> {
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(Judged::LookupTimeout(format!(
            "looking up {host} timed out"
        ))),
        Ok(Err(e)) => Err(Judged::Unresolvable(format!("cannot resolve {host}: {e}"))),
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| Judged::Unresolvable(format!("{host} has no address"))),
    }
}

/// Splits a request target's authority into host (brackets removed) and port.
pub fn host_port(authority: &http::uri::Authority, default_port: u16) -> (&str, u16) {
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (host, authority.port_u16().unwrap_or(default_port))
}
