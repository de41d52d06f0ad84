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
            // By characters, not bytes: a name may start with a multibyte character.
            let wildcard_inside = d.chars().skip(1).any(|c| c == '*');
            if d.is_empty() || wildcard_inside || (d.starts_with('*') && !d.starts_with("*.")) {
                return Err(invalid(
                    format!("site.local_domains[{i}]"),
                    format!("{d:?} must be a name or *.suffix"),
                ));
            }
            // `plant..local` passes IDNA but never matches a name: an empty label is a typo.
            if d.trim_end_matches('.').split('.').any(str::is_empty) {
                return Err(invalid(
                    format!("site.local_domains[{i}]"),
                    format!("{d:?} has an empty label; write names like plant.local or *.local"),
                ));
            }
            wire_domain(d).map_err(|_| {
                invalid(
                    format!("site.local_domains[{i}]"),
                    format!("{d:?} is not a valid domain name (IDNA refuses it)"),
                )
            })?;
        }
        Ok(())
    }
}

/// A `local_domains` entry (`name` or `*.suffix`) as names on the wire are compared: ASCII
/// lowercase, and a non-ASCII name in its IDNA form, so `é.local` matches the `xn--9ca.local`
/// a client sends; a non-ASCII name must also be a valid host name (STD3: letters, digits,
/// hyphens). ASCII names are only lowercased, as they always were.
pub fn wire_domain(pattern: &str) -> Result<String, idna::Errors> {
    let (wildcard, name) = match pattern.strip_prefix("*.") {
        Some(rest) => ("*.", rest),
        None => ("", pattern),
    };
    let name = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii_strict(name)?
    };
    Ok(format!("{wildcard}{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_the_form_they_have_on_the_wire() {
        assert_eq!(
            wire_domain("é.local").ok().as_deref(),
            Some("xn--9ca.local")
        );
        assert_eq!(
            wire_domain("*.Bäckerei.internal").ok().as_deref(),
            Some("*.xn--bckerei-5wa.internal")
        );
        // ASCII names keep today's rule: lowercase only, no IDNA checks.
        assert_eq!(
            wire_domain("Historian_1").ok().as_deref(),
            Some("historian_1")
        );
        assert!(wire_domain("é local").is_err());
    }
}
