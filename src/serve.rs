//! `sluice serve`: the gateway process (HTTP forward proxy, MQTT proxies, admin endpoint).
//!
//! Loads the config and the policies, builds the shared [`Gateway`], starts the listeners and
//! runs until SIGTERM or SIGINT, then stops accepting and lets sessions close.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::policy::{Decider, DeciderOptions, PolicySet, Source};
use crate::proxy::Gateway;
use crate::site::Site;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// YAML config file; without it the embedded defaults serve
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> i32 {
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sluice serve: {e}");
                return 1;
            }
        },
        None => Config::default(),
    };
    if let Err(e) = crate::telemetry::init_logging(config.log.format, &config.log.level) {
        eprintln!("sluice serve: {e}");
        return 1;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice serve: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sluice serve: {e}");
            1
        }
    }
}

/// Builds the gateway shared by every proxy.
pub fn gateway(config: &Config) -> Result<Gateway, String> {
    let policy = if config.policy.paths.is_empty() {
        PolicySet::embedded()
    } else {
        PolicySet::load(&config.policy.paths, config.policy.v0_compatible)
            .map_err(|e| e.to_string())?
    };
    let decider = Decider::new(
        &policy,
        DeciderOptions {
            decision: config.policy.decision.clone(),
            eval_timeout: config.policy.eval_timeout.get(),
            cache_capacity: config.cache.capacity,
            cache_ttl: config.cache.ttl.get(),
        },
    )
    .map_err(|e| e.to_string())?;
    let site = Site::new(&config.site);
    let id = config.identity.resolved();
    let identity = Source {
        workload: id.workload,
        namespace: id.namespace,
        node: id.node,
        site: site.name.clone(),
        ..Source::default()
    };
    Ok(Gateway::new(decider, site, identity))
}

async fn serve(config: Config) -> Result<(), String> {
    let gateway = Arc::new(gateway(&config)?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut handles =
        crate::proxy::mqtt::spawn_listeners(&config.mqtt, Arc::clone(&gateway), stop_rx.clone())
            .await?;
    handles.push(admin::spawn(&config, Arc::clone(&gateway), stop_rx).await?);
    tracing::info!("sluice serving");
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A minimal `GET /metrics` endpoint on `admin.listen`, enough for probes and Prometheus.
mod admin {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use crate::config::Config;
    use crate::proxy::Gateway;

    pub async fn spawn(
        config: &Config,
        gateway: Arc<Gateway>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<JoinHandle<()>, String> {
        let listen = config.admin.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("admin {listen}: cannot listen: {e}"))?;
        let local = listener.local_addr().unwrap_or(listen);
        tracing::info!(listen = %local, "admin listening");
        let mut registry = prometheus_client::registry::Registry::default();
        gateway.metrics.register(&mut registry);
        let registry = Arc::new(registry);
        Ok(tokio::spawn(async move {
            loop {
                let (mut conn, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                    _ = stop.wait_for(|s| *s) => return,
                };
                let registry = Arc::clone(&registry);
                tokio::spawn(async move {
                    let mut head = [0u8; 1024];
                    let n = conn.read(&mut head).await.unwrap_or(0);
                    let line = String::from_utf8_lossy(&head[..n]);
                    let (status, body) = if line.starts_with("GET /metrics") {
                        let mut text = String::new();
                        match prometheus_client::encoding::text::encode(&mut text, &registry) {
                            Ok(()) => ("200 OK", text),
                            Err(_) => ("500 Internal Server Error", String::new()),
                        }
                    } else if line.starts_with("GET /healthz") || line.starts_with("GET /readyz") {
                        ("200 OK", "ok\n".to_string())
                    } else {
                        ("404 Not Found", "not found\n".to_string())
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        }))
    }
}
