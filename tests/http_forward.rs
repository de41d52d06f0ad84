//! The forward proxy end to end: the real `sluice serve` binary, real upstreams on loopback,
//! curl (`apt-get install curl`) and raw sockets as clients.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::*;

#[test]
fn allowed_requests_arrive_intact_with_hop_by_hop_headers_removed() -> TestResult {
    let up = Upstream::start("127.0.0.1", Duration::ZERO)?;
    let gw = Sluice::start("");

    // curl, GET with a query string.
    let url = format!("http://{}/line1/press7?from=10&to=20", up.addr);
    let proxy = format!("http://{}", gw.proxy());
    let (code, out, err) = curl(&["-x", &proxy, "-i", &url])?;
    assert_eq!(code, 0, "curl failed: {err}");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("upstream saw GET /line1/press7?from=10&to=20"),
        "{out}"
    );
    assert!(
        out.to_ascii_lowercase().contains("via: 1.1 sluice"),
        "{out}"
    );
    assert!(out.contains("x-upstream: plain"), "{out}");
    assert!(
        !out.contains("x-upstream-hop"),
        "response hop header leaked: {out}"
    );

    // A raw chunked POST with hop-by-hop headers, sent in pieces (streamed, not buffered).
    let mut s = TcpStream::connect(gw.proxy())?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let head = format!(
        "POST http://{}/upload HTTP/1.1\r\nHost: wrong.example\r\nTransfer-Encoding: chunked\r\n\
         Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n\
         Proxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
         X-End-To-End: kept\r\nContent-Type: text/plain\r\n\r\n",
        up.addr
    );
    s.write_all(head.as_bytes())?;
    s.write_all(b"5\r\nhello\r\n")?;
    s.flush()?;
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"6\r\n world\r\n0\r\n\r\n")?;
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf)?;
    let resp = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    // Same connection, a second request (keep-alive towards the client).
    let again = format!("GET http://{}/second HTTP/1.1\r\nHost: x\r\n\r\n", up.addr);
    s.write_all(again.as_bytes())?;
    let n = s.read(&mut buf)?;
    assert!(String::from_utf8_lossy(&buf[..n]).contains("upstream saw GET /second"));

    // Userinfo in the URL never reaches the upstream's Host header.
    let creds = format!(
        "GET http://user:secret@{}/creds HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        up.addr
    );
    let (status, _) = parse_response(&raw_exchange(gw.proxy(), creds.as_bytes())?)?;
    assert_eq!(status, 200);

    let seen = up.requests();
    let with_creds = seen
        .iter()
        .find(|r| r.uri == "/creds")
        .ok_or("/creds never reached the upstream")?;
    assert_eq!(
        with_creds.header("host"),
        Some(up.addr.to_string().as_str())
    );
    let post = seen
        .iter()
        .find(|r| r.method == "POST")
        .ok_or("POST never reached the upstream")?;
    assert_eq!(post.uri, "/upload");
    assert_eq!(post.body, b"hello world");
    assert!(post.body_complete);
    assert_eq!(post.header("host"), Some(up.addr.to_string().as_str()));
    assert_eq!(post.header("x-end-to-end"), Some("kept"));
    assert_eq!(post.header("content-type"), Some("text/plain"));
    assert_eq!(post.header("via"), Some("1.1 sluice"));
    for hop in [
        "x-hop",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
    ] {
        assert_eq!(post.header(hop), None, "{hop} reached the upstream");
    }
    // Pooled upstream connections: four requests, fewer connections than requests is not
    // guaranteed under load, but never more connections than requests.
    assert!(up.connections.load(std::sync::atomic::Ordering::SeqCst) <= 4);
    assert!(
        gw.wait_metric(
            "sluice_forwarded_bytes_total{protocol=\"http\",direction=\"upstream\"}",
            11.0
        ) >= 11.0
    );
    Ok(())
}

