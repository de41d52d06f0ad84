//! Template strings (`$"…{expr}…"` and `` $`…{expr}…` ``, Rego in OPA 1.x), which regorus
//! 0.14.1 does not parse. Before a module is parsed each one is rewritten to
//! `internal.template_string([…])`: the literal parts as strings, each `{expr}` as
//! `[__sluice_tN | __sluice_tN := (expr)]`, so an undefined expression is `[]` and prints
//! `<undefined>` as in OPA. Newlines inside a template are kept, so lines do not move.
//!
//! Not here: the builtin that joins the parts (`builtins::strings`).

use std::borrow::Cow;

use super::loader::{LoadError, PolicySet};

/// The set with every module's template strings rewritten.
pub fn rewrite_set(set: &PolicySet) -> Result<Cow<'_, PolicySet>, Vec<LoadError>> {
    let mut changed: Option<PolicySet> = None;
    let mut errors = Vec::new();
    for (i, m) in set.modules.iter().enumerate() {
        match rewrite(&m.text) {
            Ok(Cow::Borrowed(_)) => {}
            Ok(Cow::Owned(text)) => {
                changed.get_or_insert_with(|| set.clone()).modules[i].text = text;
            }
            Err(e) => errors.push(LoadError::at(&m.path, e.line, e.col, e.message)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(changed.map_or(Cow::Borrowed(set), Cow::Owned))
}

/// Where a template string is malformed: line, column (1-based) and OPA's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

/// The module text with every template string rewritten (unchanged when it has none).
pub fn rewrite(text: &str) -> Result<Cow<'_, str>, TemplateError> {
    if !text.contains("$\"") && !text.contains("$`") {
        return Ok(Cow::Borrowed(text));
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 64);
    let mut i = 0;
    let mut last = 0;
    let mut counter = 0usize;
    while i < b.len() {
        match b[i] {
            b'#' => i = skip_comment(b, i),
            b'"' => i = skip_string(b, i).ok_or_else(|| error(text, i, "non-terminated string"))?,
            b'`' => {
                i = skip_raw(b, i).ok_or_else(|| error(text, i, "non-terminated raw string"))?
            }
            b'$' if matches!(b.get(i + 1), Some(b'"' | b'`')) => {
                out.push_str(&text[last..i]);
                let end = template(text, i, &mut out, &mut counter)?;
                i = end;
                last = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[last..]);
    Ok(Cow::Owned(out))
}

fn error(text: &str, at: usize, message: &str) -> TemplateError {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    TemplateError {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
        message: format!("rego_parse_error: {message}"),
    }
}

fn skip_comment(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

/// The index after a `"…"` string starting at `i`.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

fn skip_raw(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        if b[i] == b'`' {
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// Rewrites the template starting at `start` (`$`) into `out`; returns the index after it.
fn template(
    text: &str,
    start: usize,
    out: &mut String,
    counter: &mut usize,
) -> Result<usize, TemplateError> {
    let b = text.as_bytes();
    let raw = b[start + 1] == b'`';
    let quote = b[start + 1];
    let mut parts: Vec<String> = Vec::new();
    let mut i = start + 2;
    let mut lit = i;
    let literal = |from: usize, to: usize, parts: &mut Vec<String>| {
        let s = &text[from..to];
        if s.is_empty() {
            return;
        }
        if raw {
            parts.push(format!("`{s}`"));
        } else {
            parts.push(format!("\"{}\"", unescape_brace(s)));
        }
    };
    loop {
        let Some(&c) = b.get(i) else {
            return Err(error(text, start, "non-terminated template string"));
        };
        match c {
            b'\\' if !raw => i += 2,
            b'\n' if !raw => return Err(error(text, start, "non-terminated template string")),
            c if c == quote => {
                literal(lit, i, &mut parts);
                i += 1;
                break;
            }
            b'{' => {
                literal(lit, i, &mut parts);
                let end = expression_end(b, i + 1)
                    .ok_or_else(|| error(text, i, "non-terminated template-string expression"))?;
                // Untrimmed, so that a newline inside the expression stays and lines do not move.
                let expr = strip_comments(&text[i + 1..end]);
                if expr.trim().is_empty() {
                    return Err(error(text, i + 1, "invalid template-string expression"));
                }
                let var = format!("__sluice_t{counter}");
                *counter += 1;
                parts.push(format!("[{var} | {var} := ({expr})]"));
                i = end + 1;
                lit = i;
            }
            _ => i += 1,
        }
    }
    out.push_str("internal.template_string([");
    out.push_str(&parts.join(", "));
    // Every newline of the template is inside a part, so lines do not move.
    out.push_str("])");
    Ok(i)
}

/// A template's `\{` is a brace, which a Rego string writes as is; other escapes stay.
fn unescape_brace(s: &str) -> Cow<'_, str> {
    if !s.contains("\\{") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('{') => out.push('{'),
            Some(d) => {
                out.push('\\');
                out.push(d);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// An expression's text without its comments (which would swallow the closing of the
/// comprehension it is put in); the newlines stay, so lines do not move.
fn strip_comments(expr: &str) -> Cow<'_, str> {
    if !expr.contains('#') {
        return Cow::Borrowed(expr);
    }
    let b = expr.as_bytes();
    let mut out = String::with_capacity(expr.len());
    let (mut i, mut last) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'"' => i = skip_string(b, i).unwrap_or(b.len()),
            b'`' => i = skip_raw(b, i).unwrap_or(b.len()),
            b'#' => {
                out.push_str(&expr[last..i]);
                i = skip_comment(b, i);
                last = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&expr[last..]);
    Cow::Owned(out)
}

/// The index of the `}` that closes an expression starting at `i` (strings and braces nest).
fn expression_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => i = skip_string(b, i)?,
            b'`' => i = skip_raw(b, i)?,
            b'#' => i = skip_comment(b, i),
            b'{' | b'[' | b'(' => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_become_calls_and_other_text_stays() {
        let src = "r := $\"a {input.x} b\" # $\"not {this}\"\ns := \"$\\\"{no}\"\n";
        let got = rewrite(src).expect("rewrites");
        assert_eq!(
            got,
            "r := internal.template_string([\"a \", [__sluice_t0 | __sluice_t0 := (input.x)], \" b\"]) # $\"not {this}\"\ns := \"$\\\"{no}\"\n"
        );
        assert_eq!(rewrite("x := 1\n").expect("same"), "x := 1\n");
        let nested = rewrite("r := $\"{\"}\"}\"").expect("a string inside");
        assert!(nested.contains("(\"}\")"), "{nested}");
        let err = rewrite("r := $\"{}\"").expect_err("empty expression");
        assert_eq!((err.line, err.col), (1, 9));
        assert!(rewrite("r := $\"open").is_err());
        // `\{` is a literal brace; a comment inside an expression is dropped, its newline kept.
        let brace = rewrite("r := $\"a\\{b{1}\"").expect("an escaped brace");
        assert!(brace.contains("[\"a{b\", "), "{brace}");
        let comment = rewrite("r := $\"{1 # }\n}\"").expect("a comment inside");
        assert!(comment.contains(":= (1 \n)]"), "{comment}");
        assert_eq!(comment.lines().count(), 2);
    }
}
