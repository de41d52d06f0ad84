//! The `sluice check` half of the OPA differential suite: every module of
//! fixtures/opa-diff/check is checked by the real `sluice check` and compared with what OPA 1.20's
//! compiler said of it (fixtures/opa-diff/check-expected.json, made by scripts/opa-diff): the
//! exit code, and for each error its line, OPA's code (`rego_type_error`, …) and OPA's message
//! (the first line of it; sluice may add a detail after it). OPA prints `file:line: code: msg`,
//! sluice `file:line:col: code: msg`.
//!
//! A case in fixtures/opa-diff/check-divergences.json must still differ, every other must agree.

mod support;

use std::collections::BTreeMap;

use serde_json::Value as Json;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/opa-diff");

/// One compile error: line, code, message.
type Error = (u64, String, String);

fn opa_errors(doc: &Json) -> Vec<Error> {
    doc.as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["row"].as_u64().unwrap_or(0),
                        e["code"].as_str().unwrap_or("").to_string(),
                        e["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `FILE:LINE:COL: CODE: MESSAGE` lines of `sluice check` for the one file.
fn sluice_errors(file: &str, stderr: &str) -> Result<Vec<Error>, String> {
    stderr
        .lines()
        .map(|l| {
            let rest = l
                .strip_prefix(file)
                .and_then(|r| r.strip_prefix(':'))
                .ok_or_else(|| format!("not {file}:…: {l}"))?;
            let mut parts = rest.splitn(4, ": ");
            let position = parts.next().unwrap_or("");
            let line = position
                .split(':')
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("no line: {l}"))?;
            let code = parts.next().unwrap_or("").to_string();
            let message = parts.collect::<Vec<_>>().join(": ");
            Ok((line, code, message))
        })
        .collect()
}

fn agree(want: &[Error], got: &[Error]) -> bool {
    // Errors on one line come in no fixed order (OPA's own order varies between runs).
    let mut got = got.to_vec();
    got.sort();
    let mut want = want.to_vec();
    want.sort();
    want.len() == got.len()
        && want.iter().zip(&got).all(|((wl, wc, wm), (gl, gc, gm))| {
            wl == gl && wc == gc && (gm == wm || gm.starts_with(&format!("{wm} (")))
        })
}

#[test]
fn sluice_check_agrees_with_opa_check_on_the_corpus() {
    let expected: BTreeMap<String, Json> = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/check-expected.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("fixtures/opa-diff/check-expected.json: {e}"));
    let divergences: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/check-divergences.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("fixtures/opa-diff/check-divergences.json: {e}"));
    assert!(expected.len() >= 40, "only {} check cases", expected.len());
    let scratch = support::TempDir::new("opa-check-diff");
    let mut agreeing = 0;
    let mut failures = Vec::new();
    for (name, doc) in &expected {
        let text = std::fs::read_to_string(format!("{ROOT}/check/{name}.rego"))
            .unwrap_or_else(|e| panic!("check/{name}.rego: {e}"));
        let dir = scratch.path().join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let file = dir.join("case.rego");
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let file = file.display().to_string();
        let out = support::sluice(&["check", &file]);
        let want = opa_errors(doc);
        let got = sluice_errors(&file, &out.stderr);
        let same = match &got {
            Ok(got) => agree(&want, got) && out.code == i32::from(!want.is_empty()),
            Err(_) => false,
        };
        assert!(
            !out.stderr.contains("panicked"),
            "{name}: sluice panicked: {}",
            out.stderr
        );
        match (same, divergences.get(name)) {
            (true, None) => agreeing += 1,
            (false, Some(_)) => {}
            (true, Some(_)) => failures.push(format!(
                "{name}: listed as a divergence but now agrees with OPA: drop it from check-divergences.json"
            )),
            (false, None) => failures.push(format!(
                "{name}: OPA {want:?}, sluice (exit {}) {got:?}",
                out.code
            )),
        }
    }
    println!(
        "OPA check differential: {agreeing}/{} cases agree with opa check 1.20 ({} known divergences)",
        expected.len(),
        divergences.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
