//! Newer string, array and regex builtins of OPA 1.x that regorus 0.14.1 lacks:
//! `strings.split_n`, `array.flatten`, `regex.find_all_string_submatch_n`.
//!
//! Not here: `strings.render_template` (Go text/template; unsupported, see the compatibility page).

use regorus::Value;

use super::{Args, Builtin, BuiltinError};

/// Nesting past this depth is refused rather than followed (a hostile document could be deep).
const MAX_DEPTH: usize = 256;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "strings.split_n",
        arity: 3,
        run: split_n,
    },
    Builtin {
        name: "array.flatten",
        arity: 1,
        run: flatten,
    },
    Builtin {
        name: "regex.find_all_string_submatch_n",
        arity: 3,
        run: find_all_submatch_n,
    },
];

/// Go's `strings.SplitN`: n < 0 all parts, n == 0 none, else at most n parts.
fn split_n(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let s = args.string(0)?;
    let sep = args.string(1)?;
    let n = args.number_i64(2)?;
    let parts: Vec<Value> = match n {
        0 => Vec::new(),
        n if n < 0 => go_split(s, sep, usize::MAX),
        n => go_split(s, sep, usize::try_from(n).unwrap_or(usize::MAX)),
    }
    .into_iter()
    .map(Value::from)
    .collect();
    Ok(Value::from(parts))
}

/// Go splits on an empty separator between UTF-8 characters.
fn go_split(s: &str, sep: &str, n: usize) -> Vec<String> {
    if sep.is_empty() {
        let chars: Vec<char> = s.chars().collect();
        let mut out: Vec<String> = Vec::new();
        for (i, c) in chars.iter().enumerate() {
            if out.len() + 1 == n {
                out.push(chars[i..].iter().collect());
                return out;
            }
            out.push(c.to_string());
        }
        return out;
    }
    s.splitn(n, sep).map(str::to_string).collect()
}

fn flatten(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let Value::Array(_) = args.value(0) else {
        return Err(args.error(format!(
            "operand 1 must be array but got {}",
            super::type_name(args.value(0))
        )));
    };
    let mut out = Vec::new();
    flatten_into(args, args.value(0), 0, &mut out)?;
    Ok(Value::from(out))
}

fn flatten_into(
    args: &Args<'_>,
    v: &Value,
    depth: usize,
    out: &mut Vec<Value>,
) -> Result<(), BuiltinError> {
    if depth > MAX_DEPTH {
        return Err(args.error("arrays nested too deeply"));
    }
    match v {
        Value::Array(items) => {
            for x in items.iter() {
                flatten_into(args, x, depth + 1, out)?;
            }
        }
        other => out.push(other.clone()),
    }
    Ok(())
}

fn find_all_submatch_n(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let pattern = args.string(0)?;
    let value = args.string(1)?;
    let n = args.number_i64(2)?;
    let re = regex::Regex::new(pattern).map_err(|e| args.error(format!("{e}")))?;
    let limit = if n < 0 {
        usize::MAX
    } else {
        usize::try_from(n).unwrap_or(usize::MAX)
    };
    let found: Vec<Value> = re
        .captures_iter(value)
        .take(limit)
        .map(|caps| {
            Value::from(
                caps.iter()
                    .map(|m| Value::from(m.map_or("", |m| m.as_str())))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    Ok(Value::from(found))
}
