//! `rego.parse_module(filename, text)` as OPA 1.20 answers it: the module parsed as Rego v1 and
//! given as OPA's AST in JSON (`package`, `imports`, `rules`, `comments`), each term as
//! `{"type": …, "value": …}`. regorus's parser does the parsing (it keeps the source's shape:
//! refs, calls, operators, `some … in`, `every`, `with`, `else`); this file maps its AST to OPA's:
//! operators become calls (`plus`, `equal`, `internal.member_2`, …), `_` becomes `$0`, `$1`, …
//! in source order, set elements and object keys are sorted as OPA sorts terms, rule heads get
//! OPA's `name`/`key`/`value` and `else` chains nest. Comments are read from the text (regorus's
//! lexer drops them) and their text is base64, as Go marshals a byte slice.
//!
//! Imports are read from the text (OPA takes them after rules and repeated, regorus does not),
//! template strings go through sluice's rewrite (`template_strings`) and back.
//!
//! Not here: locations and annotations (OPA's ParseModule leaves them out). Refused where OPA
//! parses: expressions more than [`MAX_DEPTH`] deep (regorus's AST overflows the stack when
//! dropped; every policy is held to this, `too_deep`), regorus's own limits (1024 columns a
//! line, 20000 lines, 1 MiB), and a rule named `input` or `data`, which
//! regorus's parser refuses.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use regorus::unstable::{
    ArithOp, AssignOp, BinOp, BoolOp, Expr, Literal, LiteralStmt, Parser, Query, Rule, RuleBody,
    RuleHead, Span,
};
use regorus::{Source, Value};

use super::{Args, Builtin, BuiltinError};

pub static BUILTINS: &[Builtin] = &[Builtin {
    name: "rego.parse_module",
    arity: 2,
    run: parse_module,
}];

/// How deep terms may nest before the module is refused: the mapping recurses, and a chain such
/// as `1 + 1 + … + 1` is as deep as it is long (regorus builds it without recursing).
const MAX_DEPTH: usize = 200;

/// Where a module's expressions nest deeper than [`MAX_DEPTH`], with the message to give: every
/// policy text is checked before regorus parses it (`policy::loader`), as its AST would overflow
/// the stack when dropped or evaluated (2,000 terms of `1 + 1 + …` abort a debug build's main
/// thread; worker threads have a quarter of its stack).
pub fn too_deep(text: &str) -> Option<(u32, String)> {
    let lexed = lex(text);
    (lexed.max_chain > MAX_DEPTH).then(|| {
        (
            lexed.max_chain_line,
            format!("expression nested more than {MAX_DEPTH} deep is not supported by sluice"),
        )
    })
}

fn parse_module(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let file = args.string(0)?;
    let text = args.string(1)?;
    let parse_error = |line: u32, message: &str| {
        args.error(format!(
            "1 error occurred: {file}:{line}: rego_parse_error: {message}"
        ))
    };
    let lexed = lex(text);
    if lexed.max_chain > MAX_DEPTH {
        // regorus builds an operator chain without recursing but drops it recursively: a long
        // enough one overflows the stack, so it is refused before it is parsed.
        return Err(parse_error(
            1,
            &format!("expression nested more than {MAX_DEPTH} deep is not supported by sluice"),
        ));
    }
    let (blanked, text_imports) =
        take_imports(text, &lexed).map_err(|(line, m)| parse_error(line, &m))?;
    // Template strings become `internal.template_string([…])` calls, as when sluice loads a
    // policy; the mapping turns them back into OPA's `templatestring` terms.
    let rewritten = crate::policy::template_strings::rewrite(&blanked)
        .map_err(|e| parse_error(e.line, e.message.trim_start_matches("rego_parse_error: ")))?;
    let source = Source::from_contents(file.to_string(), rewritten.to_string())
        .map_err(|e| parse_error(1, &e.to_string()))?;
    let module = Parser::new(&source)
        .and_then(|mut p| {
            p.enable_rego_v1()?;
            p.parse()
        })
        .map_err(|e| {
            let e = crate::policy::loader::LoadError::from_engine(&e.to_string(), file);
            parse_error(e.line.max(1), &e.message)
        })?;
    let mut conv = Conv {
        text: &rewritten,
        templates: &lexed.templates,
        wildcards: 0,
        depth: 0,
    };
    let mut doc = conv
        .module(&module, text_imports)
        .map_err(|(line, message)| parse_error(line, &message))?;
    let comments = comments_json(file, &lexed);
    if !comments.is_empty() {
        doc.push(("comments", Value::from(comments)));
    }
    Ok(obj(doc))
}

/// A failure while mapping: line and message, worded as OPA words the same parse error.
type Fail = (u32, String);

/// One term of OPA's AST, before it is written as `{"type", "value"}`. Kept as a tree so that
/// sets and objects can be sorted as OPA compares terms.
#[derive(Clone, Debug)]
enum Term {
    Null,
    Bool(bool),
    Number(Value),
    String(String),
    Var(String),
    Ref(Vec<Term>),
    Array(Vec<Term>),
    Object(Vec<(Term, Term)>),
    Set(Vec<Term>),
    ArrayCompr(Box<Term>, Vec<Lit>),
    ObjectCompr(Box<Term>, Box<Term>, Vec<Lit>),
    SetCompr(Box<Term>, Vec<Lit>),
    Call(Vec<Term>),
    Template(bool, Vec<Part>),
}

/// A part of a template string: its text and constants are terms, other expressions are
/// expressions (OPA's `Expr`, index 0).
#[derive(Clone, Debug)]
enum Part {
    Term(Term),
    Expr(Lit),
}

/// One expression of a body (OPA's `Expr`); its `index` is its place in the body.
#[derive(Clone, Debug)]
struct Lit {
    negated: bool,
    terms: Terms,
    with: Vec<(Term, Term)>,
}

#[derive(Clone, Debug)]
enum Terms {
    One(Term),
    Call(Vec<Term>),
    Some(Vec<Term>),
    Every {
        key: Option<Term>,
        value: Term,
        domain: Term,
        body: Vec<Lit>,
    },
}

#[derive(Clone, Debug)]
struct Head {
    name: Option<String>,
    reference: Vec<Term>,
    args: Vec<Term>,
    key: Option<Term>,
    value: Option<Term>,
    assign: bool,
}

struct OpaRule {
    default: bool,
    head: Head,
    body: Vec<Lit>,
    els: Option<Box<OpaRule>>,
}

