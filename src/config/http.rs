//! `http`: the forward proxy's listener, limits and timeouts.
//!
//! Not here: the proxy (`proxy/http/`).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};
use super::units::{Dur, Size};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    #[serde(deserialize_with = "super::units::listen_addr")]
    pub listen: SocketAddr,
    /// Largest request head (request line + headers) accepted.
    pub max_header_bytes: Size,
    /// Time a client has to send a complete request head (slowloris guard).
    pub header_timeout: Dur,
    /// Idle keep-alive connections (client side and pooled upstream) are closed after this.
    pub idle_timeout: Dur,
    /// Time to establish an upstream TCP connection; past it the client gets 504.
    pub connect_timeout: Dur,
    /// Time to wait for the upstream's response head; past it the client gets 504.
    pub response_timeout: Dur,
    /// Time a CONNECT tunnel waits for the client's first bytes (to read a TLS SNI).
    pub tunnel_peek_timeout: Dur,
    /// Concurrent client connections; further ones wait in the kernel backlog.
    pub max_connections: usize,
    /// Deadline for open requests on SIGTERM.
    pub shutdown_grace: Dur,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3128)),
            max_header_bytes: Size(64 * 1024),
            header_timeout: Dur(Duration::from_secs(10)),
            idle_timeout: Dur(Duration::from_secs(90)),
            connect_timeout: Dur(Duration::from_secs(5)),
            response_timeout: Dur(Duration::from_secs(60)),
            tunnel_peek_timeout: Dur(Duration::from_millis(500)),
            max_connections: 10_000,
            shutdown_grace: Dur(Duration::from_secs(10)),
        }
    }
}

impl HttpConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_header_bytes.0 < 1024 {
            return Err(invalid("http.max_header_bytes", "must be at least 1KiB"));
        }
        if self.max_connections == 0 {
            return Err(invalid("http.max_connections", "must be at least 1"));
        }
        Ok(())
    }
}
