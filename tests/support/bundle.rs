//! OPA bundles for the bundle, reload and decision-log tests: building and signing bundles as
//! `opa build` / `opa sign` would, and a small HTTP bundle server with ETags, request counts and
//! failure modes. Not sluice's bundle code: these are the tests' independent version of it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

/// The test policy: allows the ports listed in `data.gate.ports`.
pub const POLICY: &str = "package manufacturing.smart\n\ndefault allow := false\n\nallow if input.target.port in data.gate.ports\n";

pub const SMART: &str = include_str!("../../policies/manufacturing/smart.rego");
pub const EGRESS: &str = include_str!("../../policies/manufacturing/egress.rego");

/// The shipped policies as a bundle; `allowlist` is `data.manufacturing.export_allowlist`.
pub fn shipped_bundle(revision: &str, allowlist: serde_json::Value) -> Vec<u8> {
    tar_gz(&[
        (
            ".manifest".into(),
            format!(r#"{{"revision": "{revision}", "roots": ["manufacturing"]}}"#).into_bytes(),
        ),
        ("manufacturing/smart.rego".into(), SMART.as_bytes().to_vec()),
        (
            "manufacturing/egress.rego".into(),
            EGRESS.as_bytes().to_vec(),
        ),
        (
            "manufacturing/data.json".into(),
            serde_json::json!({ "export_allowlist": allowlist })
                .to_string()
                .into_bytes(),
        ),
    ])
}

/// Files of a bundle allowing `ports`, with `revision`.
pub fn bundle_files(revision: &str, ports: &[u16]) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            ".manifest".into(),
            format!(r#"{{"revision": "{revision}", "roots": ["manufacturing", "gate"]}}"#)
                .into_bytes(),
        ),
        (
            "manufacturing/smart.rego".into(),
            POLICY.as_bytes().to_vec(),
        ),
        (
            "gate/data.json".into(),
            serde_json::json!({ "ports": ports })
                .to_string()
                .into_bytes(),
        ),
    ]
}

/// Packs files into a `.tar.gz`.
pub fn tar_gz(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(enc);
    for (name, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, content.as_slice())
            .unwrap_or_else(|e| panic!("tar {name}: {e}"));
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .unwrap_or_else(|e| panic!("tar.gz: {e}"))
}

/// SHA-256 of a bundle file as OPA computes it (JSON files in canonical form).
pub fn opa_hash(name: &str, content: &[u8]) -> String {
    let bytes = if name.ends_with(".json") || name.ends_with(".manifest") {
        let v: serde_json::Value =
            serde_json::from_slice(content).unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_json::to_vec(&v).unwrap_or_default()
    } else {
        content.to_vec()
    };
    ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The JWT signing input (`header.payload`) over `files`, as `opa sign` makes it.
pub fn signing_input(alg: &str, files: &[(String, Vec<u8>)], claims: serde_json::Value) -> String {
    let listed: Vec<_> = files
        .iter()
        .map(
            |(n, c)| serde_json::json!({"name": n, "hash": opa_hash(n, c), "algorithm": "SHA-256"}),
        )
        .collect();
    let mut payload = serde_json::json!({ "files": listed });
    if let (Some(p), Some(c)) = (payload.as_object_mut(), claims.as_object()) {
        p.extend(c.clone());
    }
    let header = serde_json::json!({"alg": alg, "typ": "JWT"});
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

/// Adds `.signatures.json` holding `jwt`.
pub fn with_signature(mut files: Vec<(String, Vec<u8>)>, jwt: &str) -> Vec<(String, Vec<u8>)> {
    files.push((
        ".signatures.json".into(),
        serde_json::json!({ "signatures": [jwt] })
            .to_string()
            .into_bytes(),
    ));
    files
}

/// An ES256 (P-256) signing key made for one test.
pub struct EcKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl EcKey {
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap_or_else(|e| panic!("keygen: {e}"));
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap_or_else(|e| panic!("key: {e}"));
        Self { pair, rng }
    }

    /// `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo) of this key.
    pub fn public_pem(&self) -> String {
        let mut der = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        der.extend_from_slice(self.pair.public_key().as_ref());
        pem("PUBLIC KEY", &der)
    }

    /// Signs `files` as `opa sign --signing-alg ES256` would; returns the compact JWT.
    pub fn sign(&self, files: &[(String, Vec<u8>)], claims: serde_json::Value) -> String {
        let input = signing_input("ES256", files, claims);
        let sig = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .unwrap_or_else(|e| panic!("sign: {e}"));
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// How the test bundle server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Fail500,
    /// Accepts and never answers.
    Hang,
}

struct Served {
    body: Vec<u8>,
    etag: String,
    mode: Mode,
}

/// A bundle server on loopback: serves one bundle with an ETag, honours `If-None-Match`,
/// counts requests and `304`s.
pub struct BundleHttp {
    pub addr: SocketAddr,
    state: Arc<Mutex<Served>>,
    pub requests: Arc<AtomicUsize>,
    pub not_modified: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl BundleHttp {
    pub fn start(body: Vec<u8>, etag: &str) -> Self {
        Self::start_on(0, body, etag)
    }

    pub fn start_on(port: u16, body: Vec<u8>, etag: &str) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let server = Self {
            addr,
            state: Arc::new(Mutex::new(Served {
                body,
                etag: etag.into(),
                mode: Mode::Serve,
            })),
            requests: Arc::new(AtomicUsize::new(0)),
            not_modified: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (state, requests, not_modified, stop) = (
            server.state.clone(),
            server.requests.clone(),
            server.not_modified.clone(),
            server.stop.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (state, requests, not_modified, stop) = (
                    state.clone(),
                    requests.clone(),
                    not_modified.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || serve(conn, &state, &requests, &not_modified, &stop));
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}/bundles/plant.tar.gz", self.addr)
    }

    pub fn set(&self, body: Vec<u8>, etag: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.body = body;
        s.etag = etag.into();
    }

    pub fn mode(&self, mode: Mode) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).mode = mode;
    }
}

impl Drop for BundleHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    mut conn: TcpStream,
    state: &Mutex<Served>,
    requests: &AtomicUsize,
    not_modified: &AtomicUsize,
    stop: &AtomicBool,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    requests.fetch_add(1, Ordering::Relaxed);
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let if_none_match = text
        .lines()
        .find_map(|l| l.strip_prefix("if-none-match:"))
        .map(|v| v.trim().to_string());
    let (mode, body, etag) = {
        let s = state.lock().unwrap_or_else(|e| e.into_inner());
        (s.mode, s.body.clone(), s.etag.clone())
    };
    match mode {
        Mode::Hang => {
            let until = Instant::now() + Duration::from_secs(60);
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Mode::Fail500 => {
            let _ = conn.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 5\r\nconnection: close\r\n\r\noops\n",
            );
        }
        Mode::Serve => {
            if if_none_match.as_deref() == Some(etag.to_ascii_lowercase().as_str()) {
                not_modified.fetch_add(1, Ordering::Relaxed);
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 304 Not Modified\r\netag: {etag}\r\nconnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
            } else {
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/gzip\r\netag: {etag}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                let _ = conn.write_all(&body);
            }
        }
    }
}
