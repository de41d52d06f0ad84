//! Downloading a bundle over HTTP(S): one conditional `GET` (`If-None-Match`) per poll on a fresh
//! connection, bounded in time and size, and the jittered delay between polls.
//!
//! Credentials never reach a log line or the status document: the bearer token
//! (`policy.bundle.token_file`) is only ever a request header, the URL is shown without its
//! query (where presigned URLs carry their signature), and a URL with `user:password@` is
//! refused.
//!
//! Not here: what is done with the bytes (`source.rs`), or reading them (`bundle.rs`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::error::BundleError;

/// Where bundles are downloaded from.
#[derive(Clone)]
pub struct BundleServer {
    uri: Uri,
    /// The URL as logs and the status show it: no query.
    shown: String,
    /// Sent as `Authorization: Bearer`.
    token: Option<String>,
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    pub timeout: Duration,
    pub max_size: u64,
}

/// The answer to one poll.
#[derive(Debug)]
pub enum Fetched {
    /// `304 Not Modified`: the active bundle is current.
    NotModified,
    Bundle {
        bytes: Bytes,
        etag: Option<String>,
    },
}

impl std::fmt::Debug for BundleServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BundleServer({})", self.shown)
    }
}

impl BundleServer {
    /// `ca` is required for `https://` (the CAs trusted for the bundle server); `token`, when
    /// given, is sent as a bearer token.
    pub fn new(
        url: &str,
        ca: Option<&std::path::Path>,
        timeout: Duration,
        max_size: u64,
        token: Option<String>,
    ) -> Result<Self, BundleError> {
        // The URL may carry a token in its query: errors name it without that.
        let url_shown = url.split('?').next().unwrap_or_default();
        let uri: Uri = url
            .parse()
            .map_err(|e| BundleError::Setting(format!("policy.bundle.url: {url_shown:?}: {e}")))?;
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(BundleError::Setting(
                "policy.bundle.url: credentials in the URL (user:password@) are refused; put a \
                 bearer token in the file policy.bundle.token_file"
                    .into(),
            ));
        }
        let url = url_shown;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(BundleError::Setting(format!(
                    "policy.bundle.url: {url:?} must be http:// or https://"
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| BundleError::Setting(format!("policy.bundle.url: {url:?} has no host")))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let ca = ca.ok_or_else(|| {
                BundleError::Setting(
                    "policy.bundle.ca: required for an https:// bundle url (the CA of the bundle server)"
                        .to_string(),
                )
            })?;
            Some(Arc::new(crate::proxy::tls::client_config(ca).map_err(
                |e| BundleError::Setting(format!("policy.bundle.ca: {e}")),
            )?))
        } else {
            None
        };
        let shown = match uri.query() {
            Some(_) => format!("{url}?…"),
            None => url.to_string(),
        };
        Ok(Self {
            uri,
            shown,
            token,
            host,
            port,
            tls,
            timeout,
            max_size,
        })
    }

    /// The URL as logs show it (without its query).
    pub fn url(&self) -> String {
        self.shown.clone()
    }

    /// One conditional download, within `timeout` as a whole.
    pub async fn fetch(&self, etag: Option<&str>) -> Result<Fetched, BundleError> {
        match tokio::time::timeout(self.timeout, self.fetch_inner(etag)).await {
            Ok(r) => r,
            Err(_) => Err(BundleError::Server(format!(
                "bundle server {}: no complete answer within {:?} (policy.bundle.timeout)",
                self.shown, self.timeout
            ))),
        }
    }

