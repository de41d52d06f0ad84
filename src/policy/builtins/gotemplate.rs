//! `strings.render_template(template, vars)` as OPA 1.20 gives it: Go's `text/template` run on
//! the variables as OPA hands them to Go (objects are `map[string]interface{}`, arrays
//! `[]interface{}`, numbers `json.Number`, a string type), then `<no value>` written as
//! `<undefined>`. So `{{.n}}` prints a number as written, `{{if .n}}` is true even for 0,
//! `eq .n 3` is an error (json.Number against int) and `printf "%d" .n` prints
//! `%!d(json.Number=3)`, all as in OPA.
//!
//! Built: text, `{{- -}}` trimming, comments, pipelines with `|`, fields and chains (`.a.b`,
//! `$x.a`, `(pipeline).a`), variables (`$x := …`, `$x = …`, `$i, $v := range …`), `if`/`else
//! if`/`else`, `range` (with `else`, `break`, `continue`), `with` (with `else`), string, raw
//! string, number, bool and nil constants, `define`, `template` and `block`, and the functions
//! `and`, `or`, `not`, `len`, `index`, `print`, `printf`, `println`, `eq`, `ne`, `lt`, `le`,
//! `gt`, `ge`, `html`, `urlquery`, `slice`, `js` and `call` (always an error: no value from
//! JSON is a function).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use regorus::Value;
use serde_json::Value as Json;

use super::{Args, Builtin, BuiltinError};

pub static BUILTINS: &[Builtin] = &[Builtin {
    name: "strings.render_template",
    arity: 2,
    run: render_template,
}];

/// Longer templates are refused, and output stops growing past this (OPA sets no limit).
const MAX_TEMPLATE: usize = 1 << 20;
const MAX_OUTPUT: usize = 16 << 20;
/// Nesting of blocks and parentheses.
const MAX_DEPTH: usize = 100;

fn render_template(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let text = args.string(0)?;
    let vars = Json::Object(args.object(1)?);
    if text.len() > MAX_TEMPLATE {
        return Err(args.error("the template is longer than 1 MiB"));
    }
    if has_set(args.value(1)) {
        // OPA hands the variables to Go as JSON, which a set is not.
        return Err(args.error("invalid character ',' after object key"));
    }
    render(text, &vars)
        .map(Value::from)
        .map_err(|m| args.error(m))
}

/// The template run on `vars`, or the error worded as Go's text/template words it.
fn render(text: &str, vars: &Json) -> Result<String, String> {
    let (nodes, defs) = Parser::new(text)
        .parse()
        .map_err(|m| format!("template: template:{m}"))?;
    let mut r = Renderer {
        out: String::new(),
        vars: vec![("$".to_string(), vars.clone())],
        defs: std::rc::Rc::new(defs),
        depth: 0,
    };
    match r.nodes(&nodes, vars) {
        Ok(()) | Err(Flow::Break) | Err(Flow::Continue) => {}
        Err(Flow::Error(m)) => {
            return Err(format!("template: template:1: executing \"template\": {m}"));
        }
    }
    Ok(r.out.replace("<no value>", "<undefined>"))
}

fn has_set(v: &Value) -> bool {
    match v {
        Value::Set(_) => true,
        Value::Array(a) => a.iter().any(has_set),
        Value::Object(o) => o.iter().any(|(k, v)| has_set(k) || has_set(v)),
        _ => false,
    }
}

// ---- parsing ----

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    /// `.a.b` on dot.
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    Str(String),
    Num(String),
    Bool(bool),
    Nil,
    Func(String),
    /// `(pipeline).a.b`.
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Pipe {
    /// Variables declared (`:=`) or assigned (`=`) by the pipeline.
    vars: Vec<String>,
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    Break,
    Continue,
    /// `{{template "name" pipeline}}`, the pipeline optional.
    Template(String, Option<Pipe>),
}

/// Templates named by `define` and `block`, with their bodies.
type Defs = BTreeMap<String, Vec<Node>>;

/// One `{{…}}` action as tokens, or text.
enum Item {
    Text(String),
    Action { line: usize, toks: Vec<Tok> },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(String),
    Var(String),
    Str(String),
    Num(String),
    Open,
    Close,
    Pipe,
    Declare,
    Assign,
    Comma,
    Dot,
    /// Fields straight after a variable or `)`: `$x.a.b`, `(…).a`.
    Chain(String),
}

struct Parser {
    items: Vec<Item>,
    pos: usize,
    error: Option<String>,
    /// The tokens after `else` of the action that ended the last list (`else if x`).
    pending: Option<Vec<Tok>>,
    /// Templates named by `define` and `block`.
    defs: BTreeMap<String, Vec<Node>>,
}

impl Parser {
    fn new(text: &str) -> Self {
        match scan(text) {
            Ok(items) => Parser {
                items,
                pos: 0,
                error: None,
                pending: None,
                defs: BTreeMap::new(),
            },
            Err(e) => Parser {
                items: Vec::new(),
                pos: 0,
                error: Some(e),
                pending: None,
                defs: BTreeMap::new(),
            },
        }
    }

