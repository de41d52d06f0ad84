//! The export bridges' Prometheus metrics, one series per bridge (`bridge="cloud"`), served on
//! the admin endpoint's `/metrics` with the gateway's. A bridge takes its handles once
//! ([`BridgeMetrics::of`]); counting is then one atomic add.
//!
//! Not here: what is counted when (intake.rs, delivery.rs).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BridgeLabels {
    pub bridge: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BridgeReasonLabels {
    pub bridge: String,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BridgeErrorLabels {
    pub bridge: String,
    pub kind: &'static str,
}

type Counters = Family<BridgeLabels, Counter>;
type Gauges = Family<BridgeLabels, Gauge>;

/// Every bridge metric family (part of the gateway's `Metrics`).
#[derive(Debug, Default)]
pub struct BridgeMetrics {
    received: Counters,
    spooled: Counters,
    sent: Counters,
    denied: Counters,
    denied_on_replay: Counters,
    expired: Counters,
    dropped: Family<BridgeReasonLabels, Counter>,
    redelivered: Counters,
    errors: Family<BridgeErrorLabels, Counter>,
    spool_messages: Gauges,
    spool_bytes: Gauges,
    spool_oldest_age: Gauges,
    spool_max_bytes: Gauges,
    uplink_up: Gauges,
    local_up: Gauges,
}

/// One bridge's handles.
#[derive(Clone, Debug)]
pub struct BridgeCounters {
    name: String,
    errors: Family<BridgeErrorLabels, Counter>,
    dropped: Family<BridgeReasonLabels, Counter>,
    pub received: Counter,
    pub spooled: Counter,
    pub sent: Counter,
    pub denied: Counter,
    pub denied_on_replay: Counter,
    pub expired: Counter,
    pub redelivered: Counter,
    pub spool_messages: Gauge,
    pub spool_bytes: Gauge,
    pub spool_oldest_age: Gauge,
    pub spool_max_bytes: Gauge,
    pub uplink_up: Gauge,
    pub local_up: Gauge,
}

impl BridgeCounters {
    pub fn error(&self, kind: &'static str) {
        self.errors
            .get_or_create(&BridgeErrorLabels {
                bridge: self.name.clone(),
                kind,
            })
            .inc();
    }

    pub fn dropped(&self, reason: &'static str, n: u64) {
        self.dropped
            .get_or_create(&BridgeReasonLabels {
                bridge: self.name.clone(),
                reason,
            })
            .inc_by(n);
    }

    /// Sets the spool gauges.
    pub fn spool(&self, messages: u64, bytes: u64, oldest_age_secs: u64) {
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.spool_messages.set(g(messages));
        self.spool_bytes.set(g(bytes));
        self.spool_oldest_age.set(g(oldest_age_secs));
    }
}

impl BridgeMetrics {
    /// The handles of one bridge; its series appear at once (zeros), so alerts see them.
    pub fn of(&self, bridge: &str) -> BridgeCounters {
        let l = BridgeLabels {
            bridge: bridge.to_string(),
        };
        let c = |f: &Counters| f.get_or_create(&l).clone();
        let g = |f: &Gauges| f.get_or_create(&l).clone();
        let counters = BridgeCounters {
            name: bridge.to_string(),
            errors: self.errors.clone(),
            dropped: self.dropped.clone(),
            received: c(&self.received),
            spooled: c(&self.spooled),
            sent: c(&self.sent),
            denied: c(&self.denied),
            denied_on_replay: c(&self.denied_on_replay),
            expired: c(&self.expired),
            redelivered: c(&self.redelivered),
            spool_messages: g(&self.spool_messages),
            spool_bytes: g(&self.spool_bytes),
            spool_oldest_age: g(&self.spool_oldest_age),
            spool_max_bytes: g(&self.spool_max_bytes),
            uplink_up: g(&self.uplink_up),
            local_up: g(&self.local_up),
        };
        counters.dropped("full", 0);
        let _ = counters.errors.get_or_create(&BridgeErrorLabels {
            bridge: bridge.to_string(),
            kind: "connect",
        });
        counters.dropped("too_large", 0);
        counters
    }

    /// Registers the families under `sluice_bridge_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("bridge");
        let counters: [(&str, &str, &Counters); 7] = [
            (
                "received",
                "Messages received from the local broker",
                &self.received,
            ),
            (
                "spooled",
                "Allowed messages committed to the spool",
                &self.spooled,
            ),
            (
                "sent",
                "Messages acknowledged by the remote broker",
                &self.sent,
            ),
            (
                "denied",
                "Messages denied at intake (acknowledged locally, never stored)",
                &self.denied,
            ),
            (
                "denied_on_replay",
                "Spooled messages denied when judged again before sending (removed, never sent)",
                &self.denied_on_replay,
            ),
            (
                "expired",
                "Spooled messages removed after spool.ttl",
                &self.expired,
            ),
            (
                "redelivered",
                "Messages sent again after a lost session or a restart (possible duplicates)",
                &self.redelivered,
            ),
        ];
        for (name, help, family) in counters {
            r.register(name, help, family.clone());
        }
        r.register(
            "dropped",
            "Messages dropped by reason: full (on_full: drop_oldest), too_large (over max_packet_size)",
            self.dropped.clone(),
        );
        r.register(
            "errors",
            "Bridge errors by kind (connect, connect_refused, tls, ack_timeout, disk_full, spool_write, spool_corrupt, spool_version, remote_denied)",
            self.errors.clone(),
        );
        self.register_gauges(r);
    }

    fn register_gauges(&self, r: &mut Registry) {
        let gauges: [(&str, &str, &Gauges); 6] = [
            (
                "spool_messages",
                "Messages waiting in the spool",
                &self.spool_messages,
            ),
            (
                "spool_bytes",
                "Bytes of topics and payloads in the spool",
                &self.spool_bytes,
            ),
            (
                "spool_oldest_age_seconds",
                "Age of the oldest spooled message",
                &self.spool_oldest_age,
            ),
            (
                "spool_max_bytes",
                "spool.max_bytes of the bridge",
                &self.spool_max_bytes,
            ),
            (
                "uplink_up",
                "1 while the session with the remote broker is up, else 0",
                &self.uplink_up,
            ),
            (
                "local_up",
                "1 while the session with the local broker is up, else 0",
                &self.local_up,
            ),
        ];
        for (name, help, family) in gauges {
            r.register(name, help, family.clone());
        }
    }
}
