//! Why a bundle was rejected, and the archive-name check every reader of a bundle shares.
//!
//! Not here: reading the archive (`archive.rs`) or checking signatures (`signature.rs`).

/// Why a bundle (or the source of the serving policy) could not be used; one line, naming the
/// file, the key or the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bundle's content is refused: archive, manifest, data, roots or signature.
    #[error("{0}")]
    Rejected(String),
    /// A `policy.bundle` setting cannot be used: the URL, the CA or the public key.
    #[error("{0}")]
    Setting(String),
    /// The bundle server gave no usable answer: connect, TLS, HTTP status, size or timeout.
    #[error("{0}")]
    Server(String),
    /// A file on disk: the persisted bundle, the bundle file or the policy paths.
    #[error("{0}")]
    Disk(String),
    /// The policy could not be compiled into a decider, or a watcher could not start.
    #[error("{0}")]
    Startup(String),
}

pub(crate) fn err(msg: impl Into<String>) -> BundleError {
    BundleError::Rejected(msg.into())
}

/// `/a/b.rego`, `./a/b.rego` and `a/b.rego` are the same file (as in OPA); `..` never is.
pub(crate) fn clean_name(raw: &str) -> Result<String, BundleError> {
    let mut parts = Vec::new();
    for p in raw.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err(err(format!("{raw}: path escapes the bundle"))),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(err(format!("{raw:?}: empty file name in bundle")));
    }
    Ok(parts.join("/"))
}
