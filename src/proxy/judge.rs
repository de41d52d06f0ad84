//! The judge stage every protocol goes through: classify the target (the site's zones), apply
//! DESIGN.md's DNS rule with a lookup timeout, build the decision `Input`, decide, and — for
//! every deny — count it, record it in the decision log and write the (rate-limited) deny log
//! line with the decision id the client is shown. There is no way to decide without the
//! accounting: [`Gateway::judge`] (a target to locate) and [`Gateway::decide_at`] (a target
//! already located) both do all of it, and the decision `Input` is built here only.
//!
//! The DNS rule: a name outside the site's local domains is judged *before* any lookup (zone
//! external, no ip) and looked up only if allowed; a name inside is resolved once and is local
//! only if its address is local too. The result is the one socket address the proxy may
//! connect to, so no second lookup (which an attacker's DNS could answer differently) exists.
//!
//! Not here: connecting (socket.rs) or what a refusal looks like on the wire (each protocol).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::policy::bundle::status::PolicyStatus;
use crate::policy::{
    Decider, HttpFacts, Input, MqttFacts, Operation, Protocol, Source, Target, Verdict, Zone,
};
use crate::site::{HostKind, Site};
use crate::telemetry::decision_log::{DecisionLog, Entry};
use crate::telemetry::{Metrics, RateLimiter};

/// Denied decisions logged per second at most; the rest are counted.
const DENY_LOGS_PER_SECOND: u64 = 20;

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
    /// Open flows judge themselves again when a new generation is in force (revalidate.rs).
    pub revalidate: bool,
    deny_log: RateLimiter,
}

/// A verdict and, for a deny, the id shown to the client and written to the logs.
#[derive(Debug)]
pub struct Decision {
    pub verdict: Verdict,
    pub decision_id: Option<String>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.verdict.allowed()
    }
}

/// One target to judge.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    pub protocol: Protocol,
    pub operation: Operation,
    pub source: &'a Source,
    /// As the client wrote it; IPv6 without brackets.
    pub host: &'a str,
    pub port: u16,
    pub mqtt: Option<MqttFacts<'a>>,
    pub http: Option<HttpFacts<'a>>,
    /// A publish judged against the same target once the operation is allowed (an MQTT Will:
    /// the broker publishes it later on the client's behalf).
    pub will: Option<MqttFacts<'a>>,
}

/// The outcome of judging one target.
#[derive(Debug)]
pub enum Judged {
    /// Connect to exactly this address; `zone` is the one that was judged.
    Allowed { addr: SocketAddr, zone: Zone },
    /// Refused; the decision carries the id the client is shown.
    Denied(Decision),
    /// The name has no usable address.
    Unresolvable(String),
    /// The lookup took longer than the timeout it was given.
    LookupTimeout(String),
}

