//! Exports the policy engine's own statistics (decision cache, evaluation latency and errors,
//! policy generation and load time) at scrape time, straight from the Decider's atomics, so
//! the decision path pays nothing extra for them.
//!
//! Not here: the gateway's own counters (metrics.rs).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::policy::decider::LATENCY_BUCKETS;
use crate::proxy::Gateway;

/// Reads the Decider's stats on every scrape.
#[derive(Debug)]
pub struct DeciderCollector {
    gateway: Arc<Gateway>,
}

impl DeciderCollector {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

impl Collector for DeciderCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let decider = &self.gateway.decider;
        let stats = decider.stats();
        counter(
            &mut encoder,
            "decision_cache_hits",
            "Decisions answered from the verdict cache",
            stats.cache_hits.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "decision_cache_misses",
            "Decisions that needed a policy evaluation",
            stats.cache_misses.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "policy_eval_errors",
            "Policy evaluations that failed (the decision was a deny)",
            stats.eval_errors.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "policy_eval_timeouts",
            "Policy evaluations stopped by policy.eval_timeout (the decision was a deny)",
            stats.eval_timeouts.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "deny_logs_suppressed",
            "Denied decisions not logged because of the log rate limit (still counted)",
            self.gateway.deny_logs_suppressed(),
        )?;
        counter(
            &mut encoder,
            "log_lines_dropped",
            "Log lines dropped because the log writer could not keep up (logging never blocks)",
            crate::telemetry::log_lines_dropped(),
        )?;
        let g = ConstGauge::new(decider.generation() as i64);
        g.encode(encoder.encode_descriptor(
            "policy_generation",
            "Policy generation in force (1 at start, +1 per reload)",
            None,
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(decider.load_time().as_secs_f64());
        g.encode(encoder.encode_descriptor(
            "policy_load_seconds",
            "Time it took to compile the policy generation in force",
            None,
            g.metric_type(),
        )?)?;

        let (sum, count, per_bucket) = stats.eval_latency.snapshot();
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            // prometheus-client writes `le="+Inf"` only for f64::MAX (INFINITY would print "inf").
            .chain(std::iter::once(f64::MAX))
            .zip(per_bucket)
            .collect();
        let mut m = encoder.encode_descriptor(
            "policy_evaluation_seconds",
            "Policy evaluation latency (cache misses only)",
            None,
            MetricType::Histogram,
        )?;
        m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
    }
}
