//! The data path: the proxies and what they share.
//!
//! Every proxy asks [`Gateway::decide`], which wraps the policy `Decider` with the metrics and
//! the rate-limited deny log, so that every protocol is judged, counted and logged the same way.

pub mod http;
pub mod sni;
pub mod tls;

use crate::policy::{Decider, Input, Source, Verdict};
use crate::site::Site;
use crate::telemetry::metrics::DecisionLabels;
use crate::telemetry::{Metrics, RateLimiter};

/// What every proxy shares: the policy, the site, who we are, and the metrics.
#[derive(Debug)]
pub struct Gateway {
    pub decider: Decider,
    pub site: Site,
    /// The workload identity; proxies copy it and add per-connection fields (client id).
    pub identity: Source,
    pub metrics: Metrics,
    deny_log: RateLimiter,
}

/// Denied decisions logged per second at most; the rest are counted.
const DENY_LOGS_PER_SECOND: u64 = 20;

impl Gateway {
    pub fn new(decider: Decider, site: Site, identity: Source) -> Self {
        Self {
            decider,
            site,
            identity,
            metrics: Metrics::new(),
            deny_log: RateLimiter::new(DENY_LOGS_PER_SECOND),
        }
    }

    /// Judges one input, counts it, and logs a deny (rate-limited; never a payload).
    pub fn decide(&self, input: &Input<'_>) -> Verdict {
        let verdict = self.decide_unlogged(input);
        if !verdict.allowed() {
            self.log_denied(input, &verdict, None);
        }
        verdict
    }

    /// Judges and counts one input without logging: for callers that log a deny themselves
    /// with [`Gateway::log_denied`], adding the decision id they hand to the client.
    pub fn decide_unlogged(&self, input: &Input<'_>) -> Verdict {
        let verdict = self.decider.decide(input);
        let allowed = verdict.allowed();
        self.metrics
            .decisions
            .get_or_create(&DecisionLabels {
                protocol: input.protocol.as_str(),
                operation: input.operation.as_str(),
                verdict: if allowed { "allow" } else { "deny" },
            })
            .inc();
        verdict
    }

    /// Logs a denied decision (rate-limited; never a payload).
    pub fn log_denied(&self, input: &Input<'_>, verdict: &Verdict, decision_id: Option<&str>) {
        if self.deny_log.allow() {
            tracing::warn!(
                protocol = input.protocol.as_str(),
                operation = input.operation.as_str(),
                target = %format_args!("{}:{}", input.target.host, input.target.port),
                topic = input.mqtt.map(|m| m.topic),
                path = input.http.map(|h| h.path),
                client_id = %input.source.client_id,
                decision_id,
                reasons = ?verdict.reasons(),
                error = verdict.error(),
                "denied"
            );
        }
    }

    /// Denied decisions not logged because of the rate limit.
    pub fn deny_logs_suppressed(&self) -> u64 {
        self.deny_log.suppressed()
    }
}
