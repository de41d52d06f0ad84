//! `sluice webhook` fails closed on its configuration: a mistyped `webhook.paths` or a broken
//! template stops it at start with one line (it never becomes ready and never allows a pod);
//! skipping broken templates is an explicit option, and a set left with no constraint still
//! never starts. On SIGTERM `/readyz` answers 503 while an open review finishes; then exit 0.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use support::*;

fn webhook_with(yaml: &str) -> Ran {
    let dir = TempDir::new("webhook-config");
    let path = dir.file("webhook.yaml", yaml).display().to_string();
    cli::sluice(&["webhook", "-c", &path])
}

#[test]
fn a_mistyped_webhook_path_stops_the_webhook_with_one_line() {
    let out = webhook_with("webhook:\n  paths: [policies/gatekeper]\n");
    assert_one_line_error(
        &out,
        "sluice webhook: webhook.paths: policies/gatekeper: no such file or directory; each \
         path must be a readable file or directory of ConstraintTemplates and Constraints",
    );
    // Even when broken templates may be skipped: a path that is not there is a typo.
    let out = webhook_with(
        "webhook:\n  on_template_error: skip\n  paths: [policies/gatekeeper, policies/gatekeper]\n",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
}

#[test]
fn a_broken_template_stops_the_webhook_unless_skipping_is_configured() {
    let out = webhook_with("webhook:\n  paths: [fixtures/gatekeeper/failing]\n");
    assert_one_line_error(
        &out,
        "sluice webhook: webhook.paths: fixtures/gatekeeper/failing/broken-template.yaml: \
         template SluiceBroken: fixtures/gatekeeper/failing/broken-template.yaml:rego:3:25: \
         expecting } (and 1 more); fix it, or set webhook.on_template_error: skip to serve the rest",
    );
}

#[test]
fn skipping_that_leaves_no_constraint_never_starts() {
    let out = webhook_with(
        "webhook:\n  on_template_error: skip\n  paths: [fixtures/gatekeeper/failing]\n",
    );
    assert_one_line_error(
        &out,
        "sluice webhook: webhook.paths: no constraint could be loaded: \
         fixtures/gatekeeper/failing/broken-template.yaml: template SluiceBroken: \
         fixtures/gatekeeper/failing/broken-template.yaml:rego:3:25: expecting } (and 1 more); \
         a webhook that enforces nothing is never started",
    );
}

#[test]
fn sigterm_turns_readyz_503_while_an_open_review_finishes_then_exit_0() -> Result<(), String> {
    let mut hook = Webhook::start("    shutdown_grace: 20s\n")?;
    let body = serde_json::to_vec(&review(
        "slow-1",
        "CREATE",
        Some(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "line-1"}
        })),
        None,
    ))
    .map_err(|e| e.to_string())?;

    // An open review: its head and half its body sent, the rest held back.
    let config = sluice::proxy::tls::client_config(&hook.ca).map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(hook.addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(tls, tcp);
    let (first, rest) = body.split_at(body.len() / 2);
    let head = format!(
        "POST /v1/admit HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.write_all(first).map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    hook.wait_metric("sluice_admission_reviews_open", 1.0);

    hook.sigterm();
    let ca = hook.ca.clone();
    wait_until(
        WAIT,
        "GET /readyz to answer 503 while the review is open",
        || matches!(https_get(hook.addr, &ca, "/readyz"), Ok((503, _))),
    );
    assert_eq!(https_get(hook.addr, &ca, "/healthz")?.0, 200);

    stream.write_all(rest).map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let (status, body) = parse_response(&answer).map_err(|e| e.to_string())?;
    assert_eq!(status, 200, "{answer}");
    assert!(body.contains("\"uid\":\"slow-1\""), "{body}");
    assert_eq!(hook.wait_exit(), Some(0));
    Ok(())
}
