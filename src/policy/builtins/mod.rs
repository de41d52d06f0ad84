//! OPA builtins that regorus 0.14.1 lacks, added as regorus extensions (one file per family),
//! and the builtins sluice refuses (network I/O: a policy must not be a way out of the plant).
//!
//! Every extension obeys OPA's error mode: in the default (non-strict) mode a builtin error makes
//! the expression undefined, with `strict_builtin_errors` it stops the evaluation with the error.
//! Not here: builtins regorus already has, and the engine set-up itself (`policy::engine`).

mod aws;
mod crypto;
mod deprecated;
mod digest;
mod ec;
mod globs;
mod go_keys;
mod gotemplate;
mod graphql;
mod jsonschema;
mod jwt;
mod jwt_claims;
mod keys;
mod net;
mod private_keys;
mod rego_ast;
mod strings;
mod uri;
mod x509;
mod x509_verify;
mod yaml;

pub use deprecated::is_deprecated;
pub use rego_ast::too_deep;
use regorus::{Engine, Value};

/// A builtin's failure, worded as OPA words it (`name: message`).
#[derive(Debug, thiserror::Error)]
#[error("{builtin}: {message}")]
pub struct BuiltinError {
    pub builtin: &'static str,
    pub message: String,
}

/// The arguments of one call, with the name for error messages.
pub struct Args<'a> {
    pub name: &'static str,
    pub values: &'a [Value],
}

/// One extension: its OPA name, its number of arguments and its body.
pub struct Builtin {
    pub name: &'static str,
    pub arity: u8,
    pub run: fn(&Args<'_>) -> Result<Value, BuiltinError>,
}

/// What a refused builtin would have done, shown at compile time.
pub struct Refused {
    pub name: &'static str,
    pub reason: &'static str,
}

/// Builtins a policy may not call: each would reach outside the process.
pub const REFUSED: &[Refused] = &[
    Refused {
        name: "http.send",
        reason: "it sends HTTP requests, and a policy must not be a way out of the plant",
    },
    Refused {
        name: "net.lookup_ip_addr",
        reason: "it sends DNS queries, and a policy must not be a way out of the plant",
    },
];

/// `rego.metadata.rule()` and `chain()` after `policy::metadata` resolved them at load: the
/// call carries its answer.
static METADATA: Builtin = Builtin {
    name: crate::policy::metadata::CALL,
    arity: 1,
    run: |args| Ok(args.value(0).clone()),
};

/// Every extension sluice registers, in the order of OPA's reference. An iterator, not a
/// list: the load-time call check looks names up in it, and a list per lookup was a tenth of
/// `sluice check`'s own work.
pub fn all() -> impl Iterator<Item = &'static Builtin> {
    let tables: [&'static [Builtin]; 18] = [
        net::BUILTINS,
        crypto::BUILTINS,
        private_keys::BUILTINS,
        go_keys::BUILTINS,
        x509::BUILTINS,
        x509_verify::BUILTINS,
        jwt::BUILTINS,
        jwt_claims::BUILTINS,
        strings::BUILTINS,
        gotemplate::BUILTINS,
        globs::BUILTINS,
        yaml::BUILTINS,
        jsonschema::BUILTINS,
        uri::BUILTINS,
        graphql::BUILTINS,
        aws::BUILTINS,
        rego_ast::BUILTINS,
        deprecated::BUILTINS,
    ];
    tables
        .into_iter()
        .flatten()
        .chain(std::iter::once(&METADATA))
}

/// Registers every extension and the refusals on a fresh engine.
pub fn register(engine: &mut Engine, strict: bool) {
    for b in all() {
        let run = b.run;
        let name = b.name;
        let body = move |values: Vec<Value>| -> anyhow::Result<Value> {
            match run(&Args {
                name,
                values: &values,
            }) {
                Ok(v) => Ok(v),
                Err(e) if strict => Err(anyhow::Error::new(e)),
                Err(_) => Ok(Value::Undefined),
            }
        };
        // A name is registered once per engine; a second registration cannot happen here.
        let _ = engine.add_extension(name.to_string(), b.arity, Box::new(body));
    }
    for r in REFUSED {
        let name = r.name;
        let reason = r.reason;
        // Defence in depth: the loader refuses these calls before compiling, and this catches
        // any call that reached evaluation anyway (a query, say), whatever the error mode.
        let body = move |_: Vec<Value>| -> anyhow::Result<Value> {
            Err(anyhow::anyhow!(
                "{name} is not available in sluice: {reason}"
            ))
        };
        let _ = engine.add_extension(name.to_string(), 1, Box::new(body));
    }
}

impl Args<'_> {
    pub fn error(&self, message: impl Into<String>) -> BuiltinError {
        BuiltinError {
            builtin: self.name,
            message: message.into(),
        }
    }

    fn type_error(&self, i: usize, wanted: &str) -> BuiltinError {
        let got = self.values.get(i).map(type_name).unwrap_or("nothing");
        self.error(format!("operand {} must be {wanted} but got {got}", i + 1))
    }

    pub fn value(&self, i: usize) -> &Value {
        self.values.get(i).unwrap_or(&Value::Undefined)
    }

    pub fn string(&self, i: usize) -> Result<&str, BuiltinError> {
        match self.values.get(i) {
            Some(Value::String(s)) => Ok(s),
            _ => Err(self.type_error(i, "string")),
        }
    }

    pub fn number_i64(&self, i: usize) -> Result<i64, BuiltinError> {
        match self.values.get(i) {
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| self.error(format!("operand {} must be an integer", i + 1))),
            _ => Err(self.type_error(i, "number")),
        }
    }

    pub fn object(
        &self,
        i: usize,
    ) -> Result<serde_json::Map<String, serde_json::Value>, BuiltinError> {
        match self.values.get(i) {
            Some(v @ Value::Object(_)) => match to_json(v) {
                serde_json::Value::Object(m) => Ok(m),
                _ => Err(self.type_error(i, "object")),
            },
            _ => Err(self.type_error(i, "object")),
        }
    }

    /// The strings of an array or a set argument.
    pub fn strings(&self, i: usize) -> Result<Vec<String>, BuiltinError> {
        let wanted = "set of strings or array of strings";
        match self.values.get(i) {
            Some(v @ (Value::Array(_) | Value::Set(_))) => match to_json(v) {
                serde_json::Value::Array(items) => items
                    .into_iter()
                    .map(|x| match x {
                        serde_json::Value::String(s) => Ok(s),
                        _ => Err(self.type_error(i, wanted)),
                    })
                    .collect(),
                _ => Err(self.type_error(i, wanted)),
            },
            _ => Err(self.type_error(i, wanted)),
        }
    }
}

/// OPA's name of a value's type, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}

/// A value as JSON (sets become arrays); builtins read structured arguments this way.
pub fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

pub fn set_of(items: impl IntoIterator<Item = Value>) -> Value {
    Value::from(
        items
            .into_iter()
            .collect::<std::collections::BTreeSet<Value>>(),
    )
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
