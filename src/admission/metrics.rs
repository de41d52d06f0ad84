//! The webhook's Prometheus metrics, served at `/metrics` on its TLS listener.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// `allow`, `deny`, `exempt` (exempt namespace) or `error` (a request that was not reviewed).
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    pub constraint_kind: String,
    pub constraint: String,
    pub enforcement_action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `bad_request`, `body_too_large`, `tls_handshake`, `cert_reload`, `not_found`.
    pub kind: &'static str,
}

#[derive(Debug)]
pub struct WebhookMetrics {
    pub requests: Family<VerdictLabels, Counter>,
    pub violations: Family<ViolationLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub latency: Histogram,
    pub template_load_errors: Gauge,
    pub constraint_load_errors: Gauge,
    pub templates: Gauge,
    pub constraints: Gauge,
    pub cert_reloads: Counter,
    pub reviews_open: Gauge,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WebhookMetrics {
    pub fn new() -> Self {
        Self {
            requests: Family::default(),
            violations: Family::default(),
            errors: Family::default(),
            latency: Histogram::new([
                0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0,
            ]),
            template_load_errors: Gauge::default(),
            constraint_load_errors: Gauge::default(),
            templates: Gauge::default(),
            constraints: Gauge::default(),
            cert_reloads: Counter::default(),
            reviews_open: Gauge::default(),
        }
    }

    pub fn registry(&self) -> Registry {
        let mut registry = Registry::default();
        let r = registry.sub_registry_with_prefix("sluice_admission");
        r.register(
            "requests",
            "AdmissionReviews answered, by verdict",
            self.requests.clone(),
        );
        r.register(
            "violations",
            "Constraint violations found, by constraint and enforcement action (dryrun ones included)",
            self.violations.clone(),
        );
        r.register(
            "errors",
            "Requests and connections that failed before a review, by kind",
            self.errors.clone(),
        );
        r.register(
            "review_duration_seconds",
            "Time to review one AdmissionReview (parse, match, evaluate, answer)",
            self.latency.clone(),
        );
        r.register(
            "reviews_open",
            "AdmissionReviews being read or evaluated now (what a stop waits for)",
            self.reviews_open.clone(),
        );
        r.register(
            "template_load_errors",
            "ConstraintTemplates that could not be loaded (their constraints are not enforced)",
            self.template_load_errors.clone(),
        );
        r.register(
            "constraint_load_errors",
            "Constraints that could not be loaded (not enforced)",
            self.constraint_load_errors.clone(),
        );
        r.register(
            "templates",
            "ConstraintTemplates enforced",
            self.templates.clone(),
        );
        r.register(
            "constraints",
            "Constraints enforced",
            self.constraints.clone(),
        );
        r.register(
            "certificate_reloads",
            "Serving certificate reloads after its files changed",
            self.cert_reloads.clone(),
        );
        registry
    }
}
