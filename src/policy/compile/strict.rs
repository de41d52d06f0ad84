//! `sluice check --strict`, OPA's compiler strict mode: unused imports, unused local
//! assignments (`x := …` never read), unused `some` declarations and unused function arguments
//! are errors. Duplicate imports and `input`/`data` shadowing are errors in every mode (Rego
//! v1), and deprecated builtins are refused by the call check.
//!
//! Not here: anything the default mode checks (`calls`, `safety`).

use std::collections::HashMap;

use regorus::unstable::{Expr, Literal, Module, Query, Ref, Rule, RuleHead};

use super::CompileError;
use super::walk;

/// Every strict-mode error of the modules.
pub fn check(modules: &[Ref<Module>]) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for m in modules {
        unused_imports(m, &mut errors);
        for rule in &m.policy {
            unused_locals(rule, &mut errors);
        }
    }
    errors
}

/// How many times each variable name is mentioned in a rule.
fn mentions(rule: &Rule) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    walk::each_rule_expr(rule, &mut |e| {
        if let Some(v) = walk::var_name(e) {
            *counts.entry(v.to_string()).or_insert(0) += 1;
        }
    });
    counts
}

fn unused_imports(m: &Module, errors: &mut Vec<CompileError>) {
    let mut used: HashMap<String, usize> = HashMap::new();
    for rule in &m.policy {
        for (name, n) in mentions(rule) {
            *used.entry(name).or_insert(0) += n;
        }
    }
    for imp in &m.imports {
        let Some(p) = walk::path(&imp.refr) else {
            continue;
        };
        if p.first() == Some(&"future") || p.join(".") == "rego.v1" {
            continue;
        }
        let alias = imp.r#as.as_ref().map(|s| s.text().to_string());
        let Some(name) = alias.clone().or_else(|| p.last().map(|s| s.to_string())) else {
            continue;
        };
        if used.get(&name).copied().unwrap_or(0) == 0 {
            let shown = match alias {
                Some(a) => format!("import {} as {a}", p.join(".")),
                None => format!("import {}", p.join(".")),
            };
            errors.push(CompileError::new(
                &imp.span,
                "rego_compile_error",
                format!("{shown} unused"),
            ));
        }
    }
}

/// Assigned (`:=`) and declared (`some`) variables and function arguments mentioned nowhere
/// else in the rule.
fn unused_locals(rule: &Rule, errors: &mut Vec<CompileError>) {
    let counts = mentions(rule);
    let unused = |name: &str| name != "_" && counts.get(name).copied().unwrap_or(0) <= 1;
    if let Rule::Spec {
        head: RuleHead::Func { args, .. },
        ..
    } = rule
    {
        for a in args {
            if let Some(name) = walk::var_name(a).filter(|n| unused(n)) {
                errors.push(CompileError::new(
                    a.span(),
                    "rego_compile_error",
                    format!("unused argument {name}. (hint: use _ (wildcard variable) instead)"),
                ));
            }
        }
    }
    let mut queries: Vec<&Query> = Vec::new();
    if let Rule::Spec { bodies, .. } = rule {
        queries.extend(bodies.iter().map(|b| b.query.as_ref()));
    }
    walk::each_rule_expr(rule, &mut |e| {
        if let Expr::ArrayCompr { query, .. }
        | Expr::SetCompr { query, .. }
        | Expr::ObjectCompr { query, .. } = e
        {
            queries.push(query);
        }
    });
    for q in queries {
        for stmt in &q.stmts {
            match &stmt.literal {
                Literal::Expr { expr, .. } => {
                    if let Expr::AssignExpr { op, lhs, .. } = expr.as_ref() {
                        if matches!(op, regorus::unstable::AssignOp::ColEq) {
                            let mut vars = Vec::new();
                            walk::vars_outside_comprehensions(lhs, &mut vars);
                            for v in vars {
                                if let Some(name) = walk::var_name(v).filter(|n| unused(n)) {
                                    errors.push(CompileError::new(
                                        v.span(),
                                        "rego_compile_error",
                                        format!("assigned var {name} unused"),
                                    ));
                                }
                            }
                        }
                    }
                }
                Literal::SomeVars { vars, .. } => {
                    // A declaration is no mention: `some x` with x never used has no count.
                    let undeclared = |v: &&regorus::unstable::Span| {
                        v.text() != "_" && !counts.contains_key(v.text())
                    };
                    for v in vars.iter().filter(undeclared) {
                        errors.push(CompileError::new(
                            v,
                            "rego_compile_error",
                            format!("declared var {} unused", v.text()),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}