struct Conv<'t> {
    /// The text regorus parsed (imports blanked, template strings rewritten).
    text: &'t str,
    /// Whether each template string is a raw one, in order.
    templates: &'t [bool],
    /// The next `$N` for a `_`: OPA numbers wildcards as its parser meets them.
    wildcards: usize,
    depth: usize,
}

fn obj(fields: Vec<(&str, Value)>) -> Value {
    let map: BTreeMap<Value, Value> = fields
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect();
    Value::from(map)
}

fn var(name: &str) -> Term {
    Term::Var(name.to_string())
}

/// `[name]` or `[a, "b", …]` for an operator or a dotted builtin name.
fn op(name: &str) -> Term {
    let mut parts = name.split('.');
    let mut out = vec![var(parts.next().unwrap_or(name))];
    out.extend(parts.map(|p| Term::String(p.to_string())));
    Term::Ref(out)
}

impl Conv<'_> {
    fn wildcard(&mut self) -> Term {
        let t = Term::Var(format!("${}", self.wildcards));
        self.wildcards += 1;
        t
    }

    /// A variable by name, `_` made a fresh wildcard.
    fn var_named(&mut self, name: &str) -> Term {
        if name == "_" {
            self.wildcard()
        } else {
            var(name)
        }
    }

    fn enter(&mut self, span: &Span) -> Result<(), Fail> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err((
                span.line,
                format!("term nested more than {MAX_DEPTH} deep is not supported by sluice"),
            ));
        }
        Ok(())
    }

    fn module(
        &mut self,
        m: &regorus::unstable::Module,
        text_imports: Vec<TextImport>,
    ) -> Result<Vec<(&'static str, Value)>, Fail> {
        let mut out = Vec::new();
        let mut path = vec![var("data")];
        for t in self.ref_parts(&m.package.refr)? {
            // The package's first name is a string under `data`.
            path.push(match t {
                Term::Var(v) => Term::String(v),
                t => t,
            });
        }
        out.push(("package", obj(vec![("path", terms_json(&path))])));
        let mut imports: Vec<(u32, Value)> = Vec::new();
        for i in &m.imports {
            let path = Term::Ref(self.ref_parts(&i.refr)?);
            let mut fields = vec![("path", path.json())];
            if let Some(alias) = &i.r#as {
                fields.push(("alias", Value::from(alias.text())));
            }
            imports.push((i.span.line, obj(fields)));
        }
        for i in text_imports {
            let mut fields = vec![("path", Term::Ref(i.path).json())];
            if let Some(alias) = i.alias {
                fields.push(("alias", Value::from(alias)));
            }
            imports.push((i.line, obj(fields)));
        }
        // In the order of the text (a stable sort keeps one line's imports in order).
        imports.sort_by_key(|i| i.0);
        if !imports.is_empty() {
            out.push((
                "imports",
                Value::from(imports.into_iter().map(|i| i.1).collect::<Vec<_>>()),
            ));
        }
        let mut rules = Vec::new();
        for r in &m.policy {
            for rule in self.rule(r)? {
                rules.push(rule.json());
            }
        }
        if !rules.is_empty() {
            out.push(("rules", Value::from(rules)));
        }
        Ok(out)
    }

    /// One regorus rule as OPA's rules: one, or several for `p if { … } { … }`.
    fn rule(&mut self, r: &Rule) -> Result<Vec<OpaRule>, Fail> {
        match r {
            Rule::Default {
                refr,
                args,
                op,
                value,
                ..
            } => {
                let reference = self.ref_parts(refr)?;
                let mut head_args = Vec::new();
                for a in args {
                    head_args.push(self.term(a)?);
                }
                let value = self.term(value)?;
                if let Some(kind) = default_value_error(&value) {
                    return Err((
                        r.span().line,
                        format!("illegal default rule (value cannot contain {kind})"),
                    ));
                }
                let name = single_name(&reference);
                Ok(vec![OpaRule {
                    default: true,
                    head: Head {
                        name,
                        reference,
                        args: head_args,
                        key: None,
                        value: Some(value),
                        assign: matches!(op, AssignOp::ColEq),
                    },
                    body: true_body(),
                    els: None,
                }])
            }
            Rule::Spec { span, head, bodies } => self.spec_rule(span, head, bodies),
        }
    }

    fn spec_rule(
        &mut self,
        span: &Span,
        head: &RuleHead,
        bodies: &[RuleBody],
    ) -> Result<Vec<OpaRule>, Fail> {
        let (refr, args, assign, key, contains) = match head {
            RuleHead::Compr { refr, assign, .. } => (refr, &[][..], assign.as_ref(), None, false),
            RuleHead::Func {
                refr, args, assign, ..
            } => (refr, &args[..], assign.as_ref(), None, false),
            RuleHead::Set { refr, key, .. } => {
                if let Some(k) = key {
                    // regorus reads v0's `p[x]` as `p contains x`; OPA (v1) refuses it.
                    let between = self
                        .text
                        .get(refr.span().end as usize..k.span().start as usize)
                        .unwrap_or("");
                    if between.trim() == "[" {
                        return Err((
                            span.line,
                            "`contains` keyword is required for partial set rules".into(),
                        ));
                    }
                }
                (refr, &[][..], None, key.as_ref(), true)
            }
        };
        let mut h = Head {
            name: None,
            reference: self.ref_parts(refr)?,
            args: Vec::new(),
            key: None,
            value: None,
            assign: false,
        };
        for a in args {
            h.args.push(self.term(a)?);
        }
        if let Some(k) = key {
            h.key = Some(self.term(k)?);
        }
        if let Some(a) = assign {
            h.value = Some(self.term(&a.value)?);
            h.assign = matches!(a.op, AssignOp::ColEq);
        }
        h.name = single_name(&h.reference);
        let is_func = matches!(head, RuleHead::Func { .. });
        if !contains && h.value.is_none() && h.key.is_none() && (h.reference.len() != 2 || is_func)
        {
            h.value = Some(Term::Bool(true));
        }
        let has_if = !bodies.is_empty();
        // OPA's ParseModule: `p[x] if …` is a single-value rule with key x; `p[x] := v` (no if)
        // keeps the name p and the key, as v0 wrote it.
        if has_if && !contains && h.reference.len() == 2 {
            let last = h.reference[1].clone();
            if (!last.is_ground() || matches!(last, Term::Ref(_))) && !is_func {
                h.key = Some(last);
            }
            if h.value.is_none() {
                h.value = Some(Term::Bool(true));
            } else if let Term::Var(v) = &h.reference[0] {
                h.name = Some(v.clone());
            }
        }
        if !has_if && !contains && !is_func && h.reference.len() == 2 {
            if let Term::Var(v) = &h.reference[0] {
                h.name = Some(v.clone());
            }
            h.key = Some(h.reference[1].clone());
            if h.value.is_none() {
                h.reference.truncate(1);
            }
        }
        let Some((first, rest)) = bodies.split_first() else {
            return Ok(vec![OpaRule {
                default: false,
                head: h,
                body: true_body(),
                els: None,
            }]);
        };
        let body = self.query(&first.query)?;
        if rest.first().is_some_and(|b| b.is_else) {
            if h.reference.len() > 1 && !h.reference[1..].iter().all(Term::is_ground) {
                return Err((
                    rest[0].span.line,
                    "else keyword cannot be used on rules with variables in head".into(),
                ));
            }
            if h.key.is_some() {
                return Err((
                    rest[0].span.line,
                    "else keyword cannot be used on multi-value rules".into(),
                ));
            }
            let els = self.else_chain(&h, rest)?;
            return Ok(vec![OpaRule {
                default: false,
                head: h,
                body,
                els,
            }]);
        }
        let mut out = vec![OpaRule {
            default: false,
            head: h.clone(),
            body,
            els: None,
        }];
        for b in rest {
            let body = self.query(&b.query)?;
            // Each further body gets a copy of the head, its `_` arguments renamed after it.
            let mut head = h.clone();
            self.renew_wildcard_args(&mut head);
            out.push(OpaRule {
                default: false,
                head,
                body,
                els: None,
            });
        }
        Ok(out)
    }

    /// `else` bodies as OPA nests them, each with a copy of the first head.
    fn else_chain(
        &mut self,
        head: &Head,
        bodies: &[RuleBody],
    ) -> Result<Option<Box<OpaRule>>, Fail> {
        let Some((b, rest)) = bodies.split_first() else {
            return Ok(None);
        };
        let mut h = head.clone();
        self.renew_wildcard_args(&mut h);
        match &b.assign {
            Some(a) => {
                h.value = Some(self.term(&a.value)?);
                h.assign = matches!(a.op, AssignOp::ColEq);
            }
            // `else if …` / `else { … }`: the value is true; OPA keeps the head's `:=`.
            None => h.value = Some(Term::Bool(true)),
        }
        let body = if b.query.stmts.is_empty() {
            true_body()
        } else {
            self.query(&b.query)?
        };
        let els = self.else_chain(head, rest)?;
        Ok(Some(Box::new(OpaRule {
            default: false,
            head: h,
            body,
            els,
        })))
    }

    fn renew_wildcard_args(&mut self, h: &mut Head) {
        for a in &mut h.args {
            if matches!(a, Term::Var(v) if v.starts_with('$')) {
                *a = self.wildcard();
            }
        }
    }

    fn query(&mut self, q: &Query) -> Result<Vec<Lit>, Fail> {
        let mut out = Vec::with_capacity(q.stmts.len());
        for s in &q.stmts {
            out.push(self.literal(s)?);
        }
        Ok(out)
    }

    fn literal(&mut self, s: &LiteralStmt) -> Result<Lit, Fail> {
        let (negated, terms) = match &s.literal {
            Literal::SomeVars { vars, .. } => {
                let mut symbols = Vec::new();
                for v in vars {
                    symbols.push(self.var_named(v.text()));
                }
                (false, Terms::Some(symbols))
            }
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                let call = self.membership(key.as_ref(), value, collection)?;
                (false, Terms::Some(vec![Term::Call(call)]))
            }
            Literal::Expr { expr, .. } => (false, self.top(expr)?),
            Literal::NotExpr { expr, .. } => (true, self.top(expr)?),
            Literal::Every {
                key,
                value,
                domain,
                query,
                ..
            } => {
                let key = key.as_ref().map(|k| self.var_named(k.text()));
                let value = self.var_named(value.text());
                let domain = self.term(domain)?;
                let body = self.query(query)?;
                (
                    false,
                    Terms::Every {
                        key,
                        value,
                        domain,
                        body,
                    },
                )
            }
        };
        let mut with = Vec::new();
        for w in &s.with_mods {
            // As any term: `input.a` is a ref, a bare `count` (a function mocked) a var.
            let target = self.term(&w.refr)?;
            let value = self.term(&w.r#as)?;
            with.push((target, value));
        }
        Ok(Lit {
            negated,
            terms,
            with,
        })
    }

    /// An expression standing as a literal: a call or an operator is written as its terms
    /// (`[operator, operands…]`), anything else as one term.
    fn top(&mut self, e: &Expr) -> Result<Terms, Fail> {
        Ok(match self.term(e)? {
            Term::Call(parts) => Terms::Call(parts),
            t => Terms::One(t),
        })
    }

    fn membership(
        &mut self,
        key: Option<&regorus::unstable::Ref<Expr>>,
        value: &Expr,
        collection: &Expr,
    ) -> Result<Vec<Term>, Fail> {
        let mut out = vec![op(if key.is_some() {
            "internal.member_3"
        } else {
            "internal.member_2"
        })];
        if let Some(k) = key {
            out.push(self.term(k)?);
        }
        out.push(self.term(value)?);
        out.push(self.term(collection)?);
        Ok(out)
    }

    fn term(&mut self, e: &Expr) -> Result<Term, Fail> {
        self.enter(e.span())?;
        let t = self.term_inner(e);
        self.depth -= 1;
        t
    }

    fn term_inner(&mut self, e: &Expr) -> Result<Term, Fail> {
        Ok(match e {
            Expr::String { value, .. } | Expr::RawString { value, .. } => {
                Term::String(value.as_string().map(|s| s.to_string()).unwrap_or_default())
            }
            Expr::Number { value, .. } => Term::Number(value.clone()),
            Expr::Bool { value, .. } => Term::Bool(value == &Value::from(true)),
            Expr::Null { .. } => Term::Null,
            Expr::Var { span, .. } => match span.text() {
                // OPA reads a bare root document as a one-element ref.
                name @ ("input" | "data") => Term::Ref(vec![var(name)]),
                name => self.var_named(name),
            },
            Expr::Array { items, .. } => Term::Array(self.terms(items)?),
            Expr::Set { items, .. } => {
                let mut items = self.terms(items)?;
                items.sort_by(compare);
                items.dedup_by(|a, b| compare(a, b) == Ordering::Equal);
                Term::Set(items)
            }
            Expr::Object { fields, .. } => {
                let mut out = Vec::with_capacity(fields.len());
                for (_, k, v) in fields {
                    let k = self.term(k)?;
                    let v = self.term(v)?;
                    out.push((k, v));
                }
                out.sort_by(|a, b| compare(&a.0, &b.0));
                Term::Object(out)
            }
            Expr::ArrayCompr { term, query, .. } => {
                let t = self.term(term)?;
                Term::ArrayCompr(Box::new(t), self.query(query)?)
            }
            Expr::SetCompr { term, query, .. } => {
                let t = self.term(term)?;
                Term::SetCompr(Box::new(t), self.query(query)?)
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                let k = self.term(key)?;
                let v = self.term(value)?;
                Term::ObjectCompr(Box::new(k), Box::new(v), self.query(query)?)
            }
            Expr::Call {
                span, fcn, params, ..
            } if is_template_call(fcn, params) => self.template(span, params)?,
            Expr::Call { fcn, params, .. } => {
                let mut out = vec![Term::Ref(self.ref_parts(fcn)?)];
                out.extend(self.terms(params)?);
                Term::Call(out)
            }
            Expr::UnaryExpr { span, expr, .. } => self.negative(span, expr)?,
            Expr::RefDot { .. } | Expr::RefBrack { .. } => Term::Ref(self.ref_parts(e)?),
            Expr::BinExpr {
                op: o, lhs, rhs, ..
            } => self.call(
                match o {
                    BinOp::Intersection => "and",
                    BinOp::Union => "or",
                },
                &[lhs, rhs],
            )?,
            Expr::BoolExpr {
                op: o, lhs, rhs, ..
            } => self.call(
                match o {
                    BoolOp::Lt => "lt",
                    BoolOp::Le => "lte",
                    BoolOp::Eq => "equal",
                    BoolOp::Ge => "gte",
                    BoolOp::Gt => "gt",
                    BoolOp::Ne => "neq",
                },
                &[lhs, rhs],
            )?,
            Expr::ArithExpr {
                op: o, lhs, rhs, ..
            } => self.call(
                match o {
                    ArithOp::Add => "plus",
                    ArithOp::Sub => "minus",
                    ArithOp::Mul => "mul",
                    ArithOp::Div => "div",
                    ArithOp::Mod => "rem",
                },
                &[lhs, rhs],
            )?,
            Expr::AssignExpr {
                op: o, lhs, rhs, ..
            } => self.call(
                match o {
                    AssignOp::Eq => "eq",
                    AssignOp::ColEq => "assign",
                },
                &[lhs, rhs],
            )?,
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => Term::Call(self.membership(key.as_ref(), value, collection)?),
            #[allow(unreachable_patterns)]
            _ => return Err((e.span().line, "unexpected expression".into())),
        })
    }

    /// `internal.template_string([…])` as sluice's rewrite wrote it, back to OPA's term: each
    /// `[t | t := (expr)]` is the expression `expr`.
    fn template(
        &mut self,
        span: &Span,
        params: &[regorus::unstable::Ref<Expr>],
    ) -> Result<Term, Fail> {
        let before = self.text.get(..span.start as usize).unwrap_or("");
        let nth = before.matches(TEMPLATE_CALL).count();
        let mut raw = self.templates.get(nth).copied().unwrap_or(false);
        let mut parts = Vec::new();
        if let Some(Expr::Array { items, .. }) = params.first().map(|p| p.as_ref()) {
            for item in items {
                let part = match item.as_ref() {
                    Expr::ArrayCompr { query, .. } if query.stmts.len() == 1 => {
                        match &query.stmts[0].literal {
                            Literal::Expr { expr, .. } => match expr.as_ref() {
                                Expr::AssignExpr { rhs, .. } => match self.top(rhs)? {
                                    Terms::One(
                                        t @ (Term::Null
                                        | Term::Bool(_)
                                        | Term::Number(_)
                                        | Term::String(_)),
                                    ) => Part::Term(t),
                                    terms => Part::Expr(Lit {
                                        negated: false,
                                        terms,
                                        with: Vec::new(),
                                    }),
                                },
                                other => Part::Term(self.term(other)?),
                            },
                            _ => Part::Term(self.term(item)?),
                        }
                    }
                    other => {
                        raw |= matches!(other, Expr::RawString { .. });
                        Part::Term(self.term(other)?)
                    }
                };
                parts.push(part);
            }
        }
        Ok(Term::Template(raw, parts))
    }

    fn call(
        &mut self,
        name: &str,
        operands: &[&regorus::unstable::Ref<Expr>],
    ) -> Result<Term, Fail> {
        let mut out = vec![op(name)];
        for o in operands {
            out.push(self.term(o)?);
        }
        Ok(Term::Call(out))
    }

    fn terms(&mut self, items: &[regorus::unstable::Ref<Expr>]) -> Result<Vec<Term>, Fail> {
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            out.push(self.term(i)?);
        }
        Ok(out)
    }

    /// `-x`: regorus reads the rest of the operator chain after `-`; OPA negates only the first
    /// operand (a number literal becomes negative, anything else `minus(0, x)`), so the sign is
    /// pushed down to the leftmost operand.
    fn negative(&mut self, span: &Span, inner: &Expr) -> Result<Term, Fail> {
        let t = self.term(inner)?;
        let leftmost = leftmost_operand(inner);
        let between = self
            .text
            .get(span.start as usize + 1..leftmost.span().start as usize)
            .unwrap_or("");
        if between.contains('(') {
            return Err((span.line, "unexpected ( token: expected number".into()));
        }
        Ok(negate_leftmost(t, inner))
    }

    /// A ref (`a.b[c]`, `f(x).y`) as its parts, the chain walked without recursion.
    fn ref_parts(&mut self, e: &Expr) -> Result<Vec<Term>, Fail> {
        let mut rev: Vec<&Expr> = Vec::new();
        let mut cur = e;
        while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = cur {
            rev.push(cur);
            cur = refr;
        }
        let head = match cur {
            Expr::Var { span, .. } => self.var_named(span.text()),
            other => self.term(other)?,
        };
        let mut out = vec![head];
        for part in rev.into_iter().rev() {
            match part {
                Expr::RefDot { field, .. } => out.push(Term::String(
                    field
                        .1
                        .as_string()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                )),
                Expr::RefBrack { index, .. } => out.push(self.term(index)?),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// What sluice's template rewrite calls (`template_strings`).
const TEMPLATE_CALL: &str = "internal.template_string([";

fn is_template_call(fcn: &Expr, params: &[regorus::unstable::Ref<Expr>]) -> bool {
    let name = matches!(fcn, Expr::RefDot { refr, field, .. }
        if field.1 == Value::from("template_string")
            && matches!(refr.as_ref(), Expr::Var { span, .. } if span.text() == "internal"));
    name && matches!(params, [p] if matches!(p.as_ref(), Expr::Array { .. }))
}

/// What OPA's parser refuses in a default rule's value: a var, ref or call outside a
/// comprehension (validateDefaultRuleValue).
fn default_value_error(t: &Term) -> Option<&'static str> {
    match t {
        Term::Var(_) => Some("var"),
        Term::Ref(_) => Some("ref"),
        Term::Call(_) => Some("call"),
        Term::Array(items) | Term::Set(items) => items.iter().find_map(default_value_error),
        Term::Object(fields) => fields
            .iter()
            .find_map(|(k, v)| default_value_error(k).or_else(|| default_value_error(v))),
        Term::Template(_, parts) => parts.iter().find_map(|p| match p {
            Part::Term(t) => default_value_error(t),
            Part::Expr(_) => Some("var"),
        }),
        _ => None,
    }
}

/// The first operand of an operator chain (`a` in `a * b + c`), where OPA's unary minus binds.
fn leftmost_operand(e: &Expr) -> &Expr {
    let mut cur = e;
    loop {
        match cur {
            Expr::ArithExpr { lhs, .. }
            | Expr::BoolExpr { lhs, .. }
            | Expr::BinExpr { lhs, .. } => cur = lhs,
            Expr::Membership { key: Some(k), .. } => cur = k,
            Expr::Membership { value, .. } => cur = value,
            _ => return cur,
        }
    }
}

/// `t` (the mapped `e`) with its leftmost operand negated.
fn negate_leftmost(t: Term, e: &Expr) -> Term {
    let operator = matches!(
        e,
        Expr::ArithExpr { .. }
            | Expr::BoolExpr { .. }
            | Expr::BinExpr { .. }
            | Expr::Membership { .. }
    );
    if operator {
        if let Term::Call(mut parts) = t {
            let (next, inner): (usize, &Expr) = match e {
                Expr::ArithExpr { lhs, .. }
                | Expr::BoolExpr { lhs, .. }
                | Expr::BinExpr { lhs, .. } => (1, lhs),
                Expr::Membership { key: Some(k), .. } => (1, k),
                Expr::Membership { value, .. } => (1, value),
                _ => return Term::Call(parts),
            };
            if let Some(slot) = parts.get_mut(next) {
                let old = std::mem::replace(slot, Term::Null);
                *slot = negate_leftmost(old, inner);
            }
            return Term::Call(parts);
        }
        return t;
    }
    match t {
        // A number literal takes the sign, as OPA's parser reads `- 1` as `-1`.
        Term::Number(Value::Number(n)) => match Value::from(0u64) {
            Value::Number(zero) => match zero.sub(&n) {
                Ok(m) => Term::Number(Value::Number(m)),
                Err(_) => Term::Number(Value::Number(n)),
            },
            _ => Term::Number(Value::Number(n)),
        },
        other => Term::Call(vec![op("minus"), Term::Number(Value::from(0)), other]),
    }
}

/// The rule name OPA gives a one-part head (`p`, `f(x)`); none for `a.b`.
fn single_name(reference: &[Term]) -> Option<String> {
    match reference {
        [Term::Var(v)] => Some(v.clone()),
        _ => None,
    }
}

/// The body OPA gives a rule written without one: `true`.
fn true_body() -> Vec<Lit> {
    vec![Lit {
        negated: false,
        terms: Terms::One(Term::Bool(true)),
        with: Vec::new(),
    }]
}

impl Term {
    fn is_ground(&self) -> bool {
        match self {
            Term::Null | Term::Bool(_) | Term::Number(_) | Term::String(_) => true,
            Term::Array(items) | Term::Set(items) => items.iter().all(Term::is_ground),
            Term::Object(fields) => fields.iter().all(|(k, v)| k.is_ground() && v.is_ground()),
            _ => false,
        }
    }

    /// OPA's order of term kinds (ast.Compare's sortOrder).
    fn rank(&self) -> u8 {
        match self {
            Term::Null => 0,
            Term::Bool(_) => 1,
            Term::Number(_) => 2,
            Term::String(_) => 3,
            Term::Var(_) => 4,
            Term::Ref(_) => 5,
            Term::Array(_) => 6,
            Term::Object(_) => 7,
            Term::Set(_) => 8,
            Term::ArrayCompr(..) => 9,
            Term::ObjectCompr(..) => 10,
            Term::SetCompr(..) => 11,
            Term::Call(_) => 12,
            Term::Template(..) => 13,
        }
    }

    fn json(&self) -> Value {
        let (kind, value) = match self {
            // Go marshals OPA's Null as an empty object.
            Term::Null => ("null", Value::new_object()),
            Term::Bool(b) => ("boolean", Value::from(*b)),
            Term::Number(n) => ("number", n.clone()),
            Term::String(s) => ("string", Value::from(s.as_str())),
            Term::Var(v) => ("var", Value::from(v.as_str())),
            Term::Ref(parts) => ("ref", terms_json(parts)),
            Term::Array(items) => ("array", terms_json(items)),
            Term::Set(items) => ("set", terms_json(items)),
            Term::Call(parts) => ("call", terms_json(parts)),
            Term::Object(fields) => (
                "object",
                Value::from(
                    fields
                        .iter()
                        .map(|(k, v)| Value::from(vec![k.json(), v.json()]))
                        .collect::<Vec<_>>(),
                ),
            ),
            Term::ArrayCompr(t, body) => (
                "arraycomprehension",
                obj(vec![("term", t.json()), ("body", body_json(body))]),
            ),
            Term::SetCompr(t, body) => (
                "setcomprehension",
                obj(vec![("term", t.json()), ("body", body_json(body))]),
            ),
            Term::Template(raw, parts) => (
                "templatestring",
                obj(vec![
                    ("multi_line", Value::from(*raw)),
                    (
                        "parts",
                        if parts.is_empty() {
                            Value::Null
                        } else {
                            Value::from(
                                parts
                                    .iter()
                                    .map(|p| match p {
                                        Part::Term(t) => t.json(),
                                        Part::Expr(l) => l.json(0),
                                    })
                                    .collect::<Vec<_>>(),
                            )
                        },
                    ),
                ]),
            ),
            Term::ObjectCompr(k, v, body) => (
                "objectcomprehension",
                obj(vec![
                    ("key", k.json()),
                    ("value", v.json()),
                    ("body", body_json(body)),
                ]),
            ),
        };
        obj(vec![("type", Value::from(kind)), ("value", value)])
    }
}

fn terms_json(items: &[Term]) -> Value {
    Value::from(items.iter().map(Term::json).collect::<Vec<_>>())
}

fn body_json(body: &[Lit]) -> Value {
    Value::from(
        body.iter()
            .enumerate()
            .map(|(i, l)| l.json(i))
            .collect::<Vec<_>>(),
    )
}

impl Lit {
    fn json(&self, index: usize) -> Value {
        let terms = match &self.terms {
            Terms::One(t) => t.json(),
            Terms::Call(parts) => terms_json(parts),
            Terms::Some(symbols) => obj(vec![("symbols", terms_json(symbols))]),
            Terms::Every {
                key,
                value,
                domain,
                body,
            } => obj(vec![
                ("key", key.as_ref().map_or(Value::Null, Term::json)),
                ("value", value.json()),
                ("domain", domain.json()),
                ("body", body_json(body)),
            ]),
        };
        let mut fields = vec![("index", Value::from(index)), ("terms", terms)];
        if self.negated {
            fields.push(("negated", Value::from(true)));
        }
        if !self.with.is_empty() {
            let with = self
                .with
                .iter()
                .map(|(t, v)| obj(vec![("target", t.json()), ("value", v.json())]))
                .collect::<Vec<_>>();
            fields.push(("with", Value::from(with)));
        }
        obj(fields)
    }
}

impl OpaRule {
    fn json(&self) -> Value {
        let h = &self.head;
        let mut head = vec![("ref", terms_json(&h.reference))];
        if let Some(n) = &h.name {
            head.push(("name", Value::from(n.as_str())));
        }
        if !h.args.is_empty() {
            head.push(("args", terms_json(&h.args)));
        }
        if let Some(k) = &h.key {
            head.push(("key", k.json()));
        }
        if let Some(v) = &h.value {
            head.push(("value", v.json()));
        }
        if h.assign {
            head.push(("assign", Value::from(true)));
        }
        let mut fields = vec![("head", obj(head)), ("body", body_json(&self.body))];
        if self.default {
            fields.push(("default", Value::from(true)));
        }
        if let Some(e) = &self.els {
            fields.push(("else", e.json()));
        }
        obj(fields)
    }
}

/// OPA's ast.Compare on terms: kinds in their order, then by value.
fn compare(a: &Term, b: &Term) -> Ordering {
    let (ra, rb) = (a.rank(), b.rank());
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Term::Bool(x), Term::Bool(y)) => x.cmp(y),
        (Term::Number(x), Term::Number(y)) => x.cmp(y),
        (Term::String(x), Term::String(y)) | (Term::Var(x), Term::Var(y)) => x.cmp(y),
        (Term::Ref(x), Term::Ref(y))
        | (Term::Array(x), Term::Array(y))
        | (Term::Set(x), Term::Set(y))
        | (Term::Call(x), Term::Call(y)) => compare_slices(x, y),
        (Term::Object(x), Term::Object(y)) => {
            for ((ka, va), (kb, vb)) in x.iter().zip(y) {
                let c = compare(ka, kb).then_with(|| compare(va, vb));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Term::ArrayCompr(x, _), Term::ArrayCompr(y, _))
        | (Term::SetCompr(x, _), Term::SetCompr(y, _)) => compare(x, y),
        (Term::ObjectCompr(kx, vx, _), Term::ObjectCompr(ky, vy, _)) => {
            compare(kx, ky).then_with(|| compare(vx, vy))
        }
        _ => Ordering::Equal,
    }
}

fn compare_slices(x: &[Term], y: &[Term]) -> Ordering {
    for (a, b) in x.iter().zip(y) {
        let c = compare(a, b);
        if c != Ordering::Equal {
            return c;
        }
    }
    x.len().cmp(&y.len())
}

/// What a walk over the text finds that regorus's lexer does not keep.
#[derive(Default)]
struct Lexed<'a> {
    /// Line, column (in characters, as OPA counts) and the text after `#`.
    comments: Vec<(u32, u32, &'a str)>,
    /// For each template string, in order: whether it is a raw one (`` $`…` ``).
    templates: Vec<bool>,
    /// Byte offsets of the lines that start outside any string, template or bracket.
    top_lines: Vec<usize>,
    /// An upper bound of how deep regorus's AST gets: operators in a chain (`1 + 1 + …`,
    /// `a in b in …`) plus those of the enclosing brackets.
    max_chain: usize,
    /// The line where `max_chain` was first reached.
    max_chain_line: u32,
}

/// Walks Rego text as OPA's scanner does for strings, raw strings, template strings and
/// comments (a comment inside a template expression counts), and tracks expression depth.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
    col: u32,
    out: Lexed<'a>,
    /// Operators so far in the current chain, and in the chains of the enclosing brackets.
    chain: usize,
    outer_chains: Vec<usize>,
    outer_sum: usize,
    /// Whether the last token was an operator (a newline then continues the expression).
    after_op: bool,
}

