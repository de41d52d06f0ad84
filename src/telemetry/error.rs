//! Why telemetry could not start or answer: the decision log's database, the metrics encoding.
//!
//! Not here: dropped entries and log lines, which are counted, never errors.

/// One line naming the key or the file.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The decision log's database could not be created, opened or prepared.
    #[error("{0}")]
    DecisionLog(String),
    /// `log.level` (or `RUST_LOG`) is not a level or a tracing filter.
    #[error("{key}: {reason}")]
    LogFilter { key: &'static str, reason: String },
    /// The metrics could not be encoded.
    #[error("metrics encoding failed: {0}")]
    Exposition(std::fmt::Error),
}
