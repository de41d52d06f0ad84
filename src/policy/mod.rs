//! The policy core: loading Rego and data, the [`Decider`] the proxies ask, the decision
//! [`Input`], and what the `opa`-style commands (`sluice test`, `eval`, `check`) run.
//!
//! The proxies see `Decider::decide(&Input) -> Verdict` and nothing of regorus.

pub mod builtins;
pub mod bundle;
pub mod check;
pub mod compat;
pub mod compile;
pub mod coverage;
pub mod decider;
pub mod engine;
pub mod eval;
mod front;
pub mod input;
pub mod loader;
pub mod metadata;
// Generated (src/policy/compat.rs writes it), one line per builtin.
#[rustfmt::skip]
mod opa_builtins;
pub mod report;
pub mod rules;
pub mod template_strings;
pub mod testrun;

pub use decider::{Decider, DeciderOptions, DeciderStats, Verdict};
pub use input::{HttpFacts, Input, MqttFacts, Operation, Protocol, Source, Target, Zone};
pub use loader::{LoadError, Module, PolicySet};