    fn parse(mut self) -> Result<(Vec<Node>, Defs), String> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let (nodes, end) = self.list(0)?;
        match end {
            None => Ok((nodes, self.defs)),
            Some((line, word)) => Err(format!("{line}: unexpected {{{{{word}}}}}")),
        }
    }

    /// Nodes up to `{{end}}` or `{{else…}}` (returned with the words of that action) or the end.
    #[allow(clippy::type_complexity)]
    fn list(&mut self, depth: usize) -> Result<(Vec<Node>, Option<(usize, String)>), String> {
        let mut out = Vec::new();
        while self.pos < self.items.len() {
            let i = self.pos;
            self.pos += 1;
            let (line, toks) = match &self.items[i] {
                Item::Text(t) => {
                    out.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action { line, toks } => (*line, toks.clone()),
            };
            let Some(first) = toks.first() else {
                return Err(format!("{line}: missing value for command"));
            };
            let word = match first {
                Tok::Ident(w) => w.as_str(),
                _ => "",
            };
            match word {
                "end" | "else" => {
                    let rest: Vec<String> = toks.iter().map(tok_text).collect();
                    // `else if …` keeps its tokens for the caller.
                    self.pending = Some(toks[1..].to_vec());
                    return Ok((out, Some((line, rest.join(" ")))));
                }
                "if" | "with" | "range" => {
                    if depth >= MAX_DEPTH {
                        return Err(format!("{line}: nested too deep"));
                    }
                    let pipe = pipeline(&toks[1..], line, word == "range")?;
                    let node = self.block(word, pipe, line, depth)?;
                    out.push(node);
                }
                "break" | "continue" => {
                    if toks.len() != 1 {
                        return Err(format!("{line}: unexpected token in {{{{{word}}}}}"));
                    }
                    out.push(if word == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                "define" | "template" | "block" => {
                    let Some(Tok::Str(name)) = toks.get(1) else {
                        return Err(format!("{line}: unexpected token in {word} clause"));
                    };
                    let pipe = match &toks[2..] {
                        [] => None,
                        rest if word != "define" => Some(pipeline(rest, line, false)?),
                        _ => return Err(format!("{line}: unexpected token in define clause")),
                    };
                    if word != "template" {
                        if depth >= MAX_DEPTH {
                            return Err(format!("{line}: nested too deep"));
                        }
                        let (body, end) = self.list(depth + 1)?;
                        match end {
                            Some((_, w)) if w == "end" => {}
                            _ => return Err(format!("{line}: unexpected EOF")),
                        }
                        self.defs.insert(name.clone(), body);
                    }
                    if word != "define" {
                        out.push(Node::Template(name.clone(), pipe));
                    }
                }
                _ => out.push(Node::Action(pipeline(&toks, line, false)?)),
            }
        }
        Ok((out, None))
    }

    fn block(&mut self, kind: &str, pipe: Pipe, line: usize, depth: usize) -> Result<Node, String> {
        let (body, end) = self.list(depth + 1)?;
        let Some((end_line, end_words)) = end else {
            return Err(format!("{line}: unexpected EOF"));
        };
        let rest = self.pending.take().unwrap_or_default();
        let other = if end_words == "end" {
            Vec::new()
        } else if end_words == "else" {
            let (other, end) = self.list(depth + 1)?;
            match end {
                Some((_, w)) if w == "end" => other,
                _ => return Err(format!("{end_line}: expected end; found {{{{else}}}}")),
            }
        } else if end_words.starts_with("else") && rest.first() == Some(&Tok::Ident(kind.into()))
            || end_words.starts_with("else if")
            || end_words.starts_with("else with")
        {
            // `{{else if x}}` is `{{else}}{{if x}}…{{end}}` sharing the one `{{end}}`.
            let word = match rest.first() {
                Some(Tok::Ident(w)) => w.clone(),
                _ => return Err(format!("{end_line}: unexpected {{{{{end_words}}}}}")),
            };
            if word != "if" && word != "with" {
                return Err(format!("{end_line}: unexpected {{{{{end_words}}}}}"));
            }
            let inner = pipeline(&rest[1..], end_line, false)?;
            vec![self.block(&word, inner, end_line, depth + 1)?]
        } else {
            return Err(format!("{end_line}: unexpected {{{{{end_words}}}}}"));
        };
        Ok(match kind {
            "if" => Node::If(pipe, body, other),
            "with" => Node::With(pipe, body, other),
            _ => Node::Range(pipe, body, other),
        })
    }
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Ident(s) | Tok::Field(s) | Tok::Var(s) | Tok::Num(s) | Tok::Chain(s) => s.clone(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Open => "(".into(),
        Tok::Close => ")".into(),
        Tok::Pipe => "|".into(),
        Tok::Declare => ":=".into(),
        Tok::Assign => "=".into(),
        Tok::Comma => ",".into(),
        Tok::Dot => ".".into(),
    }
}

/// A pipeline, with its declarations (`$x :=`, `$i, $v :=` in a range).
fn pipeline(toks: &[Tok], line: usize, range: bool) -> Result<Pipe, String> {
    let mut vars = Vec::new();
    let mut assign = false;
    let mut rest = toks;
    let decl_end = toks
        .iter()
        .position(|t| matches!(t, Tok::Declare | Tok::Assign));
    if let Some(end) = decl_end {
        let names = &toks[..end];
        let ok = match names {
            [Tok::Var(a)] => {
                vars.push(a.clone());
                true
            }
            [Tok::Var(a), Tok::Comma, Tok::Var(b)] if range => {
                vars.push(a.clone());
                vars.push(b.clone());
                true
            }
            _ => false,
        };
        if !ok {
            return Err(format!("{line}: unexpected \":=\" in operand"));
        }
        assign = toks[end] == Tok::Assign;
        rest = &toks[end + 1..];
    }
    let mut cmds = Vec::new();
    for part in split_top(rest, |t| *t == Tok::Pipe) {
        let mut args = Vec::new();
        let mut i = 0;
        while i < part.len() {
            let (arg, next) = operand(part, i, line, 0)?;
            args.push(arg);
            i = next;
        }
        if args.is_empty() {
            return Err(format!("{line}: missing value for command"));
        }
        cmds.push(args);
    }
    if cmds.is_empty() {
        return Err(format!("{line}: missing value for command"));
    }
    Ok(Pipe { vars, assign, cmds })
}

/// `toks` split at top-level separators (outside parentheses).
fn split_top(toks: &[Tok], sep: impl Fn(&Tok) -> bool) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.saturating_sub(1),
            t if depth == 0 && sep(t) => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < toks.len() || !out.is_empty() {
        out.push(&toks[start..]);
    }
    out
}

fn split_fields(f: &str) -> Vec<String> {
    f.split('.')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The `Chain` token at `i`, if any, as fields, and the index after it.
fn fields_after(toks: &[Tok], i: usize) -> (Vec<String>, usize) {
    match toks.get(i) {
        Some(Tok::Chain(f)) => (split_fields(f), i + 1),
        _ => (Vec::new(), i),
    }
}

fn operand(toks: &[Tok], i: usize, line: usize, depth: usize) -> Result<(Arg, usize), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{line}: nested too deep"));
    }
    let arg = match &toks[i] {
        Tok::Dot => (Arg::Dot, i + 1),
        Tok::Field(f) => (Arg::Field(split_fields(f)), i + 1),
        Tok::Var(v) => {
            let (fields, next) = fields_after(toks, i + 1);
            (Arg::Var(v.clone(), fields), next)
        }
        Tok::Str(s) => (Arg::Str(s.clone()), i + 1),
        Tok::Num(n) => (Arg::Num(n.clone()), i + 1),
        Tok::Ident(w) => match w.as_str() {
            "true" => (Arg::Bool(true), i + 1),
            "false" => (Arg::Bool(false), i + 1),
            "nil" => (Arg::Nil, i + 1),
            name if FUNCS.contains(&name) => (Arg::Func(name.to_string()), i + 1),
            name => return Err(format!("{line}: function {name:?} not defined")),
        },
        Tok::Open => {
            let mut depth_here = 0usize;
            let mut end = None;
            for (j, t) in toks.iter().enumerate().skip(i) {
                match t {
                    Tok::Open => depth_here += 1,
                    Tok::Close => {
                        depth_here -= 1;
                        if depth_here == 0 {
                            end = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let Some(end) = end else {
                return Err(format!("{line}: unclosed left paren"));
            };
            let inner = pipeline(&toks[i + 1..end], line, false)?;
            let (fields, next) = fields_after(toks, end + 1);
            (Arg::Sub(Box::new(inner), fields), next)
        }
        t => return Err(format!("{line}: unexpected {:?} in operand", tok_text(t))),
    };
    Ok(arg)
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt",
    "ge", "html", "urlquery", "slice", "js", "call",
];

/// Text and actions, trimming markers applied and comments dropped.
fn scan(text: &str) -> Result<Vec<Item>, String> {
    let mut items: Vec<Item> = Vec::new();
    let mut rest = text;
    let mut line = 1usize;
    while let Some(open) = rest.find("{{") {
        let mut before = &rest[..open];
        let mut inner = &rest[open + 2..];
        if inner.starts_with("- ")
            || inner.starts_with("-\t")
            || inner.starts_with("-\n")
            || inner.starts_with("-\r")
        {
            before = before.trim_end_matches([' ', '\t', '\n', '\r']);
            inner = &inner[1..];
        }
        if !before.is_empty() {
            items.push(Item::Text(before.to_string()));
        }
        line += rest[..open].matches('\n').count();
        let (toks, consumed, trim_after) = action(inner, line)?;
        line += inner[..consumed].matches('\n').count();
        rest = &inner[consumed..];
        if trim_after {
            rest = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        }
        if let Some(toks) = toks {
            items.push(Item::Action { line, toks });
        }
    }
    if !rest.is_empty() {
        items.push(Item::Text(rest.to_string()));
    }
    Ok(items)
}

/// Tokens of one action (None for a comment), the bytes it took with `}}`, and whether it
/// ended in `-}}`.
#[allow(clippy::type_complexity)]
fn action(s: &str, line: usize) -> Result<(Option<Vec<Tok>>, usize, bool), String> {
    let trimmed = s.trim_start();
    if let Some(body) = trimmed.strip_prefix("/*") {
        let Some(end) = body.find("*/") else {
            return Err(format!("{line}: unclosed comment"));
        };
        let after = &body[end + 2..];
        let lead = s.len() - trimmed.len() + 2 + end + 2;
        let after_trim = after.trim_start();
        let (close_len, trim) = if after_trim.starts_with("-}}") {
            (after.len() - after_trim.len() + 3, true)
        } else if after.starts_with("}}") {
            (2, false)
        } else {
            return Err(format!("{line}: comment ends before closing delimiter"));
        };
        return Ok((None, lead + close_len, trim));
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    let mut parens = 0usize;
    loop {
        let Some(&c) = b.get(i) else {
            return Err(format!("{line}: unclosed action"));
        };
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                if s[i..].trim_start().starts_with("-}}") {
                    let skip = s[i..].len() - s[i..].trim_start().len();
                    return Ok((Some(toks), i + skip + 3, true));
                }
                i += 1;
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Ok((Some(toks), i + 2, false)),
            b'(' => {
                // Parentheses are parsed recursively: bounded here, before that.
                parens += 1;
                if parens > MAX_DEPTH {
                    return Err(format!("{line}: parentheses nested too deep"));
                }
                toks.push(Tok::Open);
                i += 1;
            }
            b')' => {
                parens = parens.saturating_sub(1);
                toks.push(Tok::Close);
                i += 1;
            }
            b'|' | b',' | b'=' => {
                toks.push(match c {
                    b'|' => Tok::Pipe,
                    b',' => Tok::Comma,
                    _ => Tok::Assign,
                });
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'"' => {
                let (v, n) = quoted(&s[i..], line)?;
                toks.push(Tok::Str(v));
                i += n;
            }
            b'`' => {
                let Some(end) = s[i + 1..].find('`') else {
                    return Err(format!("{line}: unterminated raw quoted string"));
                };
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'.' | b'$' => {
                let start = i;
                let after_paren = i > 0 && b[i - 1] == b')';
                i += 1;
                let word_end = |mut i: usize| {
                    while i < b.len()
                        && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80)
                    {
                        i += 1;
                    }
                    i
                };
                i = word_end(i);
                let name_end = i;
                // `.a.b` and `$x.a` are one token, as in Go's lexer; `.a .b` are two.
                while i + 1 < b.len()
                    && b[i] == b'.'
                    && (b[i + 1].is_ascii_alphabetic() || b[i + 1] == b'_')
                {
                    i = word_end(i + 1);
                }
                let word = &s[start..i];
                match c {
                    b'.' if word.len() == 1 => toks.push(Tok::Dot),
                    b'.' if after_paren => toks.push(Tok::Chain(word.to_string())),
                    b'.' => toks.push(Tok::Field(word.to_string())),
                    _ => {
                        toks.push(Tok::Var(s[start..name_end].to_string()));
                        if i > name_end {
                            toks.push(Tok::Chain(s[name_end..i].to_string()));
                        }
                    }
                }
            }
            b'-' | b'+' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b"._+-".contains(&b[i])) {
                    if (b[i] == b'+' || b[i] == b'-') && !matches!(b[i - 1], b'e' | b'E') {
                        break;
                    }
                    i += 1;
                }
                let word = &s[start..i];
                if word.parse::<f64>().is_err() {
                    return Err(format!("{line}: bad number syntax: {word:?}"));
                }
                toks.push(Tok::Num(word.to_string()));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                toks.push(Tok::Ident(s[start..i].to_string()));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(format!("{line}: unexpected {ch:?} in command"));
            }
        }
    }
}

/// A Go interpreted string literal at the start of `s`: its value and its length in bytes.
fn quoted(s: &str, line: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                let simple = match e {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    'a' => Some('\u{7}'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    'v' => Some('\u{b}'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    '\'' => Some('\''),
                    _ => None,
                };
                if let Some(ch) = simple {
                    out.push(ch);
                    continue;
                }
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => return Err(format!("{line}: invalid syntax in quoted string")),
                };
                let hex: String = (0..digits)
                    .filter_map(|_| chars.next().map(|x| x.1))
                    .collect();
                let ch = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("{line}: invalid syntax in quoted string"))?;
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    Err(format!("{line}: unterminated quoted string"))
}

// ---- execution ----

enum Flow {
    Break,
    Continue,
    Error(String),
}

impl From<String> for Flow {
    fn from(m: String) -> Self {
        Flow::Error(m)
    }
}

/// A value as the template sees it: a JSON value, or one a constant made (Go's `int`,
/// `float64`, `string`), or none (a missing key).
#[derive(Clone, Debug)]
enum V {
    Json(Json),
    Int(i64),
    Float(f64),
    Str(String),
    NoValue,
}

struct Renderer {
    out: String,
    vars: Vec<(String, Json)>,
    defs: std::rc::Rc<BTreeMap<String, Vec<Node>>>,
    /// Templates invoked and not yet finished (a template may invoke itself).
    depth: usize,
}

impl Renderer {
    fn nodes(&mut self, nodes: &[Node], dot: &Json) -> Result<(), Flow> {
        for n in nodes {
            if self.out.len() > MAX_OUTPUT {
                return Err(Flow::Error("the output is longer than 16 MiB".into()));
            }
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.vars.is_empty() {
                        let s = print_value(&v);
                        self.out.push_str(&s);
                    }
                }
                Node::If(p, yes, no) | Node::With(p, yes, no) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let with = matches!(n, Node::With(..));
                    let r = if truth(&v) {
                        let d = if with { to_plain(&v) } else { dot.clone() };
                        self.nodes(yes, &d)
                    } else {
                        self.nodes(no, dot)
                    };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::Range(p, body, otherwise) => {
                    let mark = self.vars.len();
                    let head = Pipe {
                        vars: Vec::new(),
                        assign: false,
                        cmds: p.cmds.clone(),
                    };
                    let v = self.pipe(&head, dot)?;
                    let items: Vec<(Json, Json)> = match &v {
                        V::Json(Json::Array(a)) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Json::from(i), x.clone()))
                            .collect(),
                        V::Json(Json::Object(o)) => {
                            let mut keys: Vec<&String> = o.keys().collect();
                            keys.sort();
                            keys.into_iter()
                                .map(|k| (Json::from(k.clone()), o[k].clone()))
                                .collect()
                        }
                        V::Json(Json::Null) | V::NoValue => Vec::new(),
                        V::Int(n) if *n >= 0 => {
                            (0..*n).map(|i| (Json::from(i), Json::from(i))).collect()
                        }
                        other => {
                            return Err(Flow::Error(format!(
                                "range can't iterate over {}",
                                print_value(other)
                            )));
                        }
                    };
                    if items.is_empty() {
                        self.nodes(otherwise, dot)?;
                    }
                    for (k, x) in items {
                        match p.vars.as_slice() {
                            [v] => self.vars.push((v.clone(), x.clone())),
                            [a, b] => {
                                self.vars.push((a.clone(), k));
                                self.vars.push((b.clone(), x.clone()));
                            }
                            _ => {}
                        }
                        let r = self.nodes(body, &x);
                        self.vars.truncate(mark);
                        match r {
                            Ok(()) | Err(Flow::Continue) => {}
                            Err(Flow::Break) => break,
                            Err(e) => return Err(e),
                        }
                    }
                }
                Node::Template(name, pipe) => {
                    let d = match pipe {
                        Some(p) => to_plain(&self.pipe(p, dot)?),
                        None => Json::Null,
                    };
                    if self.depth >= MAX_DEPTH {
                        return Err(Flow::Error("exceeded maximum template depth".into()));
                    }
                    // The invoked template sees its own dot as `$` and none of our variables.
                    let defs = std::rc::Rc::clone(&self.defs);
                    let Some(body) = defs.get(name) else {
                        return Err(Flow::Error(format!(
                            "template: no template {name:?} associated with template \"template\""
                        )));
                    };
                    let saved = std::mem::replace(&mut self.vars, vec![("$".into(), d.clone())]);
                    self.depth += 1;
                    let r = match self.nodes(body, &d) {
                        Ok(()) | Err(Flow::Break | Flow::Continue) => Ok(()),
                        Err(e) => Err(e),
                    };
                    self.depth -= 1;
                    self.vars = saved;
                    r?;
                }
                Node::Break => return Err(Flow::Break),
                Node::Continue => return Err(Flow::Continue),
            }
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Result<&Json, String> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("undefined variable: {name}"))
    }

    fn pipe(&mut self, p: &Pipe, dot: &Json) -> Result<V, String> {
        let mut last: Option<V> = None;
        for cmd in &p.cmds {
            last = Some(self.command(cmd, dot, last.take())?);
        }
        let v = last.unwrap_or(V::NoValue);
        if let Some(name) = p.vars.first() {
            let value = to_plain(&v);
            if p.assign {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| format!("undefined variable: {name}"))?;
                slot.1 = value;
            } else {
                self.vars.push((name.clone(), value));
            }
        }
        Ok(v)
    }

    fn command(&mut self, cmd: &[Arg], dot: &Json, piped: Option<V>) -> Result<V, String> {
        let Some(first) = cmd.first() else {
            return Err("missing value for command".into());
        };
        if let Arg::Func(name) = first {
            let mut args = Vec::new();
            for a in &cmd[1..] {
                args.push(self.arg(a, dot)?);
            }
            if let Some(v) = piped {
                args.push(v);
            }
            return call(name, &args);
        }
        if cmd.len() > 1 || piped.is_some() {
            return Err(format!(
                "can't give argument to non-function {}",
                arg_text(first)
            ));
        }
        self.arg(first, dot)
    }

    fn arg(&mut self, a: &Arg, dot: &Json) -> Result<V, String> {
        Ok(match a {
            Arg::Dot => V::Json(dot.clone()),
            Arg::Field(fields) => field_path(dot, fields)?,
            Arg::Var(name, fields) => field_path(self.var(name)?, fields)?,
            Arg::Str(s) => V::Str(s.clone()),
            Arg::Num(n) => match n.parse::<i64>() {
                Ok(i) => V::Int(i),
                Err(_) => V::Float(n.parse::<f64>().map_err(|_| format!("bad number {n}"))?),
            },
            Arg::Bool(b) => V::Json(Json::Bool(*b)),
            Arg::Nil => return Err("nil is not a command".into()),
            Arg::Func(name) => call(name, &[])?,
            Arg::Sub(p, fields) => {
                let v = self.pipe(p, dot)?;
                fields_of(v, fields)?
            }
        })
    }
}

