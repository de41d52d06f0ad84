//! Bad input on the intercepted paths: each flow is refused or answered as its protocol
//! allows, counted, and the listeners keep serving the next client. Runs in network
//! namespaces like intercept_egress.rs (root, ip, iptables, setpriv, curl).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::pod::*;

fn addr(s: &str) -> Result<SocketAddr, Error> {
    Ok(s.parse()?)
}

/// A TLS ClientHello naming `sni`, its handshake cut into records of `record` bytes.
fn client_hello(sni: &str, record: usize) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    let n = sni.as_bytes();
    let mut exts = vec![0x00, 0x00];
    exts.extend_from_slice(&((n.len() + 5) as u16).to_be_bytes());
    exts.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes());
    exts.push(0);
    exts.extend_from_slice(&(n.len() as u16).to_be_bytes());
    exts.extend_from_slice(n);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![0x01, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut out = Vec::new();
    for chunk in hs.chunks(record) {
        out.extend_from_slice(&[0x16, 0x03, 0x01]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Sends `bytes` from the pod in segments of `segment` bytes, then reads what comes back.
fn pod_send_split(
    ns: &Netns,
    to: SocketAddr,
    bytes: Vec<u8>,
    segment: usize,
) -> Result<Vec<u8>, Error> {
    let got = in_ns(&ns.pod, move || -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        for chunk in bytes.chunks(segment) {
            if s.write_all(chunk).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        Ok(got)
    })?;
    Ok(got.unwrap_or_default())
}

/// A DNS query whose question name is `labels` (raw label bytes, no checks).
fn raw_query(id: u16, qname: &[u8]) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(qname);
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

#[test]
fn bad_input_is_refused_or_answered_counted_and_the_listeners_keep_serving() -> TestResult {
    if !can_run("bad_input_is_refused_or_answered_counted_and_the_listeners_keep_serving") {
        return Ok(());
    }
    let ns = Netns::new("bad")?;
    let page: &'static [u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nplant-ok";
    tcp_server(&ns.plant, addr("10.77.1.1:8080")?, page, false)?;
    let tls_server = tcp_server(&ns.plant, addr("10.77.1.1:8443")?, b"", false)?;
    let broker = tcp_server(&ns.plant, addr("10.77.1.1:1883")?, b"", false)?;
    resolver(
        &ns.plant,
        addr("10.77.1.1:53")?,
        &[("historian.plant.local", "10.77.1.1")],
        None,
    )?;
    let config = sluice_config(&ns, "[]")?;
    ns.apply_rules(&config)?;
    let _sluice = start_sluice(&ns, &config)?;

    // A ClientHello in 40-byte records and 7-byte segments, to a plant address, naming an
    // external host: reassembled, seen as fronting, refused before the server sees a byte.
    pod_send_split(
        &ns,
        addr("10.77.1.1:8443")?,
        client_hello("cdn.example.com", 40),
        7,
    )?;
    // The same hello cut off, then nothing: fails closed at sniff_timeout.
    let cut = client_hello("historian.plant.local", 16_000);
    pod_send_split(
        &ns,
        addr("10.77.1.1:8443")?,
        cut[..cut.len() / 2].to_vec(),
        64,
    )?;
    // TLS-looking garbage.
    pod_send_split(
        &ns,
        addr("10.77.1.1:8443")?,
        b"\x16\x03\x01\x00\x05\xff\xff\xff\xff\xff".to_vec(),
        64,
    )?;
    assert_eq!(
        tls_server.load(Ordering::Relaxed),
        0,
        "bad TLS reached the server"
    );

    // A request line that never ends, and a request head followed by garbage.
    let mut endless = b"GET /".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 200 * 1024));
    let answer = pod_send_split(&ns, addr("10.77.1.1:8080")?, endless, 16 * 1024)?;
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "an endless request line was served"
    );
    let garbage = b"GET / HTTP/1.1\r\nHost: 10.77.1.1\r\n\x00\x01\x02\xff garbage\r\n\r\n".to_vec();
    let answer = pod_send_split(&ns, addr("10.77.1.1:8080")?, garbage, 1024)?;
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "garbage after the sniff: {}",
        String::from_utf8_lossy(&answer)
    );

    // An MQTT CONNECT announcing 2 MiB (over the 1 MiB limit).
    let mut connect = vec![0x10, 0x80, 0x80, 0x80, 0x01];
    connect.extend_from_slice(b"\x00\x04MQTT\x04\x02\x00\x3c");
    connect.extend(std::iter::repeat_n(0u8, 4096));
    pod_send_split(&ns, addr("10.77.1.1:1883")?, connect, 4096)?;
    assert_eq!(
        broker.load(Ordering::Relaxed),
        0,
        "an oversized CONNECT reached the broker"
    );

    // DNS: a 255-byte name (over the 255-byte limit with its length octets), a compression
    // loop, a frame that ends early.
    let mut long = Vec::new();
    for _ in 0..4 {
        long.push(63);
        long.extend(std::iter::repeat_n(b'a', 63));
    }
    long.push(0);
    let m = pod_udp(&ns, addr("10.77.1.1:53")?, raw_query(11, &long))?
        .ok_or("no answer to a long name")?;
    assert_eq!(dns_answer_code(&m), Some(1), "FORMERR for a 255-byte name");
    let m = pod_udp(&ns, addr("10.77.1.1:53")?, raw_query(12, &[0xc0, 0x0c]))?
        .ok_or("no answer to a loop")?;
    assert_eq!(
        dns_answer_code(&m),
        Some(1),
        "FORMERR for a compression loop"
    );
    let truncated = [&[0u8, 100][..], &raw_query(13, b"\x03abc\x00")[..10]].concat();
    let got = pod_tcp_half_close(&ns, addr("10.77.1.1:53")?, truncated)?;
    assert!(got.is_empty(), "a truncated TCP frame got an answer");

    let m = metrics(&ns)?;
    for (series, at_least) in [
        (
            "sluice_errors_total{protocol=\"transparent\",kind=\"sni_refused\"}",
            1.0,
        ),
        (
            "sluice_errors_total{protocol=\"transparent\",kind=\"tls_malformed\"}",
            2.0,
        ),
        (
            "sluice_errors_total{protocol=\"http\",kind=\"header_too_large\"}",
            1.0,
        ),
        (
            "sluice_errors_total{protocol=\"http\",kind=\"bad_request\"}",
            1.0,
        ),
        (
            "sluice_errors_total{protocol=\"mqtt\",kind=\"packet_too_large\"}",
            1.0,
        ),
        (
            "sluice_errors_total{protocol=\"dns\",kind=\"malformed\"}",
            2.0,
        ),
        (
            "sluice_errors_total{protocol=\"dns\",kind=\"truncated\"}",
            1.0,
        ),
    ] {
        assert!(
            metric(&m, series) >= at_least,
            "{series} < {at_least}:\n{}",
            errors_of(&m)
        );
    }

    // And the next clients are served as usual.
    let out = ns.client_output(&["curl", "-s", "-m", "5", "http://10.77.1.1:8080/"])?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "plant-ok");
    let ok = pod_udp(
        &ns,
        addr("10.77.1.1:53")?,
        dns_query(14, "historian.plant.local")?,
    )?
    .ok_or("no answer")?;
    assert_eq!(
        dns_answer(&ok)?,
        ("NoError".to_string(), vec![PLANT.parse()?])
    );
    Ok(())
}

fn errors_of(metrics: &str) -> String {
    metrics
        .lines()
        .filter(|l| l.starts_with("sluice_errors_total"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The RCODE of a DNS answer (read from the header: FORMERR answers may not parse).
fn dns_answer_code(m: &[u8]) -> Option<u8> {
    m.get(3).map(|b| b & 0x0f)
}

/// Sends `bytes` from the pod, closes the sending side, returns everything answered.
fn pod_tcp_half_close(ns: &Netns, to: SocketAddr, bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
    let got = in_ns(&ns.pod, move || -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(8)))?;
        s.write_all(&bytes)?;
        s.shutdown(std::net::Shutdown::Write)?;
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        Ok(got)
    })??;
    Ok(got)
}
