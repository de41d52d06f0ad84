//! Request-target forms: the authority of an absolute-form request or a CONNECT, as the host
//! and port the judge stage is asked about.
//!
//! Not here: judging (proxy/judge.rs) or connecting (proxy/socket.rs).

/// Splits a request target's authority into host (brackets removed) and port.
pub fn host_port(authority: &http::uri::Authority, default_port: u16) -> (&str, u16) {
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (host, authority.port_u16().unwrap_or(default_port))
}
