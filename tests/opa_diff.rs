//! The OPA differential suite: every case of fixtures/opa-diff is run through the real
//! `sluice eval --format json --strict-builtin-errors` and compared with what OPA 1.20 answered
//! (fixtures/opa-diff/expected.json, made by scripts/opa-diff; OPA is not needed here).
//!
//! The oracle runs OPA with builtin errors strict, so sluice runs strict too; the default
//! (non-strict) mode is covered in tests/opa_semantics.rs. A case listed in
//! fixtures/opa-diff/divergences.json must still differ (so the list cannot go stale); every
//! other case must agree.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/opa-diff");

struct Case {
    name: String,
    policy: String,
    /// The v0 text of the same policy, run with --v0-compatible against the same expectation.
    v0: Option<String>,
    query: String,
    input: Option<String>,
}

fn expr_cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(format!("{ROOT}/exprs"))
        .unwrap_or_else(|e| panic!("fixtures/opa-diff/exprs: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for f in files {
        let family = f.file_stem().map(|s| s.to_string_lossy().into_owned());
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, expr)) = line.split_once(" :: ") else {
                panic!("{}: not NAME :: EXPR: {line}", f.display());
            };
            cases.push(Case {
                name: format!("{}/{name}", family.clone().unwrap_or_default()),
                policy: format!("package t\n\nr := {expr}\n"),
                v0: None,
                query: "data.t.r".into(),
                input: Some(
                    std::fs::read_to_string(format!("{ROOT}/input.json")).unwrap_or_default(),
                ),
            });
        }
    }
    cases
}

fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("# {key}: ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

fn policy_cases() -> Vec<Case> {
    let dir = format!("{ROOT}/policies");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".rego") && !n.ends_with(".v0.rego"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let stem = n.trim_end_matches(".rego");
            let policy = std::fs::read_to_string(format!("{dir}/{n}")).unwrap_or_default();
            Case {
                name: format!("policies/{stem}"),
                v0: std::fs::read_to_string(format!("{dir}/{stem}.v0.rego")).ok(),
                query: header(&policy, "query").unwrap_or("data.t.r").to_string(),
                input: header(&policy, "input").map(str::to_string),
                policy,
            }
        })
        .collect()
}

/// What one engine answered: a value, undefined, or an error.
#[derive(Debug, Clone)]
enum Answer {
    Value(Json),
    Undefined,
    Error(String),
    /// A panic, or an error not on one line: never acceptable, whatever OPA says.
    Broken(String),
}

fn expected(doc: &Json) -> Answer {
    if let Some(v) = doc.get("value") {
        Answer::Value(v.clone())
    } else if doc.get("undefined").is_some() {
        Answer::Undefined
    } else {
        Answer::Error(
            doc.get("error")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string(),
        )
    }
}

/// A case's modules: `case.rego`, then one per `# module: NAME.rego` line (the same split as
/// scripts/opa-diff.py makes).
fn modules(text: &str) -> Vec<(String, String)> {
    let mut out = vec![("case.rego".to_string(), String::new())];
    for line in text.split_inclusive('\n') {
        match line.trim_end().strip_prefix("# module: ") {
            Some(name) if !name.contains(' ') => out.push((name.to_string(), String::new())),
            _ => {
                if let Some(last) = out.last_mut() {
                    last.1.push_str(line);
                }
            }
        }
    }
    out
}

fn run(dir: &Path, case: &Case, text: &str, v0: bool) -> Answer {
    let files: Vec<String> = modules(text)
        .into_iter()
        .map(|(name, module)| {
            let path = dir.join(&name);
            std::fs::write(&path, module).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            path.display().to_string()
        })
        .collect();
    let input = dir.join("input.json");
    let input_arg = input.display().to_string();
    let mut args = vec!["eval", "--format", "json", "--strict-builtin-errors"];
    for f in &files {
        args.extend(["-d", f.as_str()]);
    }
    if let Some(i) = &case.input {
        std::fs::write(&input, i).unwrap_or_else(|e| panic!("{input_arg}: {e}"));
        args.extend(["-i", &input_arg]);
    }
    if v0 {
        args.push("--v0-compatible");
    }
    args.push(&case.query);
    let out = support::sluice(&args);
    if out.stderr.contains("panicked") || (out.code != 0 && out.stderr.lines().count() != 1) {
        return Answer::Broken(out.stderr);
    }
    if out.code != 0 {
        return Answer::Error(out.stderr.trim().to_string());
    }
    let doc: Json = serde_json::from_str(&exact_big_integers(&out.stdout))
        .unwrap_or_else(|e| panic!("{}: output is not JSON ({e}): {}", case.name, out.stdout));
    match doc.pointer("/result/0/expressions/0/value") {
        Some(v) => Answer::Value(v.clone()),
        None => Answer::Undefined,
    }
}

