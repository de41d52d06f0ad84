//! Reading regorus's parsed modules: the dotted path of a reference, the variables of an
//! expression, and a visit of every expression of a rule, for the compile checks.
//!
//! Not here: what the checks decide (`calls`, `safety`, `strict`).

use regorus::unstable::{Expr, Literal, Module, Query, Rule, RuleHead};

/// The segments of a plain reference (`a.b["c"]`), or `None` for anything dynamic. Borrowed
/// from the syntax tree: the checks look up every call's path.
pub fn path(e: &Expr) -> Option<Vec<&str>> {
    match e {
        Expr::Var { span, .. } => Some(vec![span.text()]),
        Expr::RefDot { refr, field, .. } => {
            let mut p = path(refr)?;
            p.push(field.0.text());
            Some(p)
        }
        Expr::RefBrack { refr, index, .. } => {
            let mut p = path(refr)?;
            match index.as_ref() {
                Expr::String {
                    value: regorus::Value::String(s),
                    ..
                } => p.push(s),
                _ => return None,
            }
            Some(p)
        }
        _ => None,
    }
}

/// The package of a module as `data.a.b`.
pub fn package(m: &Module) -> String {
    let segments: Vec<&str> = path(&m.package.refr)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| *s != "data")
        .collect();
    format!("data.{}", segments.join("."))
}

/// The rule's own reference (`r`, `a.b[x]`, `f`).
pub fn head_ref(rule: &Rule) -> Option<&Expr> {
    match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => Some(refr),
        },
        Rule::Default { refr, .. } => Some(refr),
    }
}

/// The leading plain segments of a rule's reference: `a.b` for `a.b[x]`.
pub fn head_path(rule: &Rule) -> Vec<&str> {
    fn lead(e: &Expr) -> Vec<&str> {
        match e {
            Expr::RefBrack { refr, index, .. } => match index.as_ref() {
                Expr::String { .. } => path(e).unwrap_or_else(|| lead(refr)),
                _ => lead(refr),
            },
            Expr::RefDot { refr, field, .. } => {
                let mut p = lead(refr);
                p.push(field.0.text());
                p
            }
            Expr::Var { span, .. } => vec![span.text()],
            _ => Vec::new(),
        }
    }
    head_ref(rule).map(lead).unwrap_or_default()
}

/// Calls `f` on `e` and on every expression inside it, comprehension bodies included.
pub fn each_expr<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Expr)) {
    f(e);
    match e {
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            for i in items {
                each_expr(i, f);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, k, v) in fields {
                each_expr(k, f);
                each_expr(v, f);
            }
        }
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            each_expr(term, f);
            each_query_expr(query, f);
        }
        Expr::ObjectCompr {
            key, value, query, ..
        } => {
            each_expr(key, f);
            each_expr(value, f);
            each_query_expr(query, f);
        }
        Expr::Call { fcn, params, .. } => {
            each_expr(fcn, f);
            for p in params {
                each_expr(p, f);
            }
        }
        Expr::UnaryExpr { expr, .. } => each_expr(expr, f),
        Expr::RefDot { refr, .. } => each_expr(refr, f),
        Expr::RefBrack { refr, index, .. } => {
            each_expr(refr, f);
            each_expr(index, f);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            each_expr(lhs, f);
            each_expr(rhs, f);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                each_expr(k, f);
            }
            each_expr(value, f);
            each_expr(collection, f);
        }
        _ => {}
    }
}

/// Calls `f` on every expression of a query: its literals, `with` modifiers, nested queries.
pub fn each_query_expr<'a>(q: &'a Query, f: &mut dyn FnMut(&'a Expr)) {
    for stmt in &q.stmts {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    each_expr(k, f);
                }
                each_expr(value, f);
                each_expr(collection, f);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => each_expr(expr, f),
            Literal::Every { domain, query, .. } => {
                each_expr(domain, f);
                each_query_expr(query, f);
            }
        }
        for w in &stmt.with_mods {
            each_expr(&w.refr, f);
            each_expr(&w.r#as, f);
        }
    }
}

/// Calls `f` on every expression of a rule: head (reference, key, value, arguments) and bodies.
pub fn each_rule_expr<'a>(rule: &'a Rule, f: &mut dyn FnMut(&'a Expr)) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    each_expr(refr, f);
                    if let Some(a) = assign {
                        each_expr(&a.value, f);
                    }
                }
                RuleHead::Set { refr, key, .. } => {
                    each_expr(refr, f);
                    if let Some(k) = key {
                        each_expr(k, f);
                    }
                }
                RuleHead::Func {
                    refr, args, assign, ..
                } => {
                    each_expr(refr, f);
                    for a in args {
                        each_expr(a, f);
                    }
                    if let Some(a) = assign {
                        each_expr(&a.value, f);
                    }
                }
            }
            for b in bodies {
                if let Some(a) = &b.assign {
                    each_expr(&a.value, f);
                }
                each_query_expr(&b.query, f);
            }
        }
        Rule::Default {
            refr, args, value, ..
        } => {
            each_expr(refr, f);
            for a in args {
                each_expr(a, f);
            }
            each_expr(value, f);
        }
    }
}

/// The name of a variable expression.
pub fn var_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Var { span, .. } => Some(span.text()),
        _ => None,
    }
}

/// The variables of an expression outside comprehensions (whose variables are their own),
/// with the expression that names each, in order of appearance.
pub fn vars_outside_comprehensions<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::Var { .. } => out.push(e),
        Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => {}
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            for i in items {
                vars_outside_comprehensions(i, out);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, k, v) in fields {
                vars_outside_comprehensions(k, out);
                vars_outside_comprehensions(v, out);
            }
        }
        Expr::Call { params, .. } => {
            for p in params {
                vars_outside_comprehensions(p, out);
            }
        }
        Expr::UnaryExpr { expr, .. } => vars_outside_comprehensions(expr, out),
        Expr::RefDot { refr, .. } => vars_outside_comprehensions(refr, out),
        Expr::RefBrack { refr, index, .. } => {
            vars_outside_comprehensions(refr, out);
            vars_outside_comprehensions(index, out);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            vars_outside_comprehensions(lhs, out);
            vars_outside_comprehensions(rhs, out);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                vars_outside_comprehensions(k, out);
            }
            vars_outside_comprehensions(value, out);
            vars_outside_comprehensions(collection, out);
        }
        _ => {}
    }
}
