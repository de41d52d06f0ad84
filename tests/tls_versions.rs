//! TLS 1.2 and 1.3 only, with ECDHE and AEAD suites only, on the TLS endpoints sluice
//! terminates (the webhook, an MQTT listener with `tls`) and originates (an `https://` bundle
//! server): a real OpenSSL client or server that offers anything older or weaker is refused
//! by the other side's handshake. The accepted suites are exactly the ones docs/hardening.md
//! lists.
//!
//! Needs `openssl` (Debian: openssl) and mosquitto.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use support::*;

/// `openssl s_client` against `addr` with `args`; Ok(negotiated "protocol suite") when the
/// handshake completed, Err(what OpenSSL printed) when it did not.
fn s_client(addr: std::net::SocketAddr, args: &[&str]) -> Result<String, String> {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(["-servername", "localhost", "-brief"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (apt-get install openssl): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    match (field("Protocol version:"), field("Ciphersuite:")) {
        (Some(p), Some(c)) if out.status.success() => Ok(format!("{p} {c}")),
        _ => Err(text),
    }
}

/// Old protocol versions get the server's `protocol_version` alert: the client did offer them
/// (at OpenSSL's security level 0), the server said no.
fn assert_old_versions_refused(addr: std::net::SocketAddr) {
    for version in ["-tls1", "-tls1_1"] {
        let refused = s_client(addr, &[version, "-cipher", "DEFAULT@SECLEVEL=0"]);
        let text = refused.expect_err(&format!("a {version} handshake completed"));
        assert!(
            text.contains("alert protocol version"),
            "{version}: not refused by the server's protocol_version alert:\n{text}"
        );
    }
}

/// The suites a server accepts, each tried alone: TLS 1.3 suites by `-ciphersuites`, TLS 1.2
/// suites by `-cipher` from OpenSSL's whole list.
fn accepted_suites(addr: std::net::SocketAddr) -> BTreeSet<String> {
    let mut accepted = BTreeSet::new();
    for suite in [
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_128_GCM_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_CCM_SHA256",
        "TLS_AES_128_CCM_8_SHA256",
    ] {
        if let Ok(got) = s_client(addr, &["-tls1_3", "-ciphersuites", suite]) {
            accepted.insert(got);
        }
    }
    let list = Command::new("openssl")
        .args(["ciphers", "-tls1_2", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"])
        .output()
        .unwrap_or_else(|e| panic!("openssl ciphers: {e}"));
    let list = String::from_utf8_lossy(&list.stdout).trim().to_string();
    for suite in list.split(':').filter(|s| !s.starts_with("TLS_")) {
        let cipher = format!("{suite}:@SECLEVEL=0");
        if let Ok(got) = s_client(addr, &["-tls1_2", "-cipher", &cipher]) {
            accepted.insert(got);
        }
    }
    accepted
}

/// What rustls's ring provider accepts with an ECDSA certificate (the test PKI's key type).
fn documented_ecdsa_suites() -> BTreeSet<String> {
    [
        "TLSv1.3 TLS_AES_256_GCM_SHA384",
        "TLSv1.3 TLS_AES_128_GCM_SHA256",
        "TLSv1.3 TLS_CHACHA20_POLY1305_SHA256",
        "TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[test]
fn the_webhook_refuses_tls_1_0_and_1_1_and_accepts_only_ecdhe_aead_suites() {
    let webhook = Webhook::start("").unwrap_or_else(|e| panic!("webhook: {e}"));
    assert_old_versions_refused(webhook.addr);
    assert_eq!(accepted_suites(webhook.addr), documented_ecdsa_suites());
}

#[test]
fn an_mqtt_tls_listener_refuses_tls_1_0_and_1_1_and_accepts_only_ecdhe_aead_suites() {
    let broker = Broker::start();
    let dir = TempDir::new("mqtt-tls-versions");
    let (ca, cert, key) = (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"));
    write_pki(&ca, &cert, &key).unwrap_or_else(|e| panic!("pki: {e}"));
    let tls = format!("tls: {{cert: {}, key: {}}}", cert.display(), key.display());
    let gate = Sluice::serve(&config_with(
        &[(broker.addr.to_string(), tls.as_str())],
        &test_policy(),
    ));
    assert_old_versions_refused(gate.addr());
    assert_eq!(accepted_suites(gate.addr()), documented_ecdsa_suites());
}

/// `openssl s_server` speaking only `version`, serving a bundle URL's host.
struct OldServer {
    child: std::process::Child,
    port: u16,
}

impl OldServer {
    fn start(dir: &TempDir, version: &str) -> Self {
        let (ca, cert, key) = (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"));
        write_pki(&ca, &cert, &key).unwrap_or_else(|e| panic!("pki: {e}"));
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-accept", &port.to_string(), "-www", version])
            .args(["-cipher", "DEFAULT@SECLEVEL=0"])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run openssl s_server: {e}"));
        wait_for_port(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        Self { child, port }
    }
}

impl Drop for OldServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last error of the bundle source, from `GET /v1/status`.
fn bundle_error(gate: &Sluice) -> Option<String> {
    let (_, body) = http_get(gate.admin, "/v1/status").unwrap_or_else(|e| panic!("status: {e}"));
    let status: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    status["bundles"]["sluice"]["message"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn a_bundle_server_speaking_only_tls_1_1_is_refused_and_one_speaking_1_2_is_reached() {
    for (version, refused) in [("-tls1_1", true), ("-tls1_2", false)] {
        let dir = TempDir::new("old-bundle-server");
        let server = OldServer::start(&dir, version);
        let gate = Sluice::start(&format!(
            "policy:\n  bundle:\n    url: https://localhost:{}/bundle.tar.gz\n    ca: {}\n    poll_min: 100ms\n    poll_max: 200ms\n",
            server.port,
            dir.join("ca.crt").display()
        ));
        let mut last = None;
        wait_until(WAIT, "the first bundle poll fails", || {
            last = bundle_error(&gate);
            last.is_some()
        });
        let last = last.unwrap_or_default();
        // `-www` answers a GET with a status page, not a bundle: reached, then refused as
        // content. Only the TLS 1.1 server must fail the handshake itself.
        assert_eq!(
            last.contains(": TLS: "),
            refused,
            "{version}: the handshake {} refused: {last}",
            if refused { "was not" } else { "was" }
        );
        if !refused {
            assert!(last.contains("not a bundle"), "{last}");
        }
    }
}
