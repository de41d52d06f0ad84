//! The data path: the proxies and what they share.
//!
//! Every proxy asks [`Gateway::decide`], which wraps the policy `Decider` with the metrics and
//! the rate-limited deny log, so that every protocol is judged, counted and logged the same way.

pub mod dns;
pub mod http;
pub mod mqtt;
pub mod sni;
pub mod tls;
pub mod transparent;

use std::sync::Arc;

use crate::policy::status::PolicyStatus;
use crate::policy::{Decider, Input, Source, Verdict};
use crate::site::Site;
use crate::telemetry::decision_log::{DecisionLog, Entry};
use crate::telemetry::{Metrics, RateLimiter};

/// What every proxy shares: the policy, the site, who we are, and the metrics.
#[derive(Debug)]
pub struct Gateway {
    pub decider: Decider,
    pub site: Site,
    /// The workload identity; proxies copy it and add per-connection fields (client id).
    pub identity: Source,
    pub metrics: Metrics,
    /// Where the policy came from and how reloads went (admin's status and health).
    pub policy_status: Arc<PolicyStatus>,
    /// Every deny and sampled allows, written off the data path.
    pub decision_log: Option<DecisionLog>,
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
            policy_status: Arc::new(PolicyStatus::new("embedded policies", false)),
            decision_log: None,
            deny_log: RateLimiter::new(DENY_LOGS_PER_SECOND),
        }
    }

    pub fn with_policy_status(mut self, status: Arc<PolicyStatus>) -> Self {
        self.policy_status = status;
        self
    }

    pub fn with_decision_log(mut self, log: Option<DecisionLog>) -> Self {
        self.decision_log = log;
        self
    }

    /// Queues a decision-log entry when the log wants this outcome; never blocks.
    fn record(&self, input: &Input<'_>, verdict: &Verdict, decision_id: Option<&str>) {
        if let Some(log) = &self.decision_log {
            if log.wants(verdict.allowed()) {
                let id = decision_id
                    .map(str::to_string)
                    .unwrap_or_else(crate::telemetry::decision_id);
                log.record(Entry::new(input, verdict, id, self.decider.revision()));
            }
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
            .decision(input.protocol, input.operation, allowed);
        if allowed {
            // Denies are recorded by log_denied, with the decision id the client is shown.
            self.record(input, &verdict, None);
        } else {
            self.metrics.denied(
                input.protocol.as_str(),
                input.target.host,
                input.target.port,
                input.mqtt.map(|m| m.topic),
            );
        }
        verdict
    }

    /// Logs a denied decision (rate-limited; never a payload) and records it in the decision
    /// log (every one).
    pub fn log_denied(&self, input: &Input<'_>, verdict: &Verdict, decision_id: Option<&str>) {
        self.record(input, verdict, decision_id);
        if self.deny_log.allow() {
            tracing::warn!(
                protocol = input.protocol.as_str(),
                operation = input.operation.as_str(),
                target = %format_args!("{}:{}", input.target.host, input.target.port),
                topic = input.mqtt.map(|m| m.topic),
                path = input.http.map(|h| h.path),
                client_id = (!input.source.client_id.is_empty())
                    .then_some(input.source.client_id.as_str()),
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
