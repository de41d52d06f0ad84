//! OPA's GraphQL builtins (`graphql.parse_query`, `parse_schema`, `parse`, `parse_and_verify`,
//! `is_valid`, `schema_is_valid`) as OPA 1.20 gives them with its copy of
//! github.com/vektah/gqlparser/v2: the same lexer and parser (comments attached to nodes), the
//! AST as Go's encoding/json writes it with OPA's pruning (no `Position`, no nulls, no empty
//! lists or objects), gqlparser's prelude and schema checks, and its query validation rules.
//! A schema or query may be given as such an AST object, read as OPA reads it (Go's decoding,
//! keys matched without regard to case except in operations, fragments and selections; a
//! selection is a field, else a fragment spread, else an inline fragment).
//!
//! Not here: anything of gqlparser that OPA does not reach (variable coercion, execution).

mod ast;
mod lexer;
mod parser;
mod schema;
mod validate;

use regorus::Value as Rv;
use serde_json::{Map, Value as J, json};

use super::{Args, Builtin, BuiltinError, to_json, type_name};
use ast::*;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "graphql.is_valid",
        arity: 2,
        run: is_valid,
    },
    Builtin {
        name: "graphql.parse",
        arity: 2,
        run: parse,
    },
    Builtin {
        name: "graphql.parse_and_verify",
        arity: 2,
        run: parse_and_verify,
    },
    Builtin {
        name: "graphql.parse_query",
        arity: 1,
        run: parse_query,
    },
    Builtin {
        name: "graphql.parse_schema",
        arity: 1,
        run: parse_schema,
    },
    Builtin {
        name: "graphql.schema_is_valid",
        arity: 1,
        run: schema_is_valid,
    },
];

/// Longest query or schema text sluice reads (OPA has no bound).
const MAX_INPUT: usize = 8 << 20;

/// A gqlparser error: its message and, when known, where.
#[derive(Clone, Debug)]
pub struct GqlError {
    pub message: String,
    pub pos: Option<Pos>,
}

impl GqlError {
    /// gqlerror's `Error()`: `input:line:col: message`.
    fn go(&self) -> String {
        match self.pos {
            Some(p) => format!("input:{}:{}: {}", p.line, p.col, self.message),
            None => format!("input: {}", self.message),
        }
    }
}

fn check_size(text: &str) -> Result<(), String> {
    if text.len() > MAX_INPUT {
        return Err(format!(
            "GraphQL text of {} bytes is longer than sluice reads ({MAX_INPUT})",
            text.len()
        ));
    }
    Ok(())
}

/// OPA's wording of a parse error.
fn parse_message(e: &GqlError) -> String {
    let p = e.pos.unwrap_or_default();
    format!(
        "{} in GraphQL string at location {}:{}",
        e.message, p.line, p.col
    )
}

fn query_text(text: &str) -> Result<QueryDocument, String> {
    check_size(text)?;
    parser::parse_query(text).map_err(|e| parse_message(&e))
}

fn schema_text(text: &str) -> Result<SchemaDocument, String> {
    check_size(text)?;
    parser::parse_schema(text).map_err(|e| parse_message(&e))
}

/// A query argument, text or AST object; `Err(None)` for a value of another type.
fn query_arg(v: &Rv) -> Result<QueryDocument, Option<String>> {
    match v {
        Rv::String(s) => query_text(s).map_err(Some),
        Rv::Object(_) => decode::query(&to_json(v)).map_err(Some),
        _ => Err(None),
    }
}

fn schema_arg(v: &Rv) -> Result<SchemaDocument, Option<String>> {
    match v {
        Rv::String(s) => schema_text(s).map_err(Some),
        Rv::Object(_) => decode::schema(&to_json(v)).map_err(Some),
        _ => Err(None),
    }
}

/// OPA's `validateQuery` wording: every message, then where the first one is.
fn validation_message(errors: &[GqlError]) -> String {
    let mut all: String = errors.iter().map(|e| e.go() + "\n").collect::<String>();
    // OPA drops gqlerror's "input:line:col: " before the first message and one trailing ".\n".
    if let Some(p) = errors.first().and_then(|e| e.pos) {
        let prefix = format!("input:{}:{}: ", p.line, p.col);
        all = all.strip_prefix(&prefix).unwrap_or(&all).to_string();
        let all = all.strip_suffix(".\n").unwrap_or(&all).to_string();
        return format!(
            "{all} in GraphQL query string at location {}:{}",
            p.line, p.col
        );
    }
    format!("GraphQL parse error: {all}")
}

