//! Running Rego tests as `opa test` does: discovery of `test_*` rules (and `todo_test_*` as
//! skipped), one result per rule definition, a time limit per test, `print()` output captured
//! per test, and optional coverage.
//!
//! Not here: the command line (`cmd/test.rs`), printing results ([`super::report`]) or shaping
//! the coverage report ([`super::coverage`]). The runner returns results; it prints nothing.

use std::time::{Duration, Instant};

use regex::Regex;
use regorus::Engine;
use regorus::utils::limits::ExecutionTimerConfig;

use super::loader::{LoadError, PolicySet, from_anyhow};
use super::rules::{RuleInfo, declared_rules};

/// Prefix of test rules.
pub const TEST_PREFIX: &str = "test_";
/// Prefix of tests that are reported as skipped without running.
pub const SKIP_PREFIX: &str = "todo_test_";

/// One test: one definition of a `test_*` (or `todo_test_*`) rule.
#[derive(Clone, Debug)]
pub struct TestCase {
    /// `data.a.b`
    pub package: String,
    /// As shown: `test_x`, or `test_x#01` for the second definition of `test_x`.
    pub name: String,
    /// The rule path evaluated (differs from `package.name` for renamed duplicates).
    pub eval_path: String,
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub skip: bool,
}

impl TestCase {
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.package, self.name)
    }
}

/// Why a test did not pass.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Pass,
    /// The rule was `false`, undefined or not a boolean; the text says which.
    Fail(String),
    Skip,
    Error(LoadError),
}

#[derive(Clone, Debug)]
pub struct TestResult {
    pub case: TestCase,
    pub outcome: Outcome,
    pub duration: Duration,
    /// What the test printed with `print()`, one entry per call.
    pub output: Vec<String>,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }
}

/// Everything a run produced.
pub struct Run {
    pub results: Vec<TestResult>,
    pub coverage: Option<regorus::coverage::Report>,
    /// Modules as loaded (for coverage of files no test touched).
    pub modules: Vec<super::loader::Module>,
}

/// Options of one run.
pub struct RunOptions<'a> {
    pub filter: Option<&'a Regex>,
    pub timeout: Duration,
    pub coverage: bool,
}

/// Compiles `set`, discovers its tests and runs them in file order, then rule order.
pub fn run_tests(set: &PolicySet, opts: &RunOptions<'_>) -> Result<Run, LoadError> {
    let mut engine = set.engine()?;
    let rules = declared_rules(&mut engine);
    let mut cases = test_cases(&rules);

    // A name defined more than once is one rule to the engine; to run each definition on its
    // own, the later definitions are renamed in the source (same line, same length class of
    // change) and the set compiled again.
    let renames: Vec<&TestCase> = cases
        .iter()
        .filter(|c| c.eval_path != c.full_name())
        .collect();
    let mut modules = set.modules.clone();
    if !renames.is_empty() {
        let mut renamed = set.clone();
        for case in &renames {
            let Some(module) = renamed.modules.iter_mut().find(|m| m.path == case.file) else {
                continue;
            };
            let old = case.name.split('#').next().unwrap_or(&case.name);
            let old_last = old.rsplit('.').next().unwrap_or(old);
            let new_last = case.eval_path.rsplit('.').next().unwrap_or(old_last);
            if let Some(text) =
                rename_at(&module.text, case.line, case.col, old, old_last, new_last)
            {
                module.text = text;
            }
        }
        engine = renamed.engine()?;
        modules = renamed.modules;
        // Keep the user's text for coverage (only identifiers on head lines changed).
        for (m, orig) in modules.iter_mut().zip(&set.modules) {
            m.text.clone_from(&orig.text);
        }
    }

    cases.sort_by(|a, b| a.file.cmp(&b.file));
    if let Some(re) = opts.filter {
        cases.retain(|c| re.is_match(&c.full_name()));
    }

    engine.set_gather_prints(true);
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: opts.timeout,
        check_interval: std::num::NonZeroU32::new(64).unwrap_or(std::num::NonZeroU32::MIN),
    });
    if opts.coverage {
        engine.set_enable_coverage(true);
    }

    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        results.push(run_one(&mut engine, case, opts.timeout));
    }
    let coverage = if opts.coverage {
        engine.get_coverage_report().ok()
    } else {
        None
    };
    Ok(Run {
        results,
        coverage,
        modules,
    })
}

fn run_one(engine: &mut Engine, case: TestCase, timeout: Duration) -> TestResult {
    if case.skip {
        return TestResult {
            case,
            outcome: Outcome::Skip,
            duration: Duration::ZERO,
            output: Vec::new(),
        };
    }
    let started = Instant::now();
    let value = engine.eval_rule(case.eval_path.clone());
    let duration = started.elapsed();
    let output = engine
        .take_prints()
        .unwrap_or_default()
        .into_iter()
        .map(|p| strip_location(&p))
        .collect();
    let outcome = match value {
        Ok(regorus::Value::Bool(true)) => Outcome::Pass,
        Ok(regorus::Value::Bool(false)) => Outcome::Fail("false".into()),
        Ok(regorus::Value::Undefined) => Outcome::Fail("undefined".into()),
        Ok(other) => Outcome::Fail(format!(
            "{} (not a boolean)",
            other.to_json_str().unwrap_or_default()
        )),
        Err(e) => {
            let mut err = from_anyhow(&e, &case.file);
            if err.message.contains("exceeded time limit") || err.message.contains("time limit") {
                err.message = format!(
                    "test timed out after {} (set the limit with --timeout)",
                    go_duration(timeout)
                );
                if err.line == 0 {
                    err.file.clone_from(&case.file);
                    err.line = case.line;
                    err.col = case.col;
                }
            }
            Outcome::Error(err)
        }
    };
    TestResult {
        case,
        outcome,
        duration,
        output,
    }
}

