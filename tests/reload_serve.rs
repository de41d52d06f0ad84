//! Policy distribution in the real `sluice serve`: a bundle server on loopback, the admin
//! endpoint's `/health?bundles` and `/v1/status`, the decision log read with `sluice log`, a
//! restart without the server, and reloads while a load generator runs through the proxy.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::{
    BundleHttp, EGRESS, SMART, Scrape, Sluice, TempDir, Upstream, WAIT, http_get, parse_response,
    raw_exchange, shipped_bundle, wait_until,
};

/// `eval_timeout: 5s` in every reload test: they test reloads, and on a loaded 2-core machine
/// the first evaluation of a new generation can pass the 50 ms default and fail closed
/// (correctly, counted as a timeout) — a verdict these tests are not about.
fn config(url: &str, persist: &std::path::Path, db: &std::path::Path) -> String {
    format!(
        "{{HTTP}}policy:\n  eval_timeout: 5s\n  decision: data.manufacturing.egress\n  on_missing_policy: deny_exports\n  bundle:\n    url: {url}\n    poll_min: 50ms\n    poll_max: 100ms\n    timeout: 1s\n    persist_dir: {}\ndecision_log:\n  path: {}\n  sample_allowed: 1\n",
        persist.display(),
        db.display()
    )
}

fn status(s: &Sluice) -> serde_json::Value {
    let (code, body) = http_get(s.admin, "/v1/status").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
        ["result"]["bundles"]["sluice"]
        .clone()
}

fn health_bundles(s: &Sluice) -> (u16, String) {
    http_get(s.admin, "/health?bundles").unwrap_or_else(|e| panic!("{e}"))
}