/// Parses both arguments and validates the query; the ASTs on success.
fn verify(args: &Args<'_>) -> Result<(J, J), Result<String, BuiltinError>> {
    let query = query_arg(args.value(0)).map_err(|e| e.ok_or_else(|| operand_error(args, 0)))?;
    let schema_doc =
        schema_arg(args.value(1)).map_err(|e| e.ok_or_else(|| operand_error(args, 1)))?;
    let query_json = emit::query(&query);
    let schema_json = emit::schema(&schema_doc);
    let schema = schema::load(&schema_doc).map_err(|e| {
        Ok(format!(
            "Error in gqlparser SchemaDocument to Schema conversion: {}",
            e.go()
        ))
    })?;
    let errors = validate::validate(&schema, &query);
    if !errors.is_empty() {
        return Err(Ok(validation_message(&errors)));
    }
    Ok((query_json, schema_json))
}

fn operand_error(args: &Args<'_>, i: usize) -> BuiltinError {
    args.error(format!(
        "operand {} must be one of {{string, object}} but got {}",
        i + 1,
        type_name(args.value(i))
    ))
}

fn parse(args: &Args<'_>) -> Result<Rv, BuiltinError> {
    match verify(args) {
        Ok((q, s)) => Ok(Rv::from(J::Array(vec![q, s]))),
        Err(Ok(message)) => Err(args.error(message)),
        Err(Err(e)) => Err(e),
    }
}

fn parse_and_verify(args: &Args<'_>) -> Result<Rv, BuiltinError> {
    Ok(Rv::from(match verify(args) {
        Ok((q, s)) => J::Array(vec![J::Bool(true), q, s]),
        Err(_) => json!([false, {}, {}]),
    }))
}

fn is_valid(args: &Args<'_>) -> Result<Rv, BuiltinError> {
    Ok(Rv::from(verify(args).is_ok()))
}

fn schema_is_valid(args: &Args<'_>) -> Result<Rv, BuiltinError> {
    let ok = schema_arg(args.value(0))
        .ok()
        .is_some_and(|doc| schema::load(&doc).is_ok());
    Ok(Rv::from(ok))
}

fn parse_query(args: &Args<'_>) -> Result<Rv, BuiltinError> {
    let doc = query_text(args.string(0)?).map_err(|m| args.error(m))?;
    Ok(Rv::from(emit::query(&doc)))
}

fn parse_schema(args: &Args<'_>) -> Result<Rv, BuiltinError> {
    let doc = schema_text(args.string(0)?).map_err(|m| args.error(m))?;
    Ok(Rv::from(emit::schema(&doc)))
}

/// The AST as OPA shows it: Go's JSON of gqlparser's structs, pruned.
mod emit {
    use super::*;

    /// OPA's `pruneIrrelevantGraphQLASTNodes`.
    fn prune(v: J) -> Option<J> {
        match v {
            J::Null => None,
            J::Array(items) => {
                let out: Vec<J> = items.into_iter().filter_map(prune).collect();
                (!out.is_empty()).then_some(J::Array(out))
            }
            J::Object(m) => {
                let out: Map<String, J> = m
                    .into_iter()
                    .filter(|(k, _)| k != "Position")
                    .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                    .collect();
                (!out.is_empty()).then_some(J::Object(out))
            }
            x => Some(x),
        }
    }

    fn top(v: J) -> J {
        prune(v).unwrap_or_else(|| J::Object(Map::new()))
    }

    pub fn query(d: &QueryDocument) -> J {
        top(json!({
            "Operations": d.operations.iter().map(operation).collect::<Vec<_>>(),
            "Fragments": d.fragments.iter().map(fragment).collect::<Vec<_>>(),
        }))
    }

    pub fn schema(d: &SchemaDocument) -> J {
        top(json!({
            "Schema": d.schema.iter().map(schema_def).collect::<Vec<_>>(),
            "SchemaExtension": d.schema_extension.iter().map(schema_def).collect::<Vec<_>>(),
            "Directives": d.directives.iter().map(directive_def).collect::<Vec<_>>(),
            "Definitions": d.definitions.iter().map(definition).collect::<Vec<_>>(),
            "Extensions": d.extensions.iter().map(definition).collect::<Vec<_>>(),
            "Comment": comments(&d.comment),
        }))
    }

