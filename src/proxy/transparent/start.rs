//! Starting interception for `sluice serve`: binds the transparent TCP listener and the DNS
//! listener (UDP and TCP) of `intercept:`, and spawns them. Not here: what they do.

use std::path::Path;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::{InterceptError, Transparent, bind_tcp};
use crate::config::Config;
use crate::drain::Watch;
use crate::proxy::Gateway;
use crate::proxy::dns::names::AnsweredNames;
use crate::proxy::dns::upstream::Resolvers;
use crate::proxy::dns::{self, Dns, DnsSockets};
use crate::proxy::http::HttpProxy;

/// The running listeners and how they read in the "sluice serving" line.
pub struct Started {
    pub tasks: Vec<JoinHandle<()>>,
    pub listening: Vec<String>,
}

/// Binds and spawns the listeners of `config.intercept` (nothing when it is absent).
pub async fn start(
    config: &Config,
    gateway: Arc<Gateway>,
    drain: Watch,
) -> Result<Started, InterceptError> {
    let Some(cfg) = &config.intercept else {
        return Ok(Started {
            tasks: Vec::new(),
            listening: Vec::new(),
        });
    };
    let tcp = bind_tcp(cfg.listen, "intercept.listen").await?;
    let dns_sockets = DnsSockets::bind(cfg.dns.listen).await?;
    let mut listening: Vec<String> = tcp
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| format!("intercept={a}"))
        .collect();
    let own_dns = dns_sockets.local_addrs();
    listening.extend(own_dns.iter().map(|a| format!("dns={a}")));

    let mut own_ports = vec![
        cfg.listen.port(),
        cfg.dns.listen.port(),
        config.admin.listen.port(),
    ];
    own_ports.extend(config.http.iter().map(|h| h.listen.port()));
    own_ports.extend(config.mqtt.iter().map(|m| m.listen.port()));
    let http_cfg = config.http.clone().unwrap_or_default();
    let http = HttpProxy::new(gateway.clone(), http_cfg, cfg.listen, drain.clone());
    let names = Arc::new(AnsweredNames::default());
    let resolvers = Resolvers::new(
        &cfg.dns.upstream,
        Path::new("/etc/resolv.conf"),
        &own_dns,
        cfg.dns.timeout.get(),
    );
    if resolvers.addrs().is_empty() {
        tracing::warn!(
            "intercept.dns: no upstream resolver (none configured, none in /etc/resolv.conf): allowed lookups get SERVFAIL"
        );
    }
    let transparent = Arc::new(Transparent {
        gateway: gateway.clone(),
        cfg: cfg.clone(),
        http,
        names: names.clone(),
        own_ports,
    });
    let mut tasks = super::spawn(transparent, tcp, drain.clone());
    let d = Arc::new(Dns {
        gateway,
        cfg: cfg.dns.clone(),
        resolvers,
        names,
        cache: dns::cache::AnswerCache::new(&cfg.dns.cache),
    });
    tasks.extend(dns::spawn(d, dns_sockets, drain));
    Ok(Started { tasks, listening })
}
