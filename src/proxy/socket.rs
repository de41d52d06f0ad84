//! Every socket option the data path sets, in one place (ztunnel's `socket.rs`): what an
//! accepted stream gets, and the one way to open an upstream connection (to a judged address,
//! with a timeout).
//!
//! Not here: deciding where to connect (judge.rs) or relaying bytes (copy.rs).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

/// Why an upstream connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting to {0} timed out")]
    Timeout(SocketAddr),
    /// Refused, unreachable, reset.
    #[error("cannot connect to {0}: {1}")]
    Io(SocketAddr, std::io::Error),
    /// A URI without a judged address reached the HTTP connector: a defect, refused.
    #[error("upstream address was not judged")]
    NotJudged,
}

/// Options for a stream a listener accepted. Small requests, responses and MQTT packets must
/// not wait for Nagle.
pub fn accepted(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
}

/// Opens a TCP connection to exactly `addr` within `timeout`, with the data path's options.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => Err(ConnectError::Timeout(addr)),
        Ok(Err(e)) => Err(ConnectError::Io(addr, e)),
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

/// As [`connect`], bounded by a deadline shared with other steps (MQTT's `connect_timeout`
/// covers TLS, the CONNECT, the lookup and the upstream connect together).
pub async fn connect_by(
    addr: SocketAddr,
    deadline: tokio::time::Instant,
) -> Result<TcpStream, ConnectError> {
    connect(
        addr,
        deadline.saturating_duration_since(tokio::time::Instant::now()),
    )
    .await
}