    fn comments(c: &Comments) -> J {
        match c {
            None => J::Null,
            Some(list) => {
                json!({ "List": list.iter().map(|v| json!({"Value": v})).collect::<Vec<_>>() })
            }
        }
    }

    fn operation(o: &OperationDefinition) -> J {
        json!({
            "Operation": o.operation,
            "Name": o.name,
            "VariableDefinitions": o.variables.iter().map(variable).collect::<Vec<_>>(),
            "Directives": directives(&o.directives),
            "SelectionSet": selections(&o.selections),
            "Comment": comments(&o.comment),
        })
    }

    fn variable(v: &VariableDefinition) -> J {
        json!({
            "Variable": v.variable,
            "Type": ty(&v.ty),
            "DefaultValue": v.default.as_ref().map(value),
            "Directives": directives(&v.directives),
            "Used": false,
            "Comment": comments(&v.comment),
        })
    }

    fn fragment(f: &FragmentDefinition) -> J {
        json!({
            "Name": f.name,
            "VariableDefinition": f.variables.iter().map(variable).collect::<Vec<_>>(),
            "TypeCondition": f.type_condition,
            "Directives": directives(&f.directives),
            "SelectionSet": selections(&f.selections),
            "Comment": comments(&f.comment),
        })
    }

    fn selections(s: &[Selection]) -> J {
        J::Array(
            s.iter()
                .map(|s| match s {
                    Selection::Field(f) => json!({
                        "Alias": f.alias,
                        "Name": f.name,
                        "Arguments": arguments(&f.arguments),
                        "Directives": directives(&f.directives),
                        "SelectionSet": selections(&f.selections),
                        "Comment": comments(&f.comment),
                    }),
                    Selection::Spread(sp) => json!({
                        "Name": sp.name,
                        "Directives": directives(&sp.directives),
                        "Comment": comments(&sp.comment),
                    }),
                    Selection::Inline(i) => json!({
                        "TypeCondition": i.type_condition,
                        "Directives": directives(&i.directives),
                        "SelectionSet": selections(&i.selections),
                        "Comment": comments(&i.comment),
                    }),
                })
                .collect(),
        )
    }

    fn arguments(a: &[Argument]) -> J {
        J::Array(
            a.iter()
                .map(|a| {
                    json!({
                        "Name": a.name,
                        "Value": value(&a.value),
                        "Comment": comments(&a.comment),
                    })
                })
                .collect(),
        )
    }

    fn directives(d: &[Directive]) -> J {
        J::Array(
            d.iter()
                .map(|d| {
                    json!({
                        "Name": d.name,
                        "Arguments": arguments(&d.arguments),
                        "Location": "",
                    })
                })
                .collect(),
        )
    }

    fn value(v: &Value) -> J {
        json!({
            "Raw": v.raw,
            "Children": v.children.iter().map(|c| json!({
                "Name": c.name,
                "Value": value(&c.value),
                "Comment": comments(&c.comment),
            })).collect::<Vec<_>>(),
            "Kind": v.kind,
            "ExpectedTypeHasDefault": false,
            "Comment": comments(&v.comment),
        })
    }

    fn ty(t: &Type) -> J {
        json!({
            "NamedType": t.named,
            "Elem": t.elem.as_deref().map(ty),
            "NonNull": t.non_null,
        })
    }

    fn schema_def(s: &SchemaDefinition) -> J {
        json!({
            "Description": s.description,
            "Directives": directives(&s.directives),
            "OperationTypes": s.operation_types.iter().map(|o| json!({
                "Operation": o.operation,
                "Type": o.ty,
                "Comment": comments(&o.comment),
            })).collect::<Vec<_>>(),
            "BeforeDescriptionComment": comments(&s.before_comment),
            "AfterDescriptionComment": comments(&s.after_comment),
            "EndOfDefinitionComment": comments(&s.end_comment),
        })
    }

    fn directive_def(d: &DirectiveDefinition) -> J {
        json!({
            "Description": d.description,
            "Name": d.name,
            "Arguments": d.arguments.iter().map(argument_def).collect::<Vec<_>>(),
            "Locations": d.locations,
            "IsRepeatable": d.repeatable,
            "BeforeDescriptionComment": comments(&d.before_comment),
            "AfterDescriptionComment": comments(&d.after_comment),
        })
    }

