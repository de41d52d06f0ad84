//! HTTP peers of the gateway tests: raw-socket and curl clients, a plain HTTP/1.1 upstream that
//! records what reached it, a TLS upstream (rcgen certificate) counting handshakes, and the
//! fixture policy of the HTTP tests. Not the gateway itself: that is `launcher.rs`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Error;
use super::tempdir::TempDir;

/// Writes raw bytes, reads until the peer closes (or 20s), returns what came back.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Result<String, Error> {
    let mut s = StdStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request)?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A one-shot GET with `Connection: close`; (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), Error> {
    http_request(addr, "GET", path, None)
}

pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), Error> {
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let resp = raw_exchange(addr, req.as_bytes())?;
    parse_response(&resp)
}

/// (status, body) of a raw HTTP/1.1 response with a Content-Length or close-delimited body.
pub fn parse_response(resp: &str) -> Result<(u16, String), Error> {
    let status: u16 = resp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {resp:?}"))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Runs curl; returns (exit code, stdout, stderr).
pub fn curl(args: &[&str]) -> Result<(i32, String, String), Error> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run curl (install it: apt-get install curl): {e}"))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// What reached an upstream.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub body_complete: bool,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 upstream on its own runtime thread, recording every request.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Requests whose head arrived (counted before the body is read).
    pub heads: Arc<AtomicUsize>,
    /// TCP connections accepted.
    pub connections: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

impl Upstream {
    /// Listens on `ip`; answers `200` with body `upstream saw {method} {uri}` after `delay`.
    pub fn start(ip: &str, delay: Duration) -> Result<Self, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind((ip, 0)))?;
        let addr = listener.local_addr()?;
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let heads: Arc<AtomicUsize> = Arc::default();
        let connections: Arc<AtomicUsize> = Arc::default();
        let (s, h, c) = (seen.clone(), heads.clone(), connections.clone());
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (s, h) = (s.clone(), h.clone());
                tokio::spawn(async move {
                    let svc =
                        service_fn(move |req| record_and_answer(req, s.clone(), h.clone(), delay));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            seen,
            heads,
            connections,
            _rt: rt,
        })
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// The plain upstream's answer: counts the head, records the request with its whole body (or
/// what arrived of it), waits `delay`, answers `200 upstream saw {method} {uri}` with a
/// hop-by-hop header the proxy must strip.
async fn record_and_answer(
    req: hyper::Request<hyper::body::Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    heads: Arc<AtomicUsize>,
    delay: Duration,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    heads.fetch_add(1, Ordering::SeqCst);
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    let mut body = Vec::new();
    let mut incoming = req.into_body();
    let mut complete = true;
    while let Some(frame) = incoming.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    body.extend_from_slice(d);
                }
            }
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    let text = format!("upstream saw {method} {uri}");
    if let Ok(mut v) = seen.lock() {
        v.push(Seen {
            method,
            uri,
            headers,
            body,
            body_complete: complete,
        });
    }
    tokio::time::sleep(delay).await;
    let mut resp = hyper::Response::new(Full::new(Bytes::from(text)));
    let headers = resp.headers_mut();
    headers.insert("x-upstream", http::HeaderValue::from_static("plain"));
    headers.insert(
        "connection",
        http::HeaderValue::from_static("keep-alive, x-upstream-hop"),
    );
    headers.insert("x-upstream-hop", http::HeaderValue::from_static("1"));
    Ok(resp)
}

/// A TLS upstream (rcgen certificate for 127.0.0.1 and localhost) answering any request with
/// `200 hello over tls`; counts completed handshakes.
pub struct TlsUpstream {
    pub addr: SocketAddr,
    pub ca_pem: PathBuf,
    pub handshakes: Arc<AtomicUsize>,
    pub connections: Arc<AtomicUsize>,
    pub bytes_received: Arc<AtomicUsize>,
    _dir: TempDir,
    _rt: tokio::runtime::Runtime,
}

impl TlsUpstream {
    pub fn start() -> Result<Self, Error> {
        let dir = TempDir::new("tls");
        let ck = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])?;
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem())?;
        std::fs::write(&key, ck.signing_key.serialize_pem())?;
        let config = sluice::proxy::tls::server_config(&cert, &key, None, &[b"http/1.1"])?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let handshakes: Arc<AtomicUsize> = Arc::default();
        let connections: Arc<AtomicUsize> = Arc::default();
        let bytes_received: Arc<AtomicUsize> = Arc::default();
        let (h, c, b) = (
            handshakes.clone(),
            connections.clone(),
            bytes_received.clone(),
        );
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (acceptor, h, b) = (acceptor.clone(), h.clone(), b.clone());
                tokio::spawn(async move {
                    // Count raw bytes: peek what arrives before the handshake consumes it.
                    let mut probe = [0u8; 1];
                    if let Ok(n) = stream.peek(&mut probe).await {
                        b.fetch_add(n, Ordering::SeqCst);
                    }
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    h.fetch_add(1, Ordering::SeqCst);
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nhello over tls",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Ok(Self {
            addr,
            ca_pem: cert,
            handshakes,
            connections,
            bytes_received,
            _dir: dir,
            _rt: rt,
        })
    }
}

/// Writes the test policy (fixtures/http/policy) plus a data document allowing tunnels only to
/// `tunnel_ports`; returns the directory holding the data.
pub fn test_policy_data(dir: &Path, tunnel_ports: &[u16]) -> Result<PathBuf, Error> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    std::fs::write(
        data.join("data.json"),
        serde_json::json!({"sluice_http_test": {"tunnel_ports": tunnel_ports}}).to_string(),
    )?;
    Ok(data)
}

pub fn fixture_policy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/http/policy")
}
