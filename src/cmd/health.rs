//! `sluice health`: probes an admin endpoint and exits 0 when it answers 2xx.
//!
//! For container runtimes whose health checks exec a command (the image has no shell and no
//! curl). Plain HTTP to a loopback admin listener only; Kubernetes probes use httpGet instead.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// URL to probe (http only)
    #[arg(long, default_value = "http://127.0.0.1:9901/readyz")]
    pub url: String,
    /// Give up after this long
    #[arg(long, default_value = "2s", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,
}

pub fn run(args: HealthArgs) -> i32 {
    match probe(&args.url, args.timeout) {
        Ok(status) if (200..300).contains(&status) => 0,
        Ok(status) => {
            eprintln!("sluice health: {} answered {status}", args.url);
            1
        }
        Err(e) => {
            eprintln!("sluice health: {}: {e}", args.url);
            1
        }
    }
}

fn probe(url: &str, timeout: Duration) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs can be probed")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = authority
        .to_socket_addrs()
        .map_err(|e| format!("bad address: {e}"))?
        .next()
        .ok_or("address resolves to nothing")?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    // One write: `write!` on an unbuffered socket would send the request in pieces.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    // Read until the status line is complete ("HTTP/1.1 200 OK\r\n"): a read may return less.
    let mut head = Vec::with_capacity(64);
    let mut chunk = [0u8; 64];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    std::str::from_utf8(&head)
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "not an HTTP response".to_string())
}
