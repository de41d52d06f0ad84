//! Why telemetry could not start or answer: the decision log's database, the metrics encoding.
//!
//! Not here: logging setup errors (`init_logging` reports its own) or dropped entries, which
//! are counted, never errors.

/// One line naming the key or the file.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The decision log's database could not be created, opened or prepared.
    #[error("{0}")]
    DecisionLog(String),
    /// The metrics could not be encoded.
    #[error("metrics encoding failed: {0}")]
    Exposition(std::fmt::Error),
}
