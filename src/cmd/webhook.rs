//! `sluice webhook`: reads the config, sets up logging and the runtime, and runs the
//! Gatekeeper-compatible admission webhook until stopped.
//!
//! Not here: the webhook itself (`admission/server.rs` and the rest of `admission/`).

use std::path::PathBuf;

use crate::admission::server;
use crate::config::Config;

/// `sluice webhook`: serve Gatekeeper ConstraintTemplates and Constraints as a validating
/// admission webhook.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Serves POST /v1/admit (and POST /) with admission.k8s.io/v1 AdmissionReviews over HTTPS, and
GET /metrics, /healthz and /readyz on the same TLS listener.

Config (webhook section): listen (0.0.0.0:8443), tls.cert and tls.key (re-read when the files
change: rotation needs no restart), paths (ConstraintTemplates and Constraints; empty = the
shipped policies/gatekeeper set), inventory (a directory of objects for data.inventory),
exempt_namespaces ([kube-system]), max_body_bytes (3MiB), eval_timeout (1s), shutdown_grace
(10s), on_template_error (fail).

A path that cannot be read, or a template or constraint that cannot be loaded, stops the webhook
at start (exit 1, one line). With on_template_error: skip, broken templates and constraints are
logged and skipped and the rest keep enforcing, but a set left with no constraint never starts.
On SIGTERM /readyz answers 503 at once while open reviews finish within shutdown_grace.")]
pub struct WebhookArgs {
    /// YAML config file (the `webhook` and `log` sections)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The process entry point; returns the exit code.
pub fn run(args: WebhookArgs) -> i32 {
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
    let (_log, runtime) = match super::start_process(
        "webhook",
        cfg.log.format,
        &cfg.log.level,
        cfg.runtime.workers,
    ) {
        Ok(started) => started,
        Err(code) => return code,
    };
    match runtime.block_on(server::run(cfg.webhook)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sluice webhook: {e}");
            1
        }
    }
}
