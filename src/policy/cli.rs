//! The policy author's commands: `sluice test`, `sluice eval`, `sluice check`, shaped after
//! `opa test`, `opa eval` and `opa check` (flags, output and exit codes).
//!
//! This file holds the flags and the dispatch; the work is in [`super::testrun`] (running
//! tests), [`super::report`] (printing them as OPA does), [`super::coverage`] and
//! [`super::eval`]. Not here: anything the gateway uses at run time.

use std::path::PathBuf;
use std::time::Duration;

use super::loader::{LoadError, PolicySet};

/// Exit codes shared by every command (as `opa test`): 0 ok, 1 usage or load error, 2 failing tests.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_FAIL: i32 = 2;

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

/// Output formats of `sluice eval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    Json,
    Raw,
    Pretty,
}

const EVAL_HELP: &str = "\
With no -d, the policies shipped in the binary are used (policies/manufacturing: smart.rego,
egress.rego and data.json), exactly as `sluice serve` uses them without a config.

Exit codes: 0 success; 1 load, parse or evaluation error, or --fail/--fail-defined triggered.

Examples:
  sluice eval -i fixtures/policy/inputs/export.json 'data.manufacturing.smart.deny'
  sluice eval -d policies --format raw 'data.manufacturing.egress.deny' -i input.json
  sluice eval --fail-defined -i input.json 'data.manufacturing.smart.deny'   # exit 1 if denied";

/// Evaluates a Rego query, like `opa eval`.
#[derive(Debug, clap::Args)]
#[command(after_help = EVAL_HELP)]
pub struct EvalArgs {
    /// The query, e.g. data.manufacturing.smart.allow
    pub query: String,
    /// Policy or data file or directory; repeatable. None: the embedded shipped policies
    #[arg(short, long = "data", value_name = "PATH")]
    pub data: Vec<PathBuf>,
    /// The input document (JSON, or YAML for .yaml/.yml)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// json: the `opa eval` result document; raw: values only; pretty: indented values
    #[arg(short, long, value_enum, default_value = "json")]
    pub format: EvalFormat,
    /// Exit 1 when the result is undefined or empty
    #[arg(long, conflicts_with = "fail_defined")]
    pub fail: bool,
    /// Exit 1 when the result is defined and not empty
    #[arg(long)]
    pub fail_defined: bool,
    /// Parse policies as Rego v0
    #[arg(long)]
    pub v0_compatible: bool,
    /// A builtin error stops the evaluation with that error (OPA's strict mode); by default
    /// it makes the expression undefined, as in OPA
    #[arg(long)]
    pub strict_builtin_errors: bool,
}

const CHECK_HELP: &str = "\
Prints nothing and exits 0 when every policy parses and the set compiles; otherwise prints one
`file:line:col: message` line per file that does not parse (or the first compile error) on
stderr and exits 1.

Example:
  sluice check policies/";

/// Parses and compiles policies, like `opa check`.
#[derive(Debug, clap::Args)]
#[command(after_help = CHECK_HELP)]
pub struct CheckArgs {
    /// Policy files and directories
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Parse policies as Rego v0
    #[arg(long)]
    pub v0_compatible: bool,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = crate::config::parse_duration(s)?;
    if d.is_zero() {
        return Err("the timeout must be above 0".into());
    }
    Ok(d)
}

/// Prints a load error as one line on stderr and returns the load-error exit code.
pub(crate) fn fail_load(err: &LoadError) -> i32 {
    eprintln!("{err}");
    EXIT_ERROR
}

pub(crate) fn load(paths: &[PathBuf], rego_v0: bool) -> Result<PolicySet, LoadError> {
    PolicySet::load(paths, rego_v0)
}

pub fn test(args: TestArgs) -> i32 {
    super::engine::set_strict_builtin_errors(args.strict_builtin_errors);
    super::testrun::command(&args)
}

pub fn eval(args: EvalArgs) -> i32 {
    super::engine::set_strict_builtin_errors(args.strict_builtin_errors);
    super::eval::command(&args)
}

pub fn check(args: CheckArgs) -> i32 {
    let set = match load(&args.paths, args.v0_compatible) {
        Ok(s) => s,
        Err(e) => return fail_load(&e),
    };
    let errors = check_set(&set);
    for e in &errors {
        eprintln!("{e}");
    }
    if errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    }
}

/// Every error of a policy set. The whole set is compiled first (one pass when all is well);
/// on failure each module is parsed on its own, so that every file with a syntax error is
/// reported, and only when all parse is the compile error itself reported.
pub fn check_set(set: &PolicySet) -> Vec<LoadError> {
    let Err(compile_error) = set.engine() else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for m in &set.modules {
        let mut engine = super::engine::EngineSetup::new(set.rego_v0).engine();
        if let Err(e) = super::loader::add_module(&mut engine, m) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        errors.push(compile_error);
    }
    errors
}
