//! The part of OPA's type checker that needs no type inference: a constant argument whose
//! kind a builtin cannot take (`upper(1)`, `count(1)`, `1 + "a"`, `{1} | [2]`) is refused at
//! load with OPA's `rego_type_error: upper: invalid argument(s)`, where regorus would fail (or be
//! undefined) at the first evaluation. The accepted kinds come from OPA's own declarations
//! (fixtures/opa-diff/opa-builtins.json).
//!
//! Not here: types that flow through variables, rules or data (`x := 1; upper(x)`); see
//! docs/compatibility.md.

use regorus::unstable::{ArithOp, BinOp, Expr, Module, Ref};

use super::CompileError;
use super::calls::{Callee, Index, Scope};
use super::walk;
use crate::policy::compat;

/// The kind of a constant expression, as OPA names it.
fn kind(e: &Expr) -> Option<&'static str> {
    Some(match e {
        Expr::String { .. } | Expr::RawString { .. } => "string",
        Expr::Number { .. } => "number",
        Expr::Bool { .. } => "boolean",
        Expr::Null { .. } => "null",
        Expr::Array { .. } | Expr::ArrayCompr { .. } => "array",
        Expr::Object { .. } | Expr::ObjectCompr { .. } => "object",
        Expr::Set { .. } | Expr::SetCompr { .. } => "set",
        _ => return None,
    })
}

/// Every constant argument of the wrong kind in the modules.
pub fn check(modules: &[Ref<Module>], index: &Index) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for m in modules {
        let scope = Scope::of(m, index);
        for rule in &m.policy {
            walk::each_rule_expr(rule, &mut |e| {
                if let Some((span, message)) = wrong_kind(&scope, e) {
                    errors.push(CompileError::type_error(span, message));
                }
            });
        }
    }
    errors
}

/// The builtin an expression calls (operators by OPA's name) and its arguments.
fn callee<'e>(scope: &Scope<'_>, e: &'e Expr) -> Option<(String, Vec<&'e Expr>)> {
    match e {
        Expr::Call { fcn, params, .. } => match scope.resolve(&walk::path(fcn)?) {
            Callee::Builtin(name) => Some((name, params.iter().map(|p| p.as_ref()).collect())),
            Callee::User(_) => None,
        },
        Expr::ArithExpr { op, lhs, rhs, .. } => {
            let name = match op {
                ArithOp::Add => "plus",
                ArithOp::Sub => "minus",
                ArithOp::Mul => "mul",
                ArithOp::Div => "div",
                ArithOp::Mod => "rem",
            };
            Some((name.to_string(), vec![lhs.as_ref(), rhs.as_ref()]))
        }
        Expr::BinExpr { op, lhs, rhs, .. } => {
            let name = match op {
                BinOp::Union => "or",
                BinOp::Intersection => "and",
            };
            Some((name.to_string(), vec![lhs.as_ref(), rhs.as_ref()]))
        }
        _ => None,
    }
}

fn wrong_kind<'e>(scope: &Scope<'_>, e: &'e Expr) -> Option<(&'e regorus::unstable::Span, String)> {
    let (name, args) = callee(scope, e)?;
    let decl = compat::opa_builtin(&name)?;
    for (i, arg) in args.iter().enumerate() {
        let (Some(have), Some(Some(want))) = (kind(arg), decl.arg_kinds.get(i)) else {
            continue;
        };
        if !want.contains(&have) {
            return Some((
                arg.span(),
                format!(
                    "{name}: invalid argument(s) (argument {} is {} {have}, want {})",
                    i + 1,
                    if have == "array" || have == "object" {
                        "an"
                    } else {
                        "a"
                    },
                    want.join(" or ")
                ),
            ));
        }
    }
    None
}
