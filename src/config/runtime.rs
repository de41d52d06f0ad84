//! `runtime`: how many threads serve the data path.
//!
//! Not here: building the runtime (`cmd/mod.rs`).

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};

/// More workers than this is a typo, not a plan: an edge node has a handful of cores.
const MAX_WORKERS: usize = 64;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Worker threads; `null`: one per core the process may use. Fewer leave cores to the
    /// plant's processors and cut cross-core wake-ups (docs/benchmarks.md: one worker on 2
    /// cores halved the HTTP P99 at 1k req/s), but one busy worker then delays everything
    /// else it serves (the MQTT P99 at 1k msg/s rose by milliseconds).
    pub workers: Option<usize>,
}

impl RuntimeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.workers {
            Some(0) => Err(invalid(
                "runtime.workers",
                "0 must be at least 1 (or null: one per core)",
            )),
            Some(n) if n > MAX_WORKERS => Err(invalid(
                "runtime.workers",
                format!("{n} is more than {MAX_WORKERS}"),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::refusal;

    #[test]
    fn workers_are_checked() {
        assert_eq!(refusal("runtime: {workers: 2}"), "");
        assert_eq!(
            refusal("runtime: {workers: 0}"),
            "runtime.workers: 0 must be at least 1 (or null: one per core)"
        );
        assert_eq!(
            refusal("runtime: {workers: 65}"),
            "runtime.workers: 65 is more than 64"
        );
    }
}
