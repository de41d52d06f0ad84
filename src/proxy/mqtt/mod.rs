//! The MQTT egress gateway: listeners that relay MQTT 3.1, 3.1.1 and 5.0 clients to their
//! upstream broker, judging every CONNECT (with its Will), PUBLISH and SUBSCRIBE filter.
//!
//! This file binds the listeners and runs their accept loops, bounded by `max_connections`
//! (further clients wait in the kernel backlog) and stopped by the shutdown signal, after which
//! open sessions are closed (MQTT 5 clients get DISCONNECT 0x8B) and drained for a short
//! deadline. Not here: the relay itself (session.rs, relay.rs) or parsing (codec.rs).

pub mod codec;
pub mod encode;
mod inspect;
mod relay;
mod session;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{MqttListenerConfig, split_host_port};
use crate::proxy::Gateway;

/// Time sessions get to close after shutdown before the listener's task ends anyway.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// A listener's fixed facts, shared by its sessions.
pub struct ListenerCtx {
    pub config: MqttListenerConfig,
    pub upstream_host: String,
    pub upstream_port: u16,
    pub max_packet: usize,
    tls: Option<TlsAcceptor>,
    upstream_tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl ListenerCtx {
    /// Checks the upstream address and loads the TLS material; errors name the listener.
    pub fn new(config: &MqttListenerConfig) -> Result<Self, String> {
        let at = |e: String| format!("mqtt listener {}: {e}", config.listen);
        let (upstream_host, upstream_port) =
            split_host_port(&config.upstream).map_err(|e| at(format!("upstream: {e}")))?;
        let tls = match &config.tls {
            None => None,
            Some(t) => {
                let server =
                    crate::proxy::tls::server_config(&t.cert, &t.key, t.client_ca.as_deref(), &[])
                        .map_err(at)?;
                Some(TlsAcceptor::from(Arc::new(server)))
            }
        };
        let upstream_tls = match &config.upstream_tls {
            None => None,
            Some(t) => {
                let client = crate::proxy::tls::client_config(&t.ca).map_err(at)?;
                let name = t
                    .server_name
                    .clone()
                    .unwrap_or_else(|| upstream_host.clone());
                let name = ServerName::try_from(name)
                    .map_err(|e| at(format!("upstream_tls.server_name: {e}")))?;
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
        })
    }
}

/// Binds every MQTT listener and spawns its accept loop. Each returned handle finishes once
/// `shutdown` turns true and the listener's sessions have closed (or after a short deadline).
pub async fn spawn_listeners(
    configs: &[MqttListenerConfig],
    gateway: Arc<Gateway>,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let mut bound = Vec::with_capacity(configs.len());
    for config in configs {
        let ctx = ListenerCtx::new(config)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("mqtt listener {}: cannot listen: {e}", config.listen))?;
        let local = listener.local_addr().unwrap_or(config.listen);
        tracing::info!(
            listen = %local,
            upstream = %config.upstream,
            tls = config.tls.is_some(),
            upstream_tls = config.upstream_tls.is_some(),
            "mqtt listening"
        );
        bound.push((Arc::new(ctx), listener));
    }
    Ok(bound
        .into_iter()
        .map(|(ctx, listener)| {
            tokio::spawn(accept_loop(
                ctx,
                listener,
                Arc::clone(&gateway),
                shutdown.clone(),
            ))
        })
        .collect())
}

async fn accept_loop(
    ctx: Arc<ListenerCtx>,
    listener: TcpListener,
    gw: Arc<Gateway>,
    mut shutdown: watch::Receiver<bool>,
) {
    let max = ctx.config.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    loop {
        let stopping = *shutdown.borrow();
        if stopping {
            break;
        }
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => p.ok(),
            _ = shutdown.wait_for(|s| *s) => None,
        };
        let Some(permit) = permit else { break };
        let accepted = tokio::select! {
            r = listener.accept() => Some(r),
            _ = shutdown.wait_for(|s| *s) => None,
        };
        let (tcp, peer) = match accepted {
            None => break,
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                // Out of file descriptors and the like: count, back off, keep serving.
                gw.metrics.error("mqtt", "accept");
                tracing::warn!(listen = %ctx.config.listen, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (ctx, gw, stop) = (Arc::clone(&ctx), Arc::clone(&gw), shutdown.clone());
        tokio::spawn(async move {
            session::run(ctx, gw, tcp, peer, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every session holds a permit until it has closed both sides.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN_DEADLINE, permits.acquire_many(all)).await;
}

/// Serves one intercepted MQTT connection (sniffed by the transparent listener) with the whole
/// session path; `config.upstream` is the connection's original destination.
pub async fn serve_towards(
    gw: Arc<Gateway>,
    config: MqttListenerConfig,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    match ListenerCtx::new(&config) {
        Ok(ctx) => session::run(Arc::new(ctx), gw, tcp, peer, shutdown).await,
        Err(e) => {
            gw.metrics.error("mqtt", "upstream");
            tracing::debug!(%peer, "intercepted mqtt refused: {e}");
        }
    }
}
