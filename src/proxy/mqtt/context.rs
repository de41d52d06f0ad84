//! A listener's fixed facts, shared by its sessions: its config, the upstream broker's host
//! and port, the packet limit, the TLS material, and the rate limit of its error log.
//!
//! Not here: binding or accepting (mod.rs, proxy/listener.rs).

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{MqttListenerConfig, split_host_port};
use crate::proxy::error::ListenerError;
use crate::telemetry::RateLimiter;

/// A listener's fixed facts, shared by its sessions.
pub struct ListenerCtx {
    pub config: MqttListenerConfig,
    pub upstream_host: String,
    pub upstream_port: u16,
    pub max_packet: usize,
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) upstream_tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Broker lookup and connect failures are logged at most once a second per listener.
    pub(super) upstream_errors: RateLimiter,
    /// Refused client TLS handshakes, logged with their reason at most once a second.
    pub(super) handshake_errors: RateLimiter,
}

impl ListenerCtx {
    /// Checks the upstream address and loads the TLS material; errors name the listener.
    pub fn new(config: &MqttListenerConfig) -> Result<Self, ListenerError> {
        let listen = config.listen;
        let tls_error = |source| ListenerError::Tls { listen, source };
        let setting = |key, reason: String| ListenerError::Setting {
            listen,
            key,
            reason,
        };
        let (upstream_host, upstream_port) =
            split_host_port(&config.upstream).map_err(|e| setting("upstream", e.to_string()))?;
        let tls = match &config.tls {
            None => None,
            Some(t) => {
                let server =
                    crate::proxy::tls::server_config(&t.cert, &t.key, t.client_ca.as_deref(), &[])
                        .map_err(tls_error)?;
                Some(TlsAcceptor::from(Arc::new(server)))
            }
        };
        let upstream_tls = match &config.upstream_tls {
            None => None,
            Some(t) => {
                let client = crate::proxy::tls::client_config(&t.ca).map_err(tls_error)?;
                let name = t
                    .server_name
                    .clone()
                    .unwrap_or_else(|| upstream_host.clone());
                let name = ServerName::try_from(name)
                    .map_err(|e| setting("upstream_tls.server_name", e.to_string()))?;
                Some((TlsConnector::from(Arc::new(client)), name))
            }
        };
        Ok(Self {
            config: config.clone(),
            upstream_host,
            upstream_port,
            max_packet: config.max_packet_size.as_usize(),
            tls,
            upstream_tls,
            upstream_errors: RateLimiter::new(1),
            handshake_errors: RateLimiter::new(1),
        })
    }
}