/// One proxied GET with `Connection: close`: (status, body).
fn proxied(proxy: SocketAddr, target: SocketAddr, path: &str) -> (u16, String) {
    let req = format!(
        "GET http://{target}{path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    );
    raw_exchange(proxy, req.as_bytes())
        .and_then(|r| parse_response(&r))
        .unwrap_or((0, String::new()))
}

fn sluice_log(args: &[&str]) -> Vec<serde_json::Value> {
    let out = support::sluice(&[&["log"], args].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn serve_activates_bundles_reports_them_and_logs_decisions() {
    let dir = TempDir::new("serve-bundle");
    let local = Upstream::start("127.0.0.1", Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    let outside = Upstream::start("127.0.0.2", Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    let server = BundleHttp::start(shipped_bundle("r1", serde_json::json!([])), "\"r1\"");
    let db = dir.join("decisions.db");
    let s = Sluice::start(&config(&server.url(), &dir.join("persist"), &db));

    wait_until(WAIT, "r1 active", || status(&s)["active_revision"] == "r1");
    assert_eq!(health_bundles(&s), (200, "{}\n".to_string()));
    let st = status(&s);
    assert_eq!(st["origin"], "bundle");
    assert!(
        st["last_successful_activation"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let (code, _) = proxied(s.proxy(), local.addr, "/line1/temp");
    assert_eq!(code, 200);
    let (code, body) = proxied(s.proxy(), outside.addr, "/upload");
    assert_eq!(code, 403, "{body}");
    let denied: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert!(outside.requests().is_empty());

    // r2 opens exactly this export.
    let entry = serde_json::json!([{"name": "upload", "host": "127.0.0.2", "protocols": ["http"], "paths": ["/upload"]}]);
    server.set(shipped_bundle("r2", entry), "\"r2\"");
    wait_until(WAIT, "r2 active", || status(&s)["active_revision"] == "r2");
    assert_eq!(proxied(s.proxy(), outside.addr, "/upload").0, 200);
    assert_eq!(proxied(s.proxy(), outside.addr, "/other").0, 403);
    assert!(s.wait_metric("sluice_policy_reloads_total{result=\"success\"}", 2.0) >= 2.0);
    assert!(s.wait_metric("sluice_decision_log_written_total", 4.0) >= 4.0);

    let dbs = db.display().to_string();
    let denies = sluice_log(&["--db", &dbs, "--format", "json", "--verdict", "deny"]);
    assert_eq!(denies.len(), 2, "{denies:?}");
    let first = &denies[1];
    assert_eq!(first["decision_id"], denied["decision_id"]);
    assert_eq!(first["target"], format!("{}", outside.addr));
    assert_eq!(first["resource"], "/upload");
    assert_eq!(first["revision"], "r1");
    assert_eq!(denies[0]["revision"], "r2");
    assert_eq!(denies[0]["resource"], "/other");
    let allows = sluice_log(&["--db", &dbs, "--format", "json", "--verdict", "allow"]);
    assert!(
        allows
            .iter()
            .any(|r| r["resource"] == "/line1/temp" && r["revision"] == "r1"),
        "{allows:?}"
    );
}

#[test]
fn serve_restarted_without_the_bundle_server_serves_the_persisted_bundle_and_says_which() {
    let dir = TempDir::new("serve-offline");
    let persist = dir.join("persist");
    let db = dir.join("decisions.db");
    let outside = Upstream::start("127.0.0.2", Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    let entry = serde_json::json!([{"name": "upload", "host": "127.0.0.2", "protocols": ["http"]}]);
    let url;
    {
        let server = BundleHttp::start(shipped_bundle("allow-upload-7", entry), "\"7\"");
        url = server.url();
        let mut s = Sluice::start(&config(&url, &persist, &db));
        wait_until(WAIT, "revision 7 active", || {
            status(&s)["active_revision"] == "allow-upload-7"
        });
        wait_until(WAIT, "revision 7 persisted", || {
            persist.join("bundle.meta").is_file()
        });
        let _ = s.terminate();
    }
    // The bundle server is gone; the gateway restarts.
    let s = Sluice::start(&config(&url, &persist, &db));
    let st = status(&s);
    assert_eq!(st["active_revision"], "allow-upload-7");
    assert_eq!(st["origin"], "persisted");
    assert_eq!(health_bundles(&s).0, 200);
    let (code, body) = proxied(s.proxy(), outside.addr, "/upload");
    assert_eq!(code, 200, "the persisted allowlist applies: {body}");
    assert!(
        s.logs()
            .contains("bundle server not reached yet: serving the persisted bundle")
            && s.logs().contains("allow-upload-7"),
        "{}",
        s.logs()
    );
    wait_until(WAIT, "the unreachable server in the status", || {
        status(&s)["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot connect"))
    });

    // Neither server nor persisted bundle: deny_exports.
    let fresh = TempDir::new("serve-nothing");
    let s2 = Sluice::start(&config(&url, &fresh.join("persist"), &fresh.join("d.db")));
    let (code, body) = health_bundles(&s2);
    assert_eq!(code, 500, "{body}");
    assert_eq!(status(&s2)["origin"], "deny_exports");
    let (code, body) = proxied(s2.proxy(), outside.addr, "/upload");
    assert_eq!(code, 403);
    assert!(
        body.contains("no policy bundle activated yet: exports are denied"),
        "{body}"
    );
    assert_eq!(
        outside.requests().len(),
        1,
        "only the first gateway's allowed upload"
    );
}

/// Reads one HTTP/1.1 response with Content-Length from a keep-alive connection.
fn read_response(r: &mut BufReader<TcpStream>) -> Option<u16> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let code: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(code)
}

#[test]
fn reloads_under_load_fail_no_allowed_request_and_leak_no_denied_one() {
    let dir = TempDir::new("serve-load");
    let local = Upstream::start("127.0.0.1", Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    let outside = Upstream::start("127.0.0.2", Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    let server = BundleHttp::start(shipped_bundle("load-0", serde_json::json!([])), "\"0\"");
    let s = Sluice::start(&config(
        &server.url(),
        &dir.join("persist"),
        &dir.join("d.db"),
    ));
    wait_until(WAIT, "load-0 active", || {
        status(&s)["active_revision"] == "load-0"
    });

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    // Two keep-alive clients (connections that live across every reload) ...
    for _ in 0..2 {
        let (stop, ok, bad, proxy, target) =
            (stop.clone(), ok.clone(), bad.clone(), s.proxy(), local.addr);
        workers.push(std::thread::spawn(move || {
            let Ok(conn) = TcpStream::connect(proxy) else {
                bad.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let mut w = match conn.try_clone() {
                Ok(w) => w,
                Err(_) => return,
            };
            let mut r = BufReader::new(conn);
            while !stop.load(Ordering::Relaxed) {
                let req =
                    format!("GET http://{target}/keepalive HTTP/1.1\r\nHost: {target}\r\n\r\n");
                let code = w
                    .write_all(req.as_bytes())
                    .ok()
                    .and_then(|_| read_response(&mut r));
                if code == Some(200) {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    bad.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }));
    }
    // ... and one alternating fresh-connection allowed and denied requests.
    let leaked = Arc::new(AtomicUsize::new(0));
    {
        let (stop, ok, bad, leaked, proxy, l, o) = (
            stop.clone(),
            ok.clone(),
            bad.clone(),
            leaked.clone(),
            s.proxy(),
            local.addr,
            outside.addr,
        );
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match proxied(proxy, l, "/fresh").0 {
                    200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => bad.fetch_add(1, Ordering::Relaxed),
                };
                if proxied(proxy, o, "/export").0 != 403 {
                    leaked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for i in 1..=10 {
        server.set(
            shipped_bundle(&format!("load-{i}"), serde_json::json!([])),
            &format!("\"{i}\""),
        );
        let want = format!("load-{i}");
        wait_until(WAIT, "the next revision active", || {
            status(&s)["active_revision"] == want.as_str()
        });
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let st = status(&s);
    assert_eq!(st["active_revision"], "load-10");
    assert!(st["activations"].as_u64().unwrap_or(0) >= 10, "{st}");
    assert_eq!(
        bad.load(Ordering::Relaxed),
        0,
        "allowed requests failed during reloads"
    );
    assert_eq!(
        leaked.load(Ordering::Relaxed),
        0,
        "denied requests got through"
    );
    assert!(
        outside.requests().is_empty(),
        "an export reached the outside upstream"
    );
    assert!(
        ok.load(Ordering::Relaxed) > 20,
        "load generator made {} requests",
        ok.load(Ordering::Relaxed)
    );
}

#[test]
fn serve_watches_policy_directories_and_keeps_the_last_good_policy_on_a_broken_edit() {
    let dir = TempDir::new("serve-watch");
    let policies = dir.join("policies/manufacturing");
    std::fs::create_dir_all(&policies).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(policies.join("smart.rego"), SMART).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(policies.join("egress.rego"), EGRESS).unwrap_or_else(|e| panic!("{e}"));
    let data = policies.join("data.json");
    std::fs::write(&data, r#"{"export_allowlist": []}"#).unwrap_or_else(|e| panic!("{e}"));
    let outside = Upstream::start("127.0.0.2", Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    let s = Sluice::start(&format!(
        "{{HTTP}}policy:\n  eval_timeout: 5s\n  decision: data.manufacturing.egress\n  paths: [{}]\n  watch: true\n",
        dir.join("policies").display()
    ));
    let first = status(&s)["active_revision"].clone();
    assert_eq!(status(&s)["origin"], "paths");
    assert_eq!(proxied(s.proxy(), outside.addr, "/upload").0, 403);

    std::fs::write(
        &data,
        r#"{"export_allowlist": [{"name": "upload", "host": "127.0.0.2", "protocols": ["http"]}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    wait_until(WAIT, "the edit active", || {
        status(&s)["active_revision"] != first
    });
    let (code, body) = proxied(s.proxy(), outside.addr, "/upload");
    assert_eq!(code, 200, "{body}");

    std::fs::write(&data, r#"{"export_allowlist": [ "#).unwrap_or_else(|e| panic!("{e}"));
    wait_until(WAIT, "the broken edit reported", || {
        status(&s)["message"]
            .as_str()
            .is_some_and(|m| m.contains("data.json:1:"))
    });
    assert_eq!(
        proxied(s.proxy(), outside.addr, "/upload").0,
        200,
        "the last good policy enforces"
    );
    assert_eq!(
        health_bundles(&s).0,
        200,
        "no bundle configured: always healthy"
    );
}
