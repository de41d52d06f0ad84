//! `webhook`: the admission webhook's listener, certificate, policies and limits.
//!
//! Not here: the webhook (`admission/`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};
use super::units::{Dur, Size};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    #[serde(deserialize_with = "super::units::listen_addr")]
    pub listen: SocketAddr,
    pub tls: WebhookTls,
    /// ConstraintTemplates and Constraints; empty means the shipped policies/gatekeeper.
    pub paths: Vec<PathBuf>,
    /// Requests in these namespaces are always allowed (Gatekeeper's exempt namespaces).
    pub exempt_namespaces: Vec<String>,
    /// Directory of Kubernetes objects that becomes `data.inventory`.
    pub inventory: Option<PathBuf>,
    /// Largest AdmissionReview body accepted.
    pub max_body_bytes: Size,
    /// Time limit of one template evaluation; past it the evaluation is a violation.
    pub eval_timeout: Dur,
    /// Concurrent client connections; further ones wait in the kernel backlog.
    pub max_connections: usize,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout: Dur,
    /// Time a client has to send a whole request (head and body).
    pub request_timeout: Dur,
    /// How often, at most, the certificate files are checked for changes.
    pub cert_reload_interval: Dur,
    /// Deadline for open requests on SIGTERM.
    pub shutdown_grace: Dur,
    /// What a template or constraint that cannot be loaded does: `fail` (the default) stops
    /// the webhook at start; `skip` logs it and serves the rest, as Gatekeeper does.
    pub on_template_error: OnTemplateError,
}

/// See [`WebhookConfig::on_template_error`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTemplateError {
    #[default]
    Fail,
    Skip,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls: WebhookTls::default(),
            paths: Vec::new(),
            exempt_namespaces: vec!["kube-system".into()],
            inventory: None,
            max_body_bytes: Size(3 * 1024 * 1024),
            eval_timeout: Dur(Duration::from_secs(1)),
            max_connections: 1024,
            handshake_timeout: Dur(Duration::from_secs(10)),
            request_timeout: Dur(Duration::from_secs(10)),
            cert_reload_interval: Dur(Duration::from_secs(2)),
            shutdown_grace: Dur(Duration::from_secs(10)),
            on_template_error: OnTemplateError::Fail,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for WebhookTls {
    fn default() -> Self {
        Self {
            cert: "/certs/tls.crt".into(),
            key: "/certs/tls.key".into(),
        }
    }
}

impl WebhookConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(invalid("webhook.max_connections", "must be at least 1"));
        }
        if self.max_body_bytes.0 < 1024 {
            return Err(invalid("webhook.max_body_bytes", "must be at least 1KiB"));
        }
        if self.eval_timeout.0.is_zero() {
            return Err(invalid("webhook.eval_timeout", "must be greater than zero"));
        }
        Ok(())
    }
}
