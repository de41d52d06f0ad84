//! OPA's "undefined function" stage: every call names a builtin sluice has, or a function a
//! module defines, with the number of arguments it takes (one more when the call is a whole
//! statement: the last argument is then the output, as in `count(xs, n)`); every `with` target
//! is input, data or a function. Messages are OPA's (`rego_type_error: undefined function foo`,
//! `count: arity mismatch`, `function data.t.f has arity 1, got 3 arguments`).
//!
//! Not here: type checking of arguments (sluice has no type checker; see docs/compatibility.md).

use std::collections::{HashMap, HashSet};

use regorus::unstable::{Expr, Literal, Module, Query, Ref, Rule, RuleHead};

use super::CompileError;
use super::walk;
use crate::policy::{builtins, compat};

/// What a name refers to when called.
pub enum Callee {
    Builtin(String),
    User(String),
}

/// The functions and rules every module defines, and each module's names in scope.
pub struct Index {
    /// `data.pkg.f` → number of arguments.
    functions: HashMap<String, usize>,
    /// Package → first segments of its rules (the names a bare reference resolves to).
    rule_names: HashMap<String, HashSet<String>>,
}

impl Index {
    pub fn new(modules: &[Ref<Module>]) -> Self {
        let mut functions = HashMap::new();
        let mut rule_names: HashMap<String, HashSet<String>> = HashMap::new();
        for m in modules {
            let pkg = walk::package(m);
            let names = rule_names.entry(pkg.clone()).or_default();
            for rule in &m.policy {
                let head = walk::head_path(rule);
                if let Some(first) = head.first() {
                    names.insert(first.to_string());
                }
                let arity = match rule.as_ref() {
                    Rule::Spec {
                        head: RuleHead::Func { args, .. },
                        ..
                    } => Some(args.len()),
                    Rule::Default { args, .. } if !args.is_empty() => Some(args.len()),
                    _ => None,
                };
                if let Some(arity) = arity {
                    functions.insert(format!("{pkg}.{}", head.join(".")), arity);
                }
            }
        }
        Self {
            functions,
            rule_names,
        }
    }

    pub fn rule_names(&self, pkg: &str) -> Option<&HashSet<String>> {
        self.rule_names.get(pkg)
    }
}

/// A module's import aliases: `lib` → `data.lib` (rego.v1 and future.keywords are no aliases).
pub fn aliases(m: &Module) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for imp in &m.imports {
        let Some(p) = walk::path(&imp.refr) else {
            continue;
        };
        if p.first() == Some(&"future") || p.join(".") == "rego.v1" {
            continue;
        }
        let alias = imp
            .r#as
            .as_ref()
            .map(|s| s.text().to_string())
            .or_else(|| p.last().map(|s| s.to_string()));
        if let Some(alias) = alias {
            out.insert(alias, p.join("."));
        }
    }
    out
}

/// The number of arguments of a builtin sluice has; `Some(None)` for variadic `print`.
fn builtin_arity(name: &str) -> Option<Option<usize>> {
    if name == "print" {
        return Some(None);
    }
    if let Some(b) = builtins::all().find(|b| b.name == name) {
        return Some(Some(usize::from(b.arity)));
    }
    if builtins::REFUSED.iter().any(|r| r.name == name) {
        return Some(Some(1));
    }
    regorus::unstable::BUILTINS
        .get(name)
        .map(|b| Some(usize::from(b.1)))
}

/// Every undefined function, arity mismatch and bad `with` target of the modules.
pub fn check(modules: &[Ref<Module>], index: &Index) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for m in modules {
        let scope = Scope::of(m, index);
        for rule in &m.policy {
            let mut statements = HashSet::new();
            walk::each_rule_expr(rule, &mut |e| {
                if let Expr::ArrayCompr { query, .. }
                | Expr::SetCompr { query, .. }
                | Expr::ObjectCompr { query, .. } = e
                {
                    statement_calls(query, &mut statements);
                }
            });
            if let Rule::Spec { bodies, .. } = rule.as_ref() {
                for b in bodies {
                    statement_calls(&b.query, &mut statements);
                }
            }
            walk::each_rule_expr(rule, &mut |e| {
                if let Expr::Call { fcn, params, .. } = e {
                    let as_statement = statements.contains(&(e as *const Expr));
                    if let Some(message) = scope.call(fcn, params.len(), as_statement) {
                        errors.push(CompileError::type_error(fcn.span(), message));
                    }
                }
            });
        }
    }
    errors
}

/// Every `with` target that is neither input, data nor a function (OPA checks these in a
/// stage before the calls).
pub fn check_with_targets(modules: &[Ref<Module>], index: &Index) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for m in modules {
        let scope = Scope::of(m, index);
        for rule in &m.policy {
            scope.with_targets(rule, &mut errors);
        }
    }
    errors
}