#[test]
fn denied_request_gets_403_json_and_the_upstream_sees_nothing() -> TestResult {
    // 127.0.0.2 is outside the test site: an export.
    let up = Upstream::start("127.0.0.2", Duration::ZERO)?;
    let gw = Sluice::start("");
    let url = format!("http://{}/upload", up.addr);
    let proxy = format!("http://{}", gw.proxy());
    let (code, out, err) = curl(&[
        "-x",
        &proxy,
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-d",
        "secret=1",
        &url,
    ])?;
    assert_eq!(code, 0, "{err}");
    let (body, status) = out.rsplit_once('\n').ok_or("no status")?;
    assert_eq!(status, "403");
    let json: serde_json::Value = serde_json::from_str(body)?;
    assert_eq!(json["error"], "request denied by policy");
    assert_eq!(
        json["reasons"],
        serde_json::json!(["data.manufacturing.smart.deny is true"])
    );
    let id = json["decision_id"].as_str().ok_or("no decision_id")?;
    assert_eq!(up.heads.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    // The log line carries the same decision id and the target, never the payload.
    std::thread::sleep(Duration::from_millis(100));
    let log = gw.logs();
    let line = log
        .lines()
        .find(|l| l.contains(id))
        .ok_or_else(|| format!("decision {id} not in log: {log}"))?;
    assert!(line.contains(&format!("target={}", up.addr)), "{line}");
    assert!(!log.contains("secret=1"), "payload logged: {log}");
    assert_eq!(
        gw.metric(
            "sluice_decisions_total{protocol=\"http\",operation=\"request\",verdict=\"deny\"}"
        ),
        1.0
    );
    Ok(())
}

#[test]
fn external_names_are_judged_before_any_lookup() -> TestResult {
    // A name outside the local domains is denied with zone external; the 403 comes back even
    // though the name does not exist (no lookup was made, so no lookup could fail).
    let gw = Sluice::start("");
    let req = "GET http://exfil-data.invalid/x HTTP/1.1\r\nHost: exfil-data.invalid\r\nConnection: close\r\n\r\n";
    let (status, body) = parse_response(&raw_exchange(gw.proxy(), req.as_bytes())?)?;
    assert_eq!(status, 403, "{body}");
    // A local name that does not resolve is a 502 after the one lookup.
    let req =
        "GET http://nowhere.local/x HTTP/1.1\r\nHost: nowhere.local\r\nConnection: close\r\n\r\n";
    let (status, body) = parse_response(&raw_exchange(gw.proxy(), req.as_bytes())?)?;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("cannot resolve nowhere.local"), "{body}");
    Ok(())
}

#[test]
fn unreachable_upstream_is_502_and_counted() -> TestResult {
    let gw = Sluice::start("");
    let port = free_port();
    let req =
        format!("GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (status, body) = parse_response(&raw_exchange(gw.proxy(), req.as_bytes())?)?;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("Connection refused"), "{body}");
    assert_eq!(
        gw.metric("sluice_errors_total{protocol=\"http\",kind=\"upstream_unreachable\"}"),
        1.0
    );
    Ok(())
}

#[test]
fn slow_upstream_is_504_after_the_response_timeout() -> TestResult {
    let up = Upstream::start("127.0.0.1", Duration::from_secs(5))?;
    let gw = Sluice::start("{HTTP}  response_timeout: 300ms\n");
    let req = format!(
        "GET http://{}/slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        up.addr
    );
    let (status, body) = parse_response(&raw_exchange(gw.proxy(), req.as_bytes())?)?;
    assert_eq!(status, 504, "{body}");
    assert_eq!(
        gw.metric("sluice_errors_total{protocol=\"http\",kind=\"response_timeout\"}"),
        1.0
    );
    Ok(())
}

#[test]
fn bad_requests_get_400_or_431_and_the_gateway_keeps_serving() -> TestResult {
    let up = Upstream::start("127.0.0.1", Duration::ZERO)?;
    let gw = Sluice::start("{HTTP}  max_header_bytes: 4KiB\n");

    // Origin-form: a request meant for a server, not a proxy.
    let (status, body) = parse_response(&raw_exchange(
        gw.proxy(),
        b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n",
    )?)?;
    assert_eq!(status, 400);
    assert!(body.contains("absolute-form"), "{body}");
    // A malformed request line.
    let resp = raw_exchange(gw.proxy(), b"GET\x01 nonsense\r\n\r\n")?;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp:?}");
    // Headers over max_header_bytes.
    let big = format!(
        "GET http://{}/ HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        up.addr,
        "a".repeat(8 * 1024)
    );
    let resp = raw_exchange(gw.proxy(), big.as_bytes())?;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp:?}");
    assert_eq!(up.heads.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Still serving.
    let ok = format!(
        "GET http://{}/after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        up.addr
    );
    let (status, _) = parse_response(&raw_exchange(gw.proxy(), ok.as_bytes())?)?;
    assert_eq!(status, 200);
    assert_eq!(
        gw.metric("sluice_errors_total{protocol=\"http\",kind=\"header_too_large\"}"),
        1.0
    );
    assert!(gw.metric("sluice_errors_total{protocol=\"http\",kind=\"bad_request\"}") >= 2.0);
    Ok(())
}

