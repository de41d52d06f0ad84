//! Every error of a policy set, for `sluice check`: each file that does not parse, or the
//! first compile error when all parse.
//!
//! Not here: printing them (`cmd/check.rs`).

use super::loader::{LoadError, PolicySet};

/// Every error of a policy set. The whole set is compiled first (one pass when all is well);
/// on failure each module is parsed on its own, so that every file with a syntax error is
/// reported, and only when all parse is the compile error itself reported.
pub fn check_set(set: &PolicySet) -> Vec<LoadError> {
    let Err(compile_error) = set.engine() else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for m in &set.modules {
        let mut engine = super::engine::EngineSetup::new(set.rego_v0).engine();
        if let Err(e) = super::loader::add_module(&mut engine, m) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        errors.push(compile_error);
    }
    errors
}
