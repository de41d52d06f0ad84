//! `sluice verify`: Gatekeeper test suites (`kind: Suite`, `test.gatekeeper.sh/v1alpha1`), run
//! as `gator verify` runs them. Each test pairs a template with a constraint; each case reviews
//! one object (a plain object, or an AdmissionReview) with optional inventory and checks the
//! assertions (`violations: yes | no | N`, with an optional `message` regex that counts only the
//! violations it matches). Paths inside a suite are relative to the suite file.
//!
//! Not here: printing (verify_report.rs).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value as Json;

use super::error::AdmissionError;
use super::inventory::Inventory;
use super::manifests::{self, Document};
use super::policies::Policies;
use super::review::{self, Violation};
use super::templates;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suite {
    #[serde(default)]
    pub tests: Vec<Test>,
    #[serde(default)]
    pub skip: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Test {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub constraint: String,
    #[serde(default)]
    pub cases: Vec<Case>,
    #[serde(default)]
    pub skip: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub inventory: Vec<String>,
    #[serde(default)]
    pub assertions: Vec<Assertion>,
    #[serde(default)]
    pub skip: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Assertion {
    /// `yes` (the default), `no`, or a count.
    #[serde(default)]
    pub violations: Option<Json>,
    /// A regex; only violations whose message it matches are counted.
    #[serde(default)]
    pub message: Option<String>,
}

/// Selects tests and cases like gator's `--run`: `REGEX` matches a test or a case name;
/// `TEST_REGEX//CASE_REGEX` matches cases by both.
pub enum Filter {
    All,
    Or(regex::Regex),
    And(regex::Regex, regex::Regex),
}

impl Filter {
    pub fn new(run: Option<&str>) -> Result<Self, AdmissionError> {
        let compile = |s: &str| {
            regex::Regex::new(s).map_err(|e| {
                AdmissionError::Suite(format!(
                    "--run: invalid filter: {}",
                    manifests_one_line(&e.to_string())
                ))
            })
        };
        match run {
            None | Some("") => Ok(Self::All),
            Some(r) => {
                let parts: Vec<&str> = r.split("//").collect();
                match parts.as_slice() {
                    [one] => Ok(Self::Or(compile(one)?)),
                    [t, c] => Ok(Self::And(compile(t)?, compile(c)?)),
                    _ => Err(AdmissionError::Suite(
                        "--run: invalid filter: a filter may include at most one \"//\"".into(),
                    )),
                }
            }
        }
    }

    fn matches_test(&self, t: &Test) -> bool {
        match self {
            Self::All => true,
            Self::Or(re) => re.is_match(&t.name) || t.cases.iter().any(|c| re.is_match(&c.name)),
            Self::And(tr, _) => tr.is_match(&t.name),
        }
    }

    fn matches_case(&self, test: &str, case: &str) -> bool {
        match self {
            Self::All => true,
            Self::Or(re) => re.is_match(case) || re.is_match(test),
            Self::And(tr, cr) => cr.is_match(case) && tr.is_match(test),
        }
    }
}

fn manifests_one_line(s: &str) -> String {
    crate::policy::loader::one_line(s)
}

#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub skipped: bool,
    pub error: Option<String>,
    pub seconds: f64,
}

#[derive(Clone, Debug)]
pub struct TestResult {
    pub name: String,
    pub skipped: bool,
    pub error: Option<String>,
    pub seconds: f64,
    pub cases: Vec<CaseResult>,
}

impl TestResult {
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.cases.iter().any(|c| c.error.is_some())
    }
}

#[derive(Clone, Debug)]
pub struct SuiteResult {
    /// The suite file as reached from the path the user gave.
    pub path: String,
    pub error: Option<String>,
    pub seconds: f64,
    pub tests: Vec<TestResult>,
}

impl SuiteResult {
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.tests.iter().any(TestResult::failed)
    }
}

