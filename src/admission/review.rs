//! Reviewing one AdmissionRequest against the loaded policies, with Gatekeeper's semantics:
//! each constraint whose `spec.match` matches the object or the old object is evaluated with
//! `input.review` = the request and `input.parameters` = its parameters; every element of the
//! template's `violation` set is a violation (`msg`, optional `details`). Builtin errors are
//! undefined, as in OPA; any other evaluation error becomes a violation naming it, and a match
//! that cannot be decided (a namespaceSelector without its Namespace) is a violation too, as
//! Gatekeeper's autoreject. Results are ordered by constraint kind, then name.
//!
//! Not here: HTTP, the AdmissionReview envelope (response.rs), or loading (policies.rs).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::constraints::EnforcementAction;
use super::error::AdmissionError;
use super::matching::Subject;
use super::policies::Policies;

/// One violation of one constraint.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// The constraint's kind (its template's kind).
    pub kind: String,
    /// The constraint's name.
    pub constraint: String,
    pub action: EnforcementAction,
    pub msg: String,
    pub details: Json,
}

/// Prepares an AdmissionRequest for review: on DELETE the object is the old object (Gatekeeper's
/// SetObjectOnDelete). Errors are the client's fault (a malformed request).
pub fn prepare(mut request: Json) -> Result<Json, AdmissionError> {
    let Json::Object(map) = &mut request else {
        return Err(AdmissionError::Review("request must be an object".into()));
    };
    let present = |v: Option<&Json>| v.is_some_and(|v| !v.is_null());
    if !present(map.get("object")) && !present(map.get("oldObject")) {
        return Err(AdmissionError::Review(
            "request has neither object nor oldObject".into(),
        ));
    }
    if map.get("operation").and_then(Json::as_str) == Some("DELETE") && !present(map.get("object"))
    {
        let old = map.get("oldObject").cloned().unwrap_or(Json::Null);
        map.insert("object".into(), old);
    }
    for key in ["object", "oldObject"] {
        if let Some(v) = map.get(key) {
            if !v.is_null() && !v.is_object() {
                return Err(AdmissionError::Review(format!(
                    "request.{key} must be an object"
                )));
            }
        }
    }
    Ok(request)
}

/// The request Gatekeeper builds for a plain object (gator): a CREATE of that object.
pub fn request_for_object(object: &Json) -> Json {
    let api_version = object
        .get("apiVersion")
        .and_then(Json::as_str)
        .unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let meta = |k: &str| {
        object
            .pointer(&format!("/metadata/{k}"))
            .cloned()
            .unwrap_or(Json::from(""))
    };
    serde_json::json!({
        "kind": {"group": group, "version": version, "kind": object.get("kind").cloned().unwrap_or(Json::from(""))},
        "name": meta("name"),
        "namespace": meta("namespace"),
        "operation": "CREATE",
        "object": object,
    })
}

fn subject<'a>(object: &'a Json, request: &'a Json, namespace: &'a str) -> Subject<'a> {
    let str_at = |v: &'a Json, p: &str| v.pointer(p).and_then(Json::as_str);
    let (group, kind) = match (str_at(object, "/apiVersion"), str_at(object, "/kind")) {
        (Some(av), Some(kind)) => (av.rsplit_once('/').map(|(g, _)| g).unwrap_or(""), kind),
        // Objects from the API server carry apiVersion and kind; fall back to the request's.
        _ => (
            str_at(request, "/kind/group").unwrap_or(""),
            str_at(request, "/kind/kind").unwrap_or(""),
        ),
    };
    Subject {
        group,
        kind,
        name: str_at(object, "/metadata/name")
            .or_else(|| str_at(request, "/name"))
            .unwrap_or(""),
        namespace,
        labels: object.pointer("/metadata/labels"),
    }
}

impl Policies {
    /// Every constraint matched against the subjects: to evaluate, or already a violation when
    /// matching itself failed.
    fn match_constraints<'a>(
        &'a self,
        subjects: &[Subject<'_>],
        ns_labels: Option<Option<&Json>>,
    ) -> Vec<Step<'a>> {
        let mut steps: Vec<Step<'a>> = Vec::new();
        for (c, idx) in &self.constraints {
            let mut matched = Ok(false);
            for s in subjects {
                match c.matcher.matches(s, ns_labels) {
                    Ok(true) => {
                        matched = Ok(true);
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => matched = Err(format!("unable to match {:?}: {e}", s.name)),
                }
            }
            match matched {
                Ok(false) => {}
                Ok(true) => steps.push(Step::Evaluate(c, *idx)),
                Err(e) => steps.push(Step::Done(vec![Violation {
                    kind: c.kind.clone(),
                    constraint: c.name.clone(),
                    action: c.action,
                    msg: e,
                    details: Json::Object(Default::default()),
                }])),
            }
        }
        steps
    }

