//! The state of policy distribution, as OPA's status API reports it: the active revision, when
//! it was activated and from where, the last download and request, the last error, and counts
//! of activations and failures. The admin endpoint serialises it ([`PolicyStatus::to_json`])
//! and answers `GET /health?bundles` from [`PolicyStatus::bundles_ready`].
//!
//! Not here: fetching, loading or activating (`source.rs`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value as Json, json};

/// Where the active policy came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The shipped policies (no source configured, or `on_missing_policy: embedded`).
    Embedded,
    /// The built-in "deny every export" policy (`on_missing_policy: deny_exports`).
    DenyExports,
    /// `policy.paths`.
    Paths,
    /// A bundle downloaded or read from `policy.bundle.file`.
    Bundle,
    /// The bundle persisted by an earlier run (the server was not reached yet).
    Persisted,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Embedded => "embedded",
            Origin::DenyExports => "deny_exports",
            Origin::Paths => "paths",
            Origin::Bundle => "bundle",
            Origin::Persisted => "persisted",
        }
    }
}

#[derive(Debug, Default)]
struct State {
    source: String,
    revision: String,
    generation: u64,
    origin: Option<Origin>,
    last_activation: Option<SystemTime>,
    last_request: Option<SystemTime>,
    last_successful_request: Option<SystemTime>,
    last_successful_download: Option<SystemTime>,
    last_error: Option<(String, SystemTime)>,
}

/// Shared by the sources (writers) and the admin endpoint (reader).
#[derive(Debug, Default)]
pub struct PolicyStatus {
    state: Mutex<State>,
    /// Whether a bundle source is configured (then `/health?bundles` waits for one).
    bundle_configured: std::sync::atomic::AtomicBool,
    pub activations: AtomicU64,
    pub failures: AtomicU64,
    pub not_modified: AtomicU64,
}

/// RFC 3339 in UTC with nanoseconds, as OPA writes its timestamps.
pub fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

impl PolicyStatus {
    pub fn new(source: impl Into<String>, bundle_configured: bool) -> Self {
        let s = Self::default();
        s.lock().source = source.into();
        s.bundle_configured
            .store(bundle_configured, Ordering::Relaxed);
        s
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The policy compiled at start (not counted as a reload).
    pub fn started(&self, origin: Origin, revision: &str, generation: u64) {
        self.set_active(origin, revision, generation);
    }

    /// A new generation went live. Clears the last error: the source is healthy again.
    pub fn activated(&self, origin: Origin, revision: &str, generation: u64) {
        self.activations.fetch_add(1, Ordering::Relaxed);
        self.set_active(origin, revision, generation);
    }

    fn set_active(&self, origin: Origin, revision: &str, generation: u64) {
        let mut s = self.lock();
        s.origin = Some(origin);
        s.revision = revision.to_string();
        s.generation = generation;
        s.last_activation = Some(SystemTime::now());
        s.last_error = None;
    }

    /// A load, download or activation failed; the old generation keeps serving. Returns
    /// true when the message differs from the previous error (so it is logged once).
    pub fn failed(&self, message: &str) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut s = self.lock();
        let new = s.last_error.as_ref().is_none_or(|(m, _)| m != message);
        s.last_error = Some((message.to_string(), SystemTime::now()));
        new
    }

    /// A request to the bundle server was made; `ok` when it answered 200 or 304.
    pub fn requested(&self, ok: bool, downloaded: bool) {
        let now = SystemTime::now();
        let mut s = self.lock();
        s.last_request = Some(now);
        if ok {
            s.last_successful_request = Some(now);
        }
        if downloaded {
            s.last_successful_download = Some(now);
        }
    }

    pub fn revision(&self) -> String {
        self.lock().revision.clone()
    }

    pub fn origin(&self) -> Option<Origin> {
        self.lock().origin
    }

    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.as_ref().map(|(m, _)| m.clone())
    }

    pub fn last_activation(&self) -> Option<SystemTime> {
        self.lock().last_activation
    }

    /// OPA's `/health?bundles`: true once a bundle (downloaded or persisted) is active, or
    /// always when no bundle source is configured.
    pub fn bundles_ready(&self) -> bool {
        if !self.bundle_configured.load(Ordering::Relaxed) {
            return true;
        }
        matches!(self.lock().origin, Some(Origin::Bundle | Origin::Persisted))
    }

    /// The status document, shaped like OPA's status API (`bundles.<name>`).
    pub fn to_json(&self) -> Json {
        let s = self.lock();
        let ts = |t: Option<SystemTime>| t.map(rfc3339);
        let mut bundle = json!({
            "name": "sluice",
            "source": s.source,
            "active_revision": s.revision,
            "generation": s.generation,
            "origin": s.origin.map(Origin::as_str),
            "last_successful_activation": ts(s.last_activation),
            "last_request": ts(s.last_request),
            "last_successful_request": ts(s.last_successful_request),
            "last_successful_download": ts(s.last_successful_download),
            "activations": self.activations.load(Ordering::Relaxed),
            "failures": self.failures.load(Ordering::Relaxed),
            "not_modified": self.not_modified.load(Ordering::Relaxed),
        });
        if let (Some((message, at)), Json::Object(o)) = (&s.last_error, &mut bundle) {
            o.insert("code".into(), "bundle_error".into());
            o.insert("message".into(), message.clone().into());
            o.insert("last_error_at".into(), rfc3339(*at).into());
        }
        json!({ "bundles": { "sluice": bundle } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_new_once_and_cleared_by_activation() {
        let s = PolicyStatus::new("bundle http://x", true);
        assert!(!s.bundles_ready());
        assert!(s.failed("server answered 500"));
        assert!(!s.failed("server answered 500"));
        assert_eq!(s.to_json()["bundles"]["sluice"]["code"], "bundle_error");
        s.activated(Origin::Persisted, "r1", 2);
        assert!(s.bundles_ready());
        let doc = s.to_json();
        assert_eq!(doc["bundles"]["sluice"]["active_revision"], "r1");
        assert_eq!(doc["bundles"]["sluice"]["failures"], 2);
        assert!(doc["bundles"]["sluice"].get("message").is_none());
    }
}