/// JSON text with every integer longer than an f64 holds exactly turned into a string
/// (`"#int:…"`), so that moduli, serial numbers and curve points compare digit by digit.
fn exact_big_integers(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut chars = json.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_string = true;
            out.push(c);
            continue;
        }
        if c == '-' || c.is_ascii_digit() {
            let mut token = String::from(c);
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() || "+-.eE".contains(d) {
                    token.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            let digits = token.trim_start_matches('-');
            if digits.len() > 15 && digits.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str(&format!("\"#int:{token}\""));
            } else {
                out.push_str(&token);
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// JSON equality where numbers compare by value (OPA prints 1000.0 where sluice prints 1000).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || ((x - y) / x.abs().max(1e-300)).abs() < 1e-12,
            _ => x == y,
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn describe(a: &Answer) -> String {
    match a {
        Answer::Value(v) => format!("value {v}"),
        Answer::Undefined => "undefined".into(),
        Answer::Error(e) | Answer::Broken(e) => format!("error {e}"),
    }
}

fn agree(want: &Answer, got: &Answer) -> bool {
    match (want, got) {
        (Answer::Value(a), Answer::Value(b)) => same(a, b),
        (Answer::Undefined, Answer::Undefined) | (Answer::Error(_), Answer::Error(_)) => true,
        _ => false,
    }
}

#[test]
fn sluice_agrees_with_opa_on_the_differential_corpus() {
    let expected_doc: BTreeMap<String, Json> = serde_json::from_str(&exact_big_integers(
        &std::fs::read_to_string(format!("{ROOT}/expected.json")).unwrap_or_default(),
    ))
    .unwrap_or_else(|e| panic!("fixtures/opa-diff/expected.json: {e}"));
    let divergences: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/divergences.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("fixtures/opa-diff/divergences.json: {e}"));

    let cases: Vec<Case> = expr_cases().into_iter().chain(policy_cases()).collect();
    assert!(cases.len() >= 300, "only {} cases", cases.len());
    let scratch = support::TempDir::new("opa-diff");
    // Two workers: the machine has two cores, and each run is a process start.
    let answers: Vec<(String, String, Option<Answer>, Answer)> = std::thread::scope(|scope| {
        let workers: Vec<_> = cases
            .chunks(cases.len().div_ceil(2))
            .enumerate()
            .map(|(i, chunk)| {
                let dir = scratch.join(&i.to_string());
                let expected_doc = &expected_doc;
                scope.spawn(move || {
                    let _ = std::fs::create_dir_all(&dir);
                    let mut out = Vec::new();
                    for case in chunk {
                        let want = expected_doc.get(&case.name).map(expected);
                        out.push((
                            case.name.clone(),
                            case.name.clone(),
                            want.clone(),
                            run(&dir, case, &case.policy, false),
                        ));
                        if let Some(v0) = &case.v0 {
                            out.push((
                                format!("{}@v0", case.name),
                                case.name.clone(),
                                want,
                                run(&dir, case, v0, true),
                            ));
                        }
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            // A worker that panicked must fail the test, not drop its half of the corpus.
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });

    let mut problems = Vec::new();
    let mut agreed = 0;
    for (name, case, want, got) in &answers {
        let Some(want) = want else {
            problems.push(format!("{case}: no OPA result; run scripts/opa-diff"));
            continue;
        };
        let ok = agree(want, got);
        agreed += usize::from(ok);
        if let Answer::Broken(stderr) = got {
            problems.push(format!("{name}: sluice broke: {stderr}"));
            continue;
        }
        match (ok, divergences.contains_key(name)) {
            (true, true) => problems.push(format!(
                "{name}: now agrees with OPA; remove it from divergences.json"
            )),
            (false, false) => problems.push(format!(
                "{name}: OPA {}, sluice {}",
                describe(want),
                describe(got)
            )),
            _ => {}
        }
    }
    println!(
        "OPA differential: {agreed}/{} runs agree with OPA 1.20 ({} cases, {} known divergences)",
        answers.len(),
        cases.len(),
        divergences.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
