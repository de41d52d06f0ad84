//! Hop-by-hop header handling (RFC 9110 §7.6.1) and the `Via` header: what a forward proxy
//! must remove or add between the client's connection and the upstream's.
//!
//! Not here: framing (`Transfer-Encoding`, `Content-Length` semantics belong to hyper).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that only ever describe one connection, whether or not `Connection` names them.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Removes the hop-by-hop headers and every header the `Connection` header names.
/// `Transfer-Encoding` goes too: hyper re-frames the body for the next hop.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .chain(headers.get_all("proxy-connection").iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        // A peer naming Content-Length or Host in Connection must not make us drop framing or
        // routing information we rely on.
        if name != header::CONTENT_LENGTH && name != header::HOST {
            headers.remove(&name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

/// Appends this proxy to `Via` (RFC 9110 §7.6.3).
pub fn add_via(headers: &mut HeaderMap) {
    headers.append(header::VIA, HeaderValue::from_static("1.1 sluice"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                h.append(k, v);
            }
        }
        h
    }

    #[test]
    fn connection_named_and_fixed_hop_headers_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("upgrade", "websocket"),
            ("transfer-encoding", "chunked"),
            ("x-end-to-end", "kept"),
            ("host", "historian.plant.local"),
        ]);
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str().to_string()).collect();
        left.sort();
        assert_eq!(left, ["host", "x-end-to-end"]);
    }

    #[test]
    fn connection_cannot_remove_host_or_content_length() {
        let mut h = map(&[
            ("connection", "host, content-length"),
            ("host", "a.local"),
            ("content-length", "3"),
        ]);
        strip_hop_by_hop(&mut h);
        assert!(h.contains_key("host") && h.contains_key("content-length"));
    }

    #[test]
    fn via_is_appended_after_existing_hops() {
        let mut h = map(&[("via", "1.0 fred")]);
        add_via(&mut h);
        let v: Vec<_> = h
            .get_all("via")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(v, ["1.0 fred", "1.1 sluice"]);
    }
}
