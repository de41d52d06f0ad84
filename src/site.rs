//! The site topology: which networks and names are inside the plant.
//!
//! Follows DESIGN.md's DNS rule: a name outside the local domains is external *before* any
//! lookup (the lookup itself could carry data out); a name inside them is local only if the
//! address it resolves to is local too. Not here: resolution itself (the proxies resolve once
//! and connect to exactly the address judged).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::SiteConfig;
use crate::config::site::wire_domain;
use crate::policy::Zone;

#[derive(Clone, Debug)]
pub struct Site {
    pub name: String,
    networks: Vec<IpNet>,
    /// Exact names, lowercase.
    names: Vec<String>,
    /// `*.suffix` patterns stored as `.suffix`, lowercase.
    suffixes: Vec<String>,
}

/// How a target host must be handled before any connection is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// A literal address, already classified.
    Address(IpAddr, Zone),
    /// A name inside the local domains: resolve it, then classify the address with
    /// [`Site::zone_of_ip`] (a local name pointing outside is external).
    LocalName,
    /// A name outside the local domains: external; judge it before resolving.
    ExternalName,
}

impl Site {
    /// Builds the topology; the config was validated, so bad entries are skipped defensively.
    pub fn new(cfg: &SiteConfig) -> Self {
        let networks = cfg
            .local_networks
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        let mut names = Vec::new();
        let mut suffixes = Vec::new();
        for d in &cfg.local_domains {
            let Ok(d) = wire_domain(d) else { continue };
            match d.strip_prefix('*') {
                Some(suffix) => suffixes.push(suffix.to_string()),
                None => names.push(d.trim_end_matches('.').to_string()),
            }
        }
        Self {
            name: cfg.name.clone(),
            networks,
            names,
            suffixes,
        }
    }

    pub fn zone_of_ip(&self, ip: IpAddr) -> Zone {
        // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.networks.iter().any(|n| n.contains(&ip)) {
            Zone::Local
        } else {
            Zone::External
        }
    }

    pub fn is_local_name(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        // Names are case-insensitive; avoid allocating for the common lowercase case.
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        if self.names.iter().any(|n| eq(n, host)) {
            return true;
        }
        self.suffixes.iter().any(|s| {
            host.len() > s.len()
                && host.is_char_boundary(host.len() - s.len())
                && eq(&host[host.len() - s.len()..], s)
        })
    }

    /// True when traffic to `name` would leave the site by the site's rule: not a local
    /// domain, or a literal external address. What a TLS server name is judged on when it
    /// names another host than the one connected to (domain fronting).
    pub fn leaves(&self, name: &str) -> bool {
        match self.classify(name) {
            HostKind::LocalName => false,
            HostKind::Address(_, zone) => zone == Zone::External,
            HostKind::ExternalName => true,
        }
    }

    /// Classifies a host as written in a request (`10.0.0.5`, `[::1]`, `broker.plant.local`).
    pub fn classify(&self, host: &str) -> HostKind {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return HostKind::Address(ip, self.zone_of_ip(ip));
        }
        if self.is_local_name(bare) {
            HostKind::LocalName
        } else {
            HostKind::ExternalName
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site::new(&SiteConfig::default())
    }

    #[test]
    fn default_site_knows_private_ranges_as_local() {
        let s = site();
        for ip in [
            "127.0.0.1",
            "10.4.0.9",
            "172.20.1.1",
            "192.168.1.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(
                s.zone_of_ip(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
                Zone::Local,
                "{ip}"
            );
        }
        for ip in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert_eq!(
                s.zone_of_ip(ip.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))),
                Zone::External,
                "{ip}"
            );
        }
    }

    #[test]
    fn names_are_judged_by_domain_before_lookup() {
        let s = site();
        assert_eq!(s.classify("broker.plant.local"), HostKind::LocalName);
        assert_eq!(s.classify("BROKER.Plant.LOCAL."), HostKind::LocalName);
        assert_eq!(s.classify("localhost"), HostKind::LocalName);
        assert_eq!(s.classify("historian.internal"), HostKind::LocalName);
        assert_eq!(s.classify("local"), HostKind::ExternalName);
        assert_eq!(s.classify("evil-local"), HostKind::ExternalName);
        assert_eq!(s.classify("example.com"), HostKind::ExternalName);
        assert_eq!(
            s.classify("[::1]"),
            HostKind::Address(
                "::1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
                Zone::Local
            )
        );
    }
}
