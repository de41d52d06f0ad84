//! Why a bundle was rejected, and the archive-name check every reader of a bundle shares.
//!
//! Not here: reading the archive (`archive.rs`) or checking signatures (`signature.rs`).

use std::fmt;

/// Why a bundle was rejected; one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleError(pub String);

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BundleError {}

pub(crate) fn err(msg: impl Into<String>) -> BundleError {
    BundleError(msg.into())
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
