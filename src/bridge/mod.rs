//! Export bridges: a persistent session on the plant broker (intake), a durable SQLite spool,
//! and a session on the remote broker (delivery). Every message is judged by the policy at
//! intake and again just before it is sent, so nothing leaves that the policy does not allow at
//! the moment it leaves, and nothing allowed is lost while the uplink is down.
//!
//! This file opens the spools and starts each bridge's tasks; a bridge that cannot start (its
//! spool is from a newer sluice, say) is logged and counted and the others keep running.
//! Not here: the sessions (intake.rs, delivery.rs), storage (spool.rs), `sluice spool` (cmd/).

mod delivery;
mod intake;
pub mod message;
pub mod metrics;
pub mod session;
pub mod spool;
pub mod topic;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::{BridgeConfig, split_host_port};
use crate::drain::Watch;
use crate::policy::{MqttFacts, Operation, Protocol, Source, Zone};
use crate::proxy::{Ask, Gateway};
use crate::site::HostKind;
use metrics::BridgeCounters;
use session::{SetupError, Side};
use spool::{Spool, SpoolError};

/// A bridge's shared state: its config, the policy, the spool and its metrics.
pub struct Bridge {
    pub config: BridgeConfig,
    /// TLS material and credentials of the two brokers, loaded at start.
    local_side: Side,
    remote_side: Side,
    gw: Arc<Gateway>,
    /// The bridge as the policy sees it (`input.source`).
    source: Source,
    remote_host: String,
    remote_port: u16,
    remote_ip: Option<IpAddr>,
    remote_zone: Zone,
    spool: Arc<Mutex<Spool>>,
    pub counters: BridgeCounters,
    /// Intake → delivery: new messages are in the spool.
    stored: Notify,
    /// Delivery and housekeeping → intake: the spool has room again.
    room: Notify,
}

impl Bridge {
    /// Judges a publish of `topic` to the remote broker (counted, a deny logged and recorded).
    fn allows(&self, topic: &str, qos: u8, retain: bool) -> bool {
        let ask = Ask {
            operation: Operation::Publish,
            mqtt: Some(MqttFacts { topic, qos, retain }),
            ..self.connect_ask()
        };
        self.gw
            .decide_at(&ask, self.remote_ip, self.remote_zone)
            .allowed()
    }

    /// Judges the CONNECT to the remote broker.
    fn allows_connect(&self) -> bool {
        self.gw
            .decide_at(&self.connect_ask(), self.remote_ip, self.remote_zone)
            .allowed()
    }

    fn connect_ask(&self) -> Ask<'_> {
        Ask {
            protocol: Protocol::Mqtt,
            operation: Operation::Connect,
            source: &self.source,
            host: &self.remote_host,
            port: self.remote_port,
            mqtt: None,
            http: None,
            will: None,
        }
    }

    /// Runs `f` on the spool off the async threads.
    async fn with_spool<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Spool) -> R + Send + 'static,
    ) -> Option<R> {
        let spool = Arc::clone(&self.spool);
        tokio::task::spawn_blocking(move || {
            let mut s = spool.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut s)
        })
        .await
        .ok()
    }

    fn name(&self) -> &str {
        &self.config.name
    }
}

/// Loads every bridge's TLS material and credentials (an unusable one stops the start: the
/// error names its key), then opens each spool and starts the bridge's tasks; a bridge whose
/// spool cannot be used is logged and counted and the others start. The handles end after
/// `shutdown`.
pub async fn start(
    configs: &[BridgeConfig],
    gw: Arc<Gateway>,
    shutdown: Watch,
) -> Result<Vec<JoinHandle<()>>, SetupError> {
    let mut sides = Vec::with_capacity(configs.len());
    for (i, config) in configs.iter().enumerate() {
        sides.push((
            Side::load(i, "local", &config.local)?,
            Side::load(i, "remote", &config.remote)?,
        ));
    }
    let mut tasks = Vec::new();
    for (config, sides) in configs.iter().zip(sides) {
        let counters = gw.metrics.bridges.of(&config.name);
        match open(config, sides, &gw, counters.clone()).await {
            Ok(bridge) => {
                let bridge = Arc::new(bridge);
                tracing::info!(
                    bridge = %config.name,
                    local = %config.local.broker,
                    remote = %config.remote.broker,
                    spool = %config.spool.path.display(),
                    spooled = bridge.counters.spool_messages.get(),
                    "bridge running"
                );
                tasks.push(tokio::spawn(intake::run(
                    Arc::clone(&bridge),
                    shutdown.clone(),
                )));
                tasks.push(tokio::spawn(delivery::run(
                    Arc::clone(&bridge),
                    shutdown.clone(),
                )));
                tasks.push(tokio::spawn(housekeeping(bridge, shutdown.clone())));
            }
            Err(e) => {
                counters.error(e.kind());
                tracing::error!(bridge = %config.name, "bridge not started: {e}");
            }
        }
    }
    Ok(tasks)
}

