//! Printing `sluice verify` results: the `gator verify` text format (`ok`/`FAIL` per suite,
//! `--- FAIL:` per failed test and case, `PASS`/`FAIL` at the end; `-v` adds `=== RUN` and
//! `--- PASS:` lines) or JSON listing every case.

use std::fmt::Write as _;

use serde_json::json;

use super::suite::SuiteResult;

fn secs(s: f64) -> String {
    format!("{s:.3}s")
}

/// The text report, exactly as gator's Go-test style printer lays it out.
pub fn text(results: &[SuiteResult], verbose: bool) -> String {
    let mut out = String::new();
    for s in results {
        for t in &s.tests {
            if verbose {
                if t.skipped {
                    let _ = writeln!(out, "=== SKIP  {}", t.name);
                    continue;
                }
                let _ = writeln!(out, "=== RUN   {}", t.name);
            }
            for c in &t.cases {
                if verbose {
                    if c.skipped {
                        let _ = writeln!(out, "    === SKIP  {}", c.name);
                        continue;
                    }
                    let _ = writeln!(out, "    === RUN   {}", c.name);
                }
                if let Some(e) = &c.error {
                    let _ = writeln!(
                        out,
                        "    --- FAIL: {}\t({})\n        {e}",
                        c.name,
                        secs(c.seconds)
                    );
                } else if verbose {
                    let _ = writeln!(out, "    --- PASS: {}\t({})", c.name, secs(c.seconds));
                }
            }
            if t.failed() {
                let _ = writeln!(out, "--- FAIL: {}\t({})", t.name, secs(t.seconds));
                if let Some(e) = &t.error {
                    let _ = writeln!(out, "  {e}");
                }
            } else if verbose {
                let _ = writeln!(out, "--- PASS: {}\t({})", t.name, secs(t.seconds));
            }
        }
        if s.failed() {
            let _ = writeln!(out, "FAIL\t{}\t{}", s.path, secs(s.seconds));
            if let Some(e) = &s.error {
                let _ = writeln!(out, "  {e}");
            }
        } else {
            let _ = writeln!(out, "ok\t{}\t{}", s.path, secs(s.seconds));
        }
    }
    out.push_str(if results.iter().any(SuiteResult::failed) {
        "FAIL\n"
    } else {
        "PASS\n"
    });
    out
}

/// Every case as `{suite, test, case, passed, reason?, skipped?}`; a suite or test that failed
/// before its cases ran is one entry with the error as reason.
pub fn json(results: &[SuiteResult]) -> serde_json::Value {
    let mut cases = Vec::new();
    for s in results {
        if let Some(e) = &s.error {
            cases.push(
                json!({"suite": s.path, "test": "", "case": "", "passed": false, "reason": e}),
            );
        }
        for t in &s.tests {
            if t.skipped {
                cases.push(json!({"suite": s.path, "test": t.name, "case": "", "passed": true, "skipped": true}));
                continue;
            }
            if let Some(e) = &t.error {
                cases.push(json!({"suite": s.path, "test": t.name, "case": "", "passed": false, "reason": e}));
                continue;
            }
            for c in &t.cases {
                let mut entry = json!({"suite": s.path, "test": t.name, "case": c.name, "passed": c.error.is_none()});
                if let Some(e) = &c.error {
                    entry["reason"] = json!(e);
                }
                if c.skipped {
                    entry["skipped"] = json!(true);
                }
                cases.push(entry);
            }
        }
    }
    json!({
        "passed": !results.iter().any(SuiteResult::failed),
        "cases": cases,
    })
}