/// Calls that are a whole statement (`count(xs, n)` or `not f(x, y)`), which may carry an
/// output argument; nested queries (`every`) included.
fn statement_calls(q: &Query, out: &mut HashSet<*const Expr>) {
    for stmt in &q.stmts {
        match &stmt.literal {
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => {
                if matches!(expr.as_ref(), Expr::Call { .. }) {
                    out.insert(expr.as_ref() as *const Expr);
                }
            }
            Literal::Every { query, .. } => statement_calls(query, out),
            _ => {}
        }
    }
}

pub struct Scope<'a> {
    pkg: String,
    aliases: HashMap<String, String>,
    index: &'a Index,
    /// The package's rule names, looked up once: `resolve` runs for every call, twice.
    rules: Option<&'a HashSet<String>>,
    /// A v1 module (or v0 with `import rego.v1`): OPA's deprecated builtins are refused.
    rego_v1: bool,
}

impl<'a> Scope<'a> {
    /// The names in scope in one module.
    pub fn of(m: &Module, index: &'a Index) -> Self {
        let pkg = walk::package(m);
        Self {
            rules: index.rule_names(&pkg),
            pkg,
            aliases: aliases(m),
            index,
            rego_v1: m.rego_v1,
        }
    }
}

impl Scope<'_> {
    /// What a called path refers to, as OPA resolves it: `data.…` as written, an import alias,
    /// a rule of the package, or else a builtin.
    pub fn resolve(&self, p: &[&str]) -> Callee {
        let Some(first) = p.first() else {
            return Callee::Builtin(String::new());
        };
        if *first != "data" {
            if let Some(target) = self.aliases.get(*first) {
                let mut full = target.clone();
                for segment in &p[1..] {
                    full.push('.');
                    full.push_str(segment);
                }
                return Callee::User(full);
            }
        }
        let joined = p.join(".");
        if *first == "data" {
            return Callee::User(joined);
        }
        if self.rules.is_some_and(|names| names.contains(*first)) {
            // Not format!: this runs for every call of every policy at each start.
            let mut full = String::with_capacity(self.pkg.len() + 1 + joined.len());
            full.push_str(&self.pkg);
            full.push('.');
            full.push_str(&joined);
            return Callee::User(full);
        }
        Callee::Builtin(joined)
    }

    /// The error of one call, if any.
    fn call(&self, fcn: &Expr, args: usize, as_statement: bool) -> Option<String> {
        let p = walk::path(fcn)?;
        let fits = |arity: usize| args == arity || (as_statement && args == arity + 1);
        match self.resolve(&p) {
            Callee::User(name) if name.starts_with("data.") => {
                match self.index.functions.get(&name) {
                    None => Some(format!("undefined function {name}")),
                    Some(&arity) if !fits(arity) => Some(format!(
                        "function {name} has arity {arity}, got {args} argument{}",
                        if args == 1 { "" } else { "s" }
                    )),
                    Some(_) => None,
                }
            }
            Callee::User(name) | Callee::Builtin(name)
                if self.rego_v1 && builtins::is_deprecated(&name) =>
            {
                Some(format!(
                    "deprecated built-in function calls in expression: {name}"
                ))
            }
            Callee::User(name) | Callee::Builtin(name) => match builtin_arity(&name) {
                Some(None) => None,
                Some(Some(arity)) if fits(arity) => None,
                Some(Some(arity)) => Some(format!(
                    "{name}: arity mismatch (have {args} argument{}, want {arity})",
                    if args == 1 { "" } else { "s" }
                )),
                None => Some(unknown_builtin(&name)),
            },
        }
    }

    /// `with` targets must be input, data or a function (`with foo as …` of nothing is an error).
    fn with_targets(&self, rule: &Rule, errors: &mut Vec<CompileError>) {
        let Rule::Spec { bodies, .. } = rule else {
            return;
        };
        let mut check = |q: &Query| {
            for stmt in &q.stmts {
                for w in &stmt.with_mods {
                    let Some(p) = walk::path(&w.refr) else {
                        continue;
                    };
                    if matches!(p.first(), Some(&("input" | "data"))) {
                        continue;
                    }
                    let known = match self.resolve(&p) {
                        Callee::User(name) if name.starts_with("data.") => true,
                        Callee::User(name) | Callee::Builtin(name) => {
                            builtin_arity(&name).is_some()
                        }
                    };
                    if !known {
                        errors.push(CompileError::type_error(
                            &w.span,
                            "with keyword target must reference existing input, data, or a function".into(),
                        ));
                    }
                }
            }
        };
        for b in bodies {
            check(&b.query);
        }
    }
}

/// The message for a builtin name sluice does not have: OPA's own when OPA does not have it
/// either (or deprecated it), sluice's reason when OPA has it.
fn unknown_builtin(name: &str) -> String {
    match compat::opa_builtin(name) {
        Some(b) if b.deprecated => {
            format!("deprecated built-in function calls in expression: {name}")
        }
        Some(_) => format!(
            "undefined function {name}: not supported by sluice ({})",
            compat::unsupported_reason(name)
        ),
        None => format!("undefined function {name}"),
    }
}