fn lex(text: &str) -> Lexed<'_> {
    let mut s = Scanner {
        text,
        pos: 0,
        line: 1,
        col: 1,
        chain: 0,
        outer_chains: Vec::new(),
        outer_sum: 0,
        after_op: false,
        out: Lexed {
            top_lines: vec![0],
            ..Lexed::default()
        },
    };
    s.code(None, true);
    s.out
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<char> {
        // Rego is nearly all ASCII: decode only the rest (every policy is scanned at load).
        match *self.text.as_bytes().get(self.pos)? {
            b if b.is_ascii() => Some(char::from(b)),
            _ => self.text.get(self.pos..).and_then(|t| t.chars().next()),
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// Skips the ASCII bytes `keep` accepts (never a newline): the bulk of a module, without a
    /// character decoded at a time.
    fn skip_ascii(&mut self, keep: impl Fn(u8) -> bool) {
        let rest = &self.text.as_bytes()[self.pos.min(self.text.len())..];
        let n = rest
            .iter()
            .take_while(|&&b| b.is_ascii() && b != b'\n' && keep(b))
            .count();
        self.pos += n;
        self.col += n as u32;
    }

    fn note_depth(&mut self) {
        let d = self.outer_sum + self.chain + self.outer_chains.len();
        if d > self.out.max_chain {
            self.out.max_chain = d;
            self.out.max_chain_line = self.line;
        }
    }

    fn operator(&mut self) {
        self.chain += 1;
        self.after_op = true;
        self.note_depth();
    }

    fn open(&mut self) {
        self.outer_chains.push(self.chain);
        self.outer_sum += self.chain;
        self.chain = 0;
        self.after_op = false;
        self.note_depth();
    }

    fn close(&mut self) {
        self.chain = self.outer_chains.pop().unwrap_or(0);
        self.outer_sum = self.outer_sum.saturating_sub(self.chain);
        self.after_op = false;
    }

    /// Code up to `close` at depth 0 (consumed), or to the end.
    fn code(&mut self, close: Option<char>, top: bool) {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                '#' => {
                    let (line, col) = (self.line, self.col);
                    let end = self.text[self.pos..]
                        .find('\n')
                        .map_or(self.text.len(), |n| self.pos + n);
                    let body = &self.text[self.pos + 1..end];
                    self.out
                        .comments
                        .push((line, col, body.strip_suffix('\r').unwrap_or(body)));
                    // No newline before `end`: only the column moves.
                    self.col += self.text[self.pos..end].chars().count() as u32;
                    self.pos = end;
                }
                '"' => {
                    self.after_op = false;
                    self.bump();
                    self.string();
                }
                '`' => {
                    self.after_op = false;
                    self.bump();
                    self.raw();
                }
                '$' if matches!(self.text[self.pos + 1..].chars().next(), Some('"' | '`')) => {
                    self.after_op = false;
                    self.bump();
                    let raw = self.bump() == Some('`');
                    self.out.templates.push(raw);
                    self.template(raw);
                }
                '+' | '-' | '*' | '/' | '%' | '&' | '|' | '<' | '>' | '=' | '!' => {
                    while matches!(
                        self.peek(),
                        Some('+' | '-' | '*' | '/' | '%' | '&' | '|' | '<' | '>' | '=' | '!')
                    ) {
                        self.bump();
                    }
                    self.operator();
                }
                ':' => {
                    self.bump();
                    if self.peek() == Some('=') {
                        self.bump();
                        self.operator();
                    } else {
                        self.chain = 0;
                        self.after_op = false;
                    }
                }
                ',' | ';' => {
                    self.bump();
                    self.chain = 0;
                    self.after_op = false;
                }
                c if c == '_' || c.is_alphabetic() => {
                    let start = self.pos;
                    loop {
                        self.skip_ascii(|b| b == b'_' || b.is_ascii_alphanumeric());
                        if !self.peek().is_some_and(|d| d == '_' || d.is_alphanumeric()) {
                            break;
                        }
                        self.bump();
                    }
                    if &self.text[start..self.pos] == "in" {
                        self.operator();
                    } else {
                        self.after_op = false;
                    }
                }
                '{' | '[' | '(' => {
                    self.open();
                    depth += 1;
                    self.bump();
                }
                '}' | ']' | ')' => {
                    self.bump();
                    if depth == 0 && Some(c) == close {
                        return;
                    }
                    self.close();
                    depth = depth.saturating_sub(1);
                }
                '\n' => {
                    self.bump();
                    // A newline ends the expression unless an operator leaves it open.
                    if !self.after_op {
                        self.chain = 0;
                    }
                    if top && depth == 0 {
                        self.out.top_lines.push(self.pos);
                    }
                }
                c if c.is_whitespace() => {
                    self.bump();
                    self.skip_ascii(|b| b == b' ' || b == b'\t');
                }
                _ => {
                    self.after_op = false;
                    self.bump();
                }
            }
        }
    }

    fn string(&mut self) {
        loop {
            self.skip_ascii(|b| b != b'\\' && b != b'"');
            let Some(c) = self.peek() else {
                return;
            };
            match c {
                '\\' => {
                    self.bump();
                    self.bump();
                }
                '"' => {
                    self.bump();
                    return;
                }
                '\n' => return,
                _ => {
                    self.bump();
                }
            }
        }
    }

    fn raw(&mut self) {
        while let Some(c) = self.bump() {
            if c == '`' {
                return;
            }
        }
    }

    fn template(&mut self, raw: bool) {
        let quote = if raw { '`' } else { '"' };
        while let Some(c) = self.peek() {
            match c {
                '\\' if !raw => {
                    self.bump();
                    self.bump();
                }
                '\n' if !raw => return,
                '{' => {
                    self.bump();
                    self.open();
                    self.code(Some('}'), false);
                    self.close();
                }
                c if c == quote => {
                    self.bump();
                    return;
                }
                _ => {
                    self.bump();
                }
            }
        }
    }
}

