//! Plain TCP peers of the gateway tests: an echo server and a client end of a CONNECT tunnel
//! through the HTTP proxy, for flows that stay open (revalidation, descriptor exhaustion).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use super::WAIT;

/// A TCP echo server on 127.0.0.1 (each connection echoes until closed).
pub fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// An open CONNECT tunnel through `proxy` to `target` (fails the test on any other answer).
pub fn tunnel(proxy: SocketAddr, target: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(proxy).unwrap_or_else(|e| panic!("{e}"));
    let _ = s.set_read_timeout(Some(WAIT));
    let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("CONNECT {target}: {other:?} after {head:?}"),
        }
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "CONNECT {target}: {head}");
    s
}

/// Sends `msg` and reads it back through the tunnel: true when the echo came back whole.
pub fn echoes(s: &mut TcpStream, msg: &[u8]) -> bool {
    if s.write_all(msg).is_err() {
        return false;
    }
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).is_ok() && back == msg
}

/// True once the peer closed the connection (end of stream or reset).
pub fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}
