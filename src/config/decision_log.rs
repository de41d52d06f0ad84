//! `decision_log`: the local SQLite record of decisions, its sampling and its bounds.
//!
//! Not here: writing it (`telemetry/decision_log.rs`) or reading it (`cmd/log.rs`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};
use super::units::{Dur, Size};

/// `decision_log`: the local SQLite record of decisions (never payloads).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionLogConfig {
    pub path: PathBuf,
    /// Fraction of allowed decisions recorded (0 to 1); every deny is recorded.
    pub sample_allowed: f64,
    /// Rows older than this are deleted.
    pub max_age: Dur,
    /// The database is trimmed (oldest rows first) to stay under this size.
    pub max_size: Size,
    /// Entries waiting for the writer; beyond it entries are dropped and counted.
    pub queue: usize,
}

/// Where `sluice log` and the gateway look when `decision_log.path` is not set.
pub const DEFAULT_DECISION_LOG: &str = "/var/lib/sluice/decisions.db";

impl Default for DecisionLogConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_DECISION_LOG),
            sample_allowed: 0.0,
            max_age: Dur(Duration::from_secs(7 * 24 * 3600)),
            max_size: Size(256 * 1024 * 1024),
            queue: 10_000,
        }
    }
}

impl DecisionLogConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.sample_allowed) {
            return Err(invalid(
                "decision_log.sample_allowed",
                format!("{} must be between 0 and 1", self.sample_allowed),
            ));
        }
        if self.queue == 0 {
            return Err(invalid("decision_log.queue", "must be at least 1"));
        }
        if self.max_size.0 < 64 * 1024 {
            return Err(invalid("decision_log.max_size", "must be at least 64KiB"));
        }
        if self.max_age.0.is_zero() {
            return Err(invalid("decision_log.max_age", "must be greater than zero"));
        }
        Ok(())
    }
}
