//! Protocol detection for an intercepted connection: the client's first bytes are *peeked*
//! (left in the socket, so the chosen path reads them as if it had accepted the connection
//! itself) until they say TLS, HTTP/1.x or MQTT, or `sniff_timeout` passes. A client that
//! says nothing in time speaks a server-first protocol and is judged on the address alone.
//!
//! Not here: what each protocol's path does (transparent/mod.rs dispatches); ClientHello
//! parsing (proxy/sni.rs).

use std::time::Duration;

use tokio::net::TcpStream;

use crate::proxy::sni::{self, ClientHello};

/// What the first bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A complete TLS ClientHello; its server name when it has one.
    Tls { sni: Option<String> },
    /// An HTTP/1.x request line begins.
    Http,
    /// An MQTT CONNECT begins.
    Mqtt,
    /// Anything else, or nothing within the timeout.
    Opaque,
    /// Claims TLS but is malformed or did not complete in time: refused (fail closed).
    BadTls(&'static str),
    /// The client's socket failed before it said anything.
    Closed,
}

/// Most bytes peeked: a whole ClientHello (sni::MAX_HELLO) in its records.
const MAX_PEEK: usize = sni::MAX_HELLO + 8 * 5;
/// Pause between peeks while the socket holds bytes but no verdict: peek does not wait for
/// *more* data, only for some.
const PEEK_PAUSE: Duration = Duration::from_millis(2);

/// The classification of a (possibly partial) first chunk; `None`: more bytes are needed.
pub fn classify(buf: &[u8]) -> Option<Sniffed> {
    let first = *buf.first()?;
    if first == 0x16 {
        return match sni::parse(buf) {
            ClientHello::Incomplete => None,
            ClientHello::Hello { sni } => Some(Sniffed::Tls { sni }),
            ClientHello::Malformed(why) => Some(Sniffed::BadTls(why)),
            ClientHello::NotTls => Some(Sniffed::Opaque),
        };
    }
    if let Some(verdict) = http_request_line(buf) {
        return verdict;
    }
    if first == 0x10 {
        return mqtt_connect(buf);
    }
    Some(Sniffed::Opaque)
}

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
];

/// `Some(Some(Http))` for a method and a space, `Some(None)` for a prefix of one, `None` when
/// it is no method at all.
fn http_request_line(buf: &[u8]) -> Option<Option<Sniffed>> {
    for m in METHODS {
        if buf.starts_with(m) {
            return Some(Some(Sniffed::Http));
        }
        if m.starts_with(buf) {
            return Some(None);
        }
    }
    None
}

/// An MQTT CONNECT: type 1, a remaining length, then the protocol name "MQTT" (3.1.1, 5) or
/// "MQIsdp" (3.1). Sizes are the MQTT path's business: it enforces `max_packet_size`.
fn mqtt_connect(buf: &[u8]) -> Option<Sniffed> {
    // The remaining length is 1 to 4 bytes, each but the last with the high bit set.
    let mut i = 1;
    loop {
        let b = *buf.get(i)?;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return Some(Sniffed::Opaque);
        }
    }
    let name = &buf[i..];
    for proto in [&b"\x00\x04MQTT"[..], &b"\x00\x06MQIsdp"[..]] {
        if name.len() >= proto.len() {
            if name.starts_with(proto) {
                return Some(Sniffed::Mqtt);
            }
        } else if proto.starts_with(name) {
            return None;
        }
    }
    Some(Sniffed::Opaque)
}

/// Peeks at the client's first bytes until they classify or `timeout` passes.
pub async fn sniff(stream: &TcpStream, timeout: Duration) -> Sniffed {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = vec![0u8; 2048];
    let mut seen = 0;
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Err(_) => return at_deadline(&buf[..seen]),
            Ok(Err(_)) => return Sniffed::Closed,
            // The client half-closed: what it sent (maybe nothing) is all there is.
            Ok(Ok(0)) => return at_deadline(&buf[..seen]),
            Ok(Ok(n)) => n,
        };
        if let Some(verdict) = classify(&buf[..n]) {
            return verdict;
        }
        if n == buf.len() {
            if buf.len() >= MAX_PEEK {
                return Sniffed::BadTls("ClientHello larger than the limit");
            }
            buf.resize((buf.len() * 2).min(MAX_PEEK), 0);
            seen = n;
            continue;
        }
        if n == seen {
            // Nothing new yet: wait a little rather than spin on the same bytes.
            if tokio::time::timeout_at(deadline, tokio::time::sleep(PEEK_PAUSE))
                .await
                .is_err()
            {
                return at_deadline(&buf[..seen]);
            }
        }
        seen = n;
    }
}

/// The verdict once time is up: a started ClientHello fails closed, anything else is opaque.
fn at_deadline(buf: &[u8]) -> Sniffed {
    match buf.first() {
        Some(0x16) => Sniffed::BadTls("ClientHello not complete within sniff_timeout"),
        _ => Sniffed::Opaque,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_and_their_prefixes() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Sniffed::Http));
        assert_eq!(classify(b"POST "), Some(Sniffed::Http));
        assert_eq!(classify(b"PO"), None);
        assert_eq!(classify(b"GETX"), Some(Sniffed::Opaque));
        assert_eq!(classify(b"SSH-2.0-OpenSSH\r\n"), Some(Sniffed::Opaque));
    }

    #[test]
    fn mqtt_connect_by_protocol_name() {
        assert_eq!(classify(b"\x10\x10\x00\x04MQTT\x04"), Some(Sniffed::Mqtt));
        assert_eq!(
            classify(b"\x10\xff\xff\x7f\x00\x04MQTT"),
            Some(Sniffed::Mqtt)
        );
        assert_eq!(classify(b"\x10\x10\x00\x06MQIsdp"), Some(Sniffed::Mqtt));
        assert_eq!(classify(b"\x10\x10\x00\x04MQ"), None);
        assert_eq!(classify(b"\x10\x10\x00\x04HTTP"), Some(Sniffed::Opaque));
        assert_eq!(classify(b"\x10\xff\xff\xff\xff\x00"), Some(Sniffed::Opaque));
    }

    #[test]
    fn tls_waits_for_the_whole_hello_and_fails_closed_when_cut() {
        assert_eq!(classify(b"\x16\x03\x01\x00\x40\x01"), None);
        assert!(matches!(at_deadline(b"\x16\x03\x01"), Sniffed::BadTls(_)));
        assert_eq!(at_deadline(b"GE"), Sniffed::Opaque);
        assert_eq!(classify(b"\x16\x01"), Some(Sniffed::Opaque));
    }
}
