//! CONNECT tunnels end to end: curl (`apt-get install curl`) over https through the real
//! `sluice serve`, a TLS upstream with an rcgen certificate, and a raw client for domain fronting.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::*;

fn policy_config(dir: &TempDir, tunnel_ports: &[u16]) -> Result<String, Error> {
    let data = test_policy_data(dir.path(), tunnel_ports)?;
    Ok(format!(
        "policy:\n  paths: [{}, {}]\n  decision: data.sluice_http_test\n",
        fixture_policy_dir().display(),
        data.display()
    ))
}

/// Sends `CONNECT target` and returns the response head (and the open stream).
fn connect(proxy: std::net::SocketAddr, target: &str) -> Result<(String, TcpStream), Error> {
    let mut s = TcpStream::connect(proxy)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    // A refusal has a JSON body after the head.
    let text = String::from_utf8_lossy(&head).into_owned();
    if !text.starts_with("HTTP/1.1 200") {
        // The connection stays open for the next request: read exactly the body.
        let len: usize = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut rest = vec![0u8; len];
        s.read_exact(&mut rest)?;
        return Ok((text + &String::from_utf8_lossy(&rest), s));
    }
    Ok((text, s))
}

#[test]
fn curl_https_through_a_connect_tunnel_to_a_local_tls_server() -> TestResult {
    let tls = TlsUpstream::start()?;
    let dir = TempDir::new("tunnel-ok");
    let gw = Sluice::start(&policy_config(&dir, &[tls.addr.port()])?);
    let url = format!("https://{}/hello", tls.addr);
    let proxy = format!("http://{}", gw.proxy());
    let ca = tls.ca_pem.display().to_string();
    let (code, out, err) = curl(&["--proxy", &proxy, "--cacert", &ca, &url])?;
    assert_eq!(code, 0, "curl failed: {err}");
    assert_eq!(out, "hello over tls");
    assert_eq!(tls.handshakes.load(Ordering::SeqCst), 1);
    assert_eq!(
        gw.metric(
            "sluice_decisions_total{protocol=\"https\",operation=\"tunnel\",verdict=\"allow\"}"
        ),
        1.0
    );
    assert!(
        gw.wait_metric(
            "sluice_forwarded_bytes_total{protocol=\"http\",direction=\"downstream\"}",
            100.0
        ) >= 100.0
    );
    Ok(())
}

#[test]
fn connect_to_an_external_target_is_refused_with_403() -> TestResult {
    let dir = TempDir::new("tunnel-ext");
    let gw = Sluice::start(&policy_config(&dir, &[443])?);
    let (resp, _) = connect(gw.proxy(), "127.0.0.2:443")?;
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(
        resp.contains("https tunnel to 127.0.0.2 is an export"),
        "{resp}"
    );
    // curl sees the refusal as a failed CONNECT.
    let proxy = format!("http://{}", gw.proxy());
    let (code, _, err) = curl(&["--proxy", &proxy, "https://upload.example.com/"])?;
    assert_ne!(code, 0);
    assert!(err.contains("403"), "{err}");
    Ok(())
}

#[test]
fn connect_to_a_port_the_policy_does_not_allow_is_refused() -> TestResult {
    let tls = TlsUpstream::start()?;
    let dir = TempDir::new("tunnel-port");
    // Only port 443 is allowed for tunnels; the local TLS server listens elsewhere.
    let gw = Sluice::start(&policy_config(&dir, &[443])?);
    let (resp, _) = connect(gw.proxy(), &tls.addr.to_string())?;
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let json: serde_json::Value = serde_json::from_str(body)?;
    assert_eq!(
        json["reasons"],
        serde_json::json!([format!("tunnel to port {} is not allowed", tls.addr.port())])
    );
    assert_eq!(tls.connections.load(Ordering::SeqCst), 0);
    Ok(())
}

