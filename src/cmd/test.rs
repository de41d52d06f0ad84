//! `sluice test`: runs the `test_*` rules of policies with the flags, output and exit codes of
//! `opa test`.
//!
//! Not here: running the tests (`policy/testrun.rs`) or formatting them (`policy/report.rs`,
//! `policy/coverage.rs`).

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use super::{EXIT_ERROR, EXIT_FAIL, EXIT_OK, fail_load};
use crate::policy::loader::{PolicySet, one_line};
use crate::policy::testrun::{Outcome, Run, RunOptions, TestResult, run_tests};
use crate::policy::{coverage, report};

/// Output formats of `sluice test`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    Pretty,
    Json,
}

const TEST_HELP: &str = "\
Every rule whose name starts with test_ (and is not a function) is a test. It passes only when
it evaluates to true; false or undefined is a failure, an evaluation error (or the --timeout) is
an error. Rules named todo_test_* are reported as skipped. A test name defined more than once
runs once per definition, numbered test_x, test_x#01, test_x#02 as opa numbers them. print()
output is shown under failing tests, and under every test with -v.

Exit codes: 0 all tests passed; 2 a test failed, errored or was skipped (unless -z), or the
coverage is below --threshold; 1 the policies did not load or compile, no test ran with
--fail-on-empty, or a test did not pass with --coverage (as opa).

Examples:
  sluice test policies/
  sluice test policies/ -v --run 'egress_test.test_subscribe'
  sluice test policies/ --coverage --threshold 100";

/// Runs the `test_*` rules of the policies under PATH, like `opa test`.
#[derive(Debug, clap::Args)]
#[command(after_help = TEST_HELP)]
pub struct TestArgs {
    /// Policy files and directories (.rego, data.json, data.yaml), searched recursively
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Print every test with its duration, and print() output of every test
    #[arg(short, long)]
    pub verbose: bool,
    /// Run only tests whose full name (data.pkg.test_x) matches this regular expression
    #[arg(short, long, value_name = "REGEX")]
    pub run: Option<String>,
    /// Output format: pretty (OPA's default report) or json (OPA's result array)
    #[arg(short, long, value_enum, default_value = "pretty")]
    pub format: TestFormat,
    /// Print OPA's JSON coverage report (covered and not covered lines per file) instead
    #[arg(short, long)]
    pub coverage: bool,
    /// With coverage: exit 2 when the total coverage percentage is below this (0-100).
    /// A threshold above 0 turns --coverage on
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub threshold: f64,
    /// Time limit for each test, e.g. 500ms, 5s
    // No `-t`: in `opa test` that is --target.
    #[arg(long, value_name = "DURATION", default_value = "5s",
          value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Exit 1 with "no tests were run" when no test was found
    #[arg(long)]
    pub fail_on_empty: bool,
    /// Skipped (todo_test_*) tests do not make the exit code non-zero
    #[arg(short = 'z', long)]
    pub exit_zero_on_skipped: bool,
    /// Parse policies as Rego v0 (no `if`/`contains` required, `future.keywords` imports)
    #[arg(long)]
    pub v0_compatible: bool,
    /// A builtin error stops the evaluation with that error (OPA's strict mode); by default
    /// it makes the expression undefined, as in OPA
    #[arg(long)]
    pub strict_builtin_errors: bool,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = crate::config::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("the timeout must be above 0".into());
    }
    Ok(d)
}

/// The `sluice test` command.
pub fn run(args: TestArgs) -> i32 {
    crate::policy::engine::set_strict_builtin_errors(args.strict_builtin_errors);
    if !(0.0..=100.0).contains(&args.threshold) {
        eprintln!("Code coverage threshold must be between 0 and 100");
        return EXIT_ERROR;
    }
    let filter = match args.run.as_deref().map(Regex::new).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "--run: invalid regular expression: {}",
                one_line(&e.to_string())
            );
            return EXIT_ERROR;
        }
    };
    let set = match PolicySet::load(&args.paths, args.v0_compatible) {
        Ok(s) => s,
        Err(e) => return fail_load(&e),
    };
    let coverage = args.coverage || args.threshold > 0.0;
    let opts = RunOptions {
        filter: filter.as_ref(),
        timeout: args.timeout,
        coverage,
    };
    let run = match run_tests(&set, &opts) {
        Ok(r) => r,
        Err(e) => return fail_load(&e),
    };

    let counts_as_failure = |r: &TestResult| match r.outcome {
        Outcome::Pass => false,
        Outcome::Skip => !args.exit_zero_on_skipped,
        Outcome::Fail(_) | Outcome::Error(_) => true,
    };
    let code = if run.results.iter().any(counts_as_failure) {
        EXIT_FAIL
    } else {
        EXIT_OK
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if coverage {
        if let Some(code) = print_coverage(&mut out, &run, &args) {
            return code;
        }
    } else {
        let written = match args.format {
            TestFormat::Pretty => report::write_pretty(&mut out, &run.results, args.verbose),
            TestFormat::Json => report::write_json(&mut out, &run.results),
        };
        if let Err(e) = written {
            // A reader that went away (`| head`) is not an error of the run.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return code;
            }
            eprintln!("writing the report: {e}");
            return EXIT_ERROR;
        }
    }
    if run.results.is_empty() && args.fail_on_empty {
        eprintln!("no tests were run");
        return EXIT_ERROR;
    }
    code
}

/// The coverage report, printed only when every test passed; `Some(exit code)` when the run
/// ends here instead.
fn print_coverage(out: &mut impl std::io::Write, run: &Run, args: &TestArgs) -> Option<i32> {
    // As OPA: the coverage report is only printed when every test passed; otherwise the
    // first non-passing test is the error (exit 1, as `opa test --coverage` does).
    if let Some(bad) = run.results.iter().find(|r| !r.passed()) {
        match &bad.outcome {
            Outcome::Error(e) => eprintln!("{e}"),
            _ => eprintln!("{}", report::result_line(bad)),
        }
        return Some(EXIT_ERROR);
    }
    let report = coverage::opa_report(run.coverage.as_ref(), &run.modules);
    if report.coverage < args.threshold {
        eprintln!(
            "{}",
            coverage::threshold_error(&report, args.threshold, args.verbose)
        );
        return Some(EXIT_FAIL);
    }
    if let Err(e) = coverage::write_json(out, &report) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return None;
        }
        eprintln!("writing the report: {e}");
        return Some(EXIT_ERROR);
    }
    None
}
