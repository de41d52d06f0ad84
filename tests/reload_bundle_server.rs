//! Bundles from a real HTTP server on loopback: activation, `304 Not Modified`, rotation,
//! tampering, a failing or hanging server, and a restart while the server is down.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sluice::policy::bundle::source::PolicySources;
use sluice::policy::bundle::status::{Origin, PolicyStatus};
use sluice::policy::{Decider, DeciderOptions, Zone};
use support::*;

struct Gate {
    decider: Decider,
    status: Arc<PolicyStatus>,
    origin: Origin,
    _handle: sluice::policy::bundle::source::SourceHandle,
}

/// Starts the policy sources of `yaml` as `sluice serve` does.
fn start(yaml: &str) -> Gate {
    let cfg = policy_config(yaml);
    let sources = PolicySources::from_config(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let (startup, decider, status) = sources
        .open(DeciderOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let origin = startup.origin;
    let handle = sources
        .start(decider.clone(), status.clone(), &startup)
        .unwrap_or_else(|e| panic!("{e}"));
    Gate {
        decider,
        status,
        origin,
        _handle: handle,
    }
}

fn bundle_yaml(url: &str, persist: &std::path::Path, extra: &str) -> String {
    format!(
        "policy:\n  eval_timeout: 5s\n  on_missing_policy: deny_exports\n  bundle:\n    url: {url}\n    poll_min: 50ms\n    poll_max: 100ms\n    timeout: 1s\n    persist_dir: {}\n{extra}",
        persist.display()
    )
}

fn exports(d: &Decider) -> bool {
    let s = source();
    d.decide(&publish(&s, "cloud.example.com", 8883, Zone::External))
        .allowed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_is_activated_then_answered_304_until_the_server_rotates_it() {
    let dir = TempDir::new("http-rotate");
    let server = BundleHttp::start(tar_gz(&bundle_files("r1", &[1883])), "\"r1\"");
    let gate = start(&bundle_yaml(&server.url(), &dir.join("persist"), ""));
    assert_eq!(gate.origin, Origin::DenyExports);
    wait_until(WAIT, "revision r1 active", || {
        gate.decider.revision() == "r1"
    });
    assert!(allows(&gate.decider, 1883));
    assert!(!allows(&gate.decider, 8883));
    assert!(gate.status.bundles_ready());
    let generation = gate.decider.generation();

    wait_until(WAIT, "two 304 answers", || {
        server.not_modified.load(Ordering::Relaxed) >= 2
    });
    assert_eq!(
        gate.decider.generation(),
        generation,
        "a 304 must not reload"
    );
    assert!(gate.status.not_modified.load(Ordering::Relaxed) >= 2);

    server.set(tar_gz(&bundle_files("r2", &[8883])), "\"r2\"");
    wait_until(WAIT, "revision r2 active", || {
        gate.decider.revision() == "r2"
    });
    assert!(allows(&gate.decider, 8883));
    assert!(!allows(&gate.decider, 1883));
    let doc = gate.status.to_json();
    assert_eq!(doc["bundles"]["sluice"]["active_revision"], "r2");
    assert_eq!(doc["bundles"]["sluice"]["origin"], "bundle");
    assert!(dir.join("persist/bundle.tar.gz").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_any_bundle_arrives_deny_exports_lets_local_traffic_pass_and_denies_exports() {
    let dir = TempDir::new("http-missing");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://127.0.0.1:{port}/b.tar.gz");
    let gate = start(&bundle_yaml(&url, &dir.join("persist"), ""));
    assert_eq!(gate.origin, Origin::DenyExports);
    assert!(allows(&gate.decider, 1883));
    assert!(!exports(&gate.decider));
    let s = source();
    let v = gate
        .decider
        .decide(&publish(&s, "cloud.example.com", 8883, Zone::External));
    assert_eq!(
        v.reasons(),
        [
            "no policy bundle activated yet: exports are denied (policy.on_missing_policy: deny_exports)"
        ]
    );
    wait_until(WAIT, "the connection error in the status", || {
        gate.status
            .last_error()
            .is_some_and(|e| e.starts_with(&format!("bundle server {url}: cannot connect")))
    });
    assert!(!gate.status.bundles_ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_bundle_is_refused_and_the_signed_one_keeps_enforcing() {
    let dir = TempDir::new("http-tamper");
    let key = EcKey::generate();
    std::fs::write(dir.join("pub.pem"), key.public_pem()).unwrap_or_else(|e| panic!("{e}"));
    let files = bundle_files("signed-1", &[1883]);
    let jwt = key.sign(&files, serde_json::json!({}));
    let server = BundleHttp::start(tar_gz(&with_signature(files, &jwt)), "\"s1\"");
    let extra = format!("    public_key: {}\n", dir.join("pub.pem").display());
    let gate = start(&bundle_yaml(&server.url(), &dir.join("persist"), &extra));
    wait_until(WAIT, "signed-1 active", || {
        gate.decider.revision() == "signed-1"
    });

    let files = bundle_files("evil-2", &[1883]);
    let jwt = key.sign(&files, serde_json::json!({}));
    let mut tampered = with_signature(files, &jwt);
    tampered[2].1 = br#"{"ports": [1883, 443]}"#.to_vec();
    server.set(tar_gz(&tampered), "\"e2\"");
    let expected = format!(
        "bundle {}: bundle signature: gate/data.json: SHA-256 does not match the signed hash (file tampered)",
        server.url()
    );
    wait_until(WAIT, "the tampering reported", || {
        gate.status.last_error().as_deref() == Some(expected.as_str())
    });
    assert_eq!(gate.decider.revision(), "signed-1");
    assert!(!allows(&gate.decider, 443));
    assert_eq!(
        gate.status.to_json()["bundles"]["sluice"]["code"],
        "bundle_error"
    );

    // An unsigned bundle is refused the same way.
    server.set(tar_gz(&bundle_files("unsigned-3", &[443])), "\"u3\"");
    wait_until(WAIT, "the unsigned bundle reported", || {
        gate.status
            .last_error()
            .is_some_and(|e| e.ends_with("bundle is not signed (no .signatures.json) but policy.bundle.public_key requires a signature"))
    });
    assert_eq!(gate.decider.revision(), "signed-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_answering_500_or_hanging_is_reported_and_the_last_bundle_keeps_enforcing() {
    let dir = TempDir::new("http-fail");
    let server = BundleHttp::start(tar_gz(&bundle_files("r1", &[1883])), "\"r1\"");
    let gate = start(&bundle_yaml(&server.url(), &dir.join("persist"), ""));
    wait_until(WAIT, "r1 active", || gate.decider.revision() == "r1");

    server.mode(Mode::Fail500);
    let e500 = format!(
        "bundle server {}: answered 500 Internal Server Error (expected 200 or 304)",
        server.url()
    );
    wait_until(WAIT, "the 500 reported", || {
        gate.status.last_error().as_deref() == Some(e500.as_str())
    });
    assert!(allows(&gate.decider, 1883));

    server.mode(Mode::Hang);
    let hang = format!(
        "bundle server {}: no complete answer within 1s (policy.bundle.timeout)",
        server.url()
    );
    wait_until(WAIT, "the timeout reported", || {
        gate.status.last_error().as_deref() == Some(hang.as_str())
    });
    assert_eq!(gate.decider.revision(), "r1");
    assert!(allows(&gate.decider, 1883));

    server.set(tar_gz(&bundle_files("r2", &[8883])), "\"r2\"");
    server.mode(Mode::Serve);
    wait_until(WAIT, "r2 active after recovery", || {
        gate.decider.revision() == "r2"
    });
    assert_eq!(gate.status.last_error(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_the_server_is_down_serves_the_persisted_bundle_at_once() {
    let dir = TempDir::new("http-offline");
    let persist = dir.join("persist");
    let port;
    {
        let server = BundleHttp::start(tar_gz(&bundle_files("r1", &[1883])), "\"r1\"");
        port = server.addr.port();
        let gate = start(&bundle_yaml(&server.url(), &persist, ""));
        wait_until(WAIT, "r1 active", || gate.decider.revision() == "r1");
        wait_until(WAIT, "r1 persisted", || {
            persist.join("bundle.meta").is_file()
        });
    }
    // The server is gone; a new gateway starts.
    let url = format!("http://127.0.0.1:{port}/bundles/plant.tar.gz");
    let gate = start(&bundle_yaml(&url, &persist, ""));
    assert_eq!(gate.origin, Origin::Persisted);
    assert_eq!(gate.decider.revision(), "r1");
    assert!(allows(&gate.decider, 1883));
    assert!(gate.status.bundles_ready());
    wait_until(WAIT, "the unreachable server reported", || {
        gate.status
            .last_error()
            .is_some_and(|e| e.contains("cannot connect"))
    });

    // The server comes back with the same bundle: the persisted ETag makes it a 304.
    let server = BundleHttp::start_on(port, tar_gz(&bundle_files("r1", &[1883])), "\"r1\"");
    wait_until(WAIT, "a 304 for the persisted bundle", || {
        server.not_modified.load(Ordering::Relaxed) >= 1
    });
    assert_eq!(gate.decider.revision(), "r1");
    server.set(tar_gz(&bundle_files("r2", &[8883])), "\"r2\"");
    wait_until(WAIT, "r2 active", || gate.decider.revision() == "r2");
    assert!(allows(&gate.decider, 8883));
}

/// A one-request-per-connection HTTPS bundle server (rustls over std sockets).
fn https_bundle_server(dir: &std::path::Path, body: Vec<u8>) -> (String, std::path::PathBuf) {
    use std::io::{Read, Write};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .unwrap_or_else(|e| panic!("rcgen: {e}"));
    let (cert, key) = (dir.join("bundle-server.pem"), dir.join("bundle-server.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap_or_else(|e| panic!("{e}"));
    let config = Arc::new(
        sluice::proxy::tls::server_config(&cert, &key, None, &[]).unwrap_or_else(|e| panic!("{e}")),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { continue };
            let Ok(tls) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut s = rustls::StreamOwned::new(tls, tcp);
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\netag: \"tls-1\"\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = s.write_all(&body);
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    });
    (format!("https://localhost:{port}/plant.tar.gz"), cert)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_is_downloaded_over_https_from_a_server_signed_by_the_configured_ca() {
    let dir = TempDir::new("https");
    let (url, ca) = https_bundle_server(dir.path(), tar_gz(&bundle_files("tls-1", &[1883])));
    let extra = format!("    ca: {}\n", ca.display());
    let gate = start(&bundle_yaml(&url, &dir.join("persist"), &extra));
    wait_until(WAIT, "tls-1 active", || gate.decider.revision() == "tls-1");
    assert!(allows(&gate.decider, 1883));

    // Without trusting that CA, the download fails with a TLS error and nothing is activated.
    let other = TempDir::new("https-untrusted");
    let (_, wrong_ca) = https_bundle_server(other.path(), Vec::new());
    let extra = format!("    ca: {}\n", wrong_ca.display());
    let gate = start(&bundle_yaml(&url, &other.join("persist"), &extra));
    wait_until(WAIT, "the TLS failure reported", || {
        gate.status
            .last_error()
            .is_some_and(|e| e.starts_with(&format!("bundle server {url}: TLS: ")))
    });
    assert_eq!(gate.origin, Origin::DenyExports);
    assert!(!gate.status.bundles_ready());
}
