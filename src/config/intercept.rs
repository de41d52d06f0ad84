//! The `intercept:` section: transparent interception of a pod's egress (the listener that
//! `sluice iptables` redirects outbound TCP to, and the DNS listener for port 53).
//!
//! Absent means off: the listeners start only when the section is present (`intercept: {}`
//! turns them on with the defaults). Not here: the rules themselves (cmd/iptables.rs) or what
//! the listeners do (proxy/transparent, proxy/dns).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};
use super::mqtt::{default_max_packet, default_mqtt_connect_timeout, default_v3_deny};
use super::units::Size;
use super::{Dur, MqttListenerConfig};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterceptConfig {
    /// sluice's own UID: its traffic is never redirected (and leaves directly when allowed).
    pub uid: u32,
    /// The transparent TCP listener; also `[::1]` on the same port when IPv6 is up.
    #[serde(deserialize_with = "super::units::listen_addr")]
    pub listen: SocketAddr,
    /// Time to wait for the client's first bytes; then the address alone decides.
    pub sniff_timeout: Dur,
    /// Outbound TCP ports left alone by the rules: each one is a way around sluice.
    pub exclude_ports: Vec<u16>,
    pub dns: InterceptDnsConfig,
    /// UDP (but DNS) and ICMP to non-local addresses: only `drop` exists.
    pub other: OtherTraffic,
    /// Time to connect to an original destination.
    pub connect_timeout: Dur,
    /// Concurrent intercepted connections; further ones wait in the kernel backlog.
    pub max_connections: usize,
}

impl Default for InterceptConfig {
    fn default() -> Self {
        Self {
            uid: 65532,
            listen: SocketAddr::from(([127, 0, 0, 1], 15001)),
            sniff_timeout: Dur(Duration::from_millis(200)),
            exclude_ports: Vec::new(),
            dns: InterceptDnsConfig::default(),
            other: OtherTraffic::Drop,
            connect_timeout: Dur(Duration::from_secs(5)),
            max_connections: 10_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterceptDnsConfig {
    /// UDP and TCP; also `[::1]` on the same port when IPv6 is up.
    #[serde(deserialize_with = "super::units::listen_addr")]
    pub listen: SocketAddr,
    /// Resolvers (`ip:port`) for allowed names; empty means the nameservers of /etc/resolv.conf.
    #[serde(deserialize_with = "resolver_addrs")]
    pub upstream: Vec<SocketAddr>,
    /// The answer to a denied lookup.
    pub refused: DnsRefusal,
    /// Time an upstream resolver has to answer before the next is tried (then SERVFAIL).
    pub timeout: Dur,
    /// Resolver answers kept for repeated lookups (never verdicts: every query is judged).
    pub cache: DnsCacheConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsCacheConfig {
    /// Memory the cached answers may take; 0 turns the cache off.
    pub max_bytes: Size,
    /// An answer is given out again for its smallest TTL, and at most this long.
    pub max_ttl: Dur,
    /// A "no such name" or "no such record" answer: its SOA's negative TTL, at most this long.
    pub negative_ttl: Dur,
}

impl Default for DnsCacheConfig {
    fn default() -> Self {
        // As node-local DNS caches: success 30s, denial 5s.
        Self {
            max_bytes: Size(4 << 20),
            max_ttl: Dur(Duration::from_secs(30)),
            negative_ttl: Dur(Duration::from_secs(5)),
        }
    }
}

impl Default for InterceptDnsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 15053)),
            upstream: Vec::new(),
            refused: DnsRefusal::Refused,
            timeout: Dur(Duration::from_secs(2)),
            cache: DnsCacheConfig::default(),
        }
    }
}

/// Resolver addresses: `IP:PORT` each; the error quotes the entry and shows the form (a bare
/// IP is the usual slip, as resolv.conf writes them without a port).
fn resolver_addrs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    // Through a Vec of the wrapper, so the error keeps the entry's index in its path.
    let entries = Vec::<Resolver>::deserialize(d)?;
    Ok(entries.into_iter().map(|r| r.0).collect())
}

struct Resolver(SocketAddr);

impl<'de> Deserialize<'de> for Resolver {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.trim().parse().map(Resolver).map_err(|_| {
            serde::de::Error::custom(format!(
                "{text:?} is not a resolver address; write IP:PORT, like 10.0.0.53:53"
            ))
        })
    }
}

/// How a denied DNS query is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsRefusal {
    /// RCODE 5 (REFUSED): the resolver will not answer.
    Refused,
    /// RCODE 3 (NXDOMAIN): the name does not exist.
    Nxdomain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OtherTraffic {
    Drop,
}

impl InterceptConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.port() == 0 {
            return Err(invalid(
                "intercept.listen",
                "needs a fixed port (the rules redirect to it)",
            ));
        }
        if self.dns.listen.port() == 0 {
            return Err(invalid(
                "intercept.dns.listen",
                "needs a fixed port (the rules redirect to it)",
            ));
        }
        if self.listen.port() == self.dns.listen.port() {
            return Err(invalid(
                "intercept.dns.listen",
                "must use another port than intercept.listen",
            ));
        }
        if self.sniff_timeout.0.is_zero() {
            return Err(invalid(
                "intercept.sniff_timeout",
                "must be greater than zero",
            ));
        }
        if self.dns.timeout.0.is_zero() {
            return Err(invalid(
                "intercept.dns.timeout",
                "must be greater than zero",
            ));
        }
        if self.max_connections == 0 {
            return Err(invalid("intercept.max_connections", "must be at least 1"));
        }
        if let Some(i) = self.exclude_ports.iter().position(|p| *p == 0) {
            return Err(invalid(
                format!("intercept.exclude_ports[{i}]"),
                "0 is not a port",
            ));
        }
        Ok(())
    }

    /// The MQTT session settings for a sniffed MQTT connection towards `upstream`.
    pub fn mqtt_towards(&self, upstream: SocketAddr) -> MqttListenerConfig {
        MqttListenerConfig {
            listen: self.listen,
            upstream: upstream.to_string(),
            v3_deny: default_v3_deny(),
            tls: None,
            upstream_tls: None,
            max_packet_size: default_max_packet(),
            connect_timeout: default_mqtt_connect_timeout(),
            max_connections: self.max_connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::refusal;

    #[test]
    fn intercept_is_off_unless_present_and_defaults_match_the_design() {
        let off = Config::parse("").map(|c| c.intercept.is_none());
        assert!(matches!(off, Ok(true)));
        let on = Config::parse("intercept: {}\n").map(|c| {
            c.intercept.map(|i| {
                (
                    i.uid,
                    i.listen.to_string(),
                    i.sniff_timeout.0.as_millis(),
                    i.dns.listen.to_string(),
                )
            })
        });
        let want = (
            65532,
            "127.0.0.1:15001".to_string(),
            200,
            "127.0.0.1:15053".to_string(),
        );
        assert!(matches!(on, Ok(Some(ref got)) if *got == want), "{on:?}");
    }

    #[test]
    fn intercept_errors_name_their_key() {
        let err = refusal("intercept:\n  dns: {refused: maybe}\n");
        assert!(err.starts_with("intercept.dns.refused:"), "{err}");
        let err = refusal("intercept:\n  listen: 127.0.0.1:0\n");
        assert!(err.starts_with("intercept.listen:"), "{err}");
        let err = refusal("intercept:\n  dns: {upstream: [resolver]}\n");
        assert!(err.starts_with("intercept.dns.upstream[0]:"), "{err}");
    }
}
