//! The Gatekeeper-compatible admission webhook (`sluice webhook`) and the test-suite runner
//! (`sluice verify`): ConstraintTemplates compiled with regorus, constraints matched with
//! Gatekeeper's rules, AdmissionReviews answered as Gatekeeper answers them.
//!
//! Layout: manifests (YAML documents) → templates, constraints, inventory → policies (the
//! loaded set) → matching + review (evaluation) → response (AdmissionReview envelope) → server
//! (HTTPS, metrics, certificate reload); suite + verify_report for `sluice verify`.

pub mod certs;
pub mod constraints;
pub mod inventory;
pub mod manifests;
pub mod matching;
pub mod metrics;
pub mod policies;
pub mod response;
pub mod review;
pub mod schema;
pub mod server;
pub mod service;
pub mod suite;
pub mod templates;
pub mod verify_report;

use std::path::PathBuf;

/// `sluice webhook`: serve Gatekeeper ConstraintTemplates and Constraints as a validating
/// admission webhook.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Serves POST /v1/admit (and POST /) with admission.k8s.io/v1 AdmissionReviews over HTTPS, and
GET /metrics, /healthz and /readyz on the same TLS listener.

Config (webhook section): listen (0.0.0.0:8443), tls.cert and tls.key (re-read when the files
change: rotation needs no restart), paths (ConstraintTemplates and Constraints; empty = the
shipped policies/gatekeeper set), inventory (a directory of objects for data.inventory),
exempt_namespaces ([kube-system]), max_body_bytes (3MiB), eval_timeout (1s).

Broken templates and constraints are logged at start and skipped; the rest keep enforcing.")]
pub struct WebhookArgs {
    /// YAML config file (the `webhook` and `log` sections)
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

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

pub fn webhook(args: WebhookArgs) -> i32 {
    server::main(args)
}

pub fn verify(args: VerifyArgs) -> i32 {
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
        crate::policy::cli::EXIT_FAIL
    } else {
        0
    }
}