fn arg_text(a: &Arg) -> String {
    match a {
        Arg::Dot => ".".into(),
        Arg::Field(f) => format!(".{}", f.join(".")),
        Arg::Var(v, f) if f.is_empty() => v.clone(),
        Arg::Var(v, f) => format!("{v}.{}", f.join(".")),
        Arg::Str(s) => format!("{s:?}"),
        Arg::Num(n) => n.clone(),
        Arg::Bool(b) => b.to_string(),
        Arg::Nil => "nil".into(),
        Arg::Func(f) => f.clone(),
        Arg::Sub(..) => "(…)".into(),
    }
}

/// The fields of a value a pipeline made (`(…).a.b`).
fn fields_of(v: V, fields: &[String]) -> Result<V, String> {
    match v {
        V::Json(j) => field_path(&j, fields),
        // A missing key stays missing down the chain.
        V::NoValue => Ok(V::NoValue),
        other if fields.is_empty() => Ok(other),
        other => Err(format!(
            "can't evaluate field {} in type {}",
            fields[0],
            go_type(&other)
        )),
    }
}

/// `.a.b` on `root`, walked by reference: only the value found is copied, not dot or a
/// variable's whole document for each field an action names.
fn field_path(root: &Json, fields: &[String]) -> Result<V, String> {
    let mut cur = root;
    for f in fields {
        cur = match cur {
            Json::Object(o) => match o.get(f) {
                Some(x) => x,
                // A missing key stays missing down the chain.
                None => return Ok(V::NoValue),
            },
            // A null is a nil to Go.
            Json::Null => return Err(format!("nil pointer evaluating interface {{}}.{f}")),
            other => {
                return Err(format!(
                    "can't evaluate field {f} in type {}",
                    go_type(&V::Json(other.clone()))
                ));
            }
        };
    }
    Ok(V::Json(cur.clone()))
}