async fn open(
    config: &BridgeConfig,
    (local_side, remote_side): (Side, Side),
    gw: &Arc<Gateway>,
    counters: BridgeCounters,
) -> Result<Bridge, SpoolError> {
    let path = config.spool.path.clone();
    let opened = tokio::task::spawn_blocking(move || {
        Spool::open(&path).inspect(|o| {
            o.spool.ensure_reserve();
        })
    })
    .await
    .map_err(|e| SpoolError::Sqlite(config.spool.path.display().to_string(), e.to_string()))??;
    if let Some((aside, why)) = &opened.moved_aside {
        counters.error("spool_corrupt");
        tracing::warn!(
            bridge = %config.name,
            "spool {} is damaged ({why}); moved aside to {} and started empty",
            config.spool.path.display(),
            aside.display()
        );
    }
    let (host, port) = split_host_port(&config.remote.broker)
        .map_err(|e| SpoolError::Sqlite(config.remote.broker.clone(), e.to_string()))?;
    let (ip, zone) = judged_address(gw, &host, port).await;
    let mut source = gw.identity.clone();
    source.client_id = local_client_id(config);
    counters.spool(opened.spool.messages(), opened.spool.bytes(), 0);
    counters
        .spool_max_bytes
        .set(i64::try_from(config.spool.max_bytes.get()).unwrap_or(i64::MAX));
    Ok(Bridge {
        config: config.clone(),
        local_side,
        remote_side,
        gw: Arc::clone(gw),
        source,
        remote_host: host,
        remote_port: port,
        remote_ip: ip,
        remote_zone: zone,
        spool: Arc::new(Mutex::new(opened.spool)),
        counters,
        stored: Notify::new(),
        room: Notify::new(),
    })
}

/// The remote's address and zone as the DNS rule has them: a name outside the local domains is
/// external before any lookup; a local name is local only if its address is.
async fn judged_address(gw: &Gateway, host: &str, port: u16) -> (Option<IpAddr>, Zone) {
    match gw.site.classify(host) {
        HostKind::Address(ip, zone) => (Some(ip), zone),
        HostKind::ExternalName => (None, Zone::External),
        HostKind::LocalName => match tokio::net::lookup_host((host, port)).await {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => (Some(a.ip()), gw.site.zone_of_ip(a.ip())),
                None => (None, Zone::External),
            },
            Err(_) => (None, Zone::External),
        },
    }
}

fn local_client_id(config: &BridgeConfig) -> String {
    config
        .local
        .client_id
        .clone()
        .unwrap_or_else(|| format!("sluice-bridge-{}", config.name))
}

/// How often expired messages are removed and the spool gauges updated.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// Expires messages past `spool.ttl` and keeps the spool gauges current.
async fn housekeeping(bridge: Arc<Bridge>, mut shutdown: Watch) {
    let ttl = i64::try_from(bridge.config.spool.ttl.get().as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    let mut rounds = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.signaled() => return,
        }
        rounds += 1;
        let recount = rounds % 10 == 0;
        let done = bridge
            .with_spool(move |s| {
                let now = crate::telemetry::decision_log::now_ms();
                let expired = s.expire(now.saturating_sub(ttl))?;
                if recount {
                    s.recount()?;
                }
                let stats = s.stats()?;
                Ok::<_, SpoolError>((expired, stats, now))
            })
            .await;
        match done {
            Some(Ok((expired, stats, now))) => {
                if expired > 0 {
                    bridge.counters.expired.inc_by(expired);
                    bridge.room.notify_one();
                    tracing::warn!(bridge = %bridge.name(), expired, "spooled messages expired (spool.ttl) before the remote took them");
                }
                let age = stats
                    .oldest_ms
                    .map(|t| u64::try_from((now - t) / 1000).unwrap_or(0))
                    .unwrap_or(0);
                bridge.counters.spool(stats.messages, stats.bytes, age);
            }
            Some(Err(e)) => {
                bridge.counters.error(e.kind());
                tracing::warn!(bridge = %bridge.name(), "spool housekeeping failed: {e}");
            }
            None => {}
        }
    }
}

/// Doubling delays between reconnects, reset after a session that came up.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(10);

    fn new() -> Self {
        Self { next: Self::FIRST }
    }
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
    fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }
}

/// Sleeps `d` unless shutdown comes first; true when shutting down.
async fn pause(d: Duration, shutdown: &mut Watch) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.signaled() => true,
    };
    stopped || shutdown.is_draining()
}
