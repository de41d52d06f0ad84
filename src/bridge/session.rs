//! What a bridge needs to open a session with one broker: the rumqttc options with the
//! bridge's TLS (our rustls config, the ring provider; a client certificate when configured)
//! and MQTT credentials. The material is loaded once, when the bridge starts, so a missing or
//! unusable file stops `sluice serve` with one line naming the key, like any other setting.
//! The password is held only here and in rumqttc's CONNECT; it is never logged.
//!
//! Not here: running the sessions (intake.rs, delivery.rs).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::ClientConfig;

use crate::config::{BridgeBroker, BridgeTls, split_host_port};
use crate::proxy::tls;

/// Why a bridge cannot start: names the key (`bridges[0].remote.tls.cert`).
#[derive(Debug, thiserror::Error)]
#[error("bridges[{index}].{key}: {reason}")]
pub struct SetupError {
    pub index: usize,
    pub key: String,
    pub reason: String,
}

/// One side's loaded TLS material and credentials.
#[derive(Clone)]
pub struct Side {
    host: String,
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    credentials: Option<(String, String)>,
}

impl Side {
    /// Loads `side` of bridge `index` (`side_key` is `local` or `remote`).
    pub fn load(index: usize, side_key: &str, side: &BridgeBroker) -> Result<Self, SetupError> {
        let fail = |key: &str, reason: String| SetupError {
            index,
            key: format!("{side_key}.{key}"),
            reason,
        };
        let (host, port) =
            split_host_port(&side.broker).map_err(|e| fail("broker", e.to_string()))?;
        let tls = match &side.tls {
            None => None,
            Some(t) => Some(Arc::new(client_config(t).map_err(|(k, e)| fail(k, e))?)),
        };
        let password = match (&side.password, &side.password_file) {
            (Some(p), _) => Some(p.expose().to_string()),
            (None, Some(file)) => Some(read_password(file).map_err(|e| fail("password_file", e))?),
            (None, None) => None,
        };
        let credentials = side
            .username
            .clone()
            .map(|u| (u, password.unwrap_or_default()));
        Ok(Self {
            host,
            port,
            tls,
            credentials,
        })
    }

    /// rumqttc options for a session with this side.
    pub fn options(&self, config: &BridgeBroker, client_id: String) -> MqttOptions {
        let mut opts = MqttOptions::new(client_id, self.host.clone(), self.port);
        opts.set_keep_alive(config.keep_alive.get().max(Duration::from_secs(5)));
        let max = config.max_packet_size.as_usize();
        opts.set_max_packet_size(max, max);
        if let Some((user, password)) = &self.credentials {
            opts.set_credentials(user.clone(), password.clone());
        }
        if let Some(cfg) = &self.tls {
            opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::clone(cfg),
            )));
        }
        opts
    }
}

/// The rustls client config of a bridge side; on error, the key under `tls` and why.
fn client_config(t: &BridgeTls) -> Result<ClientConfig, (&'static str, String)> {
    let roots = tls::load_roots(&t.ca).map_err(|e| ("tls.ca", e.to_string()))?;
    let builder = ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ("tls", e.to_string()))?
        .with_root_certificates(roots);
    match (&t.cert, &t.key) {
        (Some(cert), Some(key)) => {
            let chain = tls::load_certs(cert).map_err(|e| ("tls.cert", e.to_string()))?;
            let key = tls::load_key(key).map_err(|e| ("tls.key", e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ("tls.key", format!("does not match tls.cert: {e}")))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// A password file: its content less one trailing newline.
fn read_password(file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: cannot read the password: {e}", file.display()))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(format!("{}: the password file is empty", file.display()));
    }
    Ok(text.to_string())
}
