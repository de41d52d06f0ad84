//! The admin endpoint and `sluice serve`'s start-up behaviour, against the real binary.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn data_api_answers_like_opa() -> TestResult {
    let gw = Sluice::start("");
    let input = r#"{"input": {"action": "process_data", "data_stays_local": true}}"#;
    let (status, body) = http_request(
        gw.admin,
        "POST",
        "/v1/data/manufacturing/smart/allow",
        Some(input),
    )?;
    assert_eq!((status, body.trim()), (200, r#"{"result":true}"#));

    let export = r#"{"input": {"action": "export", "destination": "cloud.example.com"}}"#;
    let (status, body) = http_request(
        gw.admin,
        "POST",
        "/v1/data/manufacturing/smart",
        Some(export),
    )?;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(
        json,
        serde_json::json!({"result": {"allow": false, "deny": true}})
    );

    // GET reads data; an undefined document is `{}`.
    let (status, body) = http_get(gw.admin, "/v1/data/manufacturing/export_allowlist")?;
    assert_eq!((status, body.trim()), (200, r#"{"result":[]}"#));
    let (status, body) = http_get(gw.admin, "/v1/data/no/such/doc")?;
    assert_eq!((status, body.trim()), (200, "{}"));
    // GET with ?input= as OPA accepts it.
    let (status, body) = http_get(
        gw.admin,
        "/v1/data/manufacturing/smart/allow?input=%7B%22action%22%3A%22process_data%22%2C%22data_stays_local%22%3Atrue%7D",
    )?;
    assert_eq!((status, body.trim()), (200, r#"{"result":true}"#));

    // Malformed input: OPA's 400 error shape.
    let (status, body) = http_request(
        gw.admin,
        "POST",
        "/v1/data/manufacturing/smart",
        Some("{nope"),
    )?;
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(json["code"], "invalid_parameter");
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("body contains malformed input document")),
        "{body}"
    );

    let (status, body) = http_get(gw.admin, "/health")?;
    assert_eq!((status, body.trim()), (200, "{}"));
    let (status, _) = http_get(gw.admin, "/healthz")?;
    assert_eq!(status, 200);
    Ok(())
}

#[test]
fn metrics_count_what_happened() -> TestResult {
    let up = Upstream::start("127.0.0.1", Duration::ZERO)?;
    let gw = Sluice::start("");
    for path in ["/a", "/a", "/b"] {
        let req = format!(
            "GET http://{}{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            up.addr
        );
        let (status, _) = parse_response(&raw_exchange(gw.proxy(), req.as_bytes())?)?;
        assert_eq!(status, 200);
    }
    let req = "GET http://cloud.example.com/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (status, _) = parse_response(&raw_exchange(gw.proxy(), req.as_bytes())?)?;
    assert_eq!(status, 403);

    let (status, text) = http_get(gw.admin, "/metrics")?;
    assert_eq!(status, 200);
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(
        has(r#"sluice_decisions_total{protocol="http",operation="request",verdict="allow"} 3"#),
        "{text}"
    );
    assert!(
        has(r#"sluice_decisions_total{protocol="http",operation="request",verdict="deny"} 1"#),
        "{text}"
    );
    // /a twice: the second is a cache hit.
    assert!(has("sluice_decision_cache_hits_total 1"), "{text}");
    assert!(has("sluice_decision_cache_misses_total 3"), "{text}");
    assert!(has("sluice_policy_evaluation_seconds_count 3"), "{text}");
    assert!(has("sluice_policy_generation 1"), "{text}");
    assert!(text.contains("sluice_policy_load_seconds "), "{text}");
    assert!(
        has(r#"sluice_connections_total{protocol="http"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sluice_forwarded_bytes_total{protocol="http",direction="downstream"}"#)
    );
    // Every proxied connection above was closed by the gateway (`Connection: close`): none may
    // stay open. The admin endpoint's own connections are not proxy connections.
    wait_until(WAIT, "no open proxy connections", || {
        gw.metric(r#"sluice_connections_open{protocol="http"}"#) == 0.0
    });
    Ok(())
}

#[test]
fn readyz_is_200_once_serving() -> TestResult {
    let gw = Sluice::start("");
    let (status, body) = http_get(gw.admin, "/readyz")?;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    // Readiness comes first, the startup line right after it: wait for the line itself.
    let line = gw.wait_for_log("sluice serving");
    assert!(line.contains(&format!("http={}", gw.proxy())), "{line}");
    assert!(line.contains(&format!("admin={}", gw.admin)), "{line}");
    assert!(line.contains("generation=1"), "{line}");
    assert!(line.contains("policy_load_ms="), "{line}");
    Ok(())
}

#[test]
fn config_errors_are_one_line_naming_the_key_and_exit_1() -> TestResult {
    let dir = TempDir::new("badcfg");
    for (yaml, expect) in [
        (
            "http:\n  listn: 127.0.0.1:1\n",
            "http.listn: unknown field `listn`",
        ),
        (
            "http:\n  header_timeout: soon\n",
            "http.header_timeout: invalid duration",
        ),
        ("log:\n  format: xml\n", "log.format: unknown variant `xml`"),
    ] {
        let path = dir.file("bad.yaml", yaml);
        let out = sluice(&["serve", "-c", &path.display().to_string()]);
        let err = out.stderr;
        assert_eq!(out.code, 1, "{yaml}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expect), "{yaml}: {err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
    Ok(())
}

#[test]
fn a_port_in_use_is_one_line_and_exit_1() -> TestResult {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?;
    let dir = TempDir::new("inuse");
    let admin = free_port();
    let path = dir.file(
        "c.yaml",
        &format!("http:\n  listen: {addr}\nadmin:\n  listen: 127.0.0.1:{admin}\n"),
    );
    let out = sluice(&["serve", "-c", &path.display().to_string()]);
    let err = out.stderr;
    assert_eq!(out.code, 1, "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "sluice serve: cannot listen on {addr} (http.listen): Address already in use (os error 98)"
        )
    );
    Ok(())
}

#[test]
fn json_log_format_flag_writes_json_lines() -> TestResult {
    let (http, admin) = (free_port(), free_port());
    let config =
        format!("http:\n  listen: 127.0.0.1:{http}\nadmin:\n  listen: 127.0.0.1:{admin}\n");
    let options = LaunchOptions {
        args: &["--log-format", "json"],
        ..LaunchOptions::default()
    };
    let gw = Sluice::launch(&config, options);
    // Readiness and the startup line are not ordered: wait for the line itself.
    wait_until(WAIT, "the first log line", || gw.logs().contains('\n'));
    let text = gw.logs();
    let first = text.lines().next().ok_or("no log line")?;
    let json: serde_json::Value = serde_json::from_str(first)?;
    assert_eq!(json["message"], "sluice serving");
    Ok(())
}
