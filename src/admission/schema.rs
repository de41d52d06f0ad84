//! A constraint's `spec.parameters` against its template's `openAPIV3Schema`
//! (`spec.crd.spec.validation.openAPIV3Schema`), as the API server checks a Gatekeeper
//! constraint's CRD: types, required fields, enums, bounds, patterns, items, and `default`s
//! filled in where a field is absent.
//!
//! Not here: pruning of unknown fields (they are kept and passed to the template), formats,
//! `oneOf`/`anyOf`/`allOf` and CEL validation rules (ignored).

use serde_json::Value as Json;

/// Nesting deeper than this in a schema or parameters is refused rather than walked.
const MAX_DEPTH: usize = 64;

/// The constraint with its parameters defaulted, or why its parameters do not fit its
/// template's schema (one line naming the file and the constraint).
pub fn checked_parameters(
    mut c: super::constraints::Constraint,
    template: &super::templates::Template,
) -> Result<super::constraints::Constraint, super::constraints::ConstraintError> {
    let Some(schema) = &template.parameters_schema else {
        return Ok(c);
    };
    let mut params = serde_json::to_value(&c.parameters).unwrap_or(Json::Null);
    apply_defaults(schema, &mut params);
    let errors = validate(schema, &params);
    if let Some(first) = errors.first() {
        let more = match errors.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Err(super::constraints::ConstraintError {
            origin: c.origin.clone(),
            message: format!(
                "constraint {}/{}: {first}{more}; the constraint is skipped",
                c.kind, c.name
            ),
        });
    }
    c.parameters = regorus::Value::from(params);
    Ok(c)
}

/// A constraint submitted for admission whose parameters break its template's schema is
/// refused, as the API server refuses it against the constraint CRD Gatekeeper generates.
pub fn review_constraint(
    policies: &super::policies::Policies,
    object: &Json,
) -> Option<super::review::Violation> {
    let group = object.get("apiVersion").and_then(Json::as_str)?;
    if !group.starts_with("constraints.gatekeeper.sh/") {
        return None;
    }
    let kind = object.get("kind").and_then(Json::as_str)?;
    let template = policies
        .templates
        .iter()
        .find(|t| t.template.kind == kind)?;
    let schema = template.template.parameters_schema.as_ref()?;
    let mut params = object
        .pointer("/spec/parameters")
        .cloned()
        .unwrap_or(Json::Object(Default::default()));
    apply_defaults(schema, &mut params);
    let errors = validate(schema, &params);
    if errors.is_empty() {
        return None;
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Json::as_str)
        .unwrap_or("");
    Some(super::review::Violation {
        kind: kind.to_string(),
        constraint: name.to_string(),
        action: super::constraints::EnforcementAction::Deny,
        msg: format!("invalid constraint {kind}/{name}: {}", errors.join("; ")),
        details: Json::Object(Default::default()),
    })
}

/// Fills in every `default` of the schema that the value lacks (objects only, as the API server).
pub fn apply_defaults(schema: &Json, value: &mut Json) {
    apply(schema, value, 0);
}

fn apply(schema: &Json, value: &mut Json, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Json::Object(map) => {
            if let Some(Json::Object(props)) = schema.get("properties") {
                for (key, sub) in props {
                    if !map.contains_key(key) {
                        if let Some(d) = sub.get("default") {
                            map.insert(key.clone(), d.clone());
                        }
                    }
                    if let Some(v) = map.get_mut(key) {
                        apply(sub, v, depth + 1);
                    }
                }
            }
        }
        Json::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for item in items {
                    apply(sub, item, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Every way `value` breaks `schema`, each `path: problem` (path from `spec.parameters`).
pub fn validate(schema: &Json, value: &Json) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "spec.parameters", 0, &mut errors);
    errors
}

fn type_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn check(schema: &Json, value: &Json, path: &str, depth: usize, errors: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        errors.push(format!("{path}: nested too deeply"));
        return;
    }
    if value.is_null() && schema.get("nullable").and_then(Json::as_bool) == Some(true) {
        return;
    }
    if let Some(want) = schema.get("type").and_then(Json::as_str) {
        let got = type_of(value);
        let fits = got == want || (want == "number" && got == "integer");
        if !fits {
            errors.push(format!("{path}: must be of type {want}, got {got}"));
            return;
        }
    }
    if let Some(Json::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(Json::to_string).collect();
            errors.push(format!(
                "{path}: must be one of {}, got {value}",
                list.join(", ")
            ));
        }
    }
    check_bounds(schema, value, path, errors);
    match value {
        Json::Object(map) => {
            if let Some(Json::Array(required)) = schema.get("required") {
                for r in required.iter().filter_map(Json::as_str) {
                    if !map.contains_key(r) {
                        errors.push(format!("{path}.{r}: is required"));
                    }
                }
            }
            let props = schema.get("properties").and_then(Json::as_object);
            for (k, v) in map {
                let sub = props
                    .and_then(|p| p.get(k))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(sub) = sub {
                    check(sub, v, &format!("{path}.{k}"), depth + 1, errors);
                }
            }
        }
        Json::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(sub, item, &format!("{path}[{i}]"), depth + 1, errors);
                }
            }
        }
        _ => {}
    }
}

