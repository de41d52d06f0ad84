//! The MQTT egress gateway: listeners that relay MQTT 3.1, 3.1.1 and 5.0 clients to their
//! upstream broker, judging every CONNECT (with its Will), PUBLISH and SUBSCRIBE filter.
//!
//! This file binds the listeners and hands them to the shared accept loop (proxy/listener.rs),
//! bounded by `max_connections`; when draining starts, open sessions are closed (MQTT 5 clients
//! get DISCONNECT 0x8B). Not here: the relay itself (session.rs, relay.rs) or parsing
//! (codec.rs).

pub mod codec;
mod context;
pub mod encode;
mod error;
mod frame;
mod inspect;
mod relay;
mod session;
pub mod wire;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::MqttListenerConfig;
use crate::drain::Watch;
use crate::proxy::Gateway;
use crate::proxy::error::ListenerError;
use crate::proxy::listener::{self, Accepted, Listener};
pub use context::ListenerCtx;

/// Binds every MQTT listener and spawns its accept loop; each ends once `drain` is signaled.
pub async fn spawn_listeners(
    configs: &[MqttListenerConfig],
    gateway: Arc<Gateway>,
    drain: Watch,
) -> Result<Vec<JoinHandle<()>>, ListenerError> {
    let mut bound = Vec::with_capacity(configs.len());
    for config in configs {
        let ctx = ListenerCtx::new(config)?;
        let tcp = TcpListener::bind(config.listen)
            .await
            .map_err(|source| ListenerError::Bind {
                listen: config.listen,
                source,
            })?;
        let local = tcp.local_addr().unwrap_or(config.listen);
        tracing::info!(
            listen = %local,
            upstream = %config.upstream,
            tls = config.tls.is_some(),
            upstream_tls = config.upstream_tls.is_some(),
            "mqtt listening"
        );
        bound.push((Arc::new(ctx), tcp));
    }
    Ok(bound
        .into_iter()
        .map(|(ctx, tcp)| spawn(ctx, tcp, Arc::clone(&gateway), drain.clone()))
        .collect())
}

fn spawn(
    ctx: Arc<ListenerCtx>,
    tcp: TcpListener,
    gw: Arc<Gateway>,
    drain: Watch,
) -> JoinHandle<()> {
    let labels = crate::telemetry::metrics::ProtocolLabels { protocol: "mqtt" };
    let counted = Arc::clone(&gw);
    let listener = Listener {
        name: format!("mqtt {}", ctx.config.listen),
        tcp,
        max_connections: ctx.config.max_connections,
        accounting: listener::Accounting {
            error: Arc::new(move |kind| counted.metrics.error("mqtt", kind)),
            accepted: Some(gw.metrics.connections.get_or_create(&labels).clone()),
            open: Some(gw.metrics.connections_open.get_or_create(&labels).clone()),
        },
    };
    listener::spawn(listener, drain, move |accepted| {
        session::run(Arc::clone(&ctx), Arc::clone(&gw), accepted)
    })
}

/// Serves one intercepted MQTT connection (sniffed by the transparent listener) with the whole
/// session path; `config.upstream` is the connection's original destination.
pub async fn serve_towards(gw: Arc<Gateway>, config: MqttListenerConfig, accepted: Accepted) {
    match ListenerCtx::new(&config) {
        Ok(ctx) => session::run(Arc::new(ctx), gw, accepted).await,
        Err(e) => {
            gw.metrics.error("mqtt", "upstream");
            tracing::debug!(peer = %accepted.peer, "intercepted mqtt refused: {e}");
        }
    }
}
