//! The YAML configuration of `sluice serve` and `sluice webhook`: every key optional, defaults
//! as in DESIGN.md, unknown keys and bad values rejected with their path (`mqtt[0].upstream`).
//!
//! One file per section, each with its defaults and its `validate`; the units (durations,
//! sizes, `host:port`) in `units.rs`. This file reads the document and runs the sections'
//! checks in order. Not here: what the values mean at run time (site.rs, the proxies) or
//! reloading.

mod admin;
mod bridge;
mod bridge_auth;
mod cache;
mod decision_log;
mod error;
mod http;
mod identity;
pub mod intercept;
mod listeners;
mod log;
mod mqtt;
mod policy;
mod runtime;
pub mod site;
pub mod units;
mod webhook;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use admin::AdminConfig;
pub use bridge::{
    BridgeBroker, BridgeConfig, BridgeTls, FilterError, OnFull, Rate, ReplayConfig, ReplayOrder,
    Secret, SpoolConfig, check_filter,
};
pub use cache::CacheConfig;
pub use decision_log::{DEFAULT_DECISION_LOG, DecisionLogConfig};
pub use error::ConfigError;
pub use http::HttpConfig;
pub use identity::IdentityConfig;
pub use log::{LogConfig, LogFormat};
pub use mqtt::{MqttListenerConfig, ServerTls, UpstreamTls, V3Deny};
pub use policy::{BundleConfig, OnError, OnMissingPolicy, PolicyConfig};
pub use runtime::RuntimeConfig;
pub use site::SiteConfig;
pub use units::{Dur, Size, UnitError, parse_duration, parse_size, split_host_port};
pub use webhook::{OnTemplateError, WebhookConfig, WebhookTls};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub site: SiteConfig,
    pub identity: IdentityConfig,
    pub policy: PolicyConfig,
    pub cache: CacheConfig,
    /// The HTTP forward proxy; `http: null` turns it off.
    #[serde(default = "default_http")]
    pub http: Option<HttpConfig>,
    pub mqtt: Vec<MqttListenerConfig>,
    pub admin: AdminConfig,
    pub webhook: WebhookConfig,
    pub log: LogConfig,
    /// The data path's worker threads.
    pub runtime: RuntimeConfig,
    /// The local SQLite decision log; absent or `null` turns it off.
    pub decision_log: Option<DecisionLogConfig>,
    /// Transparent interception; absent or `null` turns it off.
    pub intercept: Option<intercept::InterceptConfig>,
    /// Export bridges (local broker → judged → SQLite spool → remote broker); none by default.
    pub bridges: Vec<BridgeConfig>,
}

/// The defaults of DESIGN.md: an empty file means exactly this (the HTTP proxy on).
impl Default for Config {
    fn default() -> Self {
        Self {
            site: SiteConfig::default(),
            identity: IdentityConfig::default(),
            policy: PolicyConfig::default(),
            cache: CacheConfig::default(),
            http: default_http(),
            mqtt: Vec::new(),
            admin: AdminConfig::default(),
            webhook: WebhookConfig::default(),
            log: LogConfig::default(),
            runtime: RuntimeConfig::default(),
            decision_log: None,
            intercept: None,
            bridges: Vec::new(),
        }
    }
}

fn default_http() -> Option<HttpConfig> {
    Some(HttpConfig::default())
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|e| ConfigError::InFile {
            file,
            problem: Box::new(e),
        })
    }

    /// Parses and validates YAML text; the error names the key path.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        // An empty file is the default config.
        let doc = if text.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            crate::policy::loader::parse_yaml(text).map_err(|e| ConfigError::Yaml(e.0))?
        };
        let doc = if doc.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            doc
        };
        let cfg: Config = serde_path_to_error::deserialize(doc).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            ConfigError::Schema(if path == "." {
                inner
            } else {
                format!("{path}: {inner}")
            })
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Every section's checks, in the order of the file.
    fn validate(&self) -> Result<(), ConfigError> {
        self.site.validate()?;
        self.policy.validate()?;
        if let Some(d) = &self.decision_log {
            d.validate()?;
        }
        if let Some(h) = &self.http {
            h.validate()?;
        }
        self.webhook.validate()?;
        if let Some(i) = &self.intercept {
            i.validate()?;
        }
        for (i, m) in self.mqtt.iter().enumerate() {
            m.validate(i)?;
        }
        bridge::validate(&self.bridges)?;
        listeners::validate(self)?;
        self.log.validate()?;
        self.runtime.validate()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The one-line message `text` is refused with, or "" when it is accepted. Shared by the
    /// sections' own tests.
    pub(crate) fn refusal(text: &str) -> String {
        Config::parse(text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn empty_text_is_the_default_config() {
        let c = Config::parse("").map_err(|e| e.to_string());
        let c = c
            .as_ref()
            .map(|c| (c.http.is_some(), c.mqtt.len(), c.cache.capacity));
        assert_eq!(c, Ok((true, 0, 100_000)));
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let err =
            refusal("mqtt:\n  - listen: 127.0.0.1:1883\n    upstream: b:1883\n    v3deny: drop\n");
        assert!(
            err.starts_with("mqtt[0].v3deny: unknown field `v3deny`"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = refusal("cache:\n  ttl: 5 minutes\n");
        assert!(err.starts_with("cache.ttl: invalid duration"), "{err}");
        let err = refusal("site:\n  local_networks: [10.0.0.0/33]\n");
        assert!(err.starts_with("site.local_networks[0]:"), "{err}");
    }

    #[test]
    fn bundle_and_decision_log_keys_are_validated_with_their_path() {
        let err = refusal("policy:\n  bundle: {url: ftp://x/b.tar.gz}\n");
        assert!(err.starts_with("policy.bundle.url: "), "{err}");
        let err = refusal("policy:\n  bundle: {file: b.tar.gz, poll_mn: 1s}\n");
        assert!(
            err.starts_with("policy.bundle.poll_mn: unknown field"),
            "{err}"
        );
        let err = refusal("decision_log: {sample_allowed: 2}\n");
        assert!(err.starts_with("decision_log.sample_allowed: "), "{err}");
        let err = refusal("policy:\n  on_missing_policy: allow_all\n");
        assert!(err.starts_with("policy.on_missing_policy: "), "{err}");
        let ok = Config::parse(
            "policy:\n  on_missing_policy: deny_exports\n  bundle: {url: http://127.0.0.1:1/b.tar.gz, poll_min: 1s, poll_max: 2s}\ndecision_log: {path: /tmp/d.db}\n",
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
        assert!(
            Config::parse("")
                .map(|c| c.decision_log.is_none())
                .unwrap_or(false)
        );
    }

    #[test]
    fn yaml_1_2_keeps_yes_a_string() {
        let err = refusal("policy:\n  v0_compatible: yes\n");
        assert!(
            err.starts_with("policy.v0_compatible: invalid type: string"),
            "{err}"
        );
        let c = Config::parse("site:\n  name: NO\n")
            .map(|c| c.site.name)
            .map_err(|e| e.to_string());
        assert_eq!(c, Ok("NO".to_string()));
    }

    #[test]
    fn http_null_turns_the_proxy_off() {
        assert!(
            Config::parse("http: null\n")
                .map(|c| c.http.is_none())
                .unwrap_or(false)
        );
    }
}