    fn argument_def(a: &ArgumentDefinition) -> J {
        json!({
            "Description": a.description,
            "Name": a.name,
            "DefaultValue": a.default.as_ref().map(value),
            "Type": ty(&a.ty),
            "Directives": directives(&a.directives),
            "BeforeDescriptionComment": comments(&a.before_comment),
            "AfterDescriptionComment": comments(&a.after_comment),
        })
    }

    fn definition(d: &Definition) -> J {
        json!({
            "Kind": d.kind,
            "Description": d.description,
            "Name": d.name,
            "Directives": directives(&d.directives),
            "Interfaces": d.interfaces,
            "Fields": d.fields.iter().map(|f| json!({
                "Description": f.description,
                "Name": f.name,
                "Arguments": f.arguments.iter().map(argument_def).collect::<Vec<_>>(),
                "DefaultValue": f.default.as_ref().map(value),
                "Type": ty(&f.ty),
                "Directives": directives(&f.directives),
                "BeforeDescriptionComment": comments(&f.before_comment),
                "AfterDescriptionComment": comments(&f.after_comment),
            })).collect::<Vec<_>>(),
            "Types": d.types,
            "EnumValues": d.enum_values.iter().map(|e| json!({
                "Description": e.description,
                "Name": e.name,
                "Directives": directives(&e.directives),
                "BeforeDescriptionComment": comments(&e.before_comment),
                "AfterDescriptionComment": comments(&e.after_comment),
            })).collect::<Vec<_>>(),
            "BuiltIn": d.builtin,
            "BeforeDescriptionComment": comments(&d.before_comment),
            "AfterDescriptionComment": comments(&d.after_comment),
            "EndOfDefinitionComment": comments(&d.end_comment),
        })
    }
}

/// An AST object read back as Go's encoding/json reads it into gqlparser's structs.
mod decode {
    use super::*;

    /// Deepest nesting read from an object, as for text.
    const MAX_DEPTH: usize = parser::MAX_DEPTH;

