//! Exports policy distribution and decision-log counters at scrape time, read from
//! [`PolicyStatus`](crate::policy::bundle::status::PolicyStatus) and the decision log's atomics.
//!
//! Not here: the decision engine's own statistics (collector.rs).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::UNIX_EPOCH;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::proxy::Gateway;

#[derive(Debug)]
pub struct PolicyCollector {
    gateway: Arc<Gateway>,
}

impl PolicyCollector {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }
}

fn labelled_counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (v, n) in values {
        let c = ConstCounter::new(*n);
        c.encode(m.encode_family(&[(label, *v)])?)?;
    }
    Ok(())
}

impl Collector for PolicyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = &self.gateway.policy_status;
        labelled_counters(
            &mut encoder,
            "policy_reloads",
            "Policy changes activated after start (success), or refused or not downloadable while the previous generation kept enforcing (failure)",
            "result",
            &[
                ("success", status.activations.load(Relaxed)),
                ("failure", status.failures.load(Relaxed)),
            ],
        )?;
        let g = ConstGauge::new(
            status
                .last_activation()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        );
        g.encode(encoder.encode_descriptor(
            "policy_last_reload_timestamp_seconds",
            "When the policy in force was activated (Unix time)",
            None,
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(i64::from(status.bundles_ready()));
        g.encode(encoder.encode_descriptor(
            "policy_bundle_active",
            "1 when the configured bundle (downloaded or persisted) is in force, or no bundle is configured",
            None,
            g.metric_type(),
        )?)?;
        if let Some(log) = &self.gateway.decision_log {
            let s = log.stats();
            let c = ConstCounter::new(s.written.load(Relaxed));
            c.encode(encoder.encode_descriptor(
                "decision_log_written",
                "Decisions written to the decision log",
                None,
                c.metric_type(),
            )?)?;
            labelled_counters(
                &mut encoder,
                "decision_log_dropped",
                "Decisions not logged: the writer fell behind (queue_full) or the database refused them (write_error)",
                "reason",
                &[
                    ("queue_full", s.dropped_full.load(Relaxed)),
                    ("write_error", s.dropped_error.load(Relaxed)),
                ],
            )?;
            let c = ConstCounter::new(s.expired.load(Relaxed));
            c.encode(encoder.encode_descriptor(
                "decision_log_expired",
                "Decision-log rows deleted by retention (max_age, max_size)",
                None,
                c.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
