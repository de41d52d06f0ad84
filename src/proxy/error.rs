//! Why a listener of the data path could not start: one line naming the listener and the key.
//!
//! Not here: what happens to one connection (each protocol counts those; nothing a peer sends
//! is an error of the listener), TLS material (tls.rs's `TlsError`, wrapped here).

use std::net::SocketAddr;

/// A listener that cannot start; the process exits 1 with this line.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("mqtt listener {listen}: cannot listen: {source}")]
    Bind {
        listen: SocketAddr,
        source: std::io::Error,
    },
    #[error("mqtt listener {listen}: {key}: {reason}")]
    Setting {
        listen: SocketAddr,
        key: &'static str,
        reason: String,
    },
    #[error("mqtt listener {listen}: {source}")]
    Tls {
        listen: SocketAddr,
        source: super::tls::TlsError,
    },
}
