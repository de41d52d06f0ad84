//! The webhook's HTTP service: routes (`POST /v1/admit` and `/`, `GET /metrics`, `/healthz`,
//! `/readyz`), the body limit (413), malformed reviews (400 with a one-line reason), exempt
//! namespaces, and the review itself with its metrics and violation log.
//!
//! Not here: sockets, TLS and shutdown (server.rs), evaluation (review.rs).

use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::Value as Json;

use super::constraints::EnforcementAction;
use super::matching::wildcard_matches;
use super::metrics::{ErrorLabels, VerdictLabels, ViolationLabels, WebhookMetrics};
use super::policies::{Policies, Problem};
use super::review::Violation;
use super::{response, review};
use crate::telemetry::RateLimiter;

/// Everything a request handler needs; shared by all connections.
pub struct Webhook {
    pub policies: Policies,
    pub metrics: WebhookMetrics,
    registry: prometheus_client::registry::Registry,
    exempt_namespaces: Vec<String>,
    max_body: usize,
    pub(crate) error_log: RateLimiter,
    violation_log: RateLimiter,
    /// Set on SIGTERM: `/readyz` answers 503 while open reviews finish.
    draining: std::sync::atomic::AtomicBool,
}

/// Counts one open review (`reviews_open`) for as long as it lives.
struct OpenReview<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> OpenReview<'a> {
    fn new(count: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        count.inc();
        Self(count)
    }
}

