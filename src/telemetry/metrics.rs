//! The Prometheus metrics of the gateway, in one registry served by the admin endpoint.
//! Recording is a hash lookup and an atomic add; nothing allocates per message once a label
//! set exists.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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

/// Every gateway metric. Construct once with [`Metrics::new`], share by reference.
#[derive(Debug)]
pub struct Metrics {
    pub decisions: Family<DecisionLabels, Counter>,
    pub bytes: Family<BytesLabels, Counter>,
    pub connections_open: Family<ProtocolLabels, Gauge>,
    pub connections: Family<ProtocolLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
}

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
            "errors",
            "Errors by protocol and kind (malformed input, timeouts, upstream failures)",
            self.errors.clone(),
        );
    }

    pub fn error(&self, protocol: &'static str, kind: &'static str) {
        self.errors
            .get_or_create(&ErrorLabels { protocol, kind })
            .inc();
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
