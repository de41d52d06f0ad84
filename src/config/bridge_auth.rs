//! How a bridge proves who it is to a broker: MQTT user name and password (inline or from a
//! file), TLS with the broker's CA and optionally a client certificate. Only the shape is
//! checked here (which keys go together); the files are read when the bridge starts.
//!
//! Not here: loading the TLS material or the password file (bridge/session.rs).

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{BridgeBroker, ConfigError};

/// `tls:` of a bridge side.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeTls {
    /// PEM bundle of the CAs trusted for the broker's certificate.
    pub ca: PathBuf,
    /// PEM client certificate (chain) presented to the broker; needs `key`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Refused with a reason: rumqttc verifies the broker's host name.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// A password: never shown by `Debug` or serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    /// The password itself, for the CONNECT only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// MQTT strings (user name, password) are at most 65535 bytes.
const MQTT_STRING: usize = 65_535;

/// Checks which credential keys of one side go together; `at` names the key under the side.
pub(super) fn validate(
    side: &BridgeBroker,
    at: &impl Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if let Some(user) = &side.username {
        if user.is_empty() || user.len() > MQTT_STRING {
            return Err(at("username", format!("{user:?} must be 1 to 65535 bytes")));
        }
    }
    if side.password.is_some() && side.password_file.is_some() {
        return Err(at(
            "password_file",
            "set either password or password_file, not both".into(),
        ));
    }
    if side.username.is_none() {
        for (key, set) in [
            ("password", side.password.is_some()),
            ("password_file", side.password_file.is_some()),
        ] {
            if set {
                return Err(at(
                    key,
                    "needs username (MQTT sends a password only with a user name)".into(),
                ));
            }
        }
    }
    if side
        .password
        .as_ref()
        .is_some_and(|p| p.0.len() > MQTT_STRING)
    {
        return Err(at(
            "password",
            "is longer than 65535 bytes (MQTT's limit)".into(),
        ));
    }
    let Some(tls) = &side.tls else {
        return Ok(());
    };
    if let Some(name) = &tls.server_name {
        return Err(at(
            "tls.server_name",
            format!(
                "{name:?} is not supported for bridges: the broker's host name (from broker) is verified"
            ),
        ));
    }
    match (&tls.cert, &tls.key) {
        (Some(c), None) => Err(at(
            "tls.cert",
            format!(
                "{} needs tls.key, the private key of the client certificate",
                c.display()
            ),
        )),
        (None, Some(k)) => Err(at(
            "tls.key",
            format!("{} needs tls.cert, the client certificate", k.display()),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn remote(extra: &str) -> String {
        let cfg = format!(
            "bridges:\n  - name: cloud\n    local: {{broker: 127.0.0.1:1883}}\n    remote: {{broker: c:8883, {extra}}}\n    topics: [\"#\"]\n    spool: {{path: /tmp/s.db}}\n"
        );
        match Config::parse(&cfg) {
            Ok(c) => format!("ok {:?}", c.bridges[0].remote),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn credential_keys_that_do_not_go_together_name_their_key() {
        for (extra, key) in [
            ("password: pw", "bridges[0].remote.password: needs username"),
            (
                "username: u, password: pw, password_file: /p",
                "bridges[0].remote.password_file: set either",
            ),
            ("username: \"\"", "bridges[0].remote.username: \"\""),
            (
                "tls: {ca: /ca.pem, cert: /c.pem}",
                "bridges[0].remote.tls.cert: /c.pem needs tls.key",
            ),
            (
                "tls: {ca: /ca.pem, key: /c.key}",
                "bridges[0].remote.tls.key: /c.key needs tls.cert",
            ),
            (
                "tls: {ca: /ca.pem, server_name: x}",
                "bridges[0].remote.tls.server_name: \"x\" is not supported",
            ),
        ] {
            let got = remote(extra);
            assert!(got.starts_with(key), "{extra}: {got}");
        }
    }

    #[test]
    fn a_password_is_never_shown() {
        let got = remote("username: u, password: hunter2-secret");
        assert!(got.starts_with("ok "), "{got}");
        assert!(!got.contains("hunter2"), "{got}");
        assert!(got.contains("<redacted>"), "{got}");
    }
}
