//! Why a config file was refused: one line naming the file and the key.
//!
//! Not here: the checks themselves (each section's `validate`).

/// A configuration error, printed as one line naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read config: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// A problem inside a config file, prefixed with the file's name.
    #[error("{file}: {problem}")]
    InFile {
        file: String,
        problem: Box<ConfigError>,
    },
    /// The text is not YAML.
    #[error("{0}")]
    Yaml(String),
    /// A key that does not exist or a value of the wrong type, with its path.
    #[error("{0}")]
    Schema(String),
    /// A value the key does not accept.
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

/// A value `key` does not accept, and why.
pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}