/// A duration as Go's `time.Duration.String()` prints it: `0s`, `512ns`, `1.5µs`, `2.25ms`,
/// `3.000001s`, `1m5s`, `2h0m0s`.
pub fn go_duration(d: Duration) -> String {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", fraction(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", fraction(ns, 1_000_000));
    }
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let s_part = fraction((secs % 60) * 1_000_000_000 + frac, 1_000_000_000);
    if secs < 60 {
        return format!("{s_part}s");
    }
    let mins = secs / 60;
    if mins < 60 {
        return format!("{mins}m{s_part}s");
    }
    format!("{}h{}m{s_part}s", mins / 60, mins % 60)
}

/// `value / unit` with the remainder as decimals, trailing zeros dropped.
fn fraction(value: u64, unit: u64) -> String {
    let whole = value / unit;
    let rem = value % unit;
    if rem == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// regorus prefixes gathered prints with `file:line: `; OPA's test output shows the message.
fn strip_location(p: &str) -> String {
    let bytes = p.as_bytes();
    let mut i = 0;
    while let Some(off) = p[i..].find(':') {
        let start = i + off + 1;
        let digits = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let after = start + digits;
        if digits > 0 && p[after..].starts_with(": ") {
            return p[after + 2..].to_string();
        }
        i = start;
    }
    p.to_string()
}

/// The tests among `rules`, with OPA's numbering of duplicate names.
pub fn test_cases(rules: &[RuleInfo]) -> Vec<TestCase> {
    let mut seen: Vec<(String, u32)> = Vec::new();
    let mut out = Vec::new();
    for r in rules.iter().filter(|r| !r.function) {
        let segments: Vec<&str> = r.name.split('.').collect();
        let is_test = segments.iter().any(|s| s.starts_with(TEST_PREFIX));
        let is_skip = segments.iter().any(|s| s.starts_with(SKIP_PREFIX));
        if !is_test && !is_skip {
            continue;
        }
        let full = r.path();
        let (name, eval_path) = if is_skip {
            (r.name.clone(), full.clone())
        } else {
            match seen.iter_mut().find(|(n, _)| *n == full) {
                None => {
                    seen.push((full.clone(), 1));
                    (r.name.clone(), full.clone())
                }
                Some((_, count)) => {
                    let k = *count;
                    *count += 1;
                    (
                        format!("{}#{k:02}", r.name),
                        format!("{full}__sluice_definition_{k:02}"),
                    )
                }
            }
        };
        out.push(TestCase {
            package: r.package.clone(),
            name,
            eval_path,
            file: r.file.clone(),
            line: r.line,
            col: r.col,
            skip: is_skip,
        });
    }
    out
}

/// Replaces the last segment of the rule head `name` that starts at `line:col` with `new_last`.
fn rename_at(
    text: &str,
    line: u32,
    col: u32,
    name: &str,
    old_last: &str,
    new_last: &str,
) -> Option<String> {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1) as usize)
        .map(str::len)
        .sum();
    let line_text = text[line_start..].lines().next()?;
    let col_byte = line_text
        .char_indices()
        .nth(col.saturating_sub(1) as usize)
        .map(|(i, _)| i)?;
    let head_start = line_start + col_byte;
    if !text[head_start..].starts_with(name) {
        return None;
    }
    let last_start = head_start + name.len() - old_last.len();
    let mut out = String::with_capacity(text.len() + 32);
    out.push_str(&text[..last_start]);
    out.push_str(new_last);
    out.push_str(&text[last_start + old_last.len()..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, line: u32) -> RuleInfo {
        RuleInfo {
            package: "data.p".into(),
            name: name.into(),
            file: "p_test.rego".into(),
            line,
            col: 1,
            function: false,
        }
    }

    #[test]
    fn duplicate_test_names_are_numbered_like_opa() {
        let cases = test_cases(&[
            rule("test_x", 3),
            rule("allow", 4),
            rule("test_x", 5),
            rule("todo_test_y", 6),
            rule("test_x", 7),
        ]);
        let names: Vec<_> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["test_x", "test_x#01", "todo_test_y", "test_x#02"]);
        assert_eq!(cases[1].eval_path, "data.p.test_x__sluice_definition_01");
        assert!(cases[2].skip);
    }

    #[test]
    fn rename_touches_only_the_head_at_the_position() {
        let text = "package p\n\ntest_x if true\n\ntest_x if false\n";
        let out = rename_at(text, 5, 1, "test_x", "test_x", "test_x__d01");
        assert_eq!(
            out.as_deref(),
            Some("package p\n\ntest_x if true\n\ntest_x__d01 if false\n")
        );
        assert_eq!(rename_at(text, 4, 1, "test_x", "test_x", "z"), None);
    }

    #[test]
    fn print_location_prefix_is_removed() {
        assert_eq!(strip_location("a/b_test.rego:12: hello: 1"), "hello: 1");
        assert_eq!(strip_location("no location"), "no location");
    }
}