/// The comments of a module as OPA marshals them: `Text` (the bytes after `#`, base64, as Go
/// writes a byte slice) and `Location` (file, row, column).
fn comments_json(file: &str, lexed: &Lexed<'_>) -> Vec<Value> {
    use base64::Engine as _;
    lexed
        .comments
        .iter()
        .map(|(line, col, body)| {
            obj(vec![
                (
                    "Text",
                    Value::from(base64::engine::general_purpose::STANDARD.encode(body)),
                ),
                (
                    "Location",
                    obj(vec![
                        ("file", Value::from(file)),
                        ("row", Value::from(*line)),
                        ("col", Value::from(*col)),
                    ]),
                ),
            ])
        })
        .collect()
}

/// An import read from the text: regorus takes imports only before the first rule and refuses
/// a repeated `import rego.v1`, where OPA takes both.
struct TextImport {
    line: u32,
    path: Vec<Term>,
    alias: Option<String>,
}

/// Rego v1's keywords, which an import may not end with or be aliased to.
const KEYWORDS: &[&str] = &[
    "as", "contains", "default", "else", "every", "false", "if", "import", "in", "not", "null",
    "package", "some", "true", "with",
];

/// The keywords `import future.keywords.X` may name in OPA 1.20.
const FUTURE_KEYWORDS: &[&str] = &["and", "contains", "every", "if", "in", "not", "or"];

