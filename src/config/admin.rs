//! `admin`: where `/metrics`, the probes and the OPA Data API listen.
//!
//! Not here: the endpoint (`admin.rs`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `admin: {listen: null}` is not allowed: probes and metrics are how the plant sees sluice.
    #[serde(deserialize_with = "super::units::listen_addr")]
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9901)),
        }
    }
}
