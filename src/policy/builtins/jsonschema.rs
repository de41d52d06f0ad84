//! `json.verify_schema` and `json.match_schema`: JSON Schema (draft 4, 6 and 7) as OPA checks
//! it, which is with gojsonschema. The schema keywords, the order errors come in, their `type`
//! names and messages (`(Root): b is required`, `Invalid type. Expected: string, given:
//! integer`) and which `anyOf`/`oneOf` branch is reported (the closest one, by gojsonschema's
//! score) follow gojsonschema; checked against OPA 1.20 by the corpus
//! (fixtures/opa-diff/exprs/jsonschema.txt).
//!
//! One difference by design: a `$ref` to anything but this schema (`#…`) is refused — OPA would
//! fetch it over the network, and a policy must not be a way out of the plant.
//!
//! Not here: regorus's own schema support (not built).

use std::collections::BTreeMap;

use regorus::Value;
use serde_json::Value as Json;

use super::{Args, Builtin, BuiltinError, to_json, type_name};

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "json.verify_schema",
        arity: 1,
        run: verify_schema,
    },
    Builtin {
        name: "json.match_schema",
        arity: 2,
        run: match_schema,
    },
];

/// Deeper nesting than this (of the document, or of `$ref`s that loop) stops validation.
const MAX_DEPTH: usize = 256;
/// More subschemas than this in one schema are refused.
const MAX_NODES: usize = 100_000;

/// A schema or document argument: an object, or a JSON string.
fn json_arg(args: &Args<'_>, i: usize) -> Result<Result<Json, String>, BuiltinError> {
    match args.value(i) {
        Value::String(s) => Ok(serde_json::from_str(s).map_err(|_| "invalid JSON string".into())),
        v @ Value::Object(_) => Ok(Ok(to_json(v))),
        other => Err(args.error(format!(
            "operand {} must be one of {{object, string}} but got {}",
            i + 1,
            type_name(other)
        ))),
    }
}

fn verify_schema(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let outcome = json_arg(args, 0)?.and_then(|s| Schema::compile(&s).map(|_| ()));
    Ok(match outcome {
        Ok(()) => Value::from(vec![Value::from(true), Value::Null]),
        Err(m) => Value::from(vec![
            Value::from(false),
            Value::from(format!("jsonschema: {m}")),
        ]),
    })
}

fn match_schema(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let doc = json_arg(args, 0)?.map_err(|m| args.error(m))?;
    let schema = json_arg(args, 1)?.map_err(|m| args.error(m))?;
    let schema = Schema::compile(&schema).map_err(|m| args.error(m))?;
    let mut result = Outcome::default();
    schema.validate(0, &doc, &mut Vec::new(), &mut result, 0);
    if result.too_deep {
        return Err(args.error("schema or document nested too deep"));
    }
    let errors: Vec<Value> = result
        .errors
        .iter()
        .map(|e| {
            let mut o = BTreeMap::new();
            o.insert(Value::from("desc"), Value::from(e.desc.clone()));
            o.insert(
                Value::from("error"),
                Value::from(format!("{}: {}", e.field, e.desc)),
            );
            o.insert(Value::from("field"), Value::from(e.field.clone()));
            o.insert(Value::from("type"), Value::from(e.kind));
            Value::from(o)
        })
        .collect();
    Ok(Value::from(vec![
        Value::from(errors.is_empty()),
        Value::from(errors),
    ]))
}

/// An exact decimal (`digits × 10^-scale`) for bounds and `multipleOf`, as gojsonschema
/// compares with big rationals; `None` when the number does not fit.
#[derive(Clone, Copy, Debug)]
struct Decimal {
    digits: i128,
    scale: u32,
}

