//! OPA's safety check of rule heads: a variable in a rule's head (its key, its value, a
//! variable in its reference) must be bound by the body or by a function argument, or the rule
//! has no value to give (`r contains x if { y := 1 }`: `rego_unsafe_var_error: var x is unsafe`).
//!
//! Then the bodies: a variable a body uses but that nothing in the rule can bind (no `:=`, `=`,
//! `some … in`, `every`, collection index `xs[x]` or output argument names it) is unsafe too
//! (`r if { x > 1 }`, `some x; x > 1`, `[x | x > 1]`). This is lenient where OPA is exact:
//! a binding anywhere in the rule counts, and regorus's scheduler, when the set is prepared,
//! refuses what is left (its error worded as OPA's by `compile`).

use std::collections::HashSet;

use regorus::unstable::{Expr, Literal, Module, Query, Ref, Rule, RuleHead};

use super::CompileError;
use super::calls::{self, Index};
use super::walk;

/// Every head variable that no body binds.
pub fn check(modules: &[Ref<Module>], index: &Index) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for m in modules {
        let global = globals(m, index);
        for rule in &m.policy {
            check_rule(rule, &global, &mut errors);
        }
    }
    errors
}

/// Every variable a body uses that nothing in its rule can bind.
pub fn check_bodies(modules: &[Ref<Module>], index: &Index) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for m in modules {
        let global = globals(m, index);
        for rule in &m.policy {
            let Rule::Spec { head, bodies, .. } = rule.as_ref() else {
                continue;
            };
            let mut bindable = HashSet::new();
            if let RuleHead::Func { args, .. } = head {
                for a in args {
                    walk::each_expr(a, &mut |e| {
                        if let Some(v) = walk::var_name(e) {
                            bindable.insert(v);
                        }
                    });
                }
            }
            let mut queries = Vec::new();
            for b in bodies {
                queries.push(b.query.as_ref());
            }
            walk::each_rule_expr(rule, &mut |e| {
                if let Expr::ArrayCompr { query, .. }
                | Expr::SetCompr { query, .. }
                | Expr::ObjectCompr { query, .. } = e
                {
                    queries.push(query);
                }
            });
            for q in &queries {
                binders(q, &mut bindable);
            }
            let mut reported = HashSet::new();
            for q in &queries {
                for stmt in &q.stmts {
                    // `_` is a fresh variable, and nothing outside a `not` binds it.
                    if let Literal::NotExpr { expr, .. } = &stmt.literal {
                        let mut vars = Vec::new();
                        walk::vars_outside_comprehensions(expr, &mut vars);
                        if let Some(v) = vars.iter().find(|v| walk::var_name(v) == Some("_")) {
                            if reported.insert("_".to_string()) {
                                errors.push(CompileError::new(
                                    v.span(),
                                    "rego_unsafe_var_error",
                                    "var _ is unsafe".into(),
                                ));
                            }
                        }
                    }
                    uses(&stmt.literal, &mut |e, name| {
                        if name != "_"
                            && name != "input"
                            && name != "data"
                            && !global.contains(name)
                            && !bindable.contains(name)
                            && reported.insert(name.to_string())
                        {
                            errors.push(CompileError::new(
                                e.span(),
                                "rego_unsafe_var_error",
                                format!("var {name} is unsafe"),
                            ));
                        }
                    });
                }
            }
        }
    }
    errors
}

/// The names a reference resolves to in a module: its rules and import aliases.
fn globals(m: &Module, index: &Index) -> HashSet<String> {
    let mut global: HashSet<String> = calls::aliases(m).into_keys().collect();
    if let Some(names) = index.rule_names(&walk::package(m)) {
        global.extend(names.iter().cloned());
    }
    global
}

/// The names a query can bind, nested `every` bodies included (comprehension queries are
/// visited by the caller). Borrowed from the module: no allocation per name.
fn binders<'a>(q: &'a Query, out: &mut HashSet<&'a str>) {
    let all_vars = |e: &'a Expr, out: &mut HashSet<&'a str>| {
        let mut vars = Vec::new();
        walk::vars_outside_comprehensions(e, &mut vars);
        out.extend(vars.iter().filter_map(|v| walk::var_name(v)));
    };
    for stmt in &q.stmts {
        match &stmt.literal {
            Literal::SomeIn { key, value, .. } => {
                if let Some(k) = key {
                    all_vars(k, out);
                }
                all_vars(value, out);
            }
            Literal::Every {
                key, value, query, ..
            } => {
                out.extend(key.iter().map(|k| k.text()));
                out.insert(value.text());
                binders(query, out);
            }
            // Nothing inside a `not` binds a variable for the rest of the body.
            Literal::NotExpr { .. } | Literal::SomeVars { .. } => {}
            Literal::Expr { expr, .. } => {
                match expr.as_ref() {
                    Expr::AssignExpr { op, lhs, rhs, .. } => {
                        all_vars(lhs, out);
                        if matches!(op, regorus::unstable::AssignOp::Eq) {
                            all_vars(rhs, out);
                        }
                    }
                    // A statement call may end with an output argument (`count(xs, n)`).
                    Expr::Call { params, .. } => {
                        if let Some(last) = params.last() {
                            all_vars(last, out);
                        }
                    }
                    _ => {}
                }
                walk::each_expr(expr, &mut |e| {
                    if let Expr::RefBrack { index, .. } = e {
                        if let Some(v) = walk::var_name(index) {
                            out.insert(v);
                        }
                    }
                });
            }
        }
        if let Literal::SomeIn { collection, .. } = &stmt.literal {
            walk::each_expr(collection, &mut |e| {
                if let Expr::RefBrack { index, .. } = e {
                    if let Some(v) = walk::var_name(index) {
                        out.insert(v);
                    }
                }
            });
        }
    }
}