/// The text with each top-level `import` line after the package blanked (lines and offsets
/// kept), and those imports; a line that is not a plain import is left to regorus.
fn take_imports(text: &str, lexed: &Lexed<'_>) -> Result<(String, Vec<TextImport>), Fail> {
    let mut out = text.to_string();
    let mut imports = Vec::new();
    let mut after_package = false;
    for &start in &lexed.top_lines {
        let rest = &text[start..];
        let line_text = &rest[..rest.find('\n').unwrap_or(rest.len())];
        let line = u32::try_from(text[..start].matches('\n').count() + 1).unwrap_or(u32::MAX);
        // The part before a comment on this line.
        let code = match lexed.comments.iter().find(|c| c.0 == line) {
            Some(&(_, col, _)) => {
                let cut = line_text
                    .char_indices()
                    .nth(col.saturating_sub(1) as usize)
                    .map_or(line_text.len(), |(i, _)| i);
                &line_text[..cut]
            }
            None => line_text,
        };
        let trimmed = code.trim();
        if !after_package {
            after_package = keyword_at(trimmed, "package");
            continue;
        }
        if !keyword_at(trimmed, "import") {
            continue;
        }
        let Some(import) = plain_import(&trimmed["import".len()..], line)? else {
            continue;
        };
        imports.push(import);
        out.replace_range(start..start + code.len(), &" ".repeat(code.len()));
    }
    Ok((out, imports))
}

