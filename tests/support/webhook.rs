//! The webhook tests' side of `sluice webhook`: certificates made with rcgen, the webhook on the
//! shared [`Process`] launcher (ready once `GET /readyz` answers 200 over TLS), HTTPS clients
//! that verify the server certificate (async hyper for the tests, a blocking one for readiness
//! and metrics), and AdmissionReview builders. Not the admission logic: that is `src/admission`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value as Json, json};

use super::http::parse_response;
use super::launcher::{LaunchOptions, Process};
use super::metrics::Scrape;
use super::tempdir::TempDir;
use super::{free_port, repo};

/// Writes a fresh CA (to `ca_file`) and a server certificate for localhost/127.0.0.1 signed by
/// it (to `cert_file`/`key_file`).
pub fn write_pki(ca_file: &Path, cert_file: &Path, key_file: &Path) -> Result<(), String> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let e = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sluice test CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(e)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(e)?;
    let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(e)?;
    let cert = params.signed_by(&key, &issuer).map_err(e)?;
    std::fs::write(ca_file, ca_cert.pem()).map_err(|e| e.to_string())?;
    // Key first, then the certificate: the server reloads once both changed.
    std::fs::write(key_file, key.serialize_pem()).map_err(|e| e.to_string())?;
    std::fs::write(cert_file, cert.pem()).map_err(|e| e.to_string())?;
    Ok(())
}

/// A running `sluice webhook`, ready, with the CA its clients trust.
pub struct Webhook {
    process: Process,
    pub addr: SocketAddr,
    pub ca: PathBuf,
}

impl Webhook {
    /// Starts the webhook on a free port with TLS material made for it (`ca.crt`, `tls.crt`,
    /// `tls.key` in its directory) and `extra` appended to the `webhook:` section (indented
    /// by four spaces).
    #[track_caller]
    pub fn start(extra: &str) -> Result<Self, String> {
        let dir = TempDir::new("webhook");
        let (ca, cert, key) = (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"));
        write_pki(&ca, &cert, &key)?;
        let config = format!(
            "log: {{format: json, level: info}}\nwebhook:\n    listen: 127.0.0.1:{}\n    tls: {{cert: {}, key: {}}}\n{extra}",
            free_port(),
            cert.display(),
            key.display()
        );
        Ok(Self::launch(dir, &config, ca))
    }

    /// `sluice webhook -c <config>` in `dir`, its listen address read from the config (a fixed
    /// free port); clients trust `ca`.
    #[track_caller]
    pub fn launch(dir: TempDir, config: &str, ca: PathBuf) -> Self {
        let addr = sluice::config::Config::parse(config)
            .unwrap_or_else(|e| panic!("the test's config does not parse: {e}\n{config}"))
            .webhook
            .listen;
        assert_ne!(
            addr.port(),
            0,
            "webhook.listen: give the test a free port, not 0"
        );
        let mut process = Process::spawn(dir, "webhook", config, LaunchOptions::default());
        process.wait_ready(&format!("GET https://{addr}/readyz with 200"), || {
            matches!(https_get(addr, &ca, "/readyz"), Ok((200, _)))
        });
        Self { process, addr, ca }
    }

    pub async fn post(&self, path: &str, body: &Json) -> Result<(u16, Json), String> {
        let (status, text) = request(
            self.addr,
            &self.ca,
            "POST",
            path,
            body.to_string().into_bytes(),
        )
        .await?;
        let json = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        Ok((status, json))
    }

    pub async fn get(&self, path: &str) -> Result<(u16, String), String> {
        request(self.addr, &self.ca, "GET", path, Vec::new()).await
    }
}

impl Scrape for Webhook {
    fn metrics(&self) -> String {
        match https_get(self.addr, &self.ca, "/metrics") {
            Ok((200, body)) => body,
            other => panic!("GET https://{}/metrics: {other:?}", self.addr),
        }
    }
}

impl Deref for Webhook {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for Webhook {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// A blocking `GET path` over TLS verified against `ca` for "localhost", `Connection: close`;
/// (status, body). For readiness and metrics, which have no runtime to wait in.
pub fn https_get(addr: SocketAddr, ca: &Path, path: &str) -> Result<(u16, String), String> {
    let config = sluice::proxy::tls::client_config(ca).map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(tls, tcp);
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(|e| format!("TLS: {e}"))?;
    let mut out = Vec::new();
    // A close without close_notify ends the body just the same.
    let _ = stream.read_to_end(&mut out);
    parse_response(&String::from_utf8_lossy(&out)).map_err(|e| e.to_string())
}

/// One HTTPS request that verifies the server's certificate against `ca` for "localhost".
pub async fn request(
    addr: SocketAddr,
    ca: &Path,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let config = sluice::proxy::tls::client_config(ca).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// An admission.k8s.io/v1 AdmissionReview.
pub fn review(uid: &str, operation: &str, object: Option<Json>, old: Option<Json>) -> Json {
    let obj = object
        .as_ref()
        .or(old.as_ref())
        .cloned()
        .unwrap_or(Json::Null);
    let api_version = obj["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": "things"},
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"].get("namespace").cloned().unwrap_or(json!("")),
            "operation": operation,
            "userInfo": {"username": "plant-admin"},
            "object": object.unwrap_or(Json::Null),
            "oldObject": old.unwrap_or(Json::Null),
        }
    })
}

/// Reads a fixture (YAML) as JSON.
pub fn fixture(rel: &str) -> Json {
    let path = repo(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sluice::admission::manifests::parse(&text, rel)
        .ok()
        .and_then(|mut d| (!d.is_empty()).then(|| d.remove(0).body))
        .unwrap_or_else(|| panic!("{rel}: no document"))
}

/// The constraint names of a deny message's `[name] msg` lines, in order.
pub fn denied_by(response: &Json) -> Vec<String> {
    response["response"]["status"]["message"]
        .as_str()
        .unwrap_or("")
        .lines()
        .filter_map(|l| {
            l.strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .map(|(n, _)| n.to_string())
        })
        .collect()
}
