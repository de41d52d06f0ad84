//! `policy` and `policy.bundle`: where the policies come from, which package decides, and how
//! an evaluation is bounded.
//!
//! Not here: loading or activating policies (`policy/`, `policy/bundle/`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};
use super::units::{Dur, Size};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    Deny,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Directories and files of .rego and data; empty means the embedded shipped policies.
    pub paths: Vec<PathBuf>,
    pub decision: String,
    pub v0_compatible: bool,
    /// OPA's strict mode: a builtin error is an evaluation error (so a deny), not undefined.
    pub strict_builtin_errors: bool,
    pub eval_timeout: Dur,
    /// Only `deny` exists: an evaluation error never lets traffic through.
    pub on_error: OnError,
    /// Poll `paths` for changes and reload (debounced; picked up within a second).
    pub watch: bool,
    /// An OPA bundle (from a file or an HTTP(S) server) instead of `paths`.
    pub bundle: Option<BundleConfig>,
    /// What serves while no bundle was ever activated (nothing persisted, server unreachable).
    pub on_missing_policy: OnMissingPolicy,
    /// Open flows (tunnels, MQTT sessions and subscriptions) are judged again by each new
    /// generation and ended when it denies them.
    pub revalidate: bool,
}

/// What enforces before the first bundle arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingPolicy {
    /// The shipped policies embedded in the binary.
    Embedded,
    /// Local traffic passes, every export is denied.
    DenyExports,
}

/// `policy.bundle`: where an OPA bundle comes from and how it is checked and kept.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BundleConfig {
    /// `http://` or `https://` URL of the bundle (`.tar.gz`); polled with `If-None-Match`.
    #[serde(default)]
    pub url: Option<String>,
    /// A bundle file on disk; re-read when it changes.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Delay between polls is random in [poll_min, poll_max]; failures back off up to poll_max.
    #[serde(default = "default_poll_min")]
    pub poll_min: Dur,
    #[serde(default = "default_poll_max")]
    pub poll_max: Dur,
    /// Deadline for one download (connect, headers and body).
    #[serde(default = "default_bundle_timeout")]
    pub timeout: Dur,
    /// Largest bundle accepted, compressed and uncompressed.
    #[serde(default = "default_bundle_max_size")]
    pub max_size: Size,
    /// PEM public key (RSA or P-256); when set, only bundles signed by it are activated.
    #[serde(default)]
    pub public_key: Option<PathBuf>,
    /// Refuse every bundle without a valid signature by `public_key` (which it then
    /// requires): at start, on reload, and the persisted copy.
    #[serde(default)]
    pub require_signature: bool,
    /// Expected `kid`/`keyid` of the signature, when the signer sets one.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Expected `scope` claim of the signature.
    #[serde(default)]
    pub scope: Option<String>,
    /// A file holding the bearer token sent to the bundle server (`Authorization: Bearer`,
    /// OPA's `credentials.bearer`); read at start, never logged.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// PEM CA bundle trusted for an `https://` bundle server.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Where the last activated bundle is kept for restarts without the server.
    #[serde(default)]
    pub persist_dir: Option<PathBuf>,
}

fn default_poll_min() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_poll_max() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_bundle_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_bundle_max_size() -> Size {
    Size(32 * 1024 * 1024)
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            decision: "data.manufacturing.smart".into(),
            v0_compatible: false,
            strict_builtin_errors: false,
            eval_timeout: Dur(Duration::from_millis(50)),
            on_error: OnError::Deny,
            watch: false,
            bundle: None,
            on_missing_policy: OnMissingPolicy::Embedded,
            revalidate: true,
        }
    }
}

impl PolicyConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.decision.starts_with("data.") {
            return Err(invalid(
                "policy.decision",
                format!(
                    "{:?} must name a package under data, like data.manufacturing.smart",
                    self.decision
                ),
            ));
        }
        if self.eval_timeout.0.is_zero() {
            return Err(invalid("policy.eval_timeout", "must be greater than zero"));
        }
        if let Some(b) = &self.bundle {
            b.validate(self)?;
        }
        if self.watch && self.paths.is_empty() {
            return Err(invalid(
                "policy.watch",
                "needs policy.paths (the embedded policies never change; a bundle file is always watched)",
            ));
        }
        Ok(())
    }
}

impl BundleConfig {
    fn validate(&self, policy: &PolicyConfig) -> Result<(), ConfigError> {
        match (&self.url, &self.file) {
            (None, None) => return Err(invalid("policy.bundle", "needs `url` or `file`")),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "policy.bundle",
                    "`url` and `file` are exclusive; set one",
                ));
            }
            (Some(u), None) => {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(invalid(
                        "policy.bundle.url",
                        format!("{u:?} must start with http:// or https://"),
                    ));
                }
            }
            (None, Some(_)) => {}
        }
        if !policy.paths.is_empty() {
            return Err(invalid(
                "policy.bundle",
                "cannot be combined with policy.paths; put the policies in the bundle",
            ));
        }
        if self.poll_min.0.is_zero() {
            return Err(invalid(
                "policy.bundle.poll_min",
                "must be greater than zero",
            ));
        }
        if self.poll_max.0 < self.poll_min.0 {
            return Err(invalid(
                "policy.bundle.poll_max",
                "must not be less than poll_min",
            ));
        }
        if self.timeout.0.is_zero() {
            return Err(invalid(
                "policy.bundle.timeout",
                "must be greater than zero",
            ));
        }
        if self.max_size.0 < 1024 {
            return Err(invalid("policy.bundle.max_size", "must be at least 1KiB"));
        }
        Ok(())
    }
}
