//! `site`: which networks and names count as inside the plant.
//!
//! Not here: matching addresses and names against them at run time (`site.rs`).

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    pub name: String,
    /// CIDRs whose addresses are inside the plant.
    pub local_networks: Vec<String>,
    /// Names inside the plant: exact (`historian`), or `*.suffix`.
    pub local_domains: Vec<String>,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            name: "plant-042".into(),
            local_networks: [
                "127.0.0.0/8",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "169.254.0.0/16",
                "::1/128",
                "fc00::/7",
                "fe80::/10",
            ]
            .map(String::from)
            .to_vec(),
            local_domains: ["localhost", "*.local", "*.internal"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl SiteConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, n) in self.local_networks.iter().enumerate() {
            n.parse::<ipnet::IpNet>().map_err(|_| {
                invalid(
                    format!("site.local_networks[{i}]"),
                    format!("{n:?} is not a CIDR like 10.0.0.0/8"),
                )
            })?;
        }
        for (i, d) in self.local_domains.iter().enumerate() {
            if d.is_empty() || d[1..].contains('*') || (d.starts_with('*') && !d.starts_with("*."))
            {
                return Err(invalid(
                    format!("site.local_domains[{i}]"),
                    format!("{d:?} must be a name or *.suffix"),
                ));
            }
        }
        Ok(())
    }
}