/// What a value becomes when it is bound to dot or a variable.
fn to_plain(v: &V) -> Json {
    match v {
        V::Json(j) => j.clone(),
        V::Int(i) => Json::from(*i),
        V::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        V::Str(s) => Json::String(s.clone()),
        V::NoValue => Json::Null,
    }
}

/// Go's `truth`: the zero value of its type is false. A json.Number is a non-empty string.
fn truth(v: &V) -> bool {
    match v {
        V::Json(Json::Null) | V::NoValue => false,
        V::Json(Json::Bool(b)) => *b,
        V::Json(Json::String(s)) | V::Str(s) => !s.is_empty(),
        V::Json(Json::Number(_)) => true,
        V::Json(Json::Array(a)) => !a.is_empty(),
        V::Json(Json::Object(o)) => !o.is_empty(),
        V::Int(i) => *i != 0,
        V::Float(f) => *f != 0.0,
    }
}

fn go_type(v: &V) -> &'static str {
    match v {
        V::Json(Json::Null) | V::NoValue => "<nil>",
        V::Json(Json::Bool(_)) => "bool",
        V::Json(Json::String(_)) | V::Str(_) => "string",
        V::Json(Json::Number(_)) => "json.Number",
        V::Json(Json::Array(_)) => "[]interface {}",
        V::Json(Json::Object(_)) => "map[string]interface {}",
        V::Int(_) => "int",
        V::Float(_) => "float64",
    }
}

