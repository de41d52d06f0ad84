//! The Prometheus metrics of the gateway, in one registry served by the admin endpoint.
//! Recording is a hash lookup and an atomic add; nothing allocates per message once a label
//! set exists.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::policy::{Operation, Protocol};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub protocol: &'static str,
    pub operation: &'static str,
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BytesLabels {
    pub protocol: &'static str,
    /// `upstream` (client → upstream) or `downstream` (upstream → client).
    pub direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub protocol: &'static str,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub result: &'static str,
}

/// A denied target, for "top denied targets" (bounded: see [`Metrics::denied`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeniedTargetLabels {
    pub protocol: &'static str,
    /// `host:port`, or `other` once the label budget is spent.
    pub target: String,
}

/// A denied MQTT topic, cut to its first levels (bounded: see [`Metrics::denied`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeniedTopicLabels {
    pub topic: String,
}

/// Distinct targets (and topics) that get their own label; the rest count as `other`, so a
/// client walking through hosts or topics cannot grow the metrics without bound.
pub const DENIED_LABELS_MAX: usize = 200;

/// Topic levels kept in the denied-topic label (`plant/line1/press7/#`).
const TOPIC_LEVELS: usize = 3;

/// Every gateway metric. Construct once with [`Metrics::new`], share by reference.
#[derive(Debug)]
pub struct Metrics {
    pub decisions: Family<DecisionLabels, Counter>,
    pub bytes: Family<BytesLabels, Counter>,
    pub connections_open: Family<ProtocolLabels, Gauge>,
    pub connections: Family<ProtocolLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub denied_targets: Family<DeniedTargetLabels, Counter>,
    pub denied_topics: Family<DeniedTopicLabels, Counter>,
    /// Open flows ended because a newer policy generation denies them.
    pub flows_revoked: Family<ProtocolLabels, Counter>,
    /// DNS queries answered from the answer cache (`hit`) or by a resolver (`miss`).
    pub dns_cache: Family<CacheLabels, Counter>,
    /// 1 once policies are compiled and listeners bound, 0 before and while shutting down.
    pub ready: Gauge,
    /// The export bridges' families (`sluice_bridge_*`).
    pub bridges: crate::bridge::metrics::BridgeMetrics,
    seen_targets: Mutex<HashSet<String>>,
    seen_topics: Mutex<HashSet<String>>,
    /// The `decisions` counter of each protocol × operation × verdict, looked up in the family
    /// once: counting a decision is then one atomic add, with no lock or label hashing.
    decision_counters: [OnceLock<Counter>; DECISION_SERIES],
}

