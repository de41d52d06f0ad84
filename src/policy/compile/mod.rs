//! Compiling a policy set as `opa check` does, for every command that loads policy (`serve`,
//! `webhook`, `test`, `eval`, `check`): after regorus has parsed the modules, the checks regorus
//! leaves to evaluation time run on its syntax tree — undefined functions and arity
//! (`calls`), unsafe head variables (`safety`) — then regorus prepares the set (unsafe body
//! variables), and with `--strict` OPA's strict-mode checks run (`strict`). Errors carry OPA's
//! codes: `file:line:col: rego_type_error: undefined function foo`.
//!
//! Not here: reading files (`loader`), setting the engine up (`engine`), printing (`cmd/check`).

mod calls;
mod safety;
mod strict;
mod types;
pub(crate) mod walk;

use regorus::Engine;
use regorus::unstable::{Module, Ref, Span};

use super::loader::{self, LoadError, PolicySet};

/// One compile error at a place in a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// OPA's category: `rego_type_error`, `rego_unsafe_var_error`, `rego_compile_error`.
    pub code: &'static str,
    pub message: String,
}

impl CompileError {
    fn new(span: &Span, code: &'static str, message: String) -> Self {
        Self {
            file: span.source.file().clone(),
            line: span.line,
            col: span.col,
            code,
            message,
        }
    }

    fn type_error(span: &Span, message: String) -> Self {
        Self::new(span, "rego_type_error", message)
    }

    fn into_load_error(self) -> LoadError {
        LoadError {
            file: self.file,
            line: self.line,
            col: self.col,
            message: format!("{}: {}", self.code, self.message),
        }
    }
}

/// Which checks run: the default ones always, OPA's strict mode on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Strictness {
    pub strict: bool,
}

/// Parses, checks and prepares a set into an engine; every error of the first failing stage.
pub fn compile(set: &PolicySet, strictness: Strictness) -> Result<Engine, Vec<LoadError>> {
    let mut engine = super::engine::EngineSetup::new(set.rego_v0).engine();
    // Before anything parses a module (the rewrites below do).
    let bounds: Vec<LoadError> = set
        .modules
        .iter()
        .filter_map(|m| loader::within_bounds(&m.path, &m.text).err())
        .collect();
    if !bounds.is_empty() {
        return Err(bounds);
    }
    let set = super::template_strings::rewrite_set(set)?;
    let modules = super::metadata::resolve(&set)?;
    for m in modules.iter() {
        loader::add_module(&mut engine, m).map_err(|e| vec![opa_words_in(e, &m.text)])?;
    }
    check_modules(&mut engine)?;
    let data = regorus::Value::from(set.data.clone());
    engine
        .add_data(data)
        .map_err(|e| vec![LoadError::new("data", e.to_string())])?;
    // Any evaluation prepares (analyses and schedules) every module; `true` touches nothing else.
    engine
        .eval_query("true".to_string(), false)
        .map_err(|e| vec![opa_words(loader::from_anyhow(&e, ""))])?;
    if strictness.strict {
        let modules: Vec<Ref<Module>> = engine.get_modules().clone();
        stage(strict::check(&modules))?;
    }
    Ok(engine)
}

/// The checks regorus leaves to evaluation, on the modules already in `engine`: undefined
/// `with` targets, functions and arity, unsafe head variables, unsafe body variables, then
/// constant arguments of the wrong kind (OPA stops at the first stage with errors).
/// Gatekeeper templates are checked with this too.
pub fn check_modules(engine: &mut Engine) -> Result<(), Vec<LoadError>> {
    let modules: Vec<Ref<Module>> = engine.get_modules().clone();
    let index = calls::Index::new(&modules);
    stage(calls::check_with_targets(&modules, &index))?;
    stage(calls::check(&modules, &index))?;
    stage(safety::check(&modules, &index))?;
    stage(safety::check_bodies(&modules, &index))?;
    stage(types::check(&modules, &index))
}

fn stage(mut errors: Vec<CompileError>) -> Result<(), Vec<LoadError>> {
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    errors.dedup();
    Err(errors
        .into_iter()
        .map(CompileError::into_load_error)
        .collect())
}

/// As [`opa_words`], with the module's text: a shadowed import is named as OPA names it
/// (`import must not shadow import data.a`).
pub fn opa_words_in(e: LoadError, text: &str) -> LoadError {
    let mut e = opa_words(e);
    if let Some(at) = e
        .message
        .strip_prefix("rego_compile_error: import must not shadow the import at ")
    {
        let earlier = at
            .rsplit(':')
            .nth(1)
            .and_then(|l| l.parse::<usize>().ok())
            .and_then(|l| text.lines().nth(l.saturating_sub(1)))
            .map(|l| l.split('#').next().unwrap_or_default().trim().to_string());
        if let Some(import) = earlier.filter(|l| l.starts_with("import ")) {
            e.message = format!("rego_compile_error: import must not shadow {import}");
        }
    }
    e
}

/// regorus's compile errors in OPA's words and with OPA's codes.
pub fn opa_words(mut e: LoadError) -> LoadError {
    let m = e.message.as_str();
    let opa = if let Some(rest) = m.strip_prefix("use of undefined variable `") {
        let name = rest.split('`').next().unwrap_or_default();
        Some(format!("rego_unsafe_var_error: var {name} is unsafe"))
    } else if let Some(rest) = m.strip_prefix("var ") {
        rest.split_once(" is unsafe")
            .map(|(name, _)| format!("rego_unsafe_var_error: var {name} is unsafe"))
    } else if let Some(name) = m.strip_suffix(" cannot be shadowed") {
        Some(format!(
            "rego_compile_error: variables must not shadow {name} (use a different variable name)"
        ))
    } else if let Some(rest) = m.strip_prefix("import shadows following import defined earlier: ") {
        let earlier = rest.trim_end_matches(": this import is shadowed");
        Some(format!(
            "rego_compile_error: import must not shadow the import at {earlier}"
        ))
    } else {
        None
    };
    if let Some(opa) = opa {
        e.message = opa;
    }
    e
}
