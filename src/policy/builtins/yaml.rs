//! `yaml.unmarshal` as OPA reads YAML: version 1.1 (Go's yaml.v2 through sigs.k8s.io/yaml), so
//! `yes`/`no`/`on`/`off`/`y`/`n` are booleans, `010` is octal and `1_000` a number, later
//! duplicate keys win, and of several documents the first counts. regorus's `yaml.unmarshal`
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

fn yaml_1_1() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: false,
        legacy_octal_numbers: true,
        underscored_numbers_as_strings: false,
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::LastWins,
    }
}

fn unmarshal(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let text = args.string(0)?;
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple_with_options(text, yaml_1_1())
            .map_err(|e| args.error(crate::policy::loader::one_line(&e.to_string())))?;
    Ok(Value::from(
        documents
            .into_iter()
            .next()
            .unwrap_or(serde_json::Value::Null),
    ))
}