impl Drop for OpenReview<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Webhook {
    pub fn new(policies: Policies, exempt_namespaces: Vec<String>, max_body: usize) -> Self {
        let metrics = WebhookMetrics::new();
        metrics
            .template_load_errors
            .set(policies.template_errors() as i64);
        metrics.constraint_load_errors.set(
            policies
                .problems
                .iter()
                .filter(|p| matches!(p, Problem::Constraint(_)))
                .count() as i64,
        );
        metrics.templates.set(policies.templates.len() as i64);
        metrics.constraints.set(policies.constraints.len() as i64);
        let registry = metrics.registry();
        Self {
            policies,
            metrics,
            registry,
            exempt_namespaces,
            max_body,
            error_log: RateLimiter::new(10),
            violation_log: RateLimiter::new(100),
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Reviews being read or evaluated now.
    pub fn reviews_open(&self) -> usize {
        usize::try_from(self.metrics.reviews_open.get()).unwrap_or(0)
    }

    /// From now on `/readyz` answers 503 (the process is stopping).
    pub fn set_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn count_error(&self, kind: &'static str) {
        self.metrics
            .errors
            .get_or_create(&ErrorLabels { kind })
            .inc();
    }

    /// Answers one AdmissionReview body: (HTTP status, body).
    pub fn admit(&self, body: &[u8]) -> (StatusCode, Json) {
        let started = Instant::now();
        let incoming = match response::parse(body) {
            Ok(i) => i,
            Err(e) => return self.bad_request(&e.to_string()),
        };
        let request = match review::prepare(incoming.request) {
            Ok(r) => r,
            Err(e) => return self.bad_request(&e.to_string()),
        };
        if self.is_exempt(&request) {
            self.metrics
                .requests
                .get_or_create(&VerdictLabels { verdict: "exempt" })
                .inc();
            self.metrics
                .latency
                .observe(started.elapsed().as_secs_f64());
            return (
                StatusCode::OK,
                response::exempt(&incoming.api_version, &incoming.uid),
            );
        }
        let violations = self.policies.review(&request);
        self.record_violations(&incoming.uid, &request, &violations);
        let denied = violations
            .iter()
            .any(|v| v.action == EnforcementAction::Deny);
        self.metrics
            .requests
            .get_or_create(&VerdictLabels {
                verdict: if denied { "deny" } else { "allow" },
            })
            .inc();
        let answer = response::verdict(&incoming.api_version, &incoming.uid, &violations);
        self.metrics
            .latency
            .observe(started.elapsed().as_secs_f64());
        (StatusCode::OK, answer)
    }

    /// Counts each violation and logs it (rate-limited) with the resource it concerns.
    fn record_violations(&self, uid: &str, request: &Json, violations: &[Violation]) {
        for v in violations {
            self.metrics
                .violations
                .get_or_create(&ViolationLabels {
                    constraint_kind: v.kind.clone(),
                    constraint: v.constraint.clone(),
                    enforcement_action: v.action.as_str(),
                })
                .inc();
            if !self.violation_log.allow() {
                continue;
            }
            let (kind, name, ns) = (
                request
                    .pointer("/kind/kind")
                    .and_then(Json::as_str)
                    .unwrap_or(""),
                // CREATE requests often carry no name (generateName); the object has it.
                request
                    .get("name")
                    .and_then(Json::as_str)
                    .filter(|n| !n.is_empty())
                    .or_else(|| {
                        request
                            .pointer("/object/metadata/name")
                            .and_then(Json::as_str)
                    })
                    .unwrap_or(""),
                request
                    .get("namespace")
                    .and_then(Json::as_str)
                    .unwrap_or(""),
            );
            tracing::info!(
                uid = %uid,
                constraint = %format_args!("{}/{}", v.kind, v.constraint),
                enforcement_action = v.action.as_str(),
                resource = %format_args!("{kind} {ns}/{name}"),
                msg = %v.msg,
                "violation"
            );
        }
    }

    fn bad_request(&self, reason: &str) -> (StatusCode, Json) {
        self.count_error("bad_request");
        self.metrics
            .requests
            .get_or_create(&VerdictLabels { verdict: "error" })
            .inc();
        if self.error_log.allow() {
            tracing::warn!(reason, "malformed AdmissionReview");
        }
        (
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": format!("malformed AdmissionReview: {reason}")}),
        )
    }

    /// Gatekeeper's exempt namespaces: by the request's namespace, or a Namespace's own name.
    fn is_exempt(&self, request: &Json) -> bool {
        let mut ns = request
            .get("namespace")
            .and_then(Json::as_str)
            .unwrap_or("");
        if ns.is_empty()
            && request.pointer("/kind/kind").and_then(Json::as_str) == Some("Namespace")
            && request
                .pointer("/kind/group")
                .and_then(Json::as_str)
                .unwrap_or("")
                .is_empty()
        {
            ns = request.get("name").and_then(Json::as_str).unwrap_or("");
        }
        !ns.is_empty()
            && self
                .exempt_namespaces
                .iter()
                .any(|p| wildcard_matches(p, ns))
    }

    /// The request body, within `webhook.max_body_bytes`; else the answer refusing it.
    async fn read_body(&self, req: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
        let too_large = || {
            self.count_error("body_too_large");
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "AdmissionReview larger than webhook.max_body_bytes ({} bytes)\n",
                    self.max_body
                ),
            )
        };
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return Err(too_large());
        }
        match Limited::new(req.into_body(), self.max_body).collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return Err(too_large());
                }
                self.count_error("bad_request");
                Err(text(
                    StatusCode::BAD_REQUEST,
                    &format!("cannot read body: {e}\n"),
                ))
            }
        }
    }

    /// Routes one HTTP request.
    pub(crate) async fn handle(
        self: std::sync::Arc<Self>,
        req: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        match (req.method(), path.as_str()) {
            (&Method::POST, "/" | "/v1/admit") => {}
            (&Method::GET, "/healthz") => return text(StatusCode::OK, "ok\n"),
            (&Method::GET, "/readyz") => {
                if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
                    return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
                }
                return text(
                    StatusCode::OK,
                    &format!(
                        "ready: {} templates, {} constraints\n",
                        self.policies.templates.len(),
                        self.policies.constraints.len()
                    ),
                );
            }
            (&Method::GET, "/metrics") => {
                let accept = req
                    .headers()
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                return match crate::telemetry::exposition::render(&self.registry, accept) {
                    Ok((body, content_type)) => {
                        let mut r = text(StatusCode::OK, &body);
                        r.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static(content_type),
                        );
                        r
                    }
                    Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
                };
            }
            (_, "/" | "/v1/admit") => {
                return text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "use POST with an AdmissionReview\n",
                );
            }
            _ => {
                self.count_error("not_found");
                return text(
                    StatusCode::NOT_FOUND,
                    "not found: POST /v1/admit, GET /metrics, /healthz, /readyz\n",
                );
            }
        }
        let _open = OpenReview::new(&self.metrics.reviews_open);
        let body = match self.read_body(req).await {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        // Reviews are CPU work of unbounded length (up to eval_timeout per template): off the
        // async workers, so that probes and other connections are served meanwhile.
        let webhook = self.clone();
        let (status, answer) = match tokio::task::spawn_blocking(move || webhook.admit(&body)).await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "review failed");
                return text(StatusCode::INTERNAL_SERVER_ERROR, "review failed\n");
            }
        };
        let mut r = Response::new(Full::new(Bytes::from(
            serde_json::to_vec(&answer).unwrap_or_default(),
        )));
        *r.status_mut() = status;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        r
    }
}

pub(crate) fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
