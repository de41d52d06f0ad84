//! Coverage of a test run in the shape of OPA's coverage report (`opa test --coverage`):
//! per file the covered and not-covered line ranges, line counts and a percentage, plus the
//! totals. Lines come from regorus' expression coverage; a line counts as covered when any
//! expression on it was evaluated (as in OPA, a line is never both).
//!
//! A module no test touched at all has no coverage table in regorus; its not-covered lines are
//! then its non-blank lines other than comments, `package`, `import` and lone braces.
//!
//! Not here: running the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Write};

use super::loader::Module;

/// One file of the report.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FileReport {
    pub covered: Vec<(u32, u32)>,
    pub not_covered: Vec<(u32, u32)>,
    pub covered_lines: u32,
    pub not_covered_lines: u32,
    pub coverage: f64,
}

/// The whole report (files keyed by path, sorted as Go sorts map keys).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CoverageReport {
    pub files: BTreeMap<String, FileReport>,
    pub covered_lines: u32,
    pub not_covered_lines: u32,
    pub coverage: f64,
}

/// Builds the OPA-shaped report from regorus' report and the loaded modules.
pub fn opa_report(
    report: Option<&regorus::coverage::Report>,
    modules: &[Module],
) -> CoverageReport {
    let mut files: BTreeMap<String, (BTreeSet<u32>, BTreeSet<u32>)> = BTreeMap::new();
    if let Some(r) = report {
        for f in &r.files {
            let covered: BTreeSet<u32> = f.covered.iter().copied().filter(|l| *l > 0).collect();
            let not_covered = f
                .not_covered
                .iter()
                .copied()
                .filter(|l| *l > 0 && !covered.contains(l))
                .collect();
            files.insert(f.path.clone(), (covered, not_covered));
        }
    }
    for m in modules {
        files
            .entry(m.path.clone())
            .or_insert_with(|| (BTreeSet::new(), code_lines(&m.text)));
    }

    let mut out = CoverageReport::default();
    for (path, (covered, not_covered)) in files {
        let fr = FileReport {
            covered: ranges(&covered),
            not_covered: ranges(&not_covered),
            covered_lines: covered.len() as u32,
            not_covered_lines: not_covered.len() as u32,
            coverage: percent(covered.len(), not_covered.len()),
        };
        out.covered_lines += fr.covered_lines;
        out.not_covered_lines += fr.not_covered_lines;
        out.files.insert(path, fr);
    }
    out.coverage = percent(out.covered_lines as usize, out.not_covered_lines as usize);
    out
}

fn percent(covered: usize, not_covered: usize) -> f64 {
    let total = covered + not_covered;
    if total == 0 {
        0.0
    } else {
        100.0 * covered as f64 / total as f64
    }
}

fn code_lines(text: &str) -> BTreeSet<u32> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            !(t.is_empty()
                || t.starts_with('#')
                || t.starts_with("package ")
                || t.starts_with("import ")
                || t.chars()
                    .all(|c| matches!(c, '{' | '}' | '[' | ']' | '(' | ')')))
        })
        .map(|(i, _)| i as u32 + 1)
        .collect()
}

fn ranges(lines: &BTreeSet<u32>) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &l in lines {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == l => *end = l,
            _ => out.push((l, l)),
        }
    }
    out
}

/// OPA's message when the total coverage is below the threshold (verbose: with the lines).
pub fn threshold_error(report: &CoverageReport, threshold: f64, verbose: bool) -> String {
    let mut s = format!(
        "Code coverage threshold not met: got {:.2} instead of {:.2}",
        report.coverage, threshold
    );
    if verbose {
        s.push_str("\nLines not covered:");
        for (file, fr) in &report.files {
            for (a, b) in &fr.not_covered {
                if a == b {
                    let _ = write!(s, "\n\t{file}:{a}");
                } else {
                    let _ = write!(s, "\n\t{file}:{a}-{b}");
                }
            }
        }
    }
    s
}

/// Writes the report as OPA does (Go's JSON encoder, two-space indent, fields in OPA's order,
/// empty fields left out, numbers as Go prints them).
pub fn write_json(out: &mut impl Write, r: &CoverageReport) -> io::Result<()> {
    let mut s = String::from("{\n  \"files\": {");
    for (i, (path, fr)) in r.files.iter().enumerate() {
        s.push_str(if i == 0 { "\n" } else { ",\n" });
        let _ = write!(s, "    {}: {{", json_string(path));
        let mut fields = Vec::new();
        if !fr.covered.is_empty() {
            fields.push(format!("\"covered\": {}", range_list(&fr.covered)));
        }
        if !fr.not_covered.is_empty() {
            fields.push(format!("\"not_covered\": {}", range_list(&fr.not_covered)));
        }
        if fr.covered_lines > 0 {
            fields.push(format!("\"covered_lines\": {}", fr.covered_lines));
        }
        if fr.not_covered_lines > 0 {
            fields.push(format!("\"not_covered_lines\": {}", fr.not_covered_lines));
        }
        if fr.coverage != 0.0 {
            fields.push(format!("\"coverage\": {}", go_float(fr.coverage)));
        }
        if fields.is_empty() {
            s.push('}');
        } else {
            for (j, f) in fields.iter().enumerate() {
                s.push_str(if j == 0 { "\n      " } else { ",\n      " });
                s.push_str(f);
            }
            s.push_str("\n    }");
        }
    }
    if !r.files.is_empty() {
        s.push_str("\n  ");
    }
    let _ = write!(
        s,
        "}},\n  \"covered_lines\": {},\n  \"not_covered_lines\": {},\n  \"coverage\": {}\n}}",
        r.covered_lines,
        r.not_covered_lines,
        go_float(r.coverage)
    );
    writeln!(out, "{s}")
}

fn range_list(ranges: &[(u32, u32)]) -> String {
    let mut s = String::from("[");
    for (i, (a, b)) in ranges.iter().enumerate() {
        s.push_str(if i == 0 { "\n" } else { ",\n" });
        let _ = write!(
            s,
            "        {{\n          \"start\": {{\n            \"row\": {a}\n          }},\n          \"end\": {{\n            \"row\": {b}\n          }}\n        }}"
        );
    }
    s.push_str("\n      ]");
    s
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Go's shortest float formatting (`100`, `66.66666666666667`); Rust's `Display` agrees.
fn go_float(f: f64) -> String {
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_consecutive_lines() {
        let lines: BTreeSet<u32> = [3, 4, 5, 9, 11, 12].into_iter().collect();
        assert_eq!(ranges(&lines), vec![(3, 5), (9, 9), (11, 12)]);
    }

    #[test]
    fn report_json_has_opa_field_order_and_numbers() {
        let mut r = CoverageReport::default();
        r.files.insert(
            "a.rego".into(),
            FileReport {
                covered: vec![(3, 4)],
                not_covered: vec![(6, 6)],
                covered_lines: 2,
                not_covered_lines: 1,
                coverage: 200.0 / 3.0,
            },
        );
        r.covered_lines = 2;
        r.not_covered_lines = 1;
        r.coverage = 200.0 / 3.0;
        let mut out = Vec::new();
        assert!(write_json(&mut out, &r).is_ok());
        let text = String::from_utf8(out).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["files"]["a.rego"]["covered"][0]["end"]["row"], 4);
        assert_eq!(v["coverage"], 66.66666666666667);
        let order: Vec<usize> = [
            "\"covered\"",
            "\"not_covered\"",
            "\"covered_lines\"",
            "\"coverage\"",
        ]
        .iter()
        .filter_map(|k| text.find(k))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
}