impl Gateway {
    pub fn new(decider: Decider, site: Site, identity: Source) -> Self {
        Self {
            decider,
            site,
            identity,
            metrics: Metrics::new(),
            policy_status: Arc::new(PolicyStatus::new("embedded policies", false)),
            decision_log: None,
            revalidate: true,
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

    pub fn with_revalidation(mut self, on: bool) -> Self {
        self.revalidate = on;
        self
    }

    /// The judged address of a target as [`Gateway::judge`] saw it: a literal address or a
    /// local name's lookup (`connected`), or an external name judged without any address.
    /// What an open flow is judged again on.
    pub fn located(&self, host: &str, connected: IpAddr) -> (Option<IpAddr>, Zone) {
        match self.site.classify(host) {
            HostKind::Address(ip, zone) => (Some(ip), zone),
            HostKind::ExternalName => (None, Zone::External),
            HostKind::LocalName => (Some(connected), self.site.zone_of_ip(connected)),
        }
    }

    /// Judges one input and does all of a decision's accounting: counted, a deny logged
    /// (rate-limited; never a payload) and recorded with its decision id. No allocation for
    /// an allowed decision on a cache hit.
    fn decide(&self, input: &Input<'_>) -> Decision {
        let verdict = self.decider.decide(input);
        let allowed = verdict.allowed();
        self.metrics
            .decision(input.protocol, input.operation, allowed);
        if allowed {
            self.record(input, &verdict, None);
            return Decision {
                verdict,
                decision_id: None,
            };
        }
        self.metrics.denied(
            input.protocol.as_str(),
            input.target.host,
            input.target.port,
            input.mqtt.map(|m| m.topic),
        );
        let decision_id = crate::telemetry::decision_id();
        self.record(input, &verdict, Some(&decision_id));
        self.log_denied(input, &verdict, &decision_id);
        Decision {
            verdict,
            decision_id: Some(decision_id),
        }
    }

    /// Judges `ask` under the DNS rule; resolves a name at most once, each lookup bounded by
    /// `timeout`. Lookup failures are the caller's to count (each protocol answers them).
    pub async fn judge(&self, ask: Ask<'_>, timeout: Duration) -> Judged {
        let (ip, zone) = match self.site.classify(ask.host) {
            HostKind::Address(ip, zone) => (Some(ip), zone),
            // Judged before any lookup: the lookup itself would be an export.
            HostKind::ExternalName => (None, Zone::External),
            HostKind::LocalName => match resolve(ask.host, ask.port, timeout).await {
                Ok(addr) => (Some(addr.ip()), self.site.zone_of_ip(addr.ip())),
                Err(j) => return j,
            },
        };
        let decision = self.decide_at(&ask, ip, zone);
        if !decision.allowed() {
            return Judged::Denied(decision);
        }
        match ip {
            Some(ip) => Judged::Allowed {
                addr: SocketAddr::new(ip, ask.port),
                zone,
            },
            // An external name the policy let out: now, and only now, look it up.
            None => match resolve(ask.host, ask.port, timeout).await {
                Ok(addr) => Judged::Allowed { addr, zone },
                Err(j) => j,
            },
        }
    }

    /// Judges `ask` for a target already located (an open MQTT session's broker, a TLS
    /// server name judged as external without a lookup): the operation, then the Will. The one
    /// place a decision `Input` is built.
    pub fn decide_at(&self, ask: &Ask<'_>, ip: Option<IpAddr>, zone: Zone) -> Decision {
        let input = Input {
            protocol: ask.protocol,
            operation: ask.operation,
            source: ask.source,
            target: Target {
                host: ask.host,
                port: ask.port,
                ip,
                zone,
            },
            mqtt: ask.mqtt,
            http: ask.http,
        };
        let decision = self.decide(&input);
        let Some(will) = ask.will.filter(|_| decision.allowed()) else {
            return decision;
        };
        self.decide(&Input {
            operation: Operation::Publish,
            mqtt: Some(will),
            ..input
        })
    }

    /// A tunnel judged on its target, then — when its TLS server name is another external
    /// host (domain fronting) — on that name as an export of its own, judged without a lookup.
    pub fn decide_tunnel(
        &self,
        ask: &Ask<'_>,
        ip: Option<IpAddr>,
        zone: Zone,
        fronted: Option<(&str, Option<IpAddr>)>,
    ) -> Decision {
        let decision = self.decide_at(ask, ip, zone);
        match fronted {
            Some((name, ip)) if decision.allowed() => {
                self.decide_at(&Ask { host: name, ..*ask }, ip, Zone::External)
            }
            _ => decision,
        }
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

    fn log_denied(&self, input: &Input<'_>, verdict: &Verdict, decision_id: &str) {
        if !self.deny_log.allow() {
            return;
        }
        tracing::warn!(
            protocol = input.protocol.as_str(),
            operation = input.operation.as_str(),
            target = %format_args!("{}:{}", input.target.host, input.target.port),
            topic = input.mqtt.map(|m| m.topic),
            path = input.http.map(|h| h.path),
            client_id = (!input.source.client_id.is_empty())
                .then_some(input.source.client_id.as_str()),
            decision_id,
            reasons = verdict.reasons().join("; ").as_str(),
            error = verdict.error(),
            "denied"
        );
    }

    /// Denied decisions not logged because of the rate limit.
    pub fn deny_logs_suppressed(&self) -> u64 {
        self.deny_log.suppressed()
    }
}

/// One lookup; the first address is the one judged and used.
async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, Judged> {
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(Judged::LookupTimeout(format!(
            "looking up {host} timed out"
        ))),
        Ok(Err(e)) => Err(Judged::Unresolvable(format!("cannot resolve {host}: {e}"))),
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| Judged::Unresolvable(format!("{host} has no address"))),
    }
}
