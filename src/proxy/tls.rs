//! TLS configuration for every listener and upstream: PEM loading into rustls configs with the
//! one crypto provider (ring). Errors name the file and say what is wrong with it.
//!
//! Not here: the handshake itself (tokio-rustls) or ClientHello inspection.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why TLS material cannot be used: one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read {what}: {source}")]
    Read {
        path: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{path}: not a PEM certificate file: {reason}")]
    NotPem { path: String, reason: String },
    #[error("{0}: no PEM certificate found")]
    NoCertificate(String),
    #[error("{path}: no usable PEM private key: {reason}")]
    NoKey { path: String, reason: String },
    #[error("{path}: invalid CA certificate: {reason}")]
    BadCa { path: String, reason: String },
    #[error("{path}: certificate and key do not match or are unusable: {reason}")]
    Mismatch { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// The process-wide crypto provider: ring, explicitly, so no feature unification can swap it.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: shown.clone(),
        what: "certificate",
        source,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NotPem {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(shown));
    }
    Ok(certs)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: shown.clone(),
        what: "private key",
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::NoKey {
        path: shown,
        reason: e.to_string(),
    })
}

/// A CA bundle as a root store.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// A server config from a cert chain and key; with `client_ca`, client certificates are required
/// and verified against it.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    alpn: &[&[u8]],
) -> Result<ServerConfig, TlsError> {
    let certs = load_certs(cert)?;
    let key = load_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = Arc::new(load_roots(ca)?);
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| TlsError::BadCa {
                        path: ca.display().to_string(),
                        reason: e.to_string(),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Mismatch {
            path: cert.display().to_string(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client config trusting exactly the CAs in `ca`.
pub fn client_config(ca: &Path) -> Result<ClientConfig, TlsError> {
    let roots = load_roots(ca)?;
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Why a TLS handshake failed, as one line an operator can act on. rustls (webpki) accepts only
/// X.509 v3 certificates; a v1 certificate (what `openssl x509 -req` makes without
/// extensions) is refused with a reason that does not say so, so this says it.
pub fn handshake_refusal(e: &std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("UnsupportedCertVersion") {
        format!(
            "{text} (the peer's certificate is not X.509 v3; sluice accepts v3 certificates only)"
        )
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_files_give_one_line_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("sluice-tls-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let bad = dir.join("bad.pem");
        let _ = std::fs::write(&bad, b"not pem at all");
        let err = load_certs(&bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with(&bad.display().to_string()), "{err}");
        assert!(!err.contains('\n'));
        let err = load_key(&dir.join("missing.key"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("cannot read private key"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn generated_pair_makes_a_server_config() {
        let dir = std::env::temp_dir().join(format!("sluice-tls-ok-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let Ok(ck) = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]) else {
            panic!("rcgen failed");
        };
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        let _ = std::fs::write(&c, ck.cert.pem());
        let _ = std::fs::write(&k, ck.signing_key.serialize_pem());
        assert!(server_config(&c, &k, None, &[]).is_ok());
        assert!(client_config(&c).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
