//! ConstraintTemplates: reading `templates.gatekeeper.sh/v1` and `v1beta1` documents and compiling
//! each template's Rego, with its libs, into its own regorus engine.
//!
//! Both Gatekeeper forms are read: the legacy `targets[].rego` + `targets[].libs` (Rego v0) and
//! `targets[].code[]` with `engine: Rego` (`source.rego`, `source.libs`, `source.version: v1`
//! for Rego v1, v0 otherwise). A template that carries only CEL (`engine: K8sNativeValidation`)
//! cannot be enforced here: it is reported as [`TemplateError::CelOnly`], never silently passed.
//!
//! Not here: constraints, matching or evaluation (review.rs).

use std::fmt;

use regorus::Engine;
use serde_json::Value as Json;

use super::manifests::Document;

/// The one target Gatekeeper's admission templates are written for.
pub const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";

/// A compiled template: the constraint kind it defines and an engine holding its Rego and libs,
/// prepared, without data (inventory is added when a policy set is assembled).
#[derive(Clone)]
pub struct Template {
    /// `metadata.name` (lower-case kind).
    pub name: String,
    /// `spec.crd.spec.names.kind`: the kind of its constraints.
    pub kind: String,
    pub origin: String,
    /// `data.<package>.violation`.
    pub violation_rule: String,
    pub engine: Engine,
    /// `spec.crd.spec.validation.openAPIV3Schema`: what its constraints' parameters must be.
    pub parameters_schema: Option<Json>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Why a template cannot be enforced. Printed as one line naming the file and the template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// Malformed document (missing kind, no targets, ...).
    Invalid { origin: String, message: String },
    /// The Rego (or a lib) does not parse or compile.
    Compile {
        origin: String,
        template: String,
        message: String,
    },
    /// Only `K8sNativeValidation` (CEL) code: not supported, skipped.
    CelOnly { origin: String, template: String },
}

impl TemplateError {
    /// The template's kind or name, when known (its constraints are skipped).
    pub fn template(&self) -> Option<&str> {
        match self {
            Self::Invalid { .. } => None,
            Self::Compile { template, .. } | Self::CelOnly { template, .. } => Some(template),
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { origin, message } => write!(f, "{origin}: {message}"),
            Self::Compile {
                origin,
                template,
                message,
            } => write!(f, "{origin}: template {template}: {message}"),
            Self::CelOnly { origin, template } => write!(
                f,
                "{origin}: template {template} has only K8sNativeValidation (CEL) code, which sluice does not evaluate; its constraints are skipped"
            ),
        }
    }
}

/// True when the document is a ConstraintTemplate.
pub fn is_template(doc: &Document) -> bool {
    doc.group() == "templates.gatekeeper.sh" && doc.kind() == "ConstraintTemplate"
}

/// The Rego source of a template, as found in the document.
struct RegoSource {
    rego: String,
    libs: Vec<String>,
    v1: bool,
}

/// Reads and compiles one ConstraintTemplate document.
pub fn compile(doc: &Document) -> Result<Template, TemplateError> {
    let origin = doc.origin.clone();
    let invalid = |message: String| TemplateError::Invalid {
        origin: origin.clone(),
        message,
    };
    let version = doc.api_version();
    if !matches!(
        version,
        "templates.gatekeeper.sh/v1"
            | "templates.gatekeeper.sh/v1beta1"
            | "templates.gatekeeper.sh/v1alpha1"
    ) {
        return Err(invalid(format!(
            "unsupported ConstraintTemplate apiVersion {version:?}"
        )));
    }
    let name = doc.name().to_string();
    if name.is_empty() {
        return Err(invalid("ConstraintTemplate without metadata.name".into()));
    }
    let kind = doc
        .body
        .pointer("/spec/crd/spec/names/kind")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    if kind.is_empty() {
        return Err(invalid(format!(
            "template {name}: spec.crd.spec.names.kind is required"
        )));
    }
    // Gatekeeper's rule: the template is named after its kind, lower-cased.
    if name != kind.to_lowercase() {
        return Err(invalid(format!(
            "template {name}: metadata.name must be {:?}, the lower-case of spec.crd.spec.names.kind",
            kind.to_lowercase()
        )));
    }
    let targets = doc
        .body
        .pointer("/spec/targets")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let target = admission_target(&targets, &name).map_err(invalid)?;
    let source = rego_source(target).map_err(|m| invalid(format!("template {name}: {m}")))?;
    let Some(source) = source else {
        return Err(TemplateError::CelOnly {
            origin: origin.clone(),
            template: kind,
        });
    };
    let compile_err = |message: String| TemplateError::Compile {
        origin: origin.clone(),
        template: kind.clone(),
        message,
    };
    let engine = build_engine(&origin, &source).map_err(compile_err)?;
    let (engine, package) = engine;
    Ok(Template {
        name,
        kind: kind.clone(),
        origin: origin.clone(),
        violation_rule: format!("{package}.violation"),
        engine,
        parameters_schema: doc
            .body
            .pointer("/spec/crd/spec/validation/openAPIV3Schema")
            .filter(|s| s.is_object())
            .cloned(),
    })
}