    /// Reviews a prepared request (see [`prepare`]) and returns its violations, ordered.
    pub fn review(&self, request: &Json) -> Vec<Violation> {
        let object = request.get("object").filter(|o| !o.is_null());
        if let Some(refused) = object.and_then(|o| super::schema::review_constraint(self, o)) {
            return vec![refused];
        }
        let old = request.get("oldObject").filter(|o| !o.is_null());
        let namespace = request
            .get("namespace")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| {
                object
                    .or(old)
                    .and_then(|o| o.pointer("/metadata/namespace"))
                    .and_then(Json::as_str)
            })
            .unwrap_or("");
        // The Namespace object: from the inventory, or the one a review may carry itself.
        let carried = request.pointer("/_unstable/namespace");
        let ns_labels = if namespace.is_empty() {
            None
        } else {
            self.inventory
                .namespace_labels(namespace)
                .or_else(|| carried.map(|n| n.pointer("/metadata/labels")))
        };
        let subjects: Vec<Subject<'_>> = [object, old]
            .into_iter()
            .flatten()
            .map(|o| subject(o, request, namespace))
            .collect();

        // Match first (cheap), then evaluate the matched constraints, in parallel when there
        // is enough work to pay for the threads; results keep the constraints' order.
        let steps = self.match_constraints(&subjects, ns_labels);
        if !steps.iter().any(|s| matches!(s, Step::Evaluate(..))) {
            return steps.into_iter().flat_map(Step::into_done).collect();
        }
        let review = to_value(request);
        let run = |step: Step<'_>| match step {
            Step::Done(v) => v,
            Step::Evaluate(c, idx) => self.evaluate(c, idx, &review),
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_REVIEW_THREADS);
        if threads < 2 || steps.len() < PARALLEL_FROM {
            return steps.into_iter().flat_map(run).collect();
        }
        let per_thread = steps.len().div_ceil(threads);
        let mut chunks: Vec<Vec<Step<'_>>> = Vec::new();
        let mut steps = steps.into_iter().peekable();
        while steps.peek().is_some() {
            chunks.push(steps.by_ref().take(per_thread).collect());
        }
        std::thread::scope(|scope| {
            let run = &run;
            // The first chunk runs on this thread; the others on scoped threads.
            let mut chunks = chunks.into_iter();
            let first = chunks.next().unwrap_or_default();
            let handles: Vec<_> = chunks
                .map(|chunk| {
                    scope.spawn(move || chunk.into_iter().flat_map(run).collect::<Vec<_>>())
                })
                .collect();
            let mut out: Vec<Violation> = first.into_iter().flat_map(run).collect();
            for h in handles {
                // A panic in an evaluation thread would be a bug; fail closed with a violation.
                out.extend(h.join().unwrap_or_else(|_| {
                    vec![Violation {
                        kind: "sluice".into(),
                        constraint: "review".into(),
                        action: EnforcementAction::Deny,
                        msg: "internal error while evaluating templates".into(),
                        details: Json::Object(Default::default()),
                    }]
                }));
            }
            out
        })
    }

    /// Evaluates one matched constraint's template on the review.
    fn evaluate(
        &self,
        c: &super::constraints::Constraint,
        idx: usize,
        review: &regorus::Value,
    ) -> Vec<Violation> {
        let mut input = BTreeMap::new();
        input.insert(regorus::Value::from("review"), review.clone());
        input.insert(regorus::Value::from("parameters"), c.parameters.clone());
        let template = &self.templates[idx];
        let result = template.with_engine(|engine| {
            engine.set_input(regorus::Value::from(input));
            engine.eval_rule(template.template.violation_rule.clone())
        });
        let violation = |msg: String, details: Json| Violation {
            kind: c.kind.clone(),
            constraint: c.name.clone(),
            action: c.action,
            msg,
            details,
        };
        let mut out = Vec::new();
        match result {
            Ok(regorus::Value::Set(set)) => {
                for v in set.iter() {
                    let (msg, details) = violation_fields(v);
                    out.push(violation(msg, details));
                }
            }
            Ok(regorus::Value::Undefined) => {}
            Ok(other) => out.push(violation(
                format!(
                    "template {} evaluation error: violation must be a set, got {}",
                    c.kind,
                    other.to_json_str().unwrap_or_default()
                ),
                Json::Object(Default::default()),
            )),
            Err(e) => out.push(violation(
                format!(
                    "template {} evaluation error: {}",
                    c.kind,
                    crate::policy::loader::one_line(&e.to_string())
                ),
                Json::Object(Default::default()),
            )),
        }
        out
    }
}

/// Matched constraints from this many on are evaluated on several threads (below it, thread
/// start-up costs more than it saves).
const PARALLEL_FROM: usize = 8;
/// Threads one review may use.
const MAX_REVIEW_THREADS: usize = 4;

/// One constraint's part of a review: already decided (a match error), or to evaluate.
enum Step<'a> {
    Done(Vec<Violation>),
    Evaluate(&'a super::constraints::Constraint, usize),
}

impl Step<'_> {
    fn into_done(self) -> Vec<Violation> {
        match self {
            Step::Done(v) => v,
            Step::Evaluate(..) => Vec::new(),
        }
    }
}

/// The request as a regorus value. Parsed from JSON text, regorus keeps it in its compact
/// (frozen) form, which evaluates faster than one built node by node.
fn to_value(request: &Json) -> regorus::Value {
    serde_json::to_string(request)
        .ok()
        .and_then(|text| regorus::Value::from_json_str(&text).ok())
        .unwrap_or_else(|| regorus::Value::from(request.clone()))
}

