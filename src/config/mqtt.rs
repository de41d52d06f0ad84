//! `mqtt`: the MQTT listeners, each relaying to one broker, with their TLS and limits.
//!
//! Not here: the proxy (`proxy/mqtt/`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};
use super::units::{Dur, Size, split_host_port};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum V3Deny {
    /// Acknowledge locally (PUBACK) and drop the message.
    Drop,
    /// Close the client's connection.
    Disconnect,
}

/// TLS on a listener (server side).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA; its identity fills
    /// `input.source`.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// TLS towards an upstream (client side).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM bundle of CAs trusted for the upstream.
    pub ca: PathBuf,
    /// Name to verify; defaults to the upstream host.
    #[serde(default)]
    pub server_name: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttListenerConfig {
    #[serde(deserialize_with = "super::units::listen_addr")]
    pub listen: SocketAddr,
    /// `host:port` of the broker this listener relays to.
    pub upstream: String,
    #[serde(default = "default_v3_deny")]
    pub v3_deny: V3Deny,
    #[serde(default)]
    pub tls: Option<ServerTls>,
    #[serde(default)]
    pub upstream_tls: Option<UpstreamTls>,
    /// Largest MQTT packet accepted in either direction.
    #[serde(default = "default_max_packet")]
    pub max_packet_size: Size,
    /// Time a client has to complete CONNECT (and TLS) after opening the socket.
    #[serde(default = "default_mqtt_connect_timeout")]
    pub connect_timeout: Dur,
    #[serde(default = "default_mqtt_max_connections")]
    pub max_connections: usize,
}

pub(super) fn default_v3_deny() -> V3Deny {
    V3Deny::Drop
}
pub(super) fn default_max_packet() -> Size {
    Size(1024 * 1024)
}
pub(super) fn default_mqtt_connect_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_mqtt_max_connections() -> usize {
    20_000
}

impl MqttListenerConfig {
    /// Checks the listener at `mqtt[index]`.
    pub fn validate(&self, index: usize) -> Result<(), ConfigError> {
        split_host_port(&self.upstream)
            .map_err(|e| invalid(format!("mqtt[{index}].upstream"), e.to_string()))?;
        if self.max_packet_size.0 < 128 || self.max_packet_size.0 > 268_435_455 {
            return Err(invalid(
                format!("mqtt[{index}].max_packet_size"),
                "must be between 128 bytes and 256MiB (MQTT's limit)",
            ));
        }
        if self.max_connections == 0 {
            return Err(invalid(
                format!("mqtt[{index}].max_connections"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