/// The template's one target, which must be Gatekeeper's admission target.
fn admission_target<'a>(targets: &'a [Json], name: &str) -> Result<&'a Json, String> {
    let target = match targets {
        [one] => one,
        [] => return Err(format!("template {name}: spec.targets is empty")),
        _ => {
            return Err(format!(
                "template {name}: exactly one target is supported, found {}",
                targets.len()
            ));
        }
    };
    let target_name = target.get("target").and_then(Json::as_str).unwrap_or("");
    if target_name != ADMISSION_TARGET {
        return Err(format!(
            "template {name}: target {target_name:?} is not {ADMISSION_TARGET}"
        ));
    }
    Ok(target)
}

/// Finds the Rego: `code[]` with `engine: Rego` first, then the legacy `rego` field.
/// `Ok(None)` when the target has only other engines (CEL).
fn rego_source(target: &Json) -> Result<Option<RegoSource>, String> {
    let strings = |v: Option<&Json>, what: &str| -> Result<Vec<String>, String> {
        match v {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(a)) => a
                .iter()
                .map(|l| {
                    l.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{what} must be a list of strings"))
                })
                .collect(),
            Some(_) => Err(format!("{what} must be a list of strings")),
        }
    };
    let code = target.get("code").and_then(Json::as_array);
    if let Some(code) = code {
        for (i, c) in code.iter().enumerate() {
            if c.get("engine").and_then(Json::as_str) == Some("Rego") {
                let src = c.get("source").unwrap_or(&Json::Null);
                let rego = src
                    .get("rego")
                    .and_then(Json::as_str)
                    .ok_or_else(|| format!("code[{i}].source.rego is required for engine Rego"))?;
                let v1 = match src.get("version").and_then(Json::as_str) {
                    None | Some("v0") => false,
                    Some("v1") => true,
                    Some(other) => {
                        return Err(format!(
                            "code[{i}].source.version {other:?} must be v0 or v1"
                        ));
                    }
                };
                return Ok(Some(RegoSource {
                    rego: rego.to_string(),
                    libs: strings(src.get("libs"), &format!("code[{i}].source.libs"))?,
                    v1,
                }));
            }
        }
    }
    if let Some(rego) = target.get("rego").and_then(Json::as_str) {
        if !rego.trim().is_empty() {
            return Ok(Some(RegoSource {
                rego: rego.to_string(),
                libs: strings(target.get("libs"), "libs")?,
                v1: false,
            }));
        }
    }
    if code.is_some_and(|c| !c.is_empty()) {
        return Ok(None);
    }
    Err("target has neither rego nor code".into())
}

