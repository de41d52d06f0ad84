//! `yaml.unmarshal` as OPA reads YAML: version 1.1 (Go's yaml.v2 through sigs.k8s.io/yaml), so
//! `yes`/`no`/`on`/`off`/`y`/`n` are booleans (in the three cases yaml.v2 takes), `010` is
//! octal and `1_000` a number, later duplicate keys win, and of several documents the first
//! counts. regorus's `yaml.unmarshal`
//! reads YAML 1.2, where `country: NO` stays the string "NO" and OPA says `false`.
//!
//! Not here: data files (`data.yaml`), which sluice reads as YAML 1.2 on purpose (`loader`).

use regorus::Value;

use super::{Args, Builtin, BuiltinError};

pub static BUILTINS: &[Builtin] = &[Builtin {
    name: "yaml.unmarshal",
    arity: 1,
    run: unmarshal,
}];

fn yaml_1_1(strict_booleans: bool) -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: strict_booleans,
        legacy_octal_numbers: true,
        underscored_numbers_as_strings: false,
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::LastWins,
    }
}

/// The plain scalars yaml.v2 reads as booleans beyond YAML 1.2's (serde-saphyr's YAML 1.1 mode
/// takes them in any case, `yEs` too).
const GO_BOOLEANS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

fn unmarshal(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let text = args.string(0)?;
    let first = |strict: bool| -> Result<serde_json::Value, BuiltinError> {
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple_with_options(text, yaml_1_1(strict))
                .map_err(|e| args.error(crate::policy::loader::one_line(&e.to_string())))?;
        Ok(documents
            .into_iter()
            .next()
            .unwrap_or(serde_json::Value::Null))
    };
    let loose = first(false)?;
    // Only where a boolean is not: read again with YAML 1.2's booleans, which leaves every
    // other word a string, and keep the words yaml.v2 does not take as strings.
    if !has_bool(&loose) {
        return Ok(Value::from(loose));
    }
    Ok(Value::from(go_booleans(loose, first(true)?)))
}

fn has_bool(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(_) => true,
        serde_json::Value::Array(a) => a.iter().any(has_bool),
        serde_json::Value::Object(o) => o.values().any(has_bool),
        _ => false,
    }
}

/// `loose` (YAML 1.1 booleans in any case) with its booleans that `strict` (YAML 1.2) read as
/// a word yaml.v2 does not take given back as that word; both are the same document.
fn go_booleans(loose: serde_json::Value, strict: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match (loose, strict) {
        (J::Bool(_), J::String(s)) if !GO_BOOLEANS.contains(&s.as_str()) => J::String(s),
        (J::Array(a), J::Array(b)) => J::Array(
            a.into_iter()
                .zip(b.into_iter().map(Some).chain(std::iter::repeat(None)))
                .map(|(x, y)| match y {
                    Some(y) => go_booleans(x, y),
                    None => x,
                })
                .collect(),
        ),
        (J::Object(a), J::Object(mut b)) => J::Object(
            a.into_iter()
                .map(|(k, x)| {
                    let x = match b.remove(&k) {
                        Some(y) => go_booleans(x, y),
                        None => x,
                    };
                    (k, x)
                })
                .collect(),
        ),
        (loose, _) => loose,
    }
}
