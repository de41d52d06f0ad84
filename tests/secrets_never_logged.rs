//! No payload, password or token ever reaches sluice's logs, its decision log, its status
//! document or its metrics. The real binary (log level debug) is driven with every secret a
//! processor or an operator hands it: an MQTT CONNECT password, publish payloads (allowed and
//! denied), an HTTP `Authorization` header and a query token (allowed and denied requests), a
//! CONNECT denied at the MQTT listener, and the bundle server's bearer token and presigned URL
//! query. Then stderr, the decision log's files, `sluice log`, `/v1/status` and `/metrics` are
//! searched for each secret.
//!
//! Needs mosquitto and mosquitto-clients.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;

const MQTT_PASSWORD: &str = "mqtt-password-7f3a";
const PAYLOAD: &str = "payload-secret-91c2";
const AUTHORIZATION: &str = "http-auth-token-55d1";
const QUERY_TOKEN: &str = "query-token-a8e4";
const BUNDLE_TOKEN: &str = "bundle-bearer-token-3b6f";
const BUNDLE_URL_SIGNATURE: &str = "bundle-url-signature-c0d2";

const SECRETS: [&str; 6] = [
    MQTT_PASSWORD,
    PAYLOAD,
    AUTHORIZATION,
    QUERY_TOKEN,
    BUNDLE_TOKEN,
    BUNDLE_URL_SIGNATURE,
];

/// Allows what goes to the listed ports, except MQTT topics under `secret/`.
const POLICY: &str = "package manufacturing.smart\n\ndefault allow := false\n\nallow if {\n\tinput.target.port in data.gate.ports\n\tnot startswith(object.get(input, [\"mqtt\", \"topic\"], \"\"), \"secret/\")\n}\n";

/// A bundle server that records the request heads it gets and serves one bundle.
fn bundle_server(bundle: Vec<u8>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener =
        TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bundle server: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = heads.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            if let Ok(mut s) = seen.lock() {
                s.push(String::from_utf8_lossy(&head).into_owned());
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"r1\"\r\nConnection: close\r\n\r\n",
                bundle.len()
            );
            let _ = stream.write_all(reply.as_bytes());
            let _ = stream.write_all(&bundle);
        }
    });
    (port, heads)
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}:\n{text}"
        );
    }
}

#[test]
fn no_payload_password_or_token_reaches_logs_decision_log_status_or_metrics() {
    let broker = Broker::start();
    let upstream =
        Upstream::start("127.0.0.1", Duration::ZERO).unwrap_or_else(|e| panic!("upstream: {e}"));
    let mut files = bundle_files("r1", &[broker.port(), upstream.addr.port()]);
    files[1].1 = POLICY.as_bytes().to_vec();
    let (bundle_port, bundle_heads) = bundle_server(tar_gz(&files));

    let dir = TempDir::new("secrets");
    let token_file = dir.file("bundle-token", &format!("{BUNDLE_TOKEN}\n"));
    let decisions = dir.join("decisions.db");
    let (mqtt, denied_mqtt, http) = (free_port(), free_port(), free_port());
    let config = format!(
        "{TEST_SITE}admin: {{listen: 127.0.0.1:{admin}}}\nlog: {{level: debug}}\n\
         http: {{listen: 127.0.0.1:{http}}}\n\
         mqtt:\n  - listen: 127.0.0.1:{mqtt}\n    upstream: {broker}\n  \
         - listen: 127.0.0.1:{denied_mqtt}\n    upstream: 127.0.0.2:{denied_port}\n\
         policy:\n  on_missing_policy: deny_exports\n  bundle:\n    \
         url: http://127.0.0.1:{bundle_port}/b.tar.gz?X-Amz-Signature={BUNDLE_URL_SIGNATURE}\n    \
         token_file: {token}\n    poll_min: 100ms\n    poll_max: 200ms\n\
         decision_log: {{path: {db}, sample_allowed: 1.0}}\n",
        admin = free_port(),
        broker = broker.addr,
        denied_port = free_port(),
        token = token_file.display(),
        db = decisions.display(),
    );
    let gate = Sluice::serve(&config);
    gate.wait_metric("sluice_policy_reloads_total{result=\"success\"}", 1.0);
    let heads = bundle_heads
        .lock()
        .map(|h| h.join("\n"))
        .unwrap_or_default();
    assert!(
        heads.contains(&format!("authorization: Bearer {BUNDLE_TOKEN}"))
            || heads.contains(&format!("Authorization: Bearer {BUNDLE_TOKEN}")),
        "the bundle server was not sent the bearer token:\n{heads}"
    );
    assert!(heads.contains(BUNDLE_URL_SIGNATURE), "{heads}");

    let mqtt_addr = format!("127.0.0.1:{mqtt}")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let denied_addr = format!("127.0.0.1:{denied_mqtt}")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let creds = ["-u", "press-7", "-P", MQTT_PASSWORD, "-m", PAYLOAD];
    for (addr, topic) in [
        (mqtt_addr, "plant/line1/temp"),
        (mqtt_addr, "secret/line1/recipe"),
        (denied_addr, "plant/line1/temp"),
    ] {
        for version in ["mqttv311", "mqttv5"] {
            let mut args = vec!["-V", version, "-q", "1", "-t", topic];
            args.extend(creds);
            let _ = mosquitto_pub(addr, &args);
        }
    }
    let proxy = format!("127.0.0.1:{http}")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    for target in [
        format!("{}", upstream.addr),
        format!("127.0.0.2:{}", upstream.addr.port()),
    ] {
        let request = format!(
            "GET http://{target}/upload?token={QUERY_TOKEN} HTTP/1.1\r\nHost: {target}\r\n\
             Authorization: Bearer {AUTHORIZATION}\r\nConnection: close\r\n\r\n"
        );
        let _ = raw_exchange(proxy, request.as_bytes());
    }
    assert!(
        upstream
            .requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {AUTHORIZATION}"))),
        "the allowed request did not reach the upstream with its Authorization"
    );
    // Every decision above (4 MQTT connects and publishes allowed, 2 publishes and 2 connects
    // denied, 2 requests) is in the decision log before it is searched.
    gate.wait_metric("sluice_decision_log_written_total", 10.0);
    let denies: f64 = gate
        .metrics()
        .lines()
        .filter(|l| l.starts_with("sluice_decisions_total{") && l.contains("verdict=\"deny\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        denies >= 4.0,
        "the denied paths were not taken: {denies} denies"
    );

    let (_, status) = http_get(gate.admin, "/v1/status").unwrap_or_else(|e| panic!("{e}"));
    assert_no_secret("GET /v1/status", &status);
    assert_no_secret("GET /metrics", &gate.metrics());
    let log = cli::sluice(&[
        "log",
        "--db",
        &decisions.display().to_string(),
        "--limit",
        "100",
    ]);
    assert!(log.stdout.contains("plant/line1/temp"), "{}", log.stdout);
    assert_no_secret("sluice log", &log.stdout);
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", decisions.display());
        if let Ok(bytes) = std::fs::read(&file) {
            assert_no_secret(&file, &String::from_utf8_lossy(&bytes));
        }
    }
    let stderr = gate.logs();
    assert!(stderr.contains("policy activated"), "{stderr}");
    assert_no_secret("sluice serve's stderr", &stderr);
}
