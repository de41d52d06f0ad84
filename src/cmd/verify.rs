//! `sluice verify`: runs Gatekeeper test suites (`kind: Suite`), like `gator verify`.
//!
//! Not here: running the suites (`admission/suite.rs`) or formatting them
//! (`admission/verify_report.rs`).

use std::path::PathBuf;

use super::EXIT_FAIL;
use crate::admission::{suite, verify_report};

/// `sluice verify`: run Gatekeeper test suites, like `gator verify`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Finds every kind: Suite (test.gatekeeper.sh/v1alpha1) file under the paths (directories are
searched recursively; a Go-style dir/... works too) and runs its tests: each pairs a template
with a constraint; each case reviews an object (or an AdmissionReview) with optional inventory
and asserts violations: yes | no | N, optionally counting only messages matching a regex.

Prints ok <suite> <time>, or --- FAIL: lines with the reason, then PASS or FAIL.
Exit codes: 0 all passed, 2 any failing case (as `sluice test`; gator verify uses 1),
1 a usage or load error.")]
pub struct VerifyArgs {
    /// Directories or files holding `kind: Suite` test suites
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Run only tests and cases whose name matches REGEX; `TEST//CASE` matches both parts
    #[arg(long = "run", value_name = "REGEX")]
    pub run: Option<String>,
    /// Print every test and case as it runs
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Output format
    #[arg(long = "format", value_enum, default_value_t = VerifyFormat::Text)]
    pub format: VerifyFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyFormat {
    /// gator verify's Go-test style
    Text,
    /// every case as JSON
    Json,
}

pub fn run(args: VerifyArgs) -> i32 {
    let filter = match suite::Filter::new(args.run.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sluice verify: {e}");
            return 1;
        }
    };
    let suites = match suite::find_suites(&args.paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sluice verify: {e}");
            return 1;
        }
    };
    if suites.is_empty() {
        let shown: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "sluice verify: no test suites (kind: Suite) found in {}",
            shown.join(" ")
        );
        return 1;
    }
    let results: Vec<_> = suites
        .iter()
        .map(|s| suite::run_suite(s, &filter))
        .collect();
    match args.format {
        VerifyFormat::Text => print!("{}", verify_report::text(&results, args.verbose)),
        VerifyFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&verify_report::json(&results)).unwrap_or_default()
        ),
    }
    // Failing cases exit 2 like every sluice test command, so CI can tell them from a broken
    // invocation (1); gator verify uses 1 for both.
    if results.iter().any(suite::SuiteResult::failed) {
        EXIT_FAIL
    } else {
        0
    }
}