/// `msg` and `details` of one element of a `violation` set.
fn violation_fields(v: &regorus::Value) -> (String, Json) {
    let get = |k: &str| match v {
        regorus::Value::Object(o) => o.get(&regorus::Value::from(k)).cloned(),
        _ => None,
    };
    let msg = match get("msg") {
        Some(regorus::Value::String(s)) => s.to_string(),
        Some(other) => other.to_json_str().unwrap_or_default(),
        None => v.to_json_str().unwrap_or_default(),
    };
    let details = get("details")
        .and_then(|d| serde_json::to_value(d).ok())
        .unwrap_or(Json::Object(Default::default()));
    (msg, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::inventory::Inventory;
    use crate::admission::manifests::parse;

    fn policies(yaml: &str) -> Policies {
        let docs = parse(yaml, "p.yaml").unwrap_or_default();
        Policies::from_documents(&docs, Inventory::new())
    }

    fn template(kind: &str, rego: &str) -> String {
        let rego: String = rego.lines().map(|l| format!("        {l}\n")).collect();
        format!(
            "---\napiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {{name: {}}}\nspec:\n  crd: {{spec: {{names: {{kind: {kind}}}}}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n{rego}",
            kind.to_lowercase()
        )
    }

    fn constraint(kind: &str, name: &str) -> String {
        format!(
            "---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: {kind}\nmetadata: {{name: {name}}}\n"
        )
    }

    fn pod_request() -> Json {
        request_for_object(
            &serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}}),
        )
    }

    #[test]
    fn many_constraints_evaluated_in_parallel_keep_their_order() {
        // Enough matched constraints to take the multi-threaded path, each with its own message.
        let rego =
            "package m\nviolation[{\"msg\": msg}] { msg := sprintf(\"%v\", [input.parameters.n]) }";
        let mut yaml = template("ManyKind", rego);
        for n in 0..(PARALLEL_FROM * 3 + 1) {
            yaml.push_str(&format!(
                "---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: ManyKind\nmetadata: {{name: c{n:03}}}\nspec: {{parameters: {{n: {n}}}}}\n"
            ));
        }
        let p = policies(&yaml);
        assert_eq!(p.constraints.len(), PARALLEL_FROM * 3 + 1);
        let got: Vec<(String, String)> = p
            .review(&pod_request())
            .into_iter()
            .map(|v| (v.constraint, v.msg))
            .collect();
        let want: Vec<(String, String)> = (0..(PARALLEL_FROM * 3 + 1))
            .map(|n| (format!("c{n:03}"), n.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn results_are_ordered_by_kind_then_name() {
        let always = "package x\nviolation[{\"msg\": \"m\"}] { true }";
        let p = policies(&format!(
            "{}{}{}{}{}",
            template("BKind", &always.replace("package x", "package b")),
            template("AKind", &always.replace("package x", "package a")),
            constraint("BKind", "a-first"),
            constraint("AKind", "z-last"),
            constraint("AKind", "m-middle"),
        ));
        assert_eq!(p.problems, Vec::new());
        let got: Vec<String> = p
            .review(&pod_request())
            .iter()
            .map(|v| format!("{}/{}", v.kind, v.constraint))
            .collect();
        assert_eq!(got, vec!["AKind/m-middle", "AKind/z-last", "BKind/a-first"]);
    }

    #[test]
    fn an_evaluation_error_is_a_violation_naming_it() {
        // Two values for one complete rule: an evaluation error, not a builtin error.
        let rego = "package conflict\nx = 1 { true }\nx = 2 { true }\nviolation[{\"msg\": \"never\"}] { x == 3 }";
        let p = policies(&format!(
            "{}{}",
            template("Conflict", rego),
            constraint("Conflict", "c")
        ));
        let v = p.review(&pod_request());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].msg.starts_with("template Conflict evaluation error: "),
            "{}",
            v[0].msg
        );
        assert_eq!(v[0].action, EnforcementAction::Deny);
    }

    #[test]
    fn a_runaway_template_times_out_as_a_violation() {
        let rego = "package slow\nviolation[{\"msg\": \"done\"}] { n := numbers.range(1, 5000); count([1 | n[_]; n[_]]) < 0 }";
        let mut p = policies(&format!(
            "{}{}",
            template("Slow", rego),
            constraint("Slow", "s")
        ));
        p.set_eval_timeout(std::time::Duration::from_millis(20));
        let v = p.review(&pod_request());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].msg.contains("evaluation error") && v[0].msg.contains("time limit"),
            "{}",
            v[0].msg
        );
    }

    #[test]
    fn details_are_carried_with_the_message() {
        let rego = "package d\nviolation[{\"msg\": \"m\", \"details\": {\"name\": input.review.object.metadata.name}}] { true }";
        let p = policies(&format!(
            "{}{}",
            template("Det", rego),
            constraint("Det", "d")
        ));
        let v = p.review(&pod_request());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].details, serde_json::json!({"name": "p"}));
    }
}