#[test]
fn slowloris_client_is_closed_after_the_header_timeout() -> TestResult {
    let up = Upstream::start("127.0.0.1", Duration::ZERO)?;
    let gw = Sluice::start("{HTTP}  header_timeout: 400ms\n");
    let mut slow = TcpStream::connect(gw.proxy())?;
    slow.set_read_timeout(Some(Duration::from_secs(20)))?;
    slow.write_all(format!("GET http://{}/ HTTP/1.1\r\nHost: a\r\n", up.addr).as_bytes())?;
    // Meanwhile another client is served.
    let ok = format!(
        "GET http://{}/other HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        up.addr
    );
    let (status, _) = parse_response(&raw_exchange(gw.proxy(), ok.as_bytes())?)?;
    assert_eq!(status, 200);
    // The slow client trickles a header line now and then; sluice closes it anyway.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        if slow.write_all(b"X-Drip: 1\r\n").is_err() {
            break;
        }
    }
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(!rest.contains("200 OK"), "slow client was served: {rest}");
    assert_eq!(
        gw.wait_metric(
            "sluice_errors_total{protocol=\"http\",kind=\"header_timeout\"}",
            1.0
        ),
        1.0
    );
    assert_eq!(up.requests().iter().filter(|r| r.uri == "/").count(), 0);
    Ok(())
}

#[test]
fn client_vanishing_mid_body_is_counted_and_others_are_served() -> TestResult {
    let up = Upstream::start("127.0.0.1", Duration::ZERO)?;
    let gw = Sluice::start("");
    {
        let mut s = TcpStream::connect(gw.proxy())?;
        let head = format!(
            "POST http://{}/big HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n",
            up.addr
        );
        s.write_all(head.as_bytes())?;
        s.write_all(&[b'x'; 1000])?;
        s.flush()?;
        std::thread::sleep(Duration::from_millis(200));
    } // dropped: the client is gone mid-body
    assert_eq!(
        gw.wait_metric(
            "sluice_errors_total{protocol=\"http\",kind=\"client_aborted\"}",
            1.0
        ),
        1.0
    );
    // The upstream saw a truncated body, never a complete one.
    let big: Vec<_> = up
        .requests()
        .into_iter()
        .filter(|r| r.uri == "/big")
        .collect();
    assert!(big.iter().all(|r| !r.body_complete), "{big:?}");
    let ok = format!(
        "GET http://{}/after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        up.addr
    );
    let (status, _) = parse_response(&raw_exchange(gw.proxy(), ok.as_bytes())?)?;
    assert_eq!(status, 200);
    Ok(())
}