fn keyword_at(s: &str, kw: &str) -> bool {
    s.strip_prefix(kw)
        .is_some_and(|r| r.is_empty() || r.starts_with(|c: char| c.is_whitespace()))
}

fn ident_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        n = i + c.len_utf8();
    }
    n
}

/// `path [as alias]` after `import`, checked as OPA's parser checks it; `None` when the line is
/// not that simple shape.
fn plain_import(s: &str, line: u32) -> Result<Option<TextImport>, Fail> {
    let mut s = s.trim_start();
    let n = ident_len(s);
    if n == 0 {
        return Ok(None);
    }
    let mut names = vec![s[..n].to_string()];
    s = &s[n..];
    loop {
        if let Some(r) = s.strip_prefix('.') {
            let n = ident_len(r);
            if n == 0 {
                return Ok(None);
            }
            names.push(r[..n].to_string());
            s = &r[n..];
        } else if let Some(r) = s.strip_prefix("[\"") {
            let Some(end) = r.find("\"]") else {
                return Ok(None);
            };
            let Ok(v) = serde_json::from_str::<String>(&format!("\"{}\"", &r[..end])) else {
                return Ok(None);
            };
            names.push(v);
            s = &r[end + 2..];
        } else {
            break;
        }
    }
    let mut alias = None;
    let t = s.trim();
    if !t.is_empty() {
        let Some(a) = t
            .strip_prefix("as")
            .filter(|a| a.starts_with(char::is_whitespace))
        else {
            return Ok(None);
        };
        let a = a.trim();
        if ident_len(a) != a.len() || a.is_empty() {
            return Ok(None);
        }
        if KEYWORDS.contains(&a) {
            return Err((line, format!("unexpected {a} keyword: expected var")));
        }
        alias = Some(a.to_string());
    }
    let root = names[0].as_str();
    match root {
        "data" | "input" => {
            let last = names.last().map(String::as_str).unwrap_or("");
            if names.len() > 1 && alias.is_none() && KEYWORDS.contains(&last) {
                return Err((
                    line,
                    format!("unexpected import path, must not end with a keyword, got: {last}"),
                ));
            }
        }
        "future" => {
            if alias.is_some() {
                return Err((line, "`future` imports cannot be aliased".into()));
            }
            let ok = names.get(1).is_some_and(|k| k == "keywords")
                && match names.len() {
                    2 => true,
                    3 => FUTURE_KEYWORDS.contains(&names[2].as_str()),
                    _ => false,
                };
            if !ok {
                return Err((line, "invalid import, must be `future.keywords`".into()));
            }
        }
        "rego" => {
            if names.len() != 2 || names[1] != "v1" || alias.is_some() {
                return Err((
                    line,
                    format!("invalid import `{}`, must be `rego.v1`", names.join(".")),
                ));
            }
        }
        _ => {
            return Err((
                line,
                format!(
                    "unexpected import path, must begin with one of: {{data, future, input, rego}}, got: {root}"
                ),
            ));
        }
    }
    let mut path = vec![var(root)];
    path.extend(names[1..].iter().map(|n| Term::String(n.clone())));
    Ok(Some(TextImport { line, path, alias }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Value, BuiltinError> {
        let values = [Value::from("a.rego"), Value::from(text)];
        parse_module(&Args {
            name: "rego.parse_module",
            values: &values,
        })
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_hang_or_a_stack_overflow() {
        // Brackets 40 deep parse as in OPA (sluice patch 9 keeps this linear, not 2^40).
        let deep = format!("package a\np := {}1{}", "[".repeat(40), "]".repeat(40));
        assert!(parse(&deep).is_ok());
        let deep = format!("package a\np := {}1{}", "[\n".repeat(300), "]".repeat(300));
        let err = parse(&deep).expect_err("too deep");
        assert!(err.to_string().contains("nested more than"), "{err}");
        let chain = format!("package a\np := {}", vec!["1"; 5000].join(" +\n"));
        let err = parse(&chain).expect_err("too deep");
        assert!(err.to_string().contains("nested more than"), "{err}");
        let members = format!("package a\np if {}", vec!["1"; 5000].join(" in\n"));
        let err = parse(&members).expect_err("too deep");
        assert!(err.to_string().contains("nested more than"), "{err}");
        let parens = format!(
            "package a\np := {}1{}",
            "(\n".repeat(5000),
            ")".repeat(5000)
        );
        let err = parse(&parens).expect_err("too deep");
        assert!(err.to_string().contains("nested more than"), "{err}");
        // Statements on their own lines do not add up.
        let many = format!("package a\n{}", "p := 1 + 2\n".repeat(5000));
        assert!(parse(&many).is_ok());
        // A long ref is walked without recursion (regorus allows 1024 columns a line).
        let long_ref = format!("package a\np := input{}", ".a".repeat(400));
        let doc = parse(&long_ref).expect("a long ref parses");
        let parts = &doc["rules"][0]["head"]["value"]["value"];
        assert_eq!(parts.as_array().map(|a| a.len()).unwrap_or(0), 401);
    }

    #[test]
    fn comments_are_base64_with_character_columns() {
        let doc = parse("package a\np := \"é\" # x\n").expect("parses");
        let c = &doc["comments"][0];
        assert_eq!(c["Text"], Value::from("IHg="));
        assert_eq!(c["Location"]["col"], Value::from(10u64));
        assert_eq!(c["Location"]["row"], Value::from(2u64));
    }
}
