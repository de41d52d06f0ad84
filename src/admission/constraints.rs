//! Constraints: instances of a template's kind (`constraints.gatekeeper.sh/v1beta1`), each with
//! its `spec.match`, `spec.parameters` (the template sees them as `input.parameters`) and
//! `spec.enforcementAction`.
//!
//! Not here: whether the kind has a template (policies.rs) or evaluation (review.rs).

use std::fmt;

use serde_json::Value as Json;

use super::manifests::Document;
use super::matching::Match;

/// What a violation of the constraint does to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EnforcementAction {
    /// Refuse the request (the default).
    Deny,
    /// Allow it; count and log the violation.
    Dryrun,
    /// Allow it with a warning shown to the client.
    Warn,
}

impl EnforcementAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::Dryrun => "dryrun",
            Self::Warn => "warn",
        }
    }
}

#[derive(Clone)]
pub struct Constraint {
    pub kind: String,
    pub name: String,
    pub origin: String,
    pub action: EnforcementAction,
    pub matcher: Match,
    /// `spec.parameters` (an empty object when absent), ready for `input.parameters`.
    pub parameters: regorus::Value,
}

impl fmt::Debug for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Constraint")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

/// True when the document is a constraint (any kind in the constraints group).
pub fn is_constraint(doc: &Document) -> bool {
    doc.group() == "constraints.gatekeeper.sh"
}

/// A constraint that cannot be used; one line naming the file and the constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConstraintError {
    pub origin: String,
    pub message: String,
}

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// Reads one constraint document.
pub fn parse(doc: &Document) -> Result<Constraint, ConstraintError> {
    let err = |message: String| ConstraintError {
        origin: doc.origin.clone(),
        message,
    };
    let kind = doc.kind().to_string();
    let name = doc.name().to_string();
    if kind.is_empty() || name.is_empty() {
        return Err(err("constraint needs kind and metadata.name".into()));
    }
    let label = format!("constraint {kind}/{name}");
    let spec = doc.body.get("spec").cloned().unwrap_or(Json::Null);
    let action = match spec.get("enforcementAction") {
        None | Some(Json::Null) => EnforcementAction::Deny,
        Some(Json::String(s)) => match s.as_str() {
            "" | "deny" => EnforcementAction::Deny,
            "dryrun" => EnforcementAction::Dryrun,
            "warn" => EnforcementAction::Warn,
            other => {
                return Err(err(format!(
                    "{label}: enforcementAction {other:?} is not deny, dryrun or warn; the constraint is skipped"
                )));
            }
        },
        Some(other) => {
            return Err(err(format!(
                "{label}: enforcementAction must be a string, got {other}"
            )));
        }
    };
    let matcher = match spec.get("match") {
        None | Some(Json::Null) => Match::default(),
        Some(m) => Match::parse(m).map_err(|e| err(format!("{label}: {e}")))?,
    };
    let parameters = match spec.get("parameters") {
        None | Some(Json::Null) => Json::Object(Default::default()),
        Some(p @ Json::Object(_)) => p.clone(),
        Some(other) => {
            return Err(err(format!(
                "{label}: spec.parameters must be an object, got {other}"
            )));
        }
    };
    Ok(Constraint {
        kind,
        name,
        origin: doc.origin.clone(),
        action,
        matcher,
        parameters: regorus::Value::from(parameters),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::manifests::parse as parse_docs;

    fn constraint(yaml: &str) -> Result<Constraint, ConstraintError> {
        let docs = parse_docs(yaml, "c.yaml").unwrap_or_default();
        match docs.first() {
            Some(d) => parse(d),
            None => Err(ConstraintError {
                origin: "c.yaml".into(),
                message: "empty".into(),
            }),
        }
    }

    #[test]
    fn defaults_to_deny_with_empty_parameters() {
        let c = constraint(
            "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sDemo\nmetadata: {name: demo}\n",
        );
        let c = c.map(|c| (c.action, c.parameters.to_json_str().unwrap_or_default()));
        assert_eq!(c, Ok((EnforcementAction::Deny, "{}".to_string())));
    }

    #[test]
    fn unknown_enforcement_action_is_refused_with_a_reason() {
        let err = constraint(
            "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sDemo\nmetadata: {name: demo}\nspec: {enforcementAction: audit}\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert_eq!(
            err,
            "c.yaml: constraint K8sDemo/demo: enforcementAction \"audit\" is not deny, dryrun or warn; the constraint is skipped"
        );
    }
}