#[test]
fn tls_server_name_of_an_external_host_in_a_local_tunnel_is_refused() -> TestResult {
    let tls = TlsUpstream::start()?;
    let dir = TempDir::new("tunnel-sni");
    let gw = Sluice::start(&policy_config(&dir, &[tls.addr.port()])?);
    let (resp, stream) = connect(gw.proxy(), &tls.addr.to_string())?;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    // Domain fronting: the tunnel goes to a local address, the handshake names an outside host.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let config = sluice::proxy::tls::client_config(&tls.ca_pem)?;
    let outcome: Result<(), Error> = rt.block_on(async {
        stream.set_nonblocking(true)?;
        let stream = tokio::net::TcpStream::from_std(stream)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from("exfil.example.com")?;
        let tls_stream =
            tokio::time::timeout(Duration::from_secs(20), connector.connect(name, stream)).await?;
        tls_stream.map(|_| ()).map_err(|e| e.into())
    });
    assert!(
        outcome.is_err(),
        "handshake through a fronted tunnel succeeded"
    );
    // The upstream saw a TCP connection but not one byte of the handshake.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(tls.bytes_received.load(Ordering::SeqCst), 0);
    assert_eq!(tls.handshakes.load(Ordering::SeqCst), 0);
    assert_eq!(
        gw.wait_metric(
            "sluice_errors_total{protocol=\"http\",kind=\"sni_refused\"}",
            1.0
        ),
        1.0
    );
    let log = gw.logs();
    assert!(log.contains("domain fronting"), "{log}");
    assert!(log.contains("exfil.example.com"), "{log}");

    // The same tunnel with an honest server name works.
    let url = format!("https://{}/hello", tls.addr);
    let proxy = format!("http://{}", gw.proxy());
    let ca = tls.ca_pem.display().to_string();
    let (code, out, err) = curl(&["--proxy", &proxy, "--cacert", &ca, &url])?;
    assert_eq!((code, out.as_str()), (0, "hello over tls"), "{err}");
    Ok(())
}

#[test]
fn workload_identity_from_the_environment_reaches_the_policy() -> TestResult {
    let up = Upstream::start("127.0.0.1", Duration::ZERO)?;
    let dir = TempDir::new("identity");
    let policy = policy_config(&dir, &[443])?;
    let req = format!(
        "GET http://{}/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        up.addr
    );
    let env = [("POD_NAME", "quarantined"), ("NODE_NAME", "edge-17")];

    // From POD_NAME / NODE_NAME.
    let gw = Sluice::start_with_env(&policy, &env);
    let (status, body) = parse_response(&raw_exchange(gw.proxy(), req.as_bytes())?)?;
    assert_eq!(status, 403, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(
        json["reasons"],
        serde_json::json!(["workload quarantined on edge-17 is quarantined"])
    );
    drop(gw);

    // The config's identity wins over the environment.
    let gw = Sluice::start_with_env(
        &format!("{policy}identity:\n  workload: press-line-1\n"),
        &env,
    );
    let (status, body) = parse_response(&raw_exchange(gw.proxy(), req.as_bytes())?)?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.requests().len(), 1);
    Ok(())
}

#[test]
fn a_tunnel_silent_both_ways_is_closed_after_the_idle_timeout() -> TestResult {
    // A local upstream that accepts and then says nothing, keeping the connection open.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0")?;
    let target = upstream.local_addr()?;
    let held = std::thread::spawn(move || upstream.accept().map(|(s, _)| s));
    let gw = Sluice::start("{HTTP}  idle_timeout: 300ms\n  tunnel_peek_timeout: 100ms\n");
    let (head, mut client) = connect(gw.proxy(), &target.to_string())?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Neither side sends: sluice closes the tunnel (EOF here), not the 20 s read timeout.
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    assert_eq!(
        client.read(&mut buf)?,
        0,
        "the tunnel should close with EOF"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "closed by the read timeout instead"
    );
    assert_eq!(
        gw.wait_metric(
            "sluice_errors_total{protocol=\"http\",kind=\"tunnel_idle_timeout\"}",
            1.0
        ),
        1.0
    );
    drop(held);
    Ok(())
}
