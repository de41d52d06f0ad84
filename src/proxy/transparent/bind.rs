//! Binding the interception listeners: the configured address and, when it is IPv4 loopback
//! and the host has IPv6, `[::1]` on the same port (where the IPv6 rules redirect to).
//!
//! Not here: serving them (transparent/mod.rs, dns/mod.rs).

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpListener;

/// Why the interception listeners could not start.
#[derive(Debug, thiserror::Error)]
pub enum InterceptError {
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        addr: SocketAddr,
        key: &'static str,
        source: io::Error,
    },
}

/// Binds `addr` and, when it is IPv4 loopback and the host has IPv6, `[::1]` on the same
/// port (the IPv6 rules redirect there). TCP only; the DNS listener binds UDP itself.
pub async fn bind_tcp(
    addr: SocketAddr,
    key: &'static str,
) -> Result<Vec<TcpListener>, InterceptError> {
    let bind_err = |addr, source| InterceptError::Bind { addr, key, source };
    let mut out = vec![
        TcpListener::bind(addr)
            .await
            .map_err(|e| bind_err(addr, e))?,
    ];
    if let Some(v6) = loopback_v6(addr) {
        match TcpListener::bind(v6).await {
            Ok(l) => out.push(l),
            Err(e) if no_ipv6(&e) => {
                tracing::info!(%v6, "no IPv6 loopback: listening on IPv4 only")
            }
            Err(e) => return Err(bind_err(v6, e)),
        }
    }
    Ok(out)
}

/// `[::1]:port` for a listener on `127.0.0.1:port`.
pub fn loopback_v6(addr: SocketAddr) -> Option<SocketAddr> {
    (addr.ip() == IpAddr::from([127, 0, 0, 1]))
        .then(|| SocketAddr::new(IpAddr::from(std::net::Ipv6Addr::LOCALHOST), addr.port()))
}

/// The error of binding `::1` on a host without IPv6.
pub fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EADDRNOTAVAIL) | Some(libc::EAFNOSUPPORT)
    )
}
