//! `cache`: the decision cache's size and entry lifetime.
//!
//! Not here: the cache itself (`policy/decider.rs`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::Dur;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub capacity: u64,
    pub ttl: Dur,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Dur(Duration::from_secs(300)),
        }
    }
}