    fn json_kind(v: &J) -> &'static str {
        match v {
            J::Null => "null",
            J::Bool(_) => "bool",
            J::Number(_) => "number",
            J::String(_) => "string",
            J::Array(_) => "array",
            J::Object(_) => "object",
        }
    }

    /// One struct being read: its Go name (for errors) and its JSON object.
    #[derive(Clone, Copy)]
    struct S<'a> {
        go: &'static str,
        m: &'a Map<String, J>,
        /// OPA's own decoders (operations, fragments, selections) match keys exactly.
        exact: bool,
    }

    type R<T> = Result<T, String>;

    fn mismatch(v: &J, go: &str, field: &str, want: &str) -> String {
        format!(
            "json: cannot unmarshal {} into Go struct field {go}.{field} of type {want}",
            json_kind(v)
        )
    }

    fn object<'a>(v: &'a J, go: &'static str, want: &str, field: &str) -> R<Option<S<'a>>> {
        match v {
            J::Null => Ok(None),
            J::Object(m) => Ok(Some(S {
                go,
                m,
                exact: false,
            })),
            _ => Err(mismatch(v, go, field, want)),
        }
    }

    impl<'a> S<'a> {
        /// Go matches a key to a field without regard to case; a later key wins.
        fn get(&self, field: &str) -> Option<&'a J> {
            self.m
                .iter()
                .rfind(|(k, _)| {
                    if self.exact {
                        k.as_str() == field
                    } else {
                        k.eq_ignore_ascii_case(field)
                    }
                })
                .map(|(_, v)| v)
                .filter(|v| !v.is_null())
        }

        fn string(&self, field: &str) -> R<String> {
            match self.get(field) {
                None => Ok(String::new()),
                Some(J::String(s)) => Ok(s.clone()),
                Some(v) => Err(mismatch(v, self.go, field, "string")),
            }
        }

        fn boolean(&self, field: &str) -> R<bool> {
            match self.get(field) {
                None => Ok(false),
                Some(J::Bool(b)) => Ok(*b),
                Some(v) => Err(mismatch(v, self.go, field, "bool")),
            }
        }

        fn int(&self, field: &str) -> R<i64> {
            match self.get(field) {
                None => Ok(0),
                Some(J::Number(n)) => n
                    .as_i64()
                    .ok_or_else(|| format!("json: cannot unmarshal number {n} into Go struct field {}.{field} of type int", self.go)),
                Some(v) => Err(mismatch(v, self.go, field, "int")),
            }
        }

        fn list(&self, field: &str) -> R<&'a [J]> {
            match self.get(field) {
                None => Ok(&[]),
                Some(J::Array(a)) => Ok(a),
                Some(v) => Err(mismatch(v, self.go, field, "list")),
            }
        }

        fn strings(&self, field: &str) -> R<Vec<String>> {
            self.list(field)?
                .iter()
                .map(|v| match v {
                    J::String(s) => Ok(s.clone()),
                    J::Null => Ok(String::new()),
                    _ => Err(mismatch(v, self.go, field, "string")),
                })
                .collect()
        }

        fn each<T>(
            &self,
            field: &str,
            go: &'static str,
            depth: usize,
            f: impl Fn(Option<S<'a>>, usize) -> R<T>,
        ) -> R<Vec<T>> {
            self.list(field)?
                .iter()
                .map(|v| f(object(v, go, go, field)?, depth))
                .collect()
        }

        fn child(&self, field: &str, go: &'static str) -> R<Option<S<'a>>> {
            match self.get(field) {
                None => Ok(None),
                Some(v) => object(v, go, go, field),
            }
        }

        fn comments(&self, field: &str) -> R<Comments> {
            let Some(c) = self.child(field, "CommentGroup")? else {
                return Ok(None);
            };
            let list = c.each("List", "Comment", 0, |s, _| match s {
                Some(s) => s.string("Value"),
                None => Ok(String::new()),
            })?;
            Ok(Some(list))
        }
    }

    fn deep(depth: usize) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "GraphQL AST object nested deeper than {MAX_DEPTH} levels (a sluice limit)"
            ));
        }
        Ok(())
    }

    pub fn query(v: &J) -> R<QueryDocument> {
        let Some(s) = object(v, "QueryDocument", "QueryDocument", "")? else {
            return Ok(QueryDocument::default());
        };
        Ok(QueryDocument {
            operations: s.each("Operations", "OperationDefinition", 0, operation)?,
            fragments: s.each("Fragments", "FragmentDefinition", 0, fragment)?,
        })
    }

    fn operation(s: Option<S<'_>>, d: usize) -> R<OperationDefinition> {
        let Some(mut s) = s else {
            return Ok(Default::default());
        };
        s.exact = true;
        let operation = s.string("Operation")?;
        if !matches!(
            operation.as_str(),
            "" | "query" | "mutation" | "subscription"
        ) {
            // gqlparser panics on an operation type it does not know.
            return Err(format!("unknown operation type \"{operation}\""));
        }
        Ok(OperationDefinition {
            operation,
            name: s.string("Name")?,
            variables: s.each("VariableDefinitions", "VariableDefinition", d, variable)?,
            directives: directives(&s, "Directives", d)?,
            selections: selections(&s, d)?,
            comment: None,
            pos: Pos::default(),
        })
    }

    fn fragment(s: Option<S<'_>>, d: usize) -> R<FragmentDefinition> {
        let Some(mut s) = s else {
            return Ok(Default::default());
        };
        s.exact = true;
        Ok(FragmentDefinition {
            name: s.string("Name")?,
            variables: s.each("VariableDefinition", "VariableDefinition", d, variable)?,
            type_condition: s.string("TypeCondition")?,
            directives: directives(&s, "Directives", d)?,
            selections: selections(&s, d)?,
            comment: None,
            pos: Pos::default(),
        })
    }

    fn variable(s: Option<S<'_>>, d: usize) -> R<VariableDefinition> {
        let Some(s) = s else {
            return Ok(Default::default());
        };
        Ok(VariableDefinition {
            variable: s.string("Variable")?,
            ty: ty(s.child("Type", "Type")?, d)?,
            default: opt_value(&s, "DefaultValue", d)?,
            directives: directives(&s, "Directives", d)?,
            comment: s.comments("Comment")?,
            pos: Pos::default(),
        })
    }

    /// OPA decodes each element of a selection set as a field, else as a fragment spread,
    /// else as an inline fragment, and skips an element that is none of them.
    fn selections(s: &S<'_>, d: usize) -> R<Vec<Selection>> {
        deep(d)?;
        let mut out = Vec::new();
        for v in s.list("SelectionSet")? {
            let m = match v {
                J::Object(m) => m,
                J::Null => {
                    out.push(Selection::Field(Field::default()));
                    continue;
                }
                _ => continue,
            };
            let x = S {
                go: "Field",
                m,
                exact: true,
            };
            if let Some(sel) = selection(&x, d)? {
                out.push(sel);
            }
        }
        Ok(out)
    }

    fn selection(x: &S<'_>, d: usize) -> R<Option<Selection>> {
        // Too deep is an error whichever reading is tried.
        deep(d + 1)?;
        let field = (|| -> R<Field> {
            Ok(Field {
                alias: x.string("Alias")?,
                name: x.string("Name")?,
                arguments: arguments(x, "Arguments", d)?,
                directives: directives(x, "Directives", d)?,
                selections: selections(x, d + 1)?,
                comment: None,
                pos: Pos::default(),
            })
        })();
        if let Ok(f) = field {
            return Ok(Some(Selection::Field(f)));
        }
        let spread = (|| -> R<FragmentSpread> {
            Ok(FragmentSpread {
                name: x.string("Name")?,
                directives: directives(x, "Directives", d)?,
                comment: None,
                pos: Pos::default(),
            })
        })();
        if let Ok(sp) = spread {
            return Ok(Some(Selection::Spread(sp)));
        }
        let inline = (|| -> R<InlineFragment> {
            Ok(InlineFragment {
                type_condition: x.string("TypeCondition")?,
                directives: directives(x, "Directives", d)?,
                selections: selections(x, d + 1)?,
                comment: None,
                pos: Pos::default(),
            })
        })();
        Ok(inline.ok().map(Selection::Inline))
    }

    fn arguments(s: &S<'_>, field: &str, d: usize) -> R<Vec<Argument>> {
        s.each(field, "Argument", d, |a, d| {
            let Some(a) = a else {
                return Ok(Argument::default());
            };
            Ok(Argument {
                name: a.string("Name")?,
                value: opt_value(&a, "Value", d)?.unwrap_or_default(),
                comment: a.comments("Comment")?,
                pos: Pos::default(),
            })
        })
    }

    fn directives(s: &S<'_>, field: &str, d: usize) -> R<Vec<Directive>> {
        s.each(field, "Directive", d, |x, d| {
            let Some(x) = x else {
                return Ok(Directive::default());
            };
            x.string("Location")?;
            Ok(Directive {
                name: x.string("Name")?,
                arguments: arguments(&x, "Arguments", d)?,
                pos: Pos::default(),
            })
        })
    }

    fn opt_value(s: &S<'_>, field: &str, d: usize) -> R<Option<Value>> {
        match s.child(field, "Value")? {
            None => Ok(None),
            Some(v) => value(v, d + 1).map(Some),
        }
    }

    fn value(s: S<'_>, d: usize) -> R<Value> {
        deep(d)?;
        s.boolean("ExpectedTypeHasDefault")?;
        let kind = s.int("Kind")?;
        if !(0..=9).contains(&kind) {
            // gqlparser panics on a value kind it does not know.
            return Err(format!("unknown value kind {kind}"));
        }
        Ok(Value {
            raw: s.string("Raw")?,
            children: s.each("Children", "ChildValue", d, |c, d| {
                let Some(c) = c else {
                    return Ok(ChildValue::default());
                };
                Ok(ChildValue {
                    name: c.string("Name")?,
                    value: opt_value(&c, "Value", d)?.unwrap_or_default(),
                    comment: c.comments("Comment")?,
                    pos: Pos::default(),
                })
            })?,
            kind,
            comment: s.comments("Comment")?,
            pos: Pos::default(),
        })
    }

    fn ty(s: Option<S<'_>>, d: usize) -> R<Type> {
        deep(d)?;
        let Some(s) = s else {
            return Ok(Type::default());
        };
        let elem = match s.child("Elem", "Type")? {
            None => None,
            Some(e) => Some(Box::new(ty(Some(e), d + 1)?)),
        };
        Ok(Type {
            named: s.string("NamedType")?,
            elem,
            non_null: s.boolean("NonNull")?,
            pos: Pos::default(),
        })
    }

    pub fn schema(v: &J) -> R<SchemaDocument> {
        let Some(s) = object(v, "SchemaDocument", "SchemaDocument", "")? else {
            return Ok(SchemaDocument::default());
        };
        Ok(SchemaDocument {
            schema: s.each("Schema", "SchemaDefinition", 0, schema_def)?,
            schema_extension: s.each("SchemaExtension", "SchemaDefinition", 0, schema_def)?,
            directives: s.each("Directives", "DirectiveDefinition", 0, directive_def)?,
            definitions: s.each("Definitions", "Definition", 0, definition)?,
            extensions: s.each("Extensions", "Definition", 0, definition)?,
            comment: s.comments("Comment")?,
        })
    }

    fn schema_def(s: Option<S<'_>>, d: usize) -> R<SchemaDefinition> {
        let Some(s) = s else {
            return Ok(Default::default());
        };
        Ok(SchemaDefinition {
            description: s.string("Description")?,
            directives: directives(&s, "Directives", d)?,
            operation_types: s.each("OperationTypes", "OperationTypeDefinition", d, |o, _| {
                let Some(o) = o else {
                    return Ok(Default::default());
                };
                Ok(OperationTypeDefinition {
                    operation: o.string("Operation")?,
                    ty: o.string("Type")?,
                    comment: o.comments("Comment")?,
                    pos: Pos::default(),
                })
            })?,
            before_comment: s.comments("BeforeDescriptionComment")?,
            after_comment: s.comments("AfterDescriptionComment")?,
            end_comment: s.comments("EndOfDefinitionComment")?,
            pos: Pos::default(),
        })
    }

    fn argument_defs(s: &S<'_>, d: usize) -> R<Vec<ArgumentDefinition>> {
        s.each("Arguments", "ArgumentDefinition", d, |a, d| {
            let Some(a) = a else {
                return Ok(Default::default());
            };
            Ok(ArgumentDefinition {
                description: a.string("Description")?,
                name: a.string("Name")?,
                default: opt_value(&a, "DefaultValue", d)?,
                ty: ty(a.child("Type", "Type")?, d)?,
                directives: directives(&a, "Directives", d)?,
                before_comment: a.comments("BeforeDescriptionComment")?,
                after_comment: a.comments("AfterDescriptionComment")?,
                pos: Pos::default(),
            })
        })
    }

    fn directive_def(s: Option<S<'_>>, d: usize) -> R<DirectiveDefinition> {
        let Some(s) = s else {
            return Ok(Default::default());
        };
        Ok(DirectiveDefinition {
            description: s.string("Description")?,
            name: s.string("Name")?,
            arguments: argument_defs(&s, d)?,
            locations: s.strings("Locations")?,
            repeatable: s.boolean("IsRepeatable")?,
            before_comment: s.comments("BeforeDescriptionComment")?,
            after_comment: s.comments("AfterDescriptionComment")?,
            pos: Pos::default(),
        })
    }

    fn definition(s: Option<S<'_>>, d: usize) -> R<Definition> {
        let Some(s) = s else {
            return Ok(Default::default());
        };
        Ok(Definition {
            kind: s.string("Kind")?,
            description: s.string("Description")?,
            name: s.string("Name")?,
            directives: directives(&s, "Directives", d)?,
            interfaces: s.strings("Interfaces")?,
            fields: s.each("Fields", "FieldDefinition", d, |f, d| {
                let Some(f) = f else {
                    return Ok(Default::default());
                };
                Ok(FieldDefinition {
                    description: f.string("Description")?,
                    name: f.string("Name")?,
                    arguments: argument_defs(&f, d)?,
                    default: opt_value(&f, "DefaultValue", d)?,
                    ty: ty(f.child("Type", "Type")?, d)?,
                    directives: directives(&f, "Directives", d)?,
                    before_comment: f.comments("BeforeDescriptionComment")?,
                    after_comment: f.comments("AfterDescriptionComment")?,
                    pos: Pos::default(),
                })
            })?,
            types: s.strings("Types")?,
            enum_values: s.each("EnumValues", "EnumValueDefinition", d, |e, d| {
                let Some(e) = e else {
                    return Ok(Default::default());
                };
                Ok(EnumValueDefinition {
                    description: e.string("Description")?,
                    name: e.string("Name")?,
                    directives: directives(&e, "Directives", d)?,
                    before_comment: e.comments("BeforeDescriptionComment")?,
                    after_comment: e.comments("AfterDescriptionComment")?,
                    pos: Pos::default(),
                })
            })?,
            builtin: s.boolean("BuiltIn")?,
            before_comment: s.comments("BeforeDescriptionComment")?,
            after_comment: s.comments("AfterDescriptionComment")?,
            end_comment: s.comments("EndOfDefinitionComment")?,
            pos: Pos::default(),
        })
    }
}