/// `%v` of Go's fmt, as a template prints a value.
fn print_value(v: &V) -> String {
    let mut s = String::new();
    fmt_v(v, &mut s, true);
    s
}

fn fmt_v(v: &V, out: &mut String, top: bool) {
    match v {
        V::NoValue => out.push_str("<no value>"),
        V::Json(Json::Null) => out.push_str(if top { "<no value>" } else { "<nil>" }),
        V::Json(Json::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        V::Json(Json::Number(n)) => out.push_str(&n.to_string()),
        V::Json(Json::String(s)) | V::Str(s) => out.push_str(s),
        V::Json(Json::Array(a)) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_v(&V::Json(x.clone()), out, false);
            }
            out.push(']');
        }
        V::Json(Json::Object(o)) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                fmt_v(&V::Json(o[k].clone()), out, false);
            }
            out.push(']');
        }
        V::Int(i) => {
            let _ = write!(out, "{i}");
        }
        V::Float(f) => out.push_str(&go_float(*f)),
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`).
fn go_float(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let exp = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if (-4..21).contains(&exp) {
        let s = format!("{f}");
        s
    } else {
        let s = format!("{f:e}");
        // Rust writes 1e21, Go 1e+21.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e:0>2}"),
            Some((m, e)) => format!("{m}e-{:0>2}", &e[1..]),
            None => s,
        }
    }
}

// ---- functions ----

fn call(name: &str, args: &[V]) -> Result<V, String> {
    let want = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        }
    };
    match name {
        "and" | "or" => {
            if args.is_empty() {
                return Err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let stop_on = name == "or";
            for a in &args[..args.len() - 1] {
                if truth(a) == stop_on {
                    return Ok(a.clone());
                }
            }
            Ok(args[args.len() - 1].clone())
        }
        "not" => {
            want(1)?;
            Ok(V::Json(Json::Bool(!truth(&args[0]))))
        }
        "len" => {
            want(1)?;
            let n = match &args[0] {
                V::Json(Json::String(s)) | V::Str(s) => s.len(),
                V::Json(Json::Number(n)) => n.to_string().len(),
                V::Json(Json::Array(a)) => a.len(),
                V::Json(Json::Object(o)) => o.len(),
                V::Json(Json::Null) | V::NoValue => {
                    return Err("error calling len: len of nil pointer".into());
                }
                other => {
                    return Err(format!("error calling len: len of type {}", go_type(other)));
                }
            };
            Ok(V::Int(n as i64))
        }
        "index" => {
            let Some((first, keys)) = args.split_first() else {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            };
            let mut v = first.clone();
            for k in keys {
                v = match (&v, k) {
                    (V::Json(Json::Object(o)), V::Json(Json::String(s)) | V::Str(s)) => {
                        o.get(s).cloned().map_or(V::NoValue, V::Json)
                    }
                    (V::Json(Json::Array(a)), V::Int(i)) => {
                        let i = usize::try_from(*i)
                            .ok()
                            .filter(|i| *i < a.len())
                            .ok_or_else(|| {
                                format!("error calling index: index out of range: {i}")
                            })?;
                        V::Json(a[i].clone())
                    }
                    (V::Json(Json::Null) | V::NoValue, _) => {
                        return Err("error calling index: index of untyped nil".into());
                    }
                    (c, k) => {
                        return Err(format!(
                            "error calling index: cannot index {} with {}",
                            go_type(c),
                            go_type(k)
                        ));
                    }
                };
            }
            Ok(v)
        }
        "slice" => {
            let Some((item, idx)) = args.split_first() else {
                return Err("wrong number of args for slice: want at least 1 got 0".into());
            };
            let mut bounds = Vec::new();
            for i in idx {
                match i {
                    V::Int(n) if *n >= 0 => bounds.push(*n as usize),
                    V::Int(n) => {
                        return Err(format!("error calling slice: index out of range: {n}"));
                    }
                    other => {
                        return Err(format!(
                            "error calling slice: cannot index slice/array with type {}",
                            go_type(other)
                        ));
                    }
                }
            }
            let len = match item {
                V::Json(Json::Array(a)) => a.len(),
                V::Json(Json::String(t)) | V::Str(t) => t.len(),
                V::Json(Json::Number(n)) => n.to_string().len(),
                other => {
                    return Err(format!(
                        "error calling slice: can't slice item of type {}",
                        go_type(other)
                    ));
                }
            };
            let is_str = !matches!(item, V::Json(Json::Array(_)));
            if bounds.len() > 3 || (is_str && bounds.len() > 2) {
                return Err(format!(
                    "error calling slice: too many slice indexes: {}",
                    bounds.len()
                ));
            }
            let lo = bounds.first().copied().unwrap_or(0);
            let hi = bounds.get(1).copied().unwrap_or(len);
            if lo > hi || hi > len || bounds.get(2).is_some_and(|&m| m < hi || m > len) {
                return Err(format!("error calling slice: index out of range: {hi}"));
            }
            Ok(match item {
                V::Json(Json::Array(a)) => V::Json(Json::Array(a[lo..hi].to_vec())),
                other => {
                    let t = text_of(other);
                    match t.get(lo..hi) {
                        Some(part) => V::Str(part.to_string()),
                        None => {
                            return Err("error calling slice: not at a character boundary".into());
                        }
                    }
                }
            })
        }
        "call" => match args.first() {
            None => Err("wrong number of args for call: want at least 1 got 0".into()),
            Some(f) => Err(format!(
                "error calling call: non-function of type {}",
                go_type(f)
            )),
        },
        "js" => {
            let text = match call("print", args)? {
                V::Str(t) => t,
                _ => String::new(),
            };
            let mut out = String::new();
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '"' => out.push_str("\\\""),
                    '<' | '>' | '&' | '=' => {
                        let _ = write!(out, "\\u{:04X}", c as u32);
                    }
                    c if (c as u32) < 0x20 => {
                        let _ = write!(out, "\\u{:04X}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            Ok(V::Str(out))
        }
        "html" | "urlquery" => {
            // Go formats the operands as print does, then escapes the text.
            let text = match call("print", args)? {
                V::Str(t) => t,
                _ => String::new(),
            };
            let mut out = String::new();
            for c in text.chars() {
                match (name, c) {
                    ("html", '<') => out.push_str("&lt;"),
                    ("html", '>') => out.push_str("&gt;"),
                    ("html", '&') => out.push_str("&amp;"),
                    ("html", '\'') => out.push_str("&#39;"),
                    ("html", '"') => out.push_str("&#34;"),
                    ("html", '\0') => out.push('\u{FFFD}'),
                    ("html", c) => out.push(c),
                    (_, c) if c.is_ascii_alphanumeric() || "-_.~".contains(c) => out.push(c),
                    (_, ' ') => out.push('+'),
                    (_, c) => {
                        let mut buf = [0u8; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            let _ = write!(out, "%{b:02X}");
                        }
                    }
                }
            }
            Ok(V::Str(out))
        }
        "print" | "println" => {
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                // json.Number is a string kind to fmt, so it counts as a string here.
                let is_str =
                    |v: &V| matches!(v, V::Json(Json::String(_) | Json::Number(_)) | V::Str(_));
                // Print adds spaces between operands when neither is a string; Println always.
                if i > 0 && (name == "println" || !(is_str(a) || is_str(&args[i - 1]))) {
                    out.push(' ');
                }
                fmt_arg(a, &mut out);
            }
            if name == "println" {
                out.push('\n');
            }
            Ok(V::Str(out))
        }
        "printf" => {
            let Some((format, rest)) = args.split_first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            let format = match format {
                V::Json(Json::String(s)) | V::Str(s) => s.clone(),
                V::Json(Json::Number(n)) => n.to_string(),
                other => {
                    return Err(format!(
                        "error calling printf: wrong type for value; expected string; got {}",
                        go_type(other)
                    ));
                }
            };
            Ok(V::Str(sprintf(&format, rest)))
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => compare(name, args),
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// An operand of print/printf as `%v` prints it (nil inside is `<nil>`, as fmt prints it).
fn fmt_arg(v: &V, out: &mut String) {
    match v {
        V::Json(Json::Null) | V::NoValue => out.push_str("<nil>"),
        other => fmt_v(other, out, false),
    }
}

/// The kinds Go's template comparisons know.
#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
}

fn kind(v: &V) -> Option<Kind> {
    match v {
        V::Json(Json::Bool(_)) => Some(Kind::Bool),
        V::Json(Json::String(_)) | V::Json(Json::Number(_)) | V::Str(_) => Some(Kind::Str),
        V::Int(_) => Some(Kind::Int),
        V::Float(_) => Some(Kind::Float),
        _ => None,
    }
}

fn text_of(v: &V) -> String {
    match v {
        V::Json(Json::String(s)) | V::Str(s) => s.clone(),
        V::Json(Json::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn compare(name: &str, args: &[V]) -> Result<V, String> {
    let err = |m: String| format!("error calling {name}: {m}");
    if args.len() < 2 || (name != "eq" && args.len() != 2) {
        return Err(format!(
            "wrong number of args for {name}: want 2 got {}",
            args.len()
        ));
    }
    let a = &args[0];
    let ka = kind(a).ok_or_else(|| err("invalid type for comparison".to_string()))?;
    let mut any = false;
    for b in &args[1..] {
        let kb = kind(b).ok_or_else(|| err("invalid type for comparison".to_string()))?;
        let same_type = go_type(a) == go_type(b);
        let ord = match (ka, kb) {
            (Kind::Int, Kind::Int) | (Kind::Float, Kind::Float) => {
                let x = num(a);
                let y = num(b);
                x.partial_cmp(&y)
            }
            (Kind::Str, Kind::Str) => {
                if !same_type && name != "eq" && name != "ne" {
                    return Err(err(format!(
                        "incompatible types for comparison: {} and {}",
                        go_type(a),
                        go_type(b)
                    )));
                }
                Some(text_of(a).cmp(&text_of(b)))
            }
            (Kind::Bool, Kind::Bool) => {
                if name != "eq" && name != "ne" {
                    return Err(err("invalid type for comparison".into()));
                }
                Some(
                    matches!(a, V::Json(Json::Bool(true)))
                        .cmp(&matches!(b, V::Json(Json::Bool(true)))),
                )
            }
            _ => {
                return Err(err(format!(
                    "incompatible types for comparison: {} and {}",
                    go_type(a),
                    go_type(b)
                )));
            }
        };
        use std::cmp::Ordering::*;
        let r = matches!(
            (name, ord),
            ("eq", Some(Equal))
                | ("ne", Some(Less | Greater))
                | ("lt", Some(Less))
                | ("le", Some(Less | Equal))
                | ("gt", Some(Greater))
                | ("ge", Some(Greater | Equal))
        );
        if name != "eq" {
            return Ok(V::Json(Json::Bool(r)));
        }
        any |= r;
    }
    Ok(V::Json(Json::Bool(any)))
}

fn num(v: &V) -> f64 {
    match v {
        V::Int(i) => *i as f64,
        V::Float(f) => *f,
        _ => 0.0,
    }
}

/// Go's `fmt.Sprintf` for the verbs a template meets: `%v %s %q %t %d %x %%`, with a width and
/// `-`; any verb on a value of the wrong type prints `%!verb(type=value)` as Go does.
fn sprintf(format: &str, args: &[V]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut plus = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '+' => plus = true,
                '#' | ' ' | '0' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = 0usize;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = width
                .saturating_mul(10)
                .saturating_add(d as usize)
                .min(4096);
            chars.next();
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        let body = verb_text(verb, arg, plus);
        let pad = width.saturating_sub(body.chars().count());
        if left {
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&body);
        }
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[next..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let mut v = String::new();
            fmt_arg(a, &mut v);
            let _ = write!(out, "{}={v}", go_type(a));
        }
        out.push(')');
    }
    out
}

fn verb_text(verb: char, arg: &V, plus: bool) -> String {
    let mut v = String::new();
    fmt_arg(arg, &mut v);
    let bad = || format!("%!{verb}({}={v})", go_type(arg));
    let is_str = matches!(
        arg,
        V::Json(Json::String(_)) | V::Str(_) | V::Json(Json::Number(_))
    );
    match verb {
        'v' => v,
        's' if is_str => v,
        'q' if is_str => format!("{:?}", text_of(arg)),
        'x' if is_str => text_of(arg).bytes().map(|b| format!("{b:02x}")).collect(),
        'X' if is_str => text_of(arg).bytes().map(|b| format!("{b:02X}")).collect(),
        't' if matches!(arg, V::Json(Json::Bool(_))) => v,
        'd' => match arg {
            V::Int(i) if plus && *i >= 0 => format!("+{i}"),
            V::Int(i) => i.to_string(),
            _ => bad(),
        },
        'x' => match arg {
            V::Int(i) if *i < 0 => format!("-{:x}", i.unsigned_abs()),
            V::Int(i) => format!("{i:x}"),
            _ => bad(),
        },
        _ => bad(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_its_limit_is_an_error_not_a_huge_string() {
        // 20 copies of 1 MiB of text: past the 16 MiB bound.
        let template = format!("{{{{range .a}}}}{}{{{{end}}}}", "x".repeat(1 << 20));
        let vars = serde_json::json!({ "a": vec![0; 20] });
        let err = render(&template, &vars).expect_err("over the limit");
        assert!(err.contains("longer than 16 MiB"), "{err}");
        // 8 copies fit.
        let vars = serde_json::json!({ "a": vec![0; 8] });
        assert_eq!(render(&template, &vars).map(|o| o.len()), Ok(8 << 20));
    }
}