/// Calls `f` on every variable a literal uses outside comprehensions, nested `every` bodies
/// and `with` modifiers, leaving out the names of called functions.
fn uses(literal: &Literal, f: &mut dyn FnMut(&Expr, &str)) {
    fn expr_uses(e: &Expr, f: &mut dyn FnMut(&Expr, &str)) {
        let mut vars = Vec::new();
        walk::vars_outside_comprehensions(e, &mut vars);
        for v in vars {
            if let Some(name) = walk::var_name(v) {
                f(v, name);
            }
        }
    }
    match literal {
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                expr_uses(k, f);
            }
            expr_uses(value, f);
            expr_uses(collection, f);
        }
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => expr_uses(expr, f),
        Literal::Every { domain, .. } => expr_uses(domain, f),
        Literal::SomeVars { .. } => {}
    }
}

fn check_rule(rule: &Rule, global: &HashSet<String>, errors: &mut Vec<CompileError>) {
    let Rule::Spec { head, bodies, .. } = rule else {
        return;
    };
    let mut bound = HashSet::new();
    let (refr, key, value, args) = match head {
        RuleHead::Compr { refr, assign, .. } => (refr, None, assign.as_ref(), &[][..]),
        RuleHead::Set { refr, key, .. } => (refr, key.as_ref(), None, &[][..]),
        RuleHead::Func {
            refr, assign, args, ..
        } => (refr, None, assign.as_ref(), &args[..]),
    };
    for a in args {
        walk::each_expr(a, &mut |e| {
            if let Some(v) = walk::var_name(e) {
                bound.insert(v);
            }
        });
    }
    // Variables of the reference's brackets (`r[x]`) and of the key count in every body.
    let mut shared = Vec::new();
    ref_vars(refr, &mut shared);
    if let Some(k) = key {
        walk::vars_outside_comprehensions(k, &mut shared);
    }
    let no_body = [None];
    let body_list: Vec<Option<&Query>> = if bodies.is_empty() {
        no_body.to_vec()
    } else {
        bodies.iter().map(|b| Some(b.query.as_ref())).collect()
    };
    let mut reported = HashSet::new();
    for (i, query) in body_list.iter().enumerate() {
        let mut head_vars = shared.clone();
        // An else body carries its own value; the others share the head's.
        let own = bodies.get(i).and_then(|b| b.assign.as_ref());
        if let Some(a) = own.or(value) {
            walk::vars_outside_comprehensions(&a.value, &mut head_vars);
        }
        // The body's names are gathered only for a head variable nothing else binds: most
        // heads have none, and gathering them was a twentieth of `sluice eval`'s start.
        let mut in_body = None;
        for e in head_vars {
            let Some(name) = walk::var_name(e) else {
                continue;
            };
            if name == "_"
                || name == "input"
                || name == "data"
                || global.contains(name)
                || bound.contains(name)
                || in_body
                    .get_or_insert_with(|| query.map(body_vars).unwrap_or_default())
                    .contains(name)
                || !reported.insert(name.to_string())
            {
                continue;
            }
            errors.push(CompileError::new(
                e.span(),
                "rego_unsafe_var_error",
                format!("var {name} is unsafe"),
            ));
        }
    }
}

/// The variables inside the brackets of a rule's reference (`x` of `r[x]`).
fn ref_vars<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::RefBrack { refr, index, .. } => {
            ref_vars(refr, out);
            walk::vars_outside_comprehensions(index, out);
        }
        Expr::RefDot { refr, .. } => ref_vars(refr, out),
        _ => {}
    }
}

/// Every variable name a body mentions (lenient: a name mentioned is taken as bound; an unsafe
/// use inside the body is the scheduler's to refuse).
fn body_vars(q: &Query) -> HashSet<&str> {
    let mut out = HashSet::new();
    walk::each_query_expr(q, &mut |e| {
        if let Some(v) = walk::var_name(e) {
            out.insert(v);
        }
    });
    for stmt in &q.stmts {
        if let Literal::SomeVars { vars, .. } = &stmt.literal {
            out.extend(vars.iter().map(|s| s.text()));
        }
    }
    out
}