#[test]
fn sigterm_turns_readyz_503_while_an_open_request_finishes_then_exits_zero() -> TestResult {
    let up = Upstream::start("127.0.0.1", Duration::from_millis(1500))?;
    let mut gw = Sluice::start("");
    let (addr, admin) = (gw.proxy(), gw.admin);
    let target = up.addr;
    let client = std::thread::spawn(move || {
        let req =
            format!("GET http://{target}/slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        raw_exchange(addr, req.as_bytes())
    });
    // Wait until the request is at the upstream, then ask sluice to stop.
    wait_until(WAIT, "the request reaching the upstream", || {
        up.heads.load(std::sync::atomic::Ordering::SeqCst) > 0
    });
    gw.sigterm();
    // Kubernetes takes the endpoint out on 503 while the process is still alive and serving.
    wait_until(WAIT, "/readyz answering 503 during the drain", || {
        matches!(http_get(admin, "/readyz"), Ok((503, _)))
    });
    assert_eq!(
        http_get(admin, "/healthz")?.0,
        200,
        "still alive while draining"
    );
    assert!(
        !client.is_finished(),
        "the drain phase was observed before the request ended"
    );
    let resp = client.join().map_err(|_| "client thread panicked")??;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    assert_eq!(gw.wait_exit(), Some(0));
    // After exit, nothing listens.
    assert!(TcpStream::connect(addr).is_err());
    Ok(())
}

#[test]
fn connections_over_max_connections_wait_until_a_slot_frees() -> TestResult {
    let up = Upstream::start("127.0.0.1", Duration::ZERO)?;
    let slow = Upstream::start("127.0.0.1", Duration::from_secs(3))?;
    let gw = Sluice::start("{HTTP}  max_connections: 1\n");
    // The first connection holds the only slot with a request under way.
    let mut first = TcpStream::connect(gw.proxy())?;
    let req = format!(
        "GET http://{}/first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        slow.addr
    );
    first.write_all(req.as_bytes())?;
    assert!(gw.wait_metric(r#"sluice_connections_open{protocol="http"}"#, 1.0) >= 1.0);
    let mut second = TcpStream::connect(gw.proxy())?;
    let req = format!(
        "GET http://{}/second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        up.addr
    );
    second.write_all(req.as_bytes())?;
    second.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut buf = [0u8; 64];
    let early = second.read(&mut buf);
    assert!(
        early.is_err(),
        "second connection served while the first held the only slot"
    );
    assert!(gw.metric(r#"sluice_errors_total{protocol="http",kind="connection_limit"}"#) >= 1.0);
    // The busy connection is not shed: its request completes, then the second is served.
    let mut resp = Vec::new();
    let _ = first.read_to_end(&mut resp);
    assert!(String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 200"));
    second.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut resp = Vec::new();
    let _ = second.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    assert_eq!(
        gw.metric(r#"sluice_errors_total{protocol="http",kind="shed"}"#),
        0.0
    );
    Ok(())
}

#[test]
fn a_full_listener_sheds_connections_that_only_wait_so_a_fresh_client_is_served() -> TestResult {
    let up = Upstream::start("127.0.0.1", Duration::ZERO)?;
    let gw = Sluice::start("{HTTP}  max_connections: 2\n");
    // Two slow clients hold both slots with half a request head each.
    let mut slow: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(gw.proxy()))
        .collect::<Result<_, _>>()?;
    for s in &mut slow {
        s.write_all(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: a\r\n")?;
    }
    assert!(gw.wait_metric(r#"sluice_connections_open{protocol="http"}"#, 2.0) >= 2.0);
    let mut fresh = TcpStream::connect(gw.proxy())?;
    let req = format!(
        "GET http://{}/fresh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        up.addr
    );
    fresh.write_all(req.as_bytes())?;
    // Served before the slow clients' 10 s header timeout would have freed a slot.
    fresh.set_read_timeout(Some(Duration::from_secs(8)))?;
    let mut resp = Vec::new();
    let _ = fresh.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    assert!(gw.metric(r#"sluice_errors_total{protocol="http",kind="shed"}"#) >= 1.0);
    Ok(())
}
