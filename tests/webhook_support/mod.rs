//! Helpers for the webhook tests: certificates made with rcgen, the real `sluice webhook`
//! process, and an HTTPS client (hyper over tokio-rustls) that verifies the server certificate.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value as Json, json};

pub const WAIT: Duration = Duration::from_secs(30);

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "sluice-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::create_dir_all(&dir);
        Self(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

/// A running `sluice webhook`.
pub struct Webhook {
    child: Child,
    pub addr: SocketAddr,
    pub ca: PathBuf,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub scratch: Scratch,
}

impl Webhook {
    /// Starts the webhook with TLS material in a scratch directory and `extra` appended to the
    /// `webhook:` section (indented by four spaces).
    pub fn start(extra: &str) -> Result<Self, String> {
        let scratch = Scratch::new("webhook");
        let (ca, cert, key) = (
            scratch.path("ca.crt"),
            scratch.path("tls.crt"),
            scratch.path("tls.key"),
        );
        write_pki(&ca, &cert, &key)?;
        let config = format!(
            "log: {{format: json, level: info}}\nwebhook:\n    listen: 127.0.0.1:0\n    tls: {{cert: {}, key: {}}}\n{extra}",
            cert.display(),
            key.display()
        );
        let cfg = scratch.path("config.yaml");
        std::fs::write(&cfg, config).map_err(|e| e.to_string())?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("webhook")
            .arg("-c")
            .arg(&cfg)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn sluice: {e}"))?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut hook = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ca,
            logs,
            scratch,
        };
        let line = hook.wait_for_log("webhook listening")?;
        let v: Json = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
        hook.addr = v["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("no addr in {line}"))?;
        Ok(hook)
    }

    /// Waits for a log line containing `needle`; the error shows every line so far.
    pub fn wait_for_log(&mut self, needle: &str) -> Result<String, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(l) = self
                .logs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|l| l.contains(needle))
            {
                return Ok(l.clone());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "webhook exited ({status}) before {needle:?}: {:?}",
                    self.log_lines()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("no log line {needle:?} in {:?}", self.log_lines()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

    /// The value of one metric sample line (`name{labels}`), 0 when absent.
    pub async fn metric(&self, sample: &str) -> Result<f64, String> {
        let (_, text) = self.get("/metrics").await?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0))
    }

    /// Sends SIGTERM (with the system `kill` program, from procps) and waits for the exit code.
    pub fn terminate(&mut self) -> Result<Option<i32>, String> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                return Err("webhook did not exit after SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTPS request that verifies the server's certificate against `ca` for "localhost".
pub async fn request(
    addr: SocketAddr,
    ca: &Path,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let config = sluice::proxy::tls::client_config(ca)?;
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
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
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
