//! `identity`: who this gateway speaks for, filling `input.source`.
//!
//! Not here: the rest of `input.source` (client id, username: the proxies fill those).

use serde::{Deserialize, Serialize};

/// Fills `input.source`; empty fields are taken from POD_NAME, POD_NAMESPACE and NODE_NAME.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub workload: String,
    pub namespace: String,
    pub node: String,
}

impl IdentityConfig {
    /// The identity with the Kubernetes downward-API environment filling what the file left empty.
    pub fn resolved(&self) -> Self {
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        let pick = |v: &str, k: &str| {
            if v.is_empty() { env(k) } else { v.to_string() }
        };
        Self {
            workload: pick(&self.workload, "POD_NAME"),
            namespace: pick(&self.namespace, "POD_NAMESPACE"),
            node: pick(&self.node, "NODE_NAME"),
        }
    }
}
