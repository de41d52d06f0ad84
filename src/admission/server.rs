//! `sluice webhook`: the HTTPS server. One TLS listener serves `POST /v1/admit` (and `/`) with
//! AdmissionReviews, and `GET /metrics`, `/healthz`, `/readyz`. Limits: concurrent connections,
//! handshake and request deadlines, body size (413). A malformed review is a 400 with a one-line
//! reason; a client that does not speak TLS is logged (rate-limited) and counted; nothing a
//! client sends stops the server. SIGTERM or SIGINT stop accepting and let open requests finish
//! within `webhook.shutdown_grace`.
//!
//! Not here: evaluation (review.rs), the answer's shape (response.rs), certificates (certs.rs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::WebhookArgs;
use super::certs::{self, ReloadingCert};
use super::constraints::EnforcementAction;
use super::inventory::Inventory;
use super::matching::wildcard_matches;
use super::metrics::{ErrorLabels, VerdictLabels, ViolationLabels, WebhookMetrics};
use super::policies::{Policies, Problem};
use super::{response, review};
use crate::config::{Config, WebhookConfig};
use crate::telemetry::RateLimiter;

/// Everything a request handler needs; shared by all connections.
pub struct Webhook {
    pub policies: Policies,
    pub metrics: WebhookMetrics,
    registry: prometheus_client::registry::Registry,
    exempt_namespaces: Vec<String>,
    max_body: usize,
    error_log: RateLimiter,
    violation_log: RateLimiter,
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
        }
    }

    fn count_error(&self, kind: &'static str) {
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
            Err(e) => return self.bad_request(&e),
        };
        let request = match review::prepare(incoming.request) {
            Ok(r) => r,
            Err(e) => return self.bad_request(&e),
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
        for v in &violations {
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
                request.get("name").and_then(Json::as_str).unwrap_or(""),
                request
                    .get("namespace")
                    .and_then(Json::as_str)
                    .unwrap_or(""),
            );
            tracing::info!(
                uid = %incoming.uid,
                constraint = %format_args!("{}/{}", v.kind, v.constraint),
                enforcement_action = v.action.as_str(),
                resource = %format_args!("{kind} {ns}/{name}"),
                msg = %v.msg,
                "violation"
            );
        }
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

    fn metrics_text(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Routes one HTTP request.
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        match (req.method(), path.as_str()) {
            (&Method::POST, "/" | "/v1/admit") => {}
            (&Method::GET, "/healthz") => return text(StatusCode::OK, "ok\n"),
            (&Method::GET, "/readyz") => {
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
                let mut r = text(StatusCode::OK, &self.metrics_text());
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                return r;
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
            return too_large();
        }
        let body = match Limited::new(req.into_body(), self.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return too_large();
                }
                self.count_error("bad_request");
                return text(StatusCode::BAD_REQUEST, &format!("cannot read body: {e}\n"));
            }
        };
        let (status, answer) = self.admit(&body);
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

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Loads the policies the config names (the embedded shipped set when `paths` is empty) and
/// logs every problem. Errors only when the inventory cannot be read.
pub fn load_policies(cfg: &WebhookConfig) -> Result<Policies, String> {
    let inventory = match &cfg.inventory {
        Some(dir) => Inventory::load(dir).map_err(|e| format!("webhook.inventory: {e}"))?,
        None => Inventory::new(),
    };
    let mut policies = if cfg.paths.is_empty() {
        Policies::embedded(inventory)
    } else {
        Policies::load(&cfg.paths, inventory)
    };
    policies.set_eval_timeout(cfg.eval_timeout.get());
    for p in &policies.problems {
        tracing::error!("{p}");
    }
    Ok(policies)
}

/// The process entry point; returns the exit code.
pub fn main(args: WebhookArgs) -> i32 {
    let cfg = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sluice webhook: {e}");
                return 1;
            }
        },
        None => Config::default(),
    };
    if let Err(e) = crate::telemetry::init_logging(cfg.log.format, &cfg.log.level) {
        eprintln!("sluice webhook: {e}");
        return 1;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice webhook: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(cfg.webhook)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sluice webhook: {e}");
            1
        }
    }
}

async fn run(cfg: WebhookConfig) -> Result<(), String> {
    let started = Instant::now();
    let policies = load_policies(&cfg)?;
    let webhook = Arc::new(Webhook::new(
        policies,
        cfg.exempt_namespaces.clone(),
        cfg.max_body_bytes.as_usize(),
    ));
    let for_reload = webhook.clone();
    let resolver = Arc::new(ReloadingCert::new(
        &cfg.tls.cert,
        &cfg.tls.key,
        cfg.cert_reload_interval.get(),
        Box::new(move |r| match r {
            Ok(()) => {
                for_reload.metrics.cert_reloads.inc();
            }
            Err(_) => for_reload.count_error("cert_reload"),
        }),
    )?);
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(certs::server_config(resolver)?));
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("webhook.listen {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        addr = %addr,
        templates = webhook.policies.templates.len(),
        constraints = webhook.policies.constraints.len(),
        problems = webhook.policies.problems.len(),
        startup_ms = started.elapsed().as_millis() as u64,
        "webhook listening (HTTPS: /v1/admit, /metrics, /healthz, /readyz)"
    );
    serve(listener, tls, webhook, &cfg, shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The accept loop; returns after `shutdown` fires and open connections finish (or the grace
/// period ends).
pub async fn serve(
    listener: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    webhook: Arc<Webhook>,
    cfg: &WebhookConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let handshake_timeout = cfg.handshake_timeout.get();
    let request_timeout = cfg.request_timeout.get();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (tls, webhook, mut stop_rx, open) =
            (tls.clone(), webhook.clone(), stop_rx.clone(), open.clone());
        open.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            connection(
                tcp,
                peer,
                tls,
                webhook,
                &mut stop_rx,
                handshake_timeout,
                request_timeout,
            )
            .await;
            open.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
        });
    }
    tracing::info!("shutting down: no new connections; waiting for open requests");
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + cfg.shutdown_grace.get();
    while open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!(unfinished = open.load(Ordering::SeqCst), "webhook stopped");
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: tokio_rustls::TlsAcceptor,
    webhook: Arc<Webhook>,
    stop_rx: &mut watch::Receiver<bool>,
    handshake_timeout: Duration,
    request_timeout: Duration,
) {
    let stream = match tokio::time::timeout(handshake_timeout, tls.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            webhook.count_error("tls_handshake");
            if webhook.error_log.allow() {
                tracing::warn!(%peer, error = %e, "TLS handshake failed");
            }
            return;
        }
        Err(_) => {
            webhook.count_error("tls_handshake");
            if webhook.error_log.allow() {
                tracing::warn!(%peer, "TLS handshake timed out");
            }
            return;
        }
    };
    let service = hyper::service::service_fn(move |req| {
        let webhook = webhook.clone();
        async move {
            Ok::<_, std::convert::Infallible>(
                match tokio::time::timeout(request_timeout, webhook.handle(req)).await {
                    Ok(r) => r,
                    Err(_) => text(
                        StatusCode::REQUEST_TIMEOUT,
                        "request not received in time\n",
                    ),
                },
            )
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(request_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { let _ = stop_rx.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
