//! The webhook's serving certificate, re-read when its files change so that rotation (cert-manager,
//! a re-mounted Secret) needs no restart. The files' modification times are checked at most
//! once per interval, during a handshake; a pair that fails to load (half-written, mismatched)
//! is logged and counted, and the previous certificate keeps serving.
//!
//! Not here: the listener (server.rs).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::error::AdmissionError;
use crate::proxy::tls;

/// Loads a certificate chain and key into a rustls `CertifiedKey`; the error names the key
/// (`webhook.tls.cert` or `.key`), the file and what would do.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, AdmissionError> {
    let chain = tls::load_certs(cert).map_err(|e| {
        AdmissionError::Certificate(format!(
            "webhook.tls.cert: {e}; name the PEM certificate the webhook serves (sluice cert writes one)"
        ))
    })?;
    let key_der = tls::load_key(key).map_err(|e| {
        AdmissionError::Certificate(format!(
            "webhook.tls.key: {e}; name the PEM private key of webhook.tls.cert"
        ))
    })?;
    CertifiedKey::from_der(chain, key_der, &tls::provider()).map_err(|e| {
        let reason = match e {
            rustls::Error::InconsistentKeys(_) => "it is not the key of".to_string(),
            other => format!("{other}: unusable with"),
        };
        AdmissionError::Certificate(format!(
            "webhook.tls.key: {}: {reason} webhook.tls.cert {}; name the key the certificate was issued for",
            key.display(),
            cert.display()
        ))
    })
}

fn mtimes(cert: &Path, key: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(cert), m(key))
}

/// Told about every reload attempt after the first load: `Ok` or the one-line reason.
pub type ReloadHook = Box<dyn Fn(Result<(), &str>) + Send + Sync>;

struct State {
    current: Arc<CertifiedKey>,
    seen: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

/// A `ResolvesServerCert` serving the newest good pair from two files.
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    interval: Duration,
    state: Mutex<State>,
    on_reload: ReloadHook,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair now (an error here is fatal: there is nothing to serve).
    /// `on_reload` is told about every reload attempt after the first.
    pub fn new(
        cert: &Path,
        key: &Path,
        interval: Duration,
        on_reload: ReloadHook,
    ) -> Result<Self, AdmissionError> {
        let seen = mtimes(cert, key);
        let current = Arc::new(load_pair(cert, key)?);
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            interval,
            state: Mutex::new(State {
                current,
                seen,
                checked: Instant::now(),
            }),
            on_reload,
        })
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.checked.elapsed() >= self.interval {
            st.checked = Instant::now();
            let now = mtimes(&self.cert, &self.key);
            if now != st.seen {
                match load_pair(&self.cert, &self.key) {
                    Ok(pair) => {
                        st.current = Arc::new(pair);
                        st.seen = now;
                        tracing::info!(cert = %self.cert.display(), "serving certificate reloaded");
                        (self.on_reload)(Ok(()));
                    }
                    Err(e) => {
                        // Keep `seen` so the next check retries (the writer may not be done).
                        tracing::warn!(error = %e, "serving certificate not reloaded; the previous one keeps serving");
                        (self.on_reload)(Err(&e.to_string()));
                    }
                }
            }
        }
        st.current.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A rustls server config (ring, safe defaults, HTTP/1.1) that resolves through `resolver`.
pub fn server_config(resolver: Arc<ReloadingCert>) -> Result<rustls::ServerConfig, AdmissionError> {
    let mut config = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| AdmissionError::Certificate(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
