//! The `sluice` command line: parsing and dispatch only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice::admission::{self, VerifyArgs, WebhookArgs};
use sluice::cert::{self, CertArgs};
use sluice::cmd::spool::{self, SpoolArgs};
use sluice::health::{self, HealthArgs};
use sluice::logcmd::{self, LogArgs};
use sluice::policy::cli::{self, CheckArgs, EvalArgs, TestArgs};
use sluice::serve::{self, ServeArgs};

/// sluice keeps a factory's production data inside the factory.
///
/// It proxies processors' MQTT and HTTP egress, judges every connection, request, publish and
/// subscribe with a Rego data-locality policy, forwards what stays local and refuses exports.
/// The same binary is a Gatekeeper-compatible admission webhook and an `opa test`-style CLI.
///
/// Exit codes: 0 success, 1 usage, load or config error, 2 failing tests.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: HTTP forward proxy, MQTT proxies and the admin endpoint
    Serve(ServeArgs),
    /// Run the Gatekeeper-compatible validating admission webhook over TLS
    Webhook(WebhookArgs),
    /// Run the test_* rules of policies, like `opa test`
    Test(TestArgs),
    /// Evaluate a query against policies and data, like `opa eval`
    Eval(EvalArgs),
    /// Parse and compile policies, like `opa check`
    Check(CheckArgs),
    /// Run Gatekeeper test suites (kind: Suite), like `gator verify`
    Verify(VerifyArgs),
    /// Show recorded decisions from the local decision log
    Log(LogArgs),
    /// Make the webhook's serving certificate and the caBundle for its configuration
    Cert(CertArgs),
    /// Probe an admin endpoint (for container health checks); exit 0 when it answers 2xx
    Health(HealthArgs),
    /// Inspect an export bridge's spool: stats, ls, purge --topic FILTER
    Spool(SpoolArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are successes; usage errors exit 1 (DESIGN.md), not clap's 2,
            // because 2 means "tests failed".
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Webhook(a) => admission::webhook(a),
        Command::Test(a) => cli::test(a),
        Command::Eval(a) => cli::eval(a),
        Command::Check(a) => cli::check(a),
        Command::Verify(a) => admission::verify(a),
        Command::Log(a) => logcmd::run(a),
        Command::Cert(a) => cert::run(a),
        Command::Health(a) => health::run(a),
        Command::Spool(a) => spool::run(a),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
