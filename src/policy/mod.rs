//! The policy core: loading Rego and data, the [`Decider`] the proxies ask, the decision
//! [`Input`], and the `opa`-style CLI commands (`sluice test`, `eval`, `check`).
//!
//! The proxies see `Decider::decide(&Input) -> Verdict` and nothing of regorus.

pub mod cli;
pub mod coverage;
pub mod decider;
pub mod eval;
mod front;
pub mod input;
pub mod loader;
pub mod report;
pub mod rules;
pub mod testrun;

pub use decider::{Decider, DeciderOptions, DeciderStats, Verdict};
pub use input::{HttpFacts, Input, MqttFacts, Operation, Protocol, Source, Target, Zone};
pub use loader::{LoadError, Module, PolicySet};