impl Decimal {
    fn of(n: &serde_json::Number) -> Option<Self> {
        let text = n.to_string();
        let (mantissa, exp) = match text.split_once(['e', 'E']) {
            Some((m, e)) => (m.to_string(), e.parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((&mantissa, ""));
        let mut digits: i128 = format!("{int}{frac}").parse().ok()?;
        let mut scale = i32::try_from(frac.len()).ok()? - exp;
        while scale < 0 {
            digits = digits.checked_mul(10)?;
            scale += 1;
        }
        Some(Self {
            digits,
            scale: u32::try_from(scale).ok()?,
        })
    }

    /// Both at the same scale.
    fn aligned(self, other: Self) -> Option<(i128, i128)> {
        let s = self.scale.max(other.scale);
        let a = self
            .digits
            .checked_mul(10i128.checked_pow(s - self.scale)?)?;
        let b = other
            .digits
            .checked_mul(10i128.checked_pow(s - other.scale)?)?;
        Some((a, b))
    }
}

/// A number as both an f64 (fallback) and an exact decimal.
#[derive(Clone, Copy, Debug)]
struct Num {
    f: f64,
    exact: Option<Decimal>,
}

impl Num {
    fn of(n: &serde_json::Number) -> Self {
        Self {
            f: n.as_f64().unwrap_or(f64::NAN),
            exact: Decimal::of(n),
        }
    }

    fn cmp(self, other: Self) -> std::cmp::Ordering {
        match self.exact.zip(other.exact).and_then(|(a, b)| a.aligned(b)) {
            Some((a, b)) => a.cmp(&b),
            None => self
                .f
                .partial_cmp(&other.f)
                .unwrap_or(std::cmp::Ordering::Equal),
        }
    }

    fn is_multiple_of(self, m: Self) -> bool {
        match self.exact.zip(m.exact).and_then(|(a, b)| a.aligned(b)) {
            Some((a, b)) if b != 0 => a % b == 0,
            _ => (self.f / m.f).fract() == 0.0,
        }
    }

    fn is_integer(self) -> bool {
        match self.exact {
            Some(d) => 10i128
                .checked_pow(d.scale)
                .is_some_and(|p| d.digits % p == 0),
            None => self.f.fract() == 0.0,
        }
    }
}

/// Go's `%v` of a `big.Float`: the shortest digits, in e-notation from 1e+06 or below 1e-04.
fn go_number(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let e = format!("{x:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{x}")
    }
}

/// Go's `json.Marshal` of a value decoded without json.Number: numbers as float64.
fn go_json(v: &Json) -> String {
    match v {
        Json::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e21 {
                format!("{f:.0}")
            } else {
                let e = format!("{f:e}");
                let (m, exp) = e.split_once('e').unwrap_or((&e, "0"));
                let exp: i32 = exp.parse().unwrap_or(0);
                if !(-6..21).contains(&exp) {
                    let sign = if exp < 0 { '-' } else { '+' };
                    format!("{m}e{sign}{:02}", exp.unsigned_abs())
                } else {
                    format!("{f}")
                }
            }
        }
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(go_json).collect::<Vec<_>>().join(",")
        ),
        Json::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}:{}", Json::from(k.as_str()), go_json(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

enum Items {
    One(usize),
    Tuple(Vec<usize>),
}

enum Dependency {
    Names(Vec<String>),
    Schema(usize),
}

/// One compiled subschema.
#[derive(Default)]
struct Node {
    pass: Option<bool>,
    reference: Option<String>,
    types: Vec<String>,
    properties: Vec<(String, usize)>,
    pattern_properties: Vec<(regex::Regex, usize)>,
    additional_properties: Option<Extra>,
    property_names: Option<usize>,
    dependencies: Vec<(String, Dependency)>,
    items: Option<Items>,
    additional_items: Option<Extra>,
    multiple_of: Option<Num>,
    minimum: Option<Num>,
    exclusive_minimum: Option<Num>,
    maximum: Option<Num>,
    exclusive_maximum: Option<Num>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<(String, regex::Regex)>,
    format: Option<String>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    required: Vec<String>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    contains: Option<usize>,
    constant: Option<String>,
    enumeration: Vec<String>,
    one_of: Vec<usize>,
    any_of: Vec<usize>,
    all_of: Vec<usize>,
    not: Option<usize>,
    when: Option<usize>,
    then: Option<usize>,
    otherwise: Option<usize>,
}

#[derive(Clone, Copy)]
enum Extra {
    Allowed(bool),
    Schema(usize),
}

struct Schema {
    nodes: Vec<Node>,
    /// The subschema each local `$ref` points at.
    refs: BTreeMap<String, usize>,
}

const TYPES: &[&str] = &[
    "array", "boolean", "integer", "number", "null", "object", "string",
];

fn invalid_type(expected: &str, given: &str) -> String {
    format!("Invalid type. Expected: {expected}, given: {given}")
}

/// A non-negative integer keyword (`minLength`, …).
fn count(m: &serde_json::Map<String, Json>, key: &str) -> Result<Option<u64>, String> {
    match m.get(key) {
        None => Ok(None),
        Some(Json::Number(n)) if Num::of(n).is_integer() => {
            let v = n.as_f64().unwrap_or(0.0);
            if v < 0.0 {
                Err(format!("{key} must be greater than or equal to 0"))
            } else {
                Ok(Some(v as u64))
            }
        }
        Some(_) => Err(format!("{key} must be of an integer")),
    }
}

fn compile_regex(pattern: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .ok()
}