/// Every suite file under `paths`, in path order. A trailing `/...` (Go style) is accepted.
pub fn find_suites(paths: &[PathBuf]) -> Result<Vec<PathBuf>, AdmissionError> {
    let mut out = Vec::new();
    for p in paths {
        let s = p.to_string_lossy();
        let p = match s.strip_suffix("/...") {
            Some("") => PathBuf::from("."),
            Some(base) => PathBuf::from(base),
            None => p.clone(),
        };
        let explicit_file = p.is_file();
        for f in manifests::files_under(&p)? {
            if f.extension().and_then(|e| e.to_str()) == Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&f).map_err(|e| {
                AdmissionError::Suite(format!("{}: {}", f.display(), manifests::reason(&e)))
            })?;
            // Cheap pre-check before parsing every manifest of a large tree.
            if !text.contains("Suite") {
                if explicit_file {
                    return Err(AdmissionError::Suite(format!(
                        "{}: not a Suite (kind: Suite, apiVersion: test.gatekeeper.sh/v1alpha1)",
                        f.display()
                    )));
                }
                continue;
            }
            let is_suite = manifests::parse(&text, &f.display().to_string())
                .map(|docs| docs.first().is_some_and(is_suite_doc))
                .unwrap_or(false);
            if is_suite {
                out.push(f);
            } else if explicit_file {
                return Err(AdmissionError::Suite(format!(
                    "{}: not a Suite (kind: Suite, apiVersion: test.gatekeeper.sh/v1alpha1)",
                    f.display()
                )));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn is_suite_doc(d: &Document) -> bool {
    d.group() == "test.gatekeeper.sh" && d.kind() == "Suite"
}

/// Runs one suite file.
pub fn run_suite(path: &Path, filter: &Filter) -> SuiteResult {
    let started = Instant::now();
    let shown = path.display().to_string();
    let mut result = SuiteResult {
        path: shown.clone(),
        error: None,
        seconds: 0.0,
        tests: Vec::new(),
    };
    let suite = manifests::read_file(path).and_then(|docs| {
        let doc = docs
            .into_iter()
            .next()
            .ok_or_else(|| AdmissionError::Suite(format!("{shown}: empty file")))?;
        serde_path_to_error::deserialize::<_, Suite>(doc.body).map_err(|e| {
            let path = e.path().to_string();
            AdmissionError::Suite(format!("invalid suite: {path}: {}", e.into_inner()))
        })
    });
    match suite {
        Err(e) => result.error = Some(e.to_string()),
        Ok(suite) if suite.skip => {}
        Ok(suite) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            for t in &suite.tests {
                if t.skip || !filter.matches_test(t) {
                    result.tests.push(TestResult {
                        name: t.name.clone(),
                        skipped: true,
                        error: None,
                        seconds: 0.0,
                        cases: Vec::new(),
                    });
                    continue;
                }
                result.tests.push(run_test(dir, t, filter));
            }
        }
    }
    result.seconds = started.elapsed().as_secs_f64();
    result
}

/// The first document of a file referenced by a suite.
fn first_doc(dir: &Path, rel: &str, what: &str) -> Result<Document, String> {
    if rel.is_empty() {
        return Err(format!("invalid suite: missing {what}"));
    }
    let path = dir.join(rel);
    let mut docs = manifests::read_file(&path).map_err(|e| e.to_string())?;
    if docs.is_empty() {
        return Err(format!("{}: defines no YAML objects", path.display()));
    }
    Ok(docs.remove(0))
}

fn run_test(dir: &Path, t: &Test, filter: &Filter) -> TestResult {
    let started = Instant::now();
    let mut out = TestResult {
        name: t.name.clone(),
        skipped: false,
        error: None,
        seconds: 0.0,
        cases: Vec::new(),
    };
    let prepared = first_doc(dir, &t.template, "template").and_then(|doc| {
        if !templates::is_template(&doc) {
            return Err(format!("{}: not a ConstraintTemplate", doc.origin));
        }
        let template = templates::compile(&doc).map_err(|e| format!("adding template: {e}"))?;
        let constraint = first_doc(dir, &t.constraint, "constraint")?;
        // Compile once to report a bad constraint at the test, like gator.
        let probe = Policies::assemble(
            vec![template.clone()],
            Vec::new(),
            &[&constraint],
            Inventory::new(),
        );
        if let Some(p) = probe.problems.first() {
            return Err(format!("adding constraint: {p}"));
        }
        Ok((template, constraint))
    });
    match prepared {
        Err(e) => out.error = Some(e),
        Ok((template, constraint)) => {
            for c in &t.cases {
                if c.skip || !filter.matches_case(&t.name, &c.name) {
                    out.cases.push(CaseResult {
                        name: c.name.clone(),
                        skipped: true,
                        error: None,
                        seconds: 0.0,
                    });
                    continue;
                }
                let case_started = Instant::now();
                let error = run_case(dir, &template, &constraint, c).err();
                out.cases.push(CaseResult {
                    name: c.name.clone(),
                    skipped: false,
                    error,
                    seconds: case_started.elapsed().as_secs_f64(),
                });
            }
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    out
}

fn run_case(
    dir: &Path,
    template: &templates::Template,
    constraint: &Document,
    c: &Case,
) -> Result<(), String> {
    if c.object.is_empty() {
        return Err("invalid test case: must define object".into());
    }
    if c.assertions.is_empty() {
        return Err("invalid test case: assertions must be non-empty".into());
    }
    let object_path = dir.join(&c.object);
    let docs = manifests::read_file(&object_path).map_err(|e| e.to_string())?;
    if docs.len() != 1 {
        return Err(format!(
            "object defines multiple objects: {:?} defines {} objects",
            object_path.display().to_string(),
            docs.len()
        ));
    }
    let mut inventory = Inventory::new();
    for rel in &c.inventory {
        let path = dir.join(rel);
        for doc in manifests::read_file(&path).map_err(|e| e.to_string())? {
            inventory
                .add(&doc)
                .map_err(|e| format!("adding inventory: {e}"))?;
        }
    }
    let object = &docs[0];
    let request = if object.group() == "admission.k8s.io" && object.kind() == "AdmissionReview" {
        let req = object
            .body
            .get("request")
            .filter(|r| !r.is_null())
            .cloned()
            .ok_or(
                "missing admission request: request did not actually pass in an AdmissionRequest",
            )?;
        review::prepare(req).map_err(|e| format!("invalid AdmissionReview: {e}"))?
    } else {
        review::request_for_object(&object.body)
    };
    let policies = Policies::assemble(vec![template.clone()], Vec::new(), &[constraint], inventory);
    let violations = policies.review(&request);
    for a in &c.assertions {
        check(a, &violations).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Checks one assertion, with gator's messages.
pub fn check(a: &Assertion, violations: &[Violation]) -> Result<(), AdmissionError> {
    const BAD: &str = "invalid test case: assertion.violation, if set, must be a nonnegative integer, \"yes\", or \"no\"";
    let re = match &a.message {
        Some(m) => Some(regex::Regex::new(m).map_err(|e| {
            AdmissionError::Suite(format!(
                "invalid regex: {}",
                manifests_one_line(&e.to_string())
            ))
        })?),
        None => None,
    };
    let matching = violations
        .iter()
        .filter(|v| re.as_ref().is_none_or(|re| re.is_match(&v.msg)))
        .count();
    let messages = AdmissionError::Suite(format!(
        "[{}]",
        violations
            .iter()
            .map(|v| v.msg.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let containing = a
        .message
        .as_ref()
        .map(|m| format!(" containing {m:?}"))
        .unwrap_or_default();
    let fail = |want: String| {
        Err(AdmissionError::Suite(format!(
            "unexpected number of violations: got {matching} violations{containing} but want {want}: got messages {messages}"
        )))
    };
    match a.violations.as_ref().unwrap_or(&Json::from("yes")) {
        Json::String(s) if s == "yes" => {
            if matching == 0 {
                return fail("at least 1".into());
            }
        }
        Json::String(s) if s == "no" => {
            if matching > 0 {
                return fail("none".into());
            }
        }
        Json::Number(n) => match n.as_u64() {
            Some(want) if want as usize == matching => {}
            Some(want) => return fail(format!("exactly {want}")),
            None => return Err(AdmissionError::Suite(BAD.into())),
        },
        _ => return Err(AdmissionError::Suite(BAD.into())),
    }
    Ok(())
}
