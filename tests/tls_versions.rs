//! TLS 1.2 and 1.3 only, with ECDHE and AEAD suites only, on the TLS endpoints sluice
//! terminates (the webhook, an MQTT listener with `tls`) and originates (an `https://` bundle
//! server): a real OpenSSL client or server that offers anything older or weaker is refused
//! by the other side's handshake. The accepted suites are exactly the ones docs/hardening.md
//! lists.
//!
//! Needs `openssl` (Debian: openssl) and mosquitto.

mod support;

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

/// Old protocol versions are refused by the server: the client offered them (at OpenSSL's
/// security level 0, so it really does) and received the server's fatal alert (rustls answers
/// a ClientHello without TLS 1.2 or 1.3 with `handshake_failure`).
fn assert_old_versions_refused(addr: std::net::SocketAddr) {
    for version in ["-tls1", "-tls1_1"] {
        let refused = s_client(addr, &[version, "-cipher", "DEFAULT@SECLEVEL=0"]);
        let text = refused.expect_err(&format!("a {version} handshake completed"));
        assert!(
            text.contains("alert handshake failure") || text.contains("alert protocol version"),
            "{version}: not refused by an alert from the server:\n{text}"
        );
    }
}

/// The TLS 1.3 suites rustls's ring provider implements, and the TLS 1.2 ones it accepts
/// with an ECDSA certificate (the test PKI's key type), in OpenSSL's names.
const TLS13: [&str; 3] = [
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
];
const TLS12_ECDSA: [&str; 3] = [
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
];

/// Each documented suite alone is accepted; everything else OpenSSL knows, offered at once,
/// is refused (so no other suite is accepted either).
fn assert_only_documented_suites(addr: std::net::SocketAddr) {
    for suite in TLS13 {
        let got = s_client(addr, &["-tls1_3", "-ciphersuites", suite]);
        assert_eq!(got, Ok(format!("TLSv1.3 {suite}")), "{suite}");
    }
    let others = "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256";
    let got = s_client(addr, &["-tls1_3", "-ciphersuites", others]);
    assert!(got.is_err(), "TLS 1.3 {others}: {got:?}");
    for suite in TLS12_ECDSA {
        let got = s_client(addr, &["-tls1_2", "-cipher", suite]);
        assert_eq!(got, Ok(format!("TLSv1.2 {suite}")), "{suite}");
    }
    let mut others = String::from("ALL:COMPLEMENTOFALL");
    for suite in TLS12_ECDSA {
        others.push_str(&format!(":!{suite}"));
    }
    others.push_str(":@SECLEVEL=0");
    let got = s_client(addr, &["-tls1_2", "-cipher", &others]);
    assert!(got.is_err(), "TLS 1.2 {others}: {got:?}");
}

#[test]
fn the_webhook_refuses_tls_1_0_and_1_1_and_accepts_only_ecdhe_aead_suites() {
    let webhook = Webhook::start("").unwrap_or_else(|e| panic!("webhook: {e}"));
    assert_old_versions_refused(webhook.addr);
    assert_only_documented_suites(webhook.addr);
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
    assert_only_documented_suites(gate.addr());
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
    status["result"]["bundles"]["sluice"]["message"]
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