/// Compiles the Rego and libs into a prepared engine; returns it with the template's package.
fn build_engine(origin: &str, source: &RegoSource) -> Result<(Engine, String), String> {
    // Gatekeeper runs OPA non-strict (a builtin error makes the expression undefined), whatever
    // the policy CLI's mode.
    let mut engine = crate::policy::engine::EngineSetup {
        rego_v0: !source.v1,
        strict_builtin_errors: false,
    }
    .engine();
    let one = |e: &dyn fmt::Display| {
        crate::policy::loader::LoadError::from_engine(&e.to_string(), origin).to_string()
    };
    for (part, text) in std::iter::once(("rego".to_string(), &source.rego)).chain(
        source
            .libs
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("libs[{i}]"), l)),
    ) {
        if let Some(call) = crate::policy::engine::find_refused_call(text) {
            return Err(format!(
                "{origin}:{part}:{}:{}: {call}",
                call.line, call.col
            ));
        }
        // Gatekeeper's external data providers are HTTP calls out of the cluster.
        if let Some((line, col, _)) = crate::policy::engine::find_call(text, &["external_data"]) {
            return Err(format!(
                "{part}:{line}:{col}: external_data is not supported (sluice calls no external data provider); the template is skipped"
            ));
        }
    }
    crate::policy::loader::within_bounds(&format!("{origin}:rego"), &source.rego)
        .map_err(|e| e.to_string())?;
    for (i, lib) in source.libs.iter().enumerate() {
        crate::policy::loader::within_bounds(&format!("{origin}:libs[{i}]"), lib)
            .map_err(|e| e.to_string())?;
    }
    let package = engine
        .add_policy(format!("{origin}:rego"), source.rego.clone())
        .map_err(|e| one(&e))?;
    if package == "data.lib" || package.starts_with("data.lib.") {
        return Err(format!(
            "the template's package {package} must not be under data.lib"
        ));
    }
    for (i, lib) in source.libs.iter().enumerate() {
        let lib_package = engine
            .add_policy(format!("{origin}:libs[{i}]"), lib.clone())
            .map_err(|e| one(&e))?;
        // Gatekeeper only lets templates share code through data.lib.
        if lib_package != "data.lib" && !lib_package.starts_with("data.lib.") {
            return Err(format!(
                "libs[{i}]: package {lib_package} must be under data.lib"
            ));
        }
    }
    // The checks `sluice check` runs (undefined functions, arity, unsafe variables), as
    // Gatekeeper's OPA compiler refuses such a template.
    crate::policy::compile::check_modules(&mut engine)
        .map_err(|errors| errors.first().map(ToString::to_string).unwrap_or_default())?;
    let rules = crate::policy::rules::declared_rules(&mut engine);
    if !rules
        .iter()
        .any(|r| r.package == package && r.name == "violation" && !r.function)
    {
        return Err(format!("package {package} has no violation rule"));
    }
    // Preparing once here means every clone starts ready and compile errors surface at load.
    engine
        .eval_query("true".to_string(), false)
        .map_err(|e| one(&e))?;
    Ok((engine, package))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::manifests::parse;

    fn template(yaml: &str) -> Result<Template, TemplateError> {
        let docs = parse(yaml, "t.yaml").unwrap_or_default();
        match docs.first() {
            Some(d) => compile(d),
            None => Err(TemplateError::Invalid {
                origin: "t.yaml".into(),
                message: "no document".into(),
            }),
        }
    }

    const LEGACY: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sdemo}
spec:
  crd: {spec: {names: {kind: K8sDemo}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sdemo
        import data.lib.helpers.name
        violation[{"msg": msg}] { msg := sprintf("hi %v", [name]) }
      libs:
        - |
          package lib.helpers
          name = input.review.object.metadata.name
"#;

    #[test]
    fn legacy_rego_with_libs_compiles() {
        let t = template(LEGACY);
        assert!(t.is_ok(), "{:?}", t.err());
        let t = t.ok();
        assert_eq!(t.as_ref().map(|t| t.kind.as_str()), Some("K8sDemo"));
        assert_eq!(
            t.as_ref().map(|t| t.violation_rule.as_str()),
            Some("data.k8sdemo.violation")
        );
    }

    #[test]
    fn cel_only_templates_are_reported_not_passed() {
        let y = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8scel}
spec:
  crd: {spec: {names: {kind: K8sCel}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source: {validations: [{expression: "true", message: "x"}]}
"#;
        let err = template(y).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("only K8sNativeValidation (CEL)"), "{err}");
    }

    #[test]
    fn compile_errors_name_the_template_and_position() {
        let y = LEGACY.replace("msg := sprintf", "msg := := sprintf");
        let err = template(&y)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("t.yaml: template K8sDemo: t.yaml:rego:3:"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn lib_outside_data_lib_is_refused() {
        let y = LEGACY
            .replace("package lib.helpers", "package helpers")
            .replace("import data.lib.helpers.name", "import data.helpers.name");
        let err = template(&y)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("must be under data.lib"), "{err}");
    }
}
