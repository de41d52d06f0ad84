//! The builtins OPA deprecated and removed from Rego v1, which Rego v0 policies (older
//! Gatekeeper libraries above all: `re_match`, `any`, `cast_array`) still call. OPA runs them in
//! v0 modules only; in a v1 module, or a v0 one with `import rego.v1`, a call is refused when the
//! policy is loaded (`rego_type_error: deprecated built-in function calls in expression: any`,
//! `policy::compile`), as OPA refuses it.

use std::net::IpAddr;

use regorus::Value;

use super::{Args, Builtin, BuiltinError, type_name};

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "all",
        arity: 1,
        run: all,
    },
    Builtin {
        name: "any",
        arity: 1,
        run: any,
    },
    Builtin {
        name: "re_match",
        arity: 2,
        run: re_match,
    },
    Builtin {
        name: "set_diff",
        arity: 2,
        run: set_diff,
    },
    Builtin {
        name: "net.cidr_overlap",
        arity: 2,
        run: cidr_overlap,
    },
    Builtin {
        name: "cast_array",
        arity: 1,
        run: cast_array,
    },
    Builtin {
        name: "cast_set",
        arity: 1,
        run: cast_set,
    },
    Builtin {
        name: "cast_string",
        arity: 1,
        run: cast_string,
    },
    Builtin {
        name: "cast_boolean",
        arity: 1,
        run: cast_boolean,
    },
    Builtin {
        name: "cast_null",
        arity: 1,
        run: cast_null,
    },
    Builtin {
        name: "cast_object",
        arity: 1,
        run: cast_object,
    },
];

/// Whether `name` is one of these: callable from Rego v0 modules only.
pub fn is_deprecated(name: &str) -> bool {
    BUILTINS.iter().any(|b| b.name == name)
}

/// OPA's operand error for a value of none of the wanted kinds (`one of {array, set}`).
fn kind_error(args: &Args<'_>, wanted: &[&str]) -> BuiltinError {
    let got = type_name(args.value(0));
    let wanted = match wanted {
        [one] => (*one).to_string(),
        many => format!("one of {{{}}}", many.join(", ")),
    };
    args.error(format!("operand 1 must be {wanted} but got {got}"))
}

/// The elements of an array or a set (a set in its sorted order, as OPA iterates it).
fn elements<'v>(args: &'v Args<'_>) -> Option<Vec<&'v Value>> {
    match args.value(0) {
        Value::Array(items) => Some(items.iter().collect()),
        Value::Set(items) => Some(items.iter().collect()),
        _ => None,
    }
}

/// True when every element is `true` (an empty collection too); other values are not true.
fn all(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let items = elements(args).ok_or_else(|| kind_error(args, &["array", "set"]))?;
    Ok(Value::from(items.iter().all(|v| **v == Value::Bool(true))))
}

/// True when some element is `true`.
fn any(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let items = elements(args).ok_or_else(|| kind_error(args, &["array", "set"]))?;
    Ok(Value::from(items.iter().any(|v| **v == Value::Bool(true))))
}

/// `regex.match` under its old name.
fn re_match(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let pattern = args.string(0)?;
    let value = args.string(1)?;
    let re = regex::Regex::new(pattern).map_err(|e| args.error(format!("{e}")))?;
    Ok(Value::from(re.is_match(value)))
}

/// `a - b` of two sets.
fn set_diff(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let set = |i: usize| match args.value(i) {
        Value::Set(s) => Ok(s.clone()),
        other => Err(args.error(format!(
            "operand {} must be set but got {}",
            i + 1,
            type_name(other)
        ))),
    };
    let a = set(0)?;
    let b = set(1)?;
    Ok(super::set_of(a.iter().filter(|x| !b.contains(x)).cloned()))
}

/// Whether the network contains the address (`net.cidr_contains` with an address).
fn cidr_overlap(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let cidr = args.string(0)?;
    let addr = args.string(1)?;
    let net = cidr
        .parse::<ipnet::IpNet>()
        .map_err(|_| args.error(format!("invalid CIDR address: {cidr}")))?;
    let ip = addr
        .parse::<IpAddr>()
        .map_err(|_| args.error(format!("invalid IP address: {addr}")))?;
    Ok(Value::from(net.contains(&ip)))
}

fn cast_array(args: &Args<'_>) -> Result<Value, BuiltinError> {
    match args.value(0) {
        v @ Value::Array(_) => Ok(v.clone()),
        Value::Set(s) => Ok(Value::from(s.iter().cloned().collect::<Vec<_>>())),
        _ => Err(kind_error(args, &["array", "set"])),
    }
}

fn cast_set(args: &Args<'_>) -> Result<Value, BuiltinError> {
    match args.value(0) {
        v @ Value::Set(_) => Ok(v.clone()),
        Value::Array(items) => Ok(super::set_of(items.iter().cloned())),
        _ => Err(kind_error(args, &["set", "array"])),
    }
}

/// The value itself when it is of the one kind named, else OPA's operand error.
fn cast_to(args: &Args<'_>, kind: &str) -> Result<Value, BuiltinError> {
    let v = args.value(0);
    if type_name(v) == kind {
        Ok(v.clone())
    } else {
        Err(kind_error(args, &[kind]))
    }
}

fn cast_string(args: &Args<'_>) -> Result<Value, BuiltinError> {
    cast_to(args, "string")
}

fn cast_boolean(args: &Args<'_>) -> Result<Value, BuiltinError> {
    cast_to(args, "boolean")
}

fn cast_null(args: &Args<'_>) -> Result<Value, BuiltinError> {
    cast_to(args, "null")
}

fn cast_object(args: &Args<'_>) -> Result<Value, BuiltinError> {
    cast_to(args, "object")
}
