//! `sluice webhook`: the process and its HTTPS listener. One TLS listener serves the webhook
//! service (service.rs): AdmissionReviews, metrics and probes. Limits: concurrent connections,
//! handshake and request deadlines. A client that does not speak TLS is logged (rate-limited) and
//! counted; nothing a client sends stops the server. SIGTERM or SIGINT stop accepting and let
//! open requests finish within `webhook.shutdown_grace`.
//!
//! Not here: routes and reviews (service.rs), certificates (certs.rs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::certs::{self, ReloadingCert};
use super::error::AdmissionError;
use super::inventory::Inventory;
use super::policies::{Policies, Problem};
use super::service::{Webhook, text};
use crate::config::{OnTemplateError, WebhookConfig};
use crate::drain::Watch;
use crate::proxy::listener::{self, Accepted, Accounting, Listener};

/// Loads the policies the config names (the embedded shipped set when `paths` is empty).
/// Fails closed: a path that cannot be read, or with `on_template_error: fail` (the default) any
/// template or constraint that cannot be loaded, is an error naming the key and the problem; with
/// `skip` the problems are logged and the rest served, but a set left with no constraint
/// because of them is still an error (a webhook that enforces nothing must never be ready).
pub fn load_policies(cfg: &WebhookConfig) -> Result<Policies, AdmissionError> {
    let inventory = match &cfg.inventory {
        Some(dir) => Inventory::load(dir)
            .map_err(|e| AdmissionError::Start(format!("webhook.inventory: {e}")))?,
        None => Inventory::new(),
    };
    let mut policies = if cfg.paths.is_empty() {
        Policies::embedded(inventory)
    } else {
        Policies::load(&cfg.paths, inventory)
    };
    policies.set_eval_timeout(cfg.eval_timeout.get());
    refuse_problems(&policies, cfg.on_template_error).map_err(AdmissionError::Start)?;
    for p in &policies.problems {
        tracing::error!("{p} (webhook.on_template_error: skip)");
    }
    Ok(policies)
}

/// The one-line refusal for a policy set with problems, if the config does not accept them.
fn refuse_problems(policies: &Policies, on_error: OnTemplateError) -> Result<(), String> {
    let Some(first) = policies.problems.first() else {
        return Ok(());
    };
    let more = match policies.problems.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    if let Some(unreadable) = policies
        .problems
        .iter()
        .find(|p| matches!(p, Problem::File(_)))
    {
        return Err(format!(
            "webhook.paths: {unreadable}{more}; each path must be a readable file or directory \
             of ConstraintTemplates and Constraints"
        ));
    }
    match on_error {
        OnTemplateError::Fail => Err(format!(
            "webhook.paths: {first}{more}; fix it, or set webhook.on_template_error: skip to \
             serve the rest"
        )),
        OnTemplateError::Skip if policies.constraints.is_empty() => Err(format!(
            "webhook.paths: no constraint could be loaded: {first}{more}; a webhook that \
             enforces nothing is never started"
        )),
        OnTemplateError::Skip => Ok(()),
    }
}

/// Serves the webhook until the process is stopped.
pub async fn run(cfg: WebhookConfig) -> Result<(), AdmissionError> {
    let start = |e: String| AdmissionError::Start(e);
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
        .map_err(|e| start(format!("webhook.listen {}: {e}", cfg.listen)))?;
    let addr = listener.local_addr().map_err(|e| start(e.to_string()))?;
    tracing::info!(
        addr = %addr,
        templates = webhook.policies.templates.len(),
        constraints = webhook.policies.constraints.len(),
        problems = webhook.policies.problems.len(),
        startup_ms = started.elapsed().as_millis() as u64,
        "webhook listening (HTTPS: /v1/admit, /metrics, /healthz, /readyz)"
    );
    // The process's, not serve()'s: an embedded server must not start a second one.
    crate::heap::spawn_trimmer();
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

/// Serves until `shutdown` fires, then stops accepting and lets open connections finish
/// within the grace period.
pub async fn serve(
    listener: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    webhook: Arc<Webhook>,
    cfg: &WebhookConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (trigger, watch) = crate::drain::channel();
    let handshake_timeout = cfg.handshake_timeout.get();
    let request_timeout = cfg.request_timeout.get();
    let counted = webhook.clone();
    let draining = webhook.clone();
    let listener = Listener {
        name: "webhook".to_string(),
        tcp: listener,
        max_connections: cfg.max_connections,
        accounting: Accounting {
            error: Arc::new(move |kind| counted.count_error(kind)),
            accepted: None,
            open: None,
        },
    };
    let task = listener::spawn(listener, watch, move |accepted| {
        let (tls, webhook) = (tls.clone(), webhook.clone());
        async move {
            let Accepted {
                stream,
                peer,
                mut drain,
                ..
            } = accepted;
            let limits = (handshake_timeout, request_timeout);
            connection(stream, peer, tls, webhook, &mut drain, limits).await;
        }
    });
    shutdown.await;
    // Readiness first, so the endpoints controller stops sending reviews while open ones finish.
    draining.set_draining();
    tracing::info!(
        grace = %cfg.shutdown_grace,
        open = draining.reviews_open(),
        "shutting down: /readyz answers 503; waiting for open reviews"
    );
    // The listener keeps accepting while reviews finish: probes see the 503, and reviews the
    // API server still sends before its endpoints update are answered, not refused.
    let deadline = tokio::time::Instant::now() + cfg.shutdown_grace.get();
    while draining.reviews_open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let unfinished = trigger.drain(left.max(Duration::from_millis(100))).await;
    task.abort();
    tracing::info!(unfinished, "webhook stopped");
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: tokio_rustls::TlsAcceptor,
    webhook: Arc<Webhook>,
    drain: &mut Watch,
    (handshake_timeout, request_timeout): (Duration, Duration),
) {
    let stream = match tokio::time::timeout(handshake_timeout, tls.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            webhook.count_error("tls_handshake");
            if webhook.error_log.allow() {
                let why = crate::proxy::tls::handshake_refusal(&e);
                tracing::warn!(%peer, "TLS handshake failed: {why}");
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
        _ = drain.signaled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