const PROTOCOLS: usize = 5;
const OPERATIONS: usize = 6;
const DECISION_SERIES: usize = PROTOCOLS * OPERATIONS * 2;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            decisions: Family::default(),
            bytes: Family::default(),
            connections_open: Family::default(),
            connections: Family::default(),
            errors: Family::default(),
            denied_targets: Family::default(),
            denied_topics: Family::default(),
            flows_revoked: Family::default(),
            dns_cache: Family::default(),
            ready: Gauge::default(),
            bridges: Default::default(),
            seen_targets: Mutex::new(HashSet::new()),
            seen_topics: Mutex::new(HashSet::new()),
            decision_counters: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Registers every family under the `sluice_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("sluice");
        r.register(
            "decisions",
            "Policy decisions by protocol, operation and verdict",
            self.decisions.clone(),
        );
        r.register(
            "forwarded_bytes",
            "Bytes forwarded, by protocol and direction (upstream = towards the upstream)",
            self.bytes.clone(),
        );
        r.register(
            "connections_open",
            "Client connections currently open, by protocol",
            self.connections_open.clone(),
        );
        r.register(
            "connections",
            "Client connections accepted, by protocol",
            self.connections.clone(),
        );
        r.register(
            "denied_targets",
            "Denied decisions by protocol and target host:port (at most 200 targets, then `other`)",
            self.denied_targets.clone(),
        );
        r.register(
            "denied_topics",
            "Denied MQTT decisions by topic, cut to three levels (at most 200, then `other`)",
            self.denied_topics.clone(),
        );
        r.register(
            "flows_revoked",
            "Open flows (tunnels, MQTT sessions) ended because a newer policy generation denies them, by protocol",
            self.flows_revoked.clone(),
        );
        r.register(
            "dns_cache",
            "Allowed DNS queries answered from the answer cache (result=hit) or sent to a resolver (result=miss)",
            self.dns_cache.clone(),
        );
        r.register(
            "ready",
            "1 when the gateway is ready (policies compiled, listeners bound), else 0",
            self.ready.clone(),
        );
        r.register(
            "errors",
            "Errors by protocol and kind (malformed input, timeouts, upstream failures)",
            self.errors.clone(),
        );
        self.bridges.register(r);
    }

    /// Counts one decision. The series appears on its first use, as with `get_or_create`.
    pub fn decision(&self, protocol: Protocol, operation: Operation, allowed: bool) {
        let slot = (protocol as usize * OPERATIONS + operation as usize) * 2 + usize::from(allowed);
        self.decision_counters[slot]
            .get_or_init(|| {
                self.decisions
                    .get_or_create(&DecisionLabels {
                        protocol: protocol.as_str(),
                        operation: operation.as_str(),
                        verdict: if allowed { "allow" } else { "deny" },
                    })
                    .clone()
            })
            .inc();
    }

    /// Counts a denied decision by target (and topic), within the label budget.
    pub fn denied(&self, protocol: &'static str, host: &str, port: u16, topic: Option<&str>) {
        let target = bounded(&self.seen_targets, format!("{host}:{port}"));
        self.denied_targets
            .get_or_create(&DeniedTargetLabels { protocol, target })
            .inc();
        if let Some(topic) = topic {
            let mut levels: Vec<&str> = topic.splitn(TOPIC_LEVELS + 1, '/').collect();
            if levels.len() > TOPIC_LEVELS {
                levels.truncate(TOPIC_LEVELS);
                levels.push("#");
            }
            let topic = bounded(&self.seen_topics, levels.join("/"));
            self.denied_topics
                .get_or_create(&DeniedTopicLabels { topic })
                .inc();
        }
    }

    pub fn error(&self, protocol: &'static str, kind: &'static str) {
        self.errors
            .get_or_create(&ErrorLabels { protocol, kind })
            .inc();
    }

    pub fn dns_cache(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.dns_cache.get_or_create(&CacheLabels { result }).inc();
    }

    pub fn forwarded(&self, protocol: &'static str, direction: &'static str, n: u64) {
        self.bytes
            .get_or_create(&BytesLabels {
                protocol,
                direction,
            })
            .inc_by(n);
    }
}

/// `value` if it already has a label or the budget allows one more, else `other`.
fn bounded(seen: &Mutex<HashSet<String>>, value: String) -> String {
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    if seen.contains(&value) || seen.len() < DENIED_LABELS_MAX {
        seen.insert(value.clone());
        value
    } else {
        "other".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_decision_lands_in_its_own_series() {
        let m = Metrics::new();
        m.decision(Protocol::Mqtt, Operation::Publish, true);
        m.decision(Protocol::Mqtt, Operation::Publish, true);
        m.decision(Protocol::Mqtt, Operation::Publish, false);
        m.decision(Protocol::Tcp, Operation::Tunnel, false);
        let get = |protocol, operation, verdict| {
            m.decisions
                .get_or_create(&DecisionLabels {
                    protocol,
                    operation,
                    verdict,
                })
                .get()
        };
        assert_eq!(get("mqtt", "publish", "allow"), 2);
        assert_eq!(get("mqtt", "publish", "deny"), 1);
        assert_eq!(get("tcp", "tunnel", "deny"), 1);
        assert_eq!(get("http", "request", "allow"), 0);
    }

    #[test]
    fn denied_labels_are_bounded_and_topics_cut_to_three_levels() {
        let m = Metrics::new();
        m.denied(
            "mqtt",
            "cloud.example.com",
            8883,
            Some("plant/line1/press7/temp/raw"),
        );
        assert_eq!(
            m.denied_topics
                .get_or_create(&DeniedTopicLabels {
                    topic: "plant/line1/press7/#".into()
                })
                .get(),
            1
        );
        for i in 0..(DENIED_LABELS_MAX + 10) {
            m.denied("http", &format!("h{i}.example.com"), 443, None);
        }
        let other = DeniedTargetLabels {
            protocol: "http",
            target: "other".into(),
        };
        assert_eq!(m.denied_targets.get_or_create(&other).get(), 11);
    }
}
