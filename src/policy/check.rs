//! Every error of a policy set, for `sluice check`: each file that does not parse, or every
//! error of the first compile stage that fails when all parse.
//!
//! Not here: printing them (`cmd/check.rs`), the checks themselves (`compile`).

use super::compile::{self, Strictness};
use super::loader::{LoadError, PolicySet};

/// Every error of a policy set. The whole set is compiled first (one pass when all is well);
/// on failure each module is parsed on its own, so that every file with a syntax error is
/// reported, and only when all parse are the compile errors themselves reported.
pub fn check_set(set: &PolicySet, strictness: Strictness) -> Vec<LoadError> {
    let compile_errors = match compile::compile(set, strictness) {
        Ok(engine) => {
            // `sluice check` exits next: freeing the compiled policy, node by node, was a
            // twentieth of the command (callgrind).
            std::mem::forget(engine);
            return Vec::new();
        }
        Err(errors) => errors,
    };
    let mut errors = Vec::new();
    for m in &set.modules {
        let mut engine = super::engine::EngineSetup::new(set.rego_v0).engine();
        let added = super::loader::within_bounds(&m.path, &m.text)
            .and_then(|()| super::loader::add_module(&mut engine, m));
        if let Err(e) = added {
            errors.push(compile::opa_words_in(e, &m.text));
        }
    }
    if errors.is_empty() {
        errors = compile_errors;
    }
    errors
}