    async fn fetch_inner(&self, etag: Option<&str>) -> Result<Fetched, BundleError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                BundleError::Server(format!("bundle server {}: cannot connect: {e}", self.shown))
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => self.exchange(tcp, etag).await,
            Some(cfg) => {
                let name =
                    rustls_pki_types::ServerName::try_from(self.host.clone()).map_err(|e| {
                        BundleError::Server(format!("bundle server {}: {e}", self.shown))
                    })?;
                let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        BundleError::Server(format!("bundle server {}: TLS: {e}", self.shown))
                    })?;
                self.exchange(tls, etag).await
            }
        }
    }

    async fn exchange<S>(&self, io: S, etag: Option<&str>) -> Result<Fetched, BundleError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let fail = |e: &dyn std::fmt::Display| {
            BundleError::Server(format!("bundle server {}: {e}", self.shown))
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| fail(&e))?;
        let conn = tokio::spawn(conn);
        let path = self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let authority = self.uri.authority().map(|a| a.as_str()).unwrap_or("");
        let mut req = Request::get(path)
            .header(header::HOST, authority)
            .header(
                header::USER_AGENT,
                concat!("sluice/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::ACCEPT, "application/gzip, application/octet-stream");
        if let Some(tag) = etag {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        if let Some(token) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| fail(&e))?;
        let resp = sender.send_request(req).await.map_err(|e| fail(&e))?;
        let status = resp.status();
        let result = if status == StatusCode::NOT_MODIFIED {
            Ok(Fetched::NotModified)
        } else if status == StatusCode::OK {
            let etag = resp
                .headers()
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let limit = usize::try_from(self.max_size).unwrap_or(usize::MAX);
            let body = Limited::new(resp.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        fail(&BundleError::Server(format!(
                            "bundle larger than policy.bundle.max_size ({} bytes)",
                            self.max_size
                        )))
                    } else {
                        fail(&e)
                    }
                })?;
            Ok(Fetched::Bundle {
                bytes: body.to_bytes(),
                etag,
            })
        } else {
            Err(BundleError::Server(format!(
                "bundle server {}: answered {} (expected 200 or 304)",
                self.shown, status
            )))
        };
        conn.abort();
        result
    }
}

/// The wait before the next poll: random in [min, max] after a success; after `failures`
/// consecutive failures, an exponential backoff from `min` capped at `max`, with full jitter
/// over its upper half so that a fleet of gateways does not reconnect in step.
pub fn next_delay(min: Duration, max: Duration, failures: u32) -> Duration {
    let r = random_unit();
    if failures == 0 {
        return min + (max.saturating_sub(min)).mul_f64(r);
    }
    let backoff = min
        .saturating_mul(1u32 << failures.min(16))
        .min(max)
        .max(min);
    backoff.mul_f64(0.5 + 0.5 * r)
}

/// A uniform number in [0, 1) from the std hasher's per-process random keys.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_bounds_and_back_off() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(8));
        for _ in 0..100 {
            let d = next_delay(min, max, 0);
            assert!(d >= min && d <= max, "{d:?}");
            let d = next_delay(min, max, 2);
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(4),
                "{d:?}"
            );
            assert!(next_delay(min, max, 30) <= max);
        }
    }

    #[test]
    fn https_without_a_ca_is_refused_with_the_key_name() {
        let e = BundleServer::new(
            "https://b.plant.local/b.tar.gz",
            None,
            Duration::from_secs(1),
            1024,
            None,
        );
        assert!(e.is_err_and(|e| e.to_string().starts_with("policy.bundle.ca: required")));
    }

    #[test]
    fn the_url_is_shown_without_its_query_and_credentials_in_it_are_refused() {
        let server = BundleServer::new(
            "http://b.plant.local:8080/b.tar.gz?X-Amz-Signature=secret-sig",
            None,
            Duration::from_secs(1),
            1024,
            Some("secret-token".into()),
        );
        let server = server.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(server.url(), "http://b.plant.local:8080/b.tar.gz?…");
        assert!(!format!("{server:?}").contains("secret"));
        let refused = BundleServer::new(
            "http://sluice:secret-password@b.plant.local/b.tar.gz",
            None,
            Duration::from_secs(1),
            1024,
            None,
        );
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("token_file"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}
