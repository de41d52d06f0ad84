//! Why the webhook or `sluice verify` could not use a file, a request or a certificate: one
//! line naming the file, the field or the peer.
//!
//! Not here: problems with single templates and constraints, which are logged and skipped
//! (`Policies::problems`), and violations, which are answers, not errors.

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// A manifest file or directory could not be read or is not YAML.
    #[error("{0}")]
    Manifest(String),
    /// The inventory (`webhook.inventory`, a suite's inventory) could not be read.
    #[error("{0}")]
    Inventory(String),
    /// A constraint's `match` section cannot be used, or an object could not be matched.
    #[error("{0}")]
    Match(String),
    /// The serving certificate or key cannot be used.
    #[error("{0}")]
    Certificate(String),
    /// A request is not an AdmissionReview the webhook can answer.
    #[error("{0}")]
    Review(String),
    /// The webhook cannot start: its listen address, its inventory.
    #[error("{0}")]
    Start(String),
    /// A test suite, its filter or one of its assertions.
    #[error("{0}")]
    Suite(String),
}