fn check_bounds(schema: &Json, value: &Json, path: &str, errors: &mut Vec<String>) {
    let num = |k: &str| schema.get(k).and_then(Json::as_f64);
    if let Some(x) = value.as_f64() {
        if let Some(min) = num("minimum") {
            if x < min {
                errors.push(format!("{path}: must be at least {min}, got {value}"));
            }
        }
        if let Some(max) = num("maximum") {
            if x > max {
                errors.push(format!("{path}: must be at most {max}, got {value}"));
            }
        }
    }
    let len = match value {
        Json::String(s) => Some((s.chars().count(), "Length")),
        Json::Array(a) => Some((a.len(), "Items")),
        _ => None,
    };
    if let Some((n, what)) = len {
        if let Some(min) = num(&format!("min{what}")) {
            if (n as f64) < min {
                errors.push(format!(
                    "{path}: must have at least {min} {}",
                    what.to_lowercase()
                ));
            }
        }
        if let Some(max) = num(&format!("max{what}")) {
            if (n as f64) > max {
                errors.push(format!(
                    "{path}: must have at most {max} {}",
                    what.to_lowercase()
                ));
            }
        }
    }
    if let (Some(pattern), Json::String(s)) = (schema.get("pattern").and_then(Json::as_str), value)
    {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => errors.push(format!("{path}: must match {pattern:?}, got {s:?}")),
            Err(_) => errors.push(format!(
                "{path}: the schema's pattern {pattern:?} is invalid"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Json {
        json!({
            "type": "object",
            "required": ["labels"],
            "properties": {
                "labels": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "mode": {"type": "string", "enum": ["audit", "enforce"], "default": "enforce"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 10},
                "nested": {"type": "object", "properties": {"on": {"type": "boolean", "default": true}}}
            }
        })
    }

    #[test]
    fn valid_parameters_pass_and_get_their_defaults() {
        let mut p = json!({"labels": ["app"], "nested": {}});
        assert_eq!(validate(&schema(), &p), Vec::<String>::new());
        apply_defaults(&schema(), &mut p);
        assert_eq!(
            p,
            json!({"labels": ["app"], "mode": "enforce", "nested": {"on": true}})
        );
    }

    #[test]
    fn each_broken_rule_is_named_with_its_path() {
        let p = json!({"labels": ["", 3], "mode": "loud", "limit": 11});
        assert_eq!(
            validate(&schema(), &p),
            vec![
                "spec.parameters.labels[0]: must have at least 1 length",
                "spec.parameters.labels[1]: must be of type string, got integer",
                "spec.parameters.limit: must be at most 10, got 11",
                "spec.parameters.mode: must be one of \"audit\", \"enforce\", got \"loud\"",
            ]
        );
        assert_eq!(
            validate(&schema(), &json!({})),
            vec!["spec.parameters.labels: is required"]
        );
    }
}

#[cfg(test)]
mod admission_tests {
    use crate::admission::inventory::Inventory;
    use crate::admission::manifests;
    use crate::admission::policies::Policies;

    #[test]
    fn a_constraint_whose_parameters_break_the_schema_is_refused_at_admission() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/gatekeeper/fidelity/zones-template.yaml"
        ))
        .unwrap_or_default();
        let docs = manifests::parse(&text, "zones-template.yaml").unwrap_or_default();
        let policies = Policies::from_documents(&docs, Inventory::new());
        let request = |params: serde_json::Value| {
            serde_json::json!({
                "operation": "CREATE",
                "object": {
                    "apiVersion": "constraints.gatekeeper.sh/v1beta1",
                    "kind": "SluiceAllowedZones",
                    "metadata": {"name": "c"},
                    "spec": {"parameters": params}
                }
            })
        };
        let refused = policies.review(&request(serde_json::json!({"zones": "plant"})));
        let msgs: Vec<&str> = refused.iter().map(|v| v.msg.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "invalid constraint SluiceAllowedZones/c: spec.parameters.zones: must be of type array, got string"
            ]
        );
        assert!(
            policies
                .review(&request(serde_json::json!({"zones": ["plant"]})))
                .is_empty()
        );
    }
}
