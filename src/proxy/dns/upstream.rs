//! The resolvers an allowed query is forwarded to (`intercept.dns.upstream`, else the
//! nameservers of /etc/resolv.conf), and one query/answer exchange with them over UDP or TCP,
//! each resolver tried in turn within `intercept.dns.timeout`.
//!
//! Not here: judging (query.rs). sluice's own UID is exempt from the pod's rules, so these
//! packets leave directly instead of coming back to the DNS listener.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Why no upstream answer came back.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no DNS resolver configured (intercept.dns.upstream is empty and {0} lists none)")]
    NoResolver(String),
    #[error("no resolver answered: {0}")]
    NoAnswer(String),
}

#[derive(Clone, Debug)]
pub struct Resolvers {
    addrs: Vec<SocketAddr>,
    timeout: Duration,
}

impl Resolvers {
    /// `configured`, else the nameservers in `resolv_conf`; never one of `own` (a loop).
    pub fn new(
        configured: &[SocketAddr],
        resolv_conf: &Path,
        own: &[SocketAddr],
        timeout: Duration,
    ) -> Self {
        let addrs = if configured.is_empty() {
            std::fs::read_to_string(resolv_conf)
                .map(|text| nameservers(&text))
                .unwrap_or_default()
        } else {
            configured.to_vec()
        };
        let addrs = addrs.into_iter().filter(|a| !own.contains(a)).collect();
        Self { addrs, timeout }
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Sends `query` to each resolver in turn until one answers it (same id).
    pub async fn exchange(&self, query: &[u8], tcp: bool) -> Result<Vec<u8>, UpstreamError> {
        if self.addrs.is_empty() {
            return Err(UpstreamError::NoResolver("/etc/resolv.conf".into()));
        }
        let mut last = String::new();
        for addr in &self.addrs {
            let once = async {
                if tcp {
                    over_tcp(*addr, query).await
                } else {
                    over_udp(*addr, query).await
                }
            };
            match tokio::time::timeout(self.timeout, once).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: timed out"),
            }
        }
        Err(UpstreamError::NoAnswer(last))
    }
}

/// `nameserver` lines of a resolv.conf, on port 53.
fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

async fn over_udp(addr: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let any: IpAddr = if addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let socket = UdpSocket::bind((any, 0)).await?;
    socket.connect(addr).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // A datagram for another id (a late answer, a spoof) is not ours: keep waiting.
        if n >= 12 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn over_tcp(addr: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await?;
    let len = u16::try_from(query.len()).map_err(|_| io::Error::other("query too long"))?;
    let mut frame = Vec::with_capacity(query.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(query);
    s.write_all(&frame).await?;
    let n = usize::from(s.read_u16().await?);
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_on_port_53() {
        let got = nameservers(
            "# c\nsearch x.local\nnameserver 10.43.0.10\nnameserver fd00::a\noptions ndots:5\n",
        );
        let want: Vec<SocketAddr> = vec![
            SocketAddr::from(([10, 43, 0, 10], 53)),
            SocketAddr::new("fd00::a".parse().unwrap_or(Ipv6Addr::LOCALHOST.into()), 53),
        ];
        assert_eq!(got, want);
    }
}
