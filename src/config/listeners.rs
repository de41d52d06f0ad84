//! One check across sections: no two of `serve`'s TCP listeners (admin, the HTTP proxy, each
//! MQTT listener, the transparent listener) on the same address. Bound one after the other,
//! the second would fail with "Address already in use" as if another program held the port.
//! Not here: each section's own checks, or ports held by other programs (found at bind).

use std::net::SocketAddr;

use super::Config;
use super::error::{ConfigError, invalid};

/// Refuses the second listener on an address already taken by an earlier one (port 0, "any
/// free port", never clashes).
pub(super) fn validate(cfg: &Config) -> Result<(), ConfigError> {
    let mut taken: Vec<(String, SocketAddr)> = vec![("admin.listen".into(), cfg.admin.listen)];
    if let Some(h) = &cfg.http {
        taken.push(("http.listen".into(), h.listen));
    }
    for (i, m) in cfg.mqtt.iter().enumerate() {
        taken.push((format!("mqtt[{i}].listen"), m.listen));
    }
    if let Some(i) = &cfg.intercept {
        taken.push(("intercept.listen".into(), i.listen));
    }
    for (n, (key, addr)) in taken.iter().enumerate() {
        if addr.port() == 0 {
            continue;
        }
        if let Some((first, _)) = taken[..n].iter().find(|(_, a)| a == addr) {
            return Err(invalid(
                key.clone(),
                format!("{addr} is {first} too; give each listener a port of its own"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::tests::refusal;

    #[test]
    fn two_listeners_on_one_address_are_refused_naming_both() {
        let err = refusal("admin: {listen: 127.0.0.1:9901}\nhttp: {listen: 127.0.0.1:9901}\n");
        assert_eq!(
            err,
            "http.listen: 127.0.0.1:9901 is admin.listen too; give each listener a port of its own"
        );
        let mqtt = "mqtt:\n  - {listen: 127.0.0.1:1884, upstream: a:1883}\n  - {listen: 127.0.0.1:1884, upstream: b:1883}\n";
        assert!(
            refusal(mqtt).starts_with("mqtt[1].listen: 127.0.0.1:1884 is mqtt[0].listen too"),
            "{}",
            refusal(mqtt)
        );
        assert_eq!(
            refusal("admin: {listen: 127.0.0.1:0}\nhttp: {listen: 127.0.0.1:0}\n"),
            ""
        );
    }
}
