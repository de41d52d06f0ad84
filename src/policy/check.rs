//! Every error of a policy set, for `sluice check`: each file that does not parse, or the
//! first compile error when all parse.
//!
//! Not here: printing them (`cmd/check.rs`).

use super::loader::{LoadError, PolicySet, from_anyhow};

/// Every error of a policy set. The whole set is compiled first (one pass when all is well);
/// on failure each module is parsed on its own, so that every file with a syntax error is
/// reported, and only when all parse is the compile error itself reported.
pub fn check_set(set: &PolicySet) -> Vec<LoadError> {
    let Err(compile_error) = set.engine() else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for m in &set.modules {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(set.rego_v0);
        if let Err(e) = engine.add_policy(m.path.clone(), m.text.clone()) {
            errors.push(from_anyhow(&e, &m.path));
        }
    }
    if errors.is_empty() {
        errors.push(compile_error);
    }
    errors
}
