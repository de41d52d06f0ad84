//! A constraint's `spec.match`, with Gatekeeper's semantics (pkg/mutation/match): every criterion
//! present must hold; an absent criterion matches everything.
//!
//! - `kinds`: any entry whose `apiGroups` and `kinds` contain the object's group and kind (`*`
//!   or an empty list matches all).
//! - `namespaces` / `excludedNamespaces`: wildcards `prefix*`, `*suffix`, `*infix*`; for a
//!   Namespace object its own name counts; cluster-scoped objects are never excluded by them.
//! - `labelSelector`, `namespaceSelector`: Kubernetes label selectors (matchLabels and
//!   matchExpressions In, NotIn, Exists, DoesNotExist). A namespaceSelector on a namespaced
//!   object needs the Namespace object; without it the match is an error, which Gatekeeper
//!   reports as a violation of the constraint (an "autoreject"), as review.rs does too.
//! - `scope`: `*` (default), `Cluster`, `Namespaced`; `name`: a wildcard on metadata.name.
//!
//! Pure logic, no I/O. Not here: finding the Namespace object (inventory.rs).

use std::collections::BTreeMap;

use super::error::AdmissionError;
use serde::Deserialize;
use serde_json::Value as Json;

/// `prefix*`, `*suffix`, `*infix*` or an exact name.
pub fn wildcard_matches(pattern: &str, candidate: &str) -> bool {
    if pattern.len() >= 2 && pattern.starts_with('*') && pattern.ends_with('*') {
        candidate.contains(&pattern[1..pattern.len() - 1])
    } else if let Some(suffix) = pattern.strip_prefix('*') {
        candidate.ends_with(suffix)
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        candidate.starts_with(prefix)
    } else {
        pattern == candidate
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KindSelector {
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// Rejects what Kubernetes' LabelSelectorAsSelector rejects.
    pub fn validate(&self) -> Result<(), AdmissionError> {
        for r in &self.match_expressions {
            match r.operator.as_str() {
                "In" | "NotIn" if r.values.is_empty() => {
                    return Err(AdmissionError::Match(format!(
                        "matchExpressions key {:?}: operator {} needs at least one value",
                        r.key, r.operator
                    )));
                }
                "Exists" | "DoesNotExist" if !r.values.is_empty() => {
                    return Err(AdmissionError::Match(format!(
                        "matchExpressions key {:?}: operator {} takes no values",
                        r.key, r.operator
                    )));
                }
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => {
                    return Err(AdmissionError::Match(format!(
                        "matchExpressions key {:?}: unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)",
                        r.key
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether `labels` (a `metadata.labels` object, or none) satisfies every requirement.
    pub fn matches(&self, labels: Option<&Json>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Json::as_str);
        self.match_labels
            .iter()
            .all(|(k, v)| get(k) == Some(v.as_str()))
            && self.match_expressions.iter().all(|r| {
                let v = get(&r.key);
                match r.operator.as_str() {
                    "In" => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                    "NotIn" => v.is_none_or(|v| !r.values.iter().any(|x| x == v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    _ => false,
                }
            })
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    #[serde(default)]
    pub kinds: Vec<KindSelector>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    #[serde(default)]
    pub label_selector: Option<LabelSelector>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub name: Option<String>,
    /// Gatekeeper's expansion source (`Original`, `Generated`, `All`); only originals exist here.
    #[serde(default)]
    pub source: Option<String>,
}

/// What matching needs to know about one object of a review.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    /// The request's namespace, or the object's own; empty for cluster-scoped objects.
    pub namespace: &'a str,
    pub labels: Option<&'a Json>,
}

impl Subject<'_> {
    fn is_namespace(&self) -> bool {
        self.group.is_empty() && self.kind == "Namespace"
    }
}

impl Match {
    /// Parses and validates a `spec.match` value.
    pub fn parse(v: &Json) -> Result<Self, AdmissionError> {
        let m: Match = serde_path_to_error::deserialize(v.clone()).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                AdmissionError::Match(format!("spec.match: {}", e.into_inner()))
            } else {
                AdmissionError::Match(format!("spec.match.{path}: {}", e.into_inner()))
            }
        })?;
        if let Some(s) = &m.label_selector {
            s.validate()
                .map_err(|e| AdmissionError::Match(format!("spec.match.labelSelector: {e}")))?;
        }
        if let Some(s) = &m.namespace_selector {
            s.validate()
                .map_err(|e| AdmissionError::Match(format!("spec.match.namespaceSelector: {e}")))?;
        }
        Ok(m)
    }

    /// Whether `subject` matches; `ns_labels` is `Some(labels)` when the Namespace object is
    /// known (`Some(None)` for a Namespace without labels). Err when a namespaceSelector cannot
    /// be decided.
    pub fn matches(
        &self,
        s: &Subject<'_>,
        ns_labels: Option<Option<&Json>>,
    ) -> Result<bool, AdmissionError> {
        Ok(self.kinds_match(s)
            && self.scope_match(s, ns_labels.is_some())
            && self.namespaces_match(s)
            && self.excluded_namespaces_match(s)
            && self
                .label_selector
                .as_ref()
                .is_none_or(|l| l.matches(s.labels))
            && self
                .namespace_selector_match(s, ns_labels)
                .map_err(AdmissionError::Match)?
            && self
                .name
                .as_deref()
                .is_none_or(|n| n.is_empty() || wildcard_matches(n, s.name)))
    }

    fn kinds_match(&self, s: &Subject<'_>) -> bool {
        self.kinds.is_empty()
            || self.kinds.iter().any(|k| {
                let kind = k.kinds.is_empty() || k.kinds.iter().any(|x| x == "*" || x == s.kind);
                let group = k.api_groups.is_empty()
                    || k.api_groups.iter().any(|x| x == "*" || x == s.group);
                kind && group
            })
    }

    fn scope_match(&self, s: &Subject<'_>, ns_known: bool) -> bool {
        let has_namespace = !s.namespace.is_empty() || ns_known;
        match self.scope.as_deref() {
            Some("Cluster") => s.is_namespace() || !has_namespace,
            Some("Namespaced") => !s.is_namespace() && has_namespace,
            // `*`, absent, and (as in Gatekeeper) anything misspelt.
            _ => true,
        }
    }

    /// The namespace the namespace lists judge: a Namespace's own name, else the object's.
    fn judged_namespace<'a>(s: &Subject<'a>) -> &'a str {
        if s.is_namespace() {
            s.name
        } else {
            s.namespace
        }
    }

    fn namespaces_match(&self, s: &Subject<'_>) -> bool {
        let ns = Self::judged_namespace(s);
        self.namespaces.is_empty()
            || ns.is_empty()
            || self.namespaces.iter().any(|p| wildcard_matches(p, ns))
    }

    fn excluded_namespaces_match(&self, s: &Subject<'_>) -> bool {
        let ns = Self::judged_namespace(s);
        ns.is_empty()
            || !self
                .excluded_namespaces
                .iter()
                .any(|p| wildcard_matches(p, ns))
    }

    fn namespace_selector_match(
        &self,
        s: &Subject<'_>,
        ns_labels: Option<Option<&Json>>,
    ) -> Result<bool, String> {
        let Some(sel) = &self.namespace_selector else {
            return Ok(true);
        };
        if s.is_namespace() {
            return Ok(sel.matches(s.labels));
        }
        match ns_labels {
            Some(labels) => Ok(sel.matches(labels)),
            // Cluster-scoped objects other than Namespaces always match.
            None if s.namespace.is_empty() => Ok(true),
            None => Err(format!(
                "namespace selector for namespace-scoped object but missing Namespace {:?}",
                s.namespace
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Json) -> Match {
        Match::parse(&v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn pod<'a>(ns: &'a str, name: &'a str, labels: Option<&'a Json>) -> Subject<'a> {
        Subject {
            group: "",
            kind: "Pod",
            name,
            namespace: ns,
            labels,
        }
    }

    #[test]
    fn wildcards_prefix_suffix_infix_exact() {
        assert!(wildcard_matches("kube-*", "kube-system"));
        assert!(!wildcard_matches("kube-*", "gatekeeper-system"));
        assert!(wildcard_matches("*-system", "gatekeeper-system"));
        assert!(wildcard_matches("*line*", "plant-line-1"));
        assert!(!wildcard_matches("*line*", "plant-1"));
        assert!(wildcard_matches("prod", "prod"));
        assert!(!wildcard_matches("prod", "prod2"));
        assert!(wildcard_matches("*", "anything"));
    }

    #[test]
    fn kinds_with_groups_and_stars() {
        let k = m(json!({"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]}));
        let dep = Subject {
            group: "apps",
            kind: "Deployment",
            name: "d",
            namespace: "a",
            labels: None,
        };
        assert_eq!(k.matches(&dep, None), Ok(true));
        assert_eq!(k.matches(&pod("a", "p", None), None), Ok(false));
        let any_group = m(json!({"kinds": [{"apiGroups": ["*"], "kinds": ["Pod"]}]}));
        assert_eq!(any_group.matches(&pod("a", "p", None), None), Ok(true));
        let any_kind = m(json!({"kinds": [{"apiGroups": [""], "kinds": ["*"]}]}));
        assert_eq!(any_kind.matches(&pod("a", "p", None), None), Ok(true));
        assert_eq!(any_kind.matches(&dep, None), Ok(false));
    }

    #[test]
    fn namespaces_and_exclusions_with_wildcards() {
        let n = m(json!({"namespaces": ["line-*"], "excludedNamespaces": ["*-test"]}));
        assert_eq!(n.matches(&pod("line-1", "p", None), None), Ok(true));
        assert_eq!(n.matches(&pod("line-1-test", "p", None), None), Ok(false));
        assert_eq!(n.matches(&pod("office", "p", None), None), Ok(false));
        // A Namespace is judged by its own name.
        let ns = Subject {
            group: "",
            kind: "Namespace",
            name: "line-2",
            namespace: "",
            labels: None,
        };
        assert_eq!(n.matches(&ns, None), Ok(true));
        // Cluster-scoped objects are not disqualified by namespace lists.
        let node = Subject {
            group: "",
            kind: "Node",
            name: "edge-1",
            namespace: "",
            labels: None,
        };
        assert_eq!(n.matches(&node, None), Ok(true));
    }

    #[test]
    fn label_selector_operators() {
        let labels = json!({"app": "press", "tier": "edge"});
        let sel = |v: Json| m(json!({"labelSelector": v}));
        let p = pod("a", "p", Some(&labels));
        assert_eq!(
            sel(json!({"matchLabels": {"app": "press"}})).matches(&p, None),
            Ok(true)
        );
        assert_eq!(
            sel(json!({"matchLabels": {"app": "oven"}})).matches(&p, None),
            Ok(false)
        );
        let expr = |op: &str, values: Json| {
            sel(json!({"matchExpressions": [{"key": "tier", "operator": op, "values": values}]}))
        };
        assert_eq!(
            expr("In", json!(["edge", "core"])).matches(&p, None),
            Ok(true)
        );
        assert_eq!(expr("NotIn", json!(["edge"])).matches(&p, None), Ok(false));
        assert_eq!(expr("NotIn", json!(["core"])).matches(&p, None), Ok(true));
        assert_eq!(expr("Exists", json!([])).matches(&p, None), Ok(true));
        assert_eq!(expr("DoesNotExist", json!([])).matches(&p, None), Ok(false));
        // NotIn matches objects without the label at all, as in Kubernetes.
        assert_eq!(
            expr("NotIn", json!(["edge"])).matches(&pod("a", "p", None), None),
            Ok(true)
        );
        assert!(Match::parse(&json!({"labelSelector": {"matchExpressions": [{"key": "k", "operator": "Equals", "values": ["x"]}]}})).is_err());
        assert!(
            Match::parse(
                &json!({"labelSelector": {"matchExpressions": [{"key": "k", "operator": "In"}]}})
            )
            .is_err()
        );
    }

    #[test]
    fn namespace_selector_needs_the_namespace() {
        let s = m(json!({"namespaceSelector": {"matchLabels": {"plant": "yes"}}}));
        let ns_labels = json!({"plant": "yes"});
        assert_eq!(
            s.matches(&pod("a", "p", None), Some(Some(&ns_labels))),
            Ok(true)
        );
        assert_eq!(s.matches(&pod("a", "p", None), Some(None)), Ok(false));
        assert!(s.matches(&pod("a", "p", None), None).is_err());
        let node = Subject {
            group: "",
            kind: "Node",
            name: "n",
            namespace: "",
            labels: None,
        };
        assert_eq!(s.matches(&node, None), Ok(true));
        let ns = Subject {
            group: "",
            kind: "Namespace",
            name: "a",
            namespace: "",
            labels: Some(&ns_labels),
        };
        assert_eq!(s.matches(&ns, None), Ok(true));
    }

    #[test]
    fn scope_and_name() {
        let cluster = m(json!({"scope": "Cluster"}));
        let namespaced = m(json!({"scope": "Namespaced"}));
        let node = Subject {
            group: "",
            kind: "Node",
            name: "n",
            namespace: "",
            labels: None,
        };
        let ns = Subject {
            group: "",
            kind: "Namespace",
            name: "a",
            namespace: "",
            labels: None,
        };
        assert_eq!(cluster.matches(&node, None), Ok(true));
        assert_eq!(cluster.matches(&ns, None), Ok(true));
        assert_eq!(cluster.matches(&pod("a", "p", None), None), Ok(false));
        assert_eq!(namespaced.matches(&pod("a", "p", None), None), Ok(true));
        assert_eq!(namespaced.matches(&ns, None), Ok(false));
        assert_eq!(m(json!({"scope": "*"})).matches(&node, None), Ok(true));
        let name = m(json!({"name": "press-*"}));
        assert_eq!(name.matches(&pod("a", "press-7", None), None), Ok(true));
        assert_eq!(name.matches(&pod("a", "oven-1", None), None), Ok(false));
    }

    #[test]
    fn unknown_match_fields_name_their_path() {
        let err = Match::parse(&json!({"kind": [{"kinds": ["Pod"]}]}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("spec.match"), "{err}");
        assert!(err.contains("unknown field `kind`"), "{err}");
    }
}