impl Schema {
    fn compile(root: &Json) -> Result<Self, String> {
        if !matches!(root, Json::Object(_) | Json::Bool(_)) {
            return Err("schema is invalid".into());
        }
        let mut s = Schema {
            nodes: Vec::new(),
            refs: BTreeMap::new(),
        };
        let mut pending = Vec::new();
        s.node(root, &mut pending)?;
        // Resolve each local reference (a JSON pointer into the root schema) to a subschema.
        let mut i = 0;
        while i < pending.len() {
            let reference: String = pending[i].clone();
            i += 1;
            if s.refs.contains_key(&reference) {
                continue;
            }
            let target = pointer(root, &reference)?;
            if !matches!(target, Json::Object(_) | Json::Bool(_)) {
                return Err("Expected: Valid Schema, given: Invalid JSON".into());
            }
            let at = s.node(target, &mut pending)?;
            s.refs.insert(reference, at);
        }
        Ok(s)
    }

    fn node(&mut self, v: &Json, pending: &mut Vec<String>) -> Result<usize, String> {
        if self.nodes.len() >= MAX_NODES {
            return Err(format!("more than {MAX_NODES} subschemas"));
        }
        let at = self.nodes.len();
        self.nodes.push(Node::default());
        let m = match v {
            Json::Bool(b) => {
                self.nodes[at].pass = Some(*b);
                return Ok(at);
            }
            Json::Object(m) => m,
            _ => return Err("Expected: Valid Schema, given: Invalid JSON".into()),
        };
        let mut n = Node::default();
        let sub = |this: &mut Self, v: &Json, pending: &mut Vec<String>| -> Result<usize, String> {
            match v {
                Json::Object(_) | Json::Bool(_) => this.node(v, pending),
                _ => Err("Expected: Valid Schema, given: Invalid JSON".into()),
            }
        };
        if let Some(r) = m.get("$ref") {
            let Json::String(r) = r else {
                return Err(invalid_type("string", "$ref"));
            };
            let local = r.strip_prefix('#').ok_or_else(|| {
                format!(
                    "$ref {r} is not fetched: sluice resolves only references into the same schema (#…), a policy must not be a way out of the plant"
                )
            })?;
            pending.push(local.to_string());
            n.reference = Some(local.to_string());
        }
        if let Some(d) = m.get("definitions") {
            let Json::Object(defs) = d else {
                return Err(invalid_type("Array Of Schemas", "definitions"));
            };
            for v in defs.values() {
                if !matches!(v, Json::Object(_) | Json::Bool(_)) {
                    return Err(invalid_type("Array Of Schemas", "definitions"));
                }
            }
        }
        for key in ["title", "description"] {
            if m.get(key).is_some_and(|v| !v.is_string()) {
                return Err(invalid_type("string", key));
            }
        }
        if let Some(t) = m.get("type") {
            let names: Vec<&str> = match t {
                Json::String(s) => vec![s.as_str()],
                Json::Array(items) => items
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .ok_or_else(|| invalid_type("type", "string/Array Of Strings"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(invalid_type("type", "string/Array Of Strings")),
            };
            for name in names {
                if !TYPES.contains(&name) {
                    return Err(format!(
                        "has a primitive type that is NOT VALID -- given: /{name}/ Expected valid values are:[{}]",
                        TYPES.join(" ")
                    ));
                }
                if n.types.iter().any(|t| t == name) {
                    return Err(format!("{name} type is duplicated"));
                }
                n.types.push(name.to_string());
            }
        }
        if let Some(p) = m.get("properties") {
            let Json::Object(props) = p else {
                return Err("Properties must be of type object".into());
            };
            for (k, v) in props {
                let i = sub(self, v, pending)?;
                n.properties.push((k.clone(), i));
            }
        }
        if let Some(a) = m.get("additionalProperties") {
            n.additional_properties = Some(match a {
                Json::Bool(b) => Extra::Allowed(*b),
                Json::Object(_) => Extra::Schema(self.node(a, pending)?),
                _ => return Err(invalid_type("boolean/Valid Schema", "additionalProperties")),
            });
        }
        if let Some(p) = m.get("patternProperties") {
            let Json::Object(props) = p else {
                return Err(invalid_type("Valid Schema", "patternProperties"));
            };
            for (k, v) in props {
                let re = compile_regex(k).ok_or_else(|| format!("Invalid regex pattern '{k}'"))?;
                let i = sub(self, v, pending)?;
                n.pattern_properties.push((re, i));
            }
        }
        if let Some(p) = m.get("propertyNames") {
            if !matches!(p, Json::Object(_) | Json::Bool(_)) {
                return Err(invalid_type("Valid Schema", "patternProperties"));
            }
            n.property_names = Some(self.node(p, pending)?);
        }
        if let Some(Json::Object(deps)) = m.get("dependencies") {
            for (k, v) in deps {
                let dep = match v {
                    Json::Array(names) => Dependency::Names(
                        names
                            .iter()
                            .map(|x| {
                                x.as_str().map(str::to_string).ok_or_else(|| {
                                    "Dependency must be of type Schema Or Array Of Strings"
                                        .to_string()
                                })
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    Json::Object(_) | Json::Bool(_) => Dependency::Schema(self.node(v, pending)?),
                    _ => return Err("Dependency must be of type Schema Or Array Of Strings".into()),
                };
                n.dependencies.push((k.clone(), dep));
            }
        }
        if let Some(items) = m.get("items") {
            n.items = Some(match items {
                Json::Object(_) | Json::Bool(_) => Items::One(self.node(items, pending)?),
                Json::Array(list) => Items::Tuple(
                    list.iter()
                        .map(|x| match x {
                            Json::Object(_) | Json::Bool(_) => self.node(x, pending),
                            _ => Err(invalid_type("Valid Schema/Array Of Schemas", "items")),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => return Err(invalid_type("Valid Schema/Array Of Schemas", "items")),
            });
        }
        if let Some(a) = m.get("additionalItems") {
            n.additional_items = Some(match a {
                Json::Bool(b) => Extra::Allowed(*b),
                Json::Object(_) => Extra::Schema(self.node(a, pending)?),
                _ => return Err(invalid_type("boolean/Valid Schema", "additionalItems")),
            });
        }
        if let Some(v) = m.get("multipleOf") {
            let Json::Number(x) = v else {
                return Err(invalid_type("Number", "multipleOf"));
            };
            if x.as_f64().unwrap_or(0.0) <= 0.0 {
                return Err("multipleOf must be strictly greater than 0".into());
            }
            n.multiple_of = Some(Num::of(x));
        }
        // Bounds: a number, and in draft 4 a boolean `exclusive…` that makes the bound strict.
        for (bound, exclusive) in [
            ("minimum", "exclusiveMinimum"),
            ("maximum", "exclusiveMaximum"),
        ] {
            let value = match m.get(bound) {
                None => None,
                Some(Json::Number(x)) => Some(Num::of(x)),
                Some(_) => return Err(format!("{bound} must be of a Number")),
            };
            let (inclusive, strict) = match m.get(exclusive) {
                None | Some(Json::Bool(false)) => (value, None),
                Some(Json::Bool(true)) => (None, value),
                Some(Json::Number(x)) => (value, Some(Num::of(x))),
                Some(_) => return Err(invalid_type("boolean/number", exclusive)),
            };
            if bound == "minimum" {
                n.minimum = inclusive;
                n.exclusive_minimum = strict;
            } else {
                n.maximum = inclusive;
                n.exclusive_maximum = strict;
            }
        }
        n.min_length = count(m, "minLength")?;
        n.max_length = count(m, "maxLength")?;
        if let (Some(a), Some(b)) = (n.min_length, n.max_length) {
            if a > b {
                return Err("minLength cannot be greater than maxLength".into());
            }
        }
        if let Some(p) = m.get("pattern") {
            let Json::String(p) = p else {
                return Err(invalid_type("string", "pattern"));
            };
            let re = compile_regex(p).ok_or("pattern must be a valid regex")?;
            n.pattern = Some((p.clone(), re));
        }
        if let Some(f) = m.get("format") {
            let Json::String(f) = f else {
                return Err(invalid_type("string", "format"));
            };
            n.format = Some(f.clone());
        }
        n.min_properties = count(m, "minProperties")?;
        n.max_properties = count(m, "maxProperties")?;
        if let (Some(a), Some(b)) = (n.min_properties, n.max_properties) {
            if a > b {
                return Err("minProperties cannot be greater than maxProperties".into());
            }
        }
        if let Some(r) = m.get("required") {
            let Json::Array(items) = r else {
                return Err("required must be of an array".into());
            };
            for x in items {
                let Json::String(s) = x else {
                    return Err(invalid_type("string", "required"));
                };
                if n.required.contains(s) {
                    return Err("required items must be unique".into());
                }
                n.required.push(s.clone());
            }
        }
        n.min_items = count(m, "minItems")?;
        n.max_items = count(m, "maxItems")?;
        if let Some(u) = m.get("uniqueItems") {
            let Json::Bool(u) = u else {
                return Err("uniqueItems must be of a boolean".into());
            };
            n.unique_items = *u;
        }
        if let Some(c) = m.get("contains") {
            n.contains = Some(sub(self, c, pending)?);
        }
        if let Some(c) = m.get("const") {
            n.constant = Some(go_json(c));
        }
        if let Some(e) = m.get("enum") {
            let Json::Array(items) = e else {
                return Err("enum must be of an array".into());
            };
            for x in items {
                let text = go_json(x);
                if n.enumeration.contains(&text) {
                    return Err("enum items must be unique".into());
                }
                n.enumeration.push(text);
            }
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            if let Some(list) = m.get(key) {
                let Json::Array(list) = list else {
                    return Err(format!("{key} must be of an array"));
                };
                let mut out = Vec::new();
                for x in list {
                    out.push(sub(self, x, pending)?);
                }
                match key {
                    "oneOf" => n.one_of = out,
                    "anyOf" => n.any_of = out,
                    _ => n.all_of = out,
                }
            }
        }
        for key in ["not", "if", "then", "else"] {
            if let Some(x) = m.get(key) {
                if !matches!(x, Json::Object(_) | Json::Bool(_)) {
                    return Err(format!("{key} must be of an object"));
                }
                let i = self.node(x, pending)?;
                match key {
                    "not" => n.not = Some(i),
                    "if" => n.when = Some(i),
                    "then" => n.then = Some(i),
                    _ => n.otherwise = Some(i),
                }
            }
        }
        self.nodes[at] = n;
        Ok(at)
    }
}

/// A JSON pointer (`/definitions/a`, RFC 6901 escapes) into the root schema.
fn pointer<'a>(root: &'a Json, p: &str) -> Result<&'a Json, String> {
    let mut at = root;
    if p.is_empty() {
        return Ok(at);
    }
    for raw in p.trim_start_matches('/').split('/') {
        let key = raw.replace("~1", "/").replace("~0", "~");
        at = match at {
            Json::Object(m) => m
                .get(&key)
                .ok_or_else(|| format!("Object has no key '{key}'"))?,
            Json::Array(items) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .ok_or_else(|| format!("Out of bound array[0,{}] index '{key}'", items.len()))?,
            _ => return Err(format!("Object has no key '{key}'")),
        };
    }
    Ok(at)
}

struct Failure {
    field: String,
    kind: &'static str,
    desc: String,
}

/// gojsonschema's `Result`: the errors, and the score that ranks near misses.
#[derive(Default)]
struct Outcome {
    errors: Vec<Failure>,
    score: u64,
    too_deep: bool,
}

impl Outcome {
    fn fail(&mut self, path: &[String], kind: &'static str, desc: String) {
        self.errors.push(Failure {
            field: field(path),
            kind,
            desc,
        });
    }

    fn merge(&mut self, other: Outcome) {
        self.errors.extend(other.errors);
        self.score += other.score;
        self.too_deep |= other.too_deep;
    }

    fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

fn field(path: &[String]) -> String {
    if path.is_empty() {
        "(Root)".into()
    } else {
        path.join(".")
    }
}

fn given_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if Num::of(n).is_integer() => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn types_text(types: &[String]) -> String {
    match types {
        [one] => one.clone(),
        many => format!("[{}]", many.join(",")),
    }
}

impl Schema {
    /// A fresh result for a subschema (gojsonschema's `subValidateWithContext`).
    fn sub(&self, at: usize, v: &Json, path: &mut Vec<String>, depth: usize) -> Outcome {
        let mut r = Outcome::default();
        self.validate(at, v, path, &mut r, depth);
        r
    }

    /// gojsonschema's `validateRecursive`.
    fn validate(&self, at: usize, v: &Json, path: &mut Vec<String>, r: &mut Outcome, depth: usize) {
        if depth > MAX_DEPTH {
            r.too_deep = true;
            return;
        }
        let n = &self.nodes[at];
        if let Some(pass) = n.pass {
            if !pass {
                r.fail(path, "false", "False always fails validation".into());
            }
            return;
        }
        if let Some(target) = n.reference.as_ref().and_then(|p| self.refs.get(p)) {
            self.validate(*target, v, path, r, depth + 1);
            return;
        }
        let given = given_type(v);
        let typed = !n.types.is_empty();
        let fits = n
            .types
            .iter()
            .any(|t| t == given || (t == "number" && given == "integer"));
        if typed && !fits {
            r.fail(
                path,
                "invalid_type",
                invalid_type(&types_text(&n.types), given),
            );
            return;
        }
        self.applicators(n, v, path, r, depth);
        match v {
            Json::Number(x) => self.number(n, Num::of(x), path, r),
            Json::Array(items) => self.array(n, items, path, r, depth),
            Json::Object(map) => self.object(n, map, path, r, depth),
            Json::String(s) => self.string(n, s, path, r),
            _ => {}
        }
        self.common(n, v, path, r);
        if let Json::Object(map) = v {
            for (key, child) in &n.properties {
                if let Some(value) = map.get(key) {
                    path.push(key.clone());
                    self.validate(*child, value, path, r, depth + 1);
                    path.pop();
                }
            }
        }
        r.score += 1;
    }

    /// anyOf, oneOf, allOf, not, dependencies, if/then/else (`validateSchema`).
    fn applicators(
        &self,
        n: &Node,
        v: &Json,
        path: &mut Vec<String>,
        r: &mut Outcome,
        depth: usize,
    ) {
        if !n.any_of.is_empty() {
            let mut best: Option<Outcome> = None;
            let mut ok = false;
            for s in &n.any_of {
                let res = self.sub(*s, v, path, depth + 1);
                if res.valid() {
                    ok = true;
                    break;
                }
                if best.as_ref().is_none_or(|b| res.score > b.score) {
                    best = Some(res);
                }
            }
            if !ok {
                r.fail(
                    path,
                    "number_any_of",
                    "Must validate at least one schema (anyOf)".into(),
                );
                if let Some(b) = best {
                    r.merge(b);
                }
            }
        }
        if !n.one_of.is_empty() {
            let mut valid = 0;
            let mut best: Option<Outcome> = None;
            for s in &n.one_of {
                let res = self.sub(*s, v, path, depth + 1);
                if res.valid() {
                    valid += 1;
                } else if valid == 0 && best.as_ref().is_none_or(|b| res.score > b.score) {
                    best = Some(res);
                }
            }
            if valid != 1 {
                r.fail(
                    path,
                    "number_one_of",
                    "Must validate one and only one schema (oneOf)".into(),
                );
                if valid == 0 {
                    if let Some(b) = best {
                        r.merge(b);
                    }
                }
            }
        }
        if !n.all_of.is_empty() {
            let mut valid = 0;
            for s in &n.all_of {
                let res = self.sub(*s, v, path, depth + 1);
                if res.valid() {
                    valid += 1;
                }
                r.merge(res);
            }
            if valid != n.all_of.len() {
                r.fail(
                    path,
                    "number_all_of",
                    "Must validate all the schemas (allOf)".into(),
                );
            }
        }
        if let Some(s) = n.not {
            if self.sub(s, v, path, depth + 1).valid() {
                r.fail(
                    path,
                    "number_not",
                    "Must not validate the schema (not)".into(),
                );
            }
        }
        if let Json::Object(map) = v {
            for (key, dep) in &n.dependencies {
                if !map.contains_key(key) {
                    continue;
                }
                match dep {
                    Dependency::Names(names) => {
                        for name in names {
                            if !map.contains_key(name) {
                                r.fail(
                                    path,
                                    "missing_dependency",
                                    format!("Has a dependency on {name}"),
                                );
                            }
                        }
                    }
                    Dependency::Schema(s) => self.validate(*s, v, path, r, depth + 1),
                }
            }
        }
        // gojsonschema checks formats with the applicators, before the string keywords.
        if let (Some(f), Json::String(text)) = (&n.format, v) {
            if !format_ok(f, text) {
                r.fail(path, "format", format!("Does not match format '{f}'"));
            }
        }
        if let Some(cond) = n.when {
            let matched = self.sub(cond, v, path, depth + 1).valid();
            let (branch, kind, desc) = if matched {
                (
                    n.then,
                    "condition_then",
                    "Must validate \"then\" as \"if\" was valid",
                )
            } else {
                (
                    n.otherwise,
                    "condition_else",
                    "Must validate \"else\" as \"if\" was not valid",
                )
            };
            if let Some(b) = branch {
                let res = self.sub(b, v, path, depth + 1);
                if !res.valid() {
                    r.fail(path, kind, desc.into());
                    r.merge(res);
                }
            }
        }
        r.score += 1;
    }

    fn number(&self, n: &Node, x: Num, path: &[String], r: &mut Outcome) {
        if let Some(m) = n.multiple_of {
            if !x.is_multiple_of(m) {
                r.fail(
                    path,
                    "multiple_of",
                    format!("Must be a multiple of {}", go_number(m.f)),
                );
            }
        }
        use std::cmp::Ordering::{Equal, Greater, Less};
        // (bound, the orderings of x against it that fail, error type, message)
        let bounds = [
            (
                n.maximum,
                &[Greater][..],
                "number_lte",
                "less than or equal to",
            ),
            (
                n.exclusive_maximum,
                &[Greater, Equal][..],
                "number_lt",
                "less than",
            ),
            (
                n.minimum,
                &[Less][..],
                "number_gte",
                "greater than or equal to",
            ),
            (
                n.exclusive_minimum,
                &[Less, Equal][..],
                "number_gt",
                "greater than",
            ),
        ];
        for (bound, failing, code, words) in bounds {
            if let Some(b) = bound {
                if failing.contains(&x.cmp(b)) {
                    r.fail(path, code, format!("Must be {words} {}", go_number(b.f)));
                }
            }
        }
        r.score += 1;
    }

    fn array(
        &self,
        n: &Node,
        items: &[Json],
        path: &mut Vec<String>,
        r: &mut Outcome,
        depth: usize,
    ) {
        let each = |s: usize, i: usize, r: &mut Outcome, path: &mut Vec<String>| {
            path.push(i.to_string());
            let res = self.sub(s, &items[i], path, depth + 1);
            path.pop();
            r.merge(res);
        };
        match &n.items {
            Some(Items::One(s)) => {
                for i in 0..items.len() {
                    each(*s, i, r, path);
                }
            }
            Some(Items::Tuple(list)) if !list.is_empty() => {
                for (i, s) in list.iter().enumerate().take(items.len()) {
                    each(*s, i, r, path);
                }
                if list.len() < items.len() {
                    match n.additional_items {
                        Some(Extra::Allowed(false)) => r.fail(
                            path,
                            "array_no_additional_items",
                            "No additional items allowed on array".into(),
                        ),
                        Some(Extra::Schema(s)) => {
                            for i in list.len()..items.len() {
                                each(s, i, r, path);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        let len = items.len() as u64;
        if let Some(min) = n.min_items {
            if len < min {
                r.fail(
                    path,
                    "array_min_items",
                    format!("Array must have at least {min} items"),
                );
            }
        }
        if let Some(max) = n.max_items {
            if len > max {
                r.fail(
                    path,
                    "array_max_items",
                    format!("Array must have at most {max} items"),
                );
            }
        }
        if n.unique_items {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for (j, item) in items.iter().enumerate() {
                let text = go_json(item);
                if let Some(i) = seen.get(&text) {
                    r.fail(
                        path,
                        "unique",
                        format!("array items[{i},{j}] must be unique"),
                    );
                }
                seen.insert(text, j);
            }
        }
        if let Some(s) = n.contains {
            let mut best: Option<Outcome> = None;
            let mut ok = false;
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                let res = self.sub(s, item, path, depth + 1);
                path.pop();
                if res.valid() {
                    ok = true;
                    break;
                }
                if best.as_ref().is_none_or(|b| res.score > b.score) {
                    best = Some(res);
                }
            }
            if !ok {
                r.fail(
                    path,
                    "contains",
                    "At least one of the items must match".into(),
                );
                if let Some(b) = best {
                    r.merge(b);
                }
            }
        }
        r.score += 1;
    }

    fn object(
        &self,
        n: &Node,
        map: &serde_json::Map<String, Json>,
        path: &mut Vec<String>,
        r: &mut Outcome,
        depth: usize,
    ) {
        let len = map.len() as u64;
        if let Some(min) = n.min_properties {
            if len < min {
                r.fail(
                    path,
                    "array_min_properties",
                    format!("Must have at least {min} properties"),
                );
            }
        }
        if let Some(max) = n.max_properties {
            if len > max {
                r.fail(
                    path,
                    "array_max_properties",
                    format!("Must have at most {max} properties"),
                );
            }
        }
        for name in &n.required {
            if map.contains_key(name) {
                r.score += 1;
            } else {
                r.fail(path, "required", format!("{name} is required"));
            }
        }
        for (key, value) in map {
            let described = n.properties.iter().any(|(k, _)| k == key);
            let mut matched = false;
            for (re, s) in &n.pattern_properties {
                if re.is_match(key) {
                    matched = true;
                    path.push(key.clone());
                    let res = self.sub(*s, value, path, depth + 1);
                    path.pop();
                    r.merge(res);
                }
            }
            if matched {
                r.score += 1;
            }
            if described || matched {
                continue;
            }
            match n.additional_properties {
                Some(Extra::Allowed(false)) => r.fail(
                    path,
                    "additional_property_not_allowed",
                    format!("Additional property {key} is not allowed"),
                ),
                Some(Extra::Schema(s)) => {
                    path.push(key.clone());
                    let res = self.sub(s, value, path, depth + 1);
                    path.pop();
                    r.merge(res);
                }
                _ => {}
            }
        }
        if let Some(s) = n.property_names {
            for key in map.keys() {
                let res = self.sub(s, &Json::String(key.clone()), path, depth + 1);
                if !res.valid() {
                    r.fail(
                        path,
                        "invalid_property_name",
                        format!("Property name of \"{key}\" does not match"),
                    );
                    r.merge(res);
                }
            }
        }
        r.score += 1;
    }

    fn string(&self, n: &Node, s: &str, path: &[String], r: &mut Outcome) {
        let len = s.chars().count() as u64;
        if let Some(min) = n.min_length {
            if len < min {
                r.fail(
                    path,
                    "string_gte",
                    format!("String length must be greater than or equal to {min}"),
                );
            }
        }
        if let Some(max) = n.max_length {
            if len > max {
                r.fail(
                    path,
                    "string_lte",
                    format!("String length must be less than or equal to {max}"),
                );
            }
        }
        if let Some((text, re)) = &n.pattern {
            if !re.is_match(s) {
                r.fail(path, "pattern", format!("Does not match pattern '{text}'"));
            }
        }
        r.score += 1;
    }

    /// const and enum (`validateCommon`).
    fn common(&self, n: &Node, v: &Json, path: &[String], r: &mut Outcome) {
        let text = go_json(v);
        if let Some(c) = &n.constant {
            if *c != text {
                r.fail(
                    path,
                    "const",
                    format!("{} does not match: {c}", field(path)),
                );
            }
        }
        if !n.enumeration.is_empty() && !n.enumeration.contains(&text) {
            r.fail(
                path,
                "enum",
                format!(
                    "{} must be one of the following: {}",
                    field(path),
                    n.enumeration.join(", ")
                ),
            );
        }
        r.score += 1;
    }
}

/// gojsonschema's format checkers; formats it does not know pass.
fn format_ok(format: &str, s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let date = |t: &str| -> bool {
        let parts: Vec<&str> = t.split('-').collect();
        let [y, m, d] = parts.as_slice() else {
            return false;
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 || !digits(y) || !digits(m) || !digits(d) {
            return false;
        }
        let (y, m, d): (u32, u32, u32) = (
            y.parse().unwrap_or(0),
            m.parse().unwrap_or(0),
            d.parse().unwrap_or(0),
        );
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days = match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return false,
        };
        (1..=days).contains(&d)
    };
    let clock = |t: &str| -> bool {
        let (t, zone) = match t.find(['Z', 'z', '+', '-']) {
            Some(i) => (&t[..i], &t[i..]),
            None => (t, ""),
        };
        let (hms, frac) = t.split_once('.').unwrap_or((t, "0"));
        let parts: Vec<&str> = hms.split(':').collect();
        let [h, m, sec] = parts.as_slice() else {
            return false;
        };
        let ok2 = |x: &str, max: u32| {
            x.len() == 2 && digits(x) && x.parse::<u32>().is_ok_and(|v| v <= max)
        };
        let zone_ok = match zone {
            "" | "Z" | "z" => true,
            z => {
                let z = &z[1..];
                z.split_once(':')
                    .is_some_and(|(a, b)| ok2(a, 23) && ok2(b, 59))
            }
        };
        ok2(h, 23) && ok2(m, 59) && ok2(sec, 59) && digits(frac) && zone_ok
    };
    match format {
        "date-time" => s
            .split_once(['T', 't'])
            .is_some_and(|(d, t)| date(d) && clock(t) && t.contains(['Z', 'z', '+', '-'])),
        "date" => date(s),
        "time" => clock(s),
        "email" | "idn-email" => s.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !s.contains(char::is_whitespace)
        }),
        "hostname" => {
            s.len() <= 255
                && s.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                })
        }
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.contains(':') && s.parse::<std::net::Ipv6Addr>().is_ok(),
        "uri" => {
            !s.contains('\\')
                && s.split_once(':').is_some_and(|(scheme, _)| {
                    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                })
        }
        "uuid" => {
            let parts: Vec<&str> = s.split('-').collect();
            parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
                && parts
                    .iter()
                    .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        "regex" => compile_regex(s).is_some(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_and_compare_as_go_does() {
        assert_eq!(go_number(4.0), "4");
        assert_eq!(go_number(0.1), "0.1");
        assert_eq!(go_number(1234567890122.0), "1.234567890122e+12");
        assert_eq!(go_number(100000.0), "100000");
        let n = |s: &str| Num::of(&serde_json::from_str::<serde_json::Number>(s).expect("number"));
        assert!(n("0.3").is_multiple_of(n("0.1")));
        assert!(n("2.5").is_multiple_of(n("0.5")));
        assert!(!n("2.5").is_multiple_of(n("2")));
        assert!(n("1.0").is_integer());
        assert_eq!(
            go_json(&serde_json::json!([1.0, "a", {"b": null}])),
            r#"[1,"a",{"b":null}]"#
        );
    }

    #[test]
    fn a_ref_loop_stops_at_the_depth_limit() {
        let schema = Schema::compile(&serde_json::json!({"$ref": "#"})).expect("compiles");
        let mut r = Outcome::default();
        schema.validate(0, &serde_json::json!(1), &mut Vec::new(), &mut r, 0);
        assert!(r.too_deep);
    }
}
