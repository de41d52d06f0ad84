//! Live flows follow the policy: a flow that outlives its first decision (a CONNECT tunnel, a
//! transparent tunnel, an MQTT session and its subscriptions) judges itself again each time a
//! new policy generation is in force, and ends when that generation denies it. ztunnel does
//! the same on every policy change; without it a tunnel opened before a tightening keeps
//! carrying bytes, and a subscription granted before it keeps delivering (mosquitto's
//! CVE-2021-34434).
//!
//! Each flow waits on the decider's activation watch in its own task and re-judges through the
//! verdict cache, so the work is one decision per open flow and identical flows share one
//! evaluation; nothing scans a table of flows and no lock is held across the data path. The
//! deny is counted, decision-logged and logged by the judge like any other; the end itself is
//! counted in `sluice_flows_revoked_total{protocol}` and logged (rate-limited) here.
//!
//! `policy.revalidate: false` turns it off: flows then keep their first decision for life.
//!
//! Not here: how each protocol ends a flow (the tunnel closes its sockets, MQTT 5 gets a
//! DISCONNECT 0x87 first): that is the caller's.

use tokio::sync::watch;

use super::judge::{Decision, Gateway};
use crate::telemetry::RateLimiter;

/// Flow ends logged per second at most; the rest are counted.
static REVOKED_LOG: RateLimiter = RateLimiter::new(20);

/// What an open flow waits on; `None` when revalidation is off.
pub struct PolicyWatch(Option<watch::Receiver<u64>>);

impl Gateway {
    /// The watch an open flow keeps for its life (a few words; no allocation per flow).
    pub fn policy_watch(&self) -> PolicyWatch {
        PolicyWatch(self.revalidate.then(|| self.decider.activations()))
    }
}

impl PolicyWatch {
    /// Resolves once a newer generation denies the flow, with that deny; `check` judges the
    /// flow again (through `Gateway::decide_at`, which counts and logs the deny). Never
    /// resolves while revalidation is off.
    pub async fn denied(&mut self, mut check: impl FnMut() -> Decision) -> Decision {
        let Some(rx) = &mut self.0 else {
            return std::future::pending().await;
        };
        loop {
            // The sender lives as long as the decider, which outlives every flow.
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
            let decision = check();
            if !decision.allowed() {
                return decision;
            }
        }
    }
}

/// Counts and logs the end of a flow the policy in force no longer allows.
pub fn revoked(gw: &Gateway, protocol: &'static str, flow: &str, decision: &Decision) {
    gw.metrics
        .flows_revoked
        .get_or_create(&crate::telemetry::metrics::ProtocolLabels { protocol })
        .inc();
    if REVOKED_LOG.allow() {
        tracing::info!(
            protocol,
            flow,
            generation = gw.decider.generation(),
            decision_id = decision.decision_id.as_deref(),
            "open flow ended: the policy now in force denies it"
        );
    }
}
