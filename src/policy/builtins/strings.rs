//! Newer string, array and regex builtins of OPA 1.x that regorus 0.14.1 lacks:
//! `strings.split_n`, `array.flatten`, `regex.find_all_string_submatch_n`, and `strings.count`
//! (regorus has one, but it panics on an empty needle).
//! `upper`/`lower` stay regorus's builtins (with Go's simple case mappings: sluice patch 11): the
//! shipped policy calls `lower` on every host match, and an extension call costs more than a
//! builtin on the decision path.
//!
//! Not here: `strings.render_template` (`gotemplate`).

use regorus::Value;

use super::{Args, Builtin, BuiltinError};

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "strings.split_n",
        arity: 3,
        run: split_n,
    },
    Builtin {
        name: "strings.count",
        arity: 2,
        run: count,
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
    Builtin {
        name: "internal.template_string",
        arity: 1,
        run: template_string,
    },
];

/// A template string (`policy::template_strings` rewrote it to this call): literal parts are
/// strings, each expression part is `[]` (undefined) or `[value]`. A string value prints as
/// it is, any other value as OPA prints a term (`[1, "a"]`, `{"k": 1}`, `set()`).
fn template_string(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let Value::Array(parts) = args.value(0) else {
        return Err(args.error("operand 1 must be array"));
    };
    let mut out = String::new();
    for part in parts.iter() {
        match part {
            Value::String(s) => out.push_str(s),
            Value::Array(v) => match v.first() {
                None => out.push_str("<undefined>"),
                Some(Value::String(s)) => out.push_str(s),
                Some(other) => term(other, &mut out),
            },
            other => term(other, &mut out),
        }
    }
    Ok(Value::from(out))
}

/// OPA's text of a term.
fn term(v: &Value, out: &mut String) {
    let list = |items: &mut dyn Iterator<Item = &Value>, out: &mut String| {
        for (i, x) in items.enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            term(x, out);
        }
    };
    match v {
        Value::String(s) => out.push_str(&serde_json::Value::from(s.as_ref()).to_string()),
        Value::Array(items) => {
            out.push('[');
            list(&mut items.iter(), out);
            out.push(']');
        }
        Value::Set(items) if items.is_empty() => out.push_str("set()"),
        Value::Set(items) => {
            out.push('{');
            list(&mut items.iter(), out);
            out.push('}');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, x)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                term(k, out);
                out.push_str(": ");
                term(x, out);
            }
            out.push('}');
        }
        Value::Undefined => out.push_str("<undefined>"),
        other => out.push_str(&other.to_json_str().unwrap_or_default()),
    }
}

/// OPA 1.20's `strings.split_n`: the parts of `split(s, sep)`, the first n of them, or the
/// last -n when n is negative (measured against OPA itself; it is not Go's `SplitN`).
fn split_n(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let s = args.string(0)?;
    let sep = args.string(1)?;
    let n = args.number_i64(2)?;
    let parts: Vec<String> = if sep.is_empty() {
        s.chars().map(String::from).collect()
    } else {
        s.split(sep).map(str::to_string).collect()
    };
    let take = usize::try_from(n.unsigned_abs())
        .unwrap_or(usize::MAX)
        .min(parts.len());
    let chosen = if n >= 0 {
        &parts[..take]
    } else {
        &parts[parts.len() - take..]
    };
    Ok(Value::from(
        chosen
            .iter()
            .map(|p| Value::from(p.as_str()))
            .collect::<Vec<_>>(),
    ))
}

/// Go's `strings.Count`: non-overlapping occurrences; an empty needle counts the gaps between
/// characters (chars + 1). Replaces regorus's, which panics on an empty needle.
fn count(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let s = args.string(0)?;
    let needle = args.string(1)?;
    let n = if needle.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(needle).count()
    };
    Ok(Value::from(n))
}

fn flatten(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let Value::Array(_) = args.value(0) else {
        return Err(args.error(format!(
            "operand 1 must be array but got {}",
            super::type_name(args.value(0))
        )));
    };
    // OPA flattens one level: [1, [2, [3]]] is [1, 2, [3]].
    let mut out = Vec::new();
    if let Value::Array(items) = args.value(0) {
        for x in items.iter() {
            match x {
                Value::Array(inner) => out.extend(inner.iter().cloned()),
                other => out.push(other.clone()),
            }
        }
    }
    Ok(Value::from(out))
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
