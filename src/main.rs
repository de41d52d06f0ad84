//! The `sluice` command line: parsing and dispatch only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice::cmd::{cert, check, eval, health, iptables, log, serve, spool, test, verify, webhook};

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
    Serve(serve::ServeArgs),
    /// Run the Gatekeeper-compatible validating admission webhook over TLS
    Webhook(webhook::WebhookArgs),
    /// Run the test_* rules of policies, like `opa test`
    Test(test::TestArgs),
    /// Evaluate a query against policies and data, like `opa eval`
    Eval(eval::EvalArgs),
    /// Parse and compile policies, like `opa check`
    Check(check::CheckArgs),
    /// Run Gatekeeper test suites (kind: Suite), like `gator verify`
    Verify(verify::VerifyArgs),
    /// Show recorded decisions from the local decision log
    Log(log::LogArgs),
    /// Make the webhook's serving certificate and the caBundle for its configuration
    Cert(cert::CertArgs),
    /// Probe an admin endpoint (for container health checks); exit 0 when it answers 2xx
    Health(health::HealthArgs),
    /// Print or apply the pod's interception rules (for the init container)
    Iptables(iptables::IptablesArgs),
    /// Benchmark Gatekeeper templates against objects, like `gator bench`
    Bench(sluice::cmd::bench::BenchArgs),
    /// Inspect an export bridge's spool: stats, ls, purge --topic FILTER
    Spool(spool::SpoolArgs),
}

/// A reader that went away (`sluice test -v | head`) ends the command quietly, as for any Unix
/// tool: Rust ignores SIGPIPE, so `println!` would otherwise panic with "Broken pipe".
fn end_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    no_library_backtraces();
    end_quietly_on_broken_pipe();
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
        Command::Webhook(a) => webhook::run(a),
        Command::Test(a) => test::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Check(a) => check::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Log(a) => log::run(a),
        Command::Cert(a) => cert::run(a),
        Command::Health(a) => health::run(a),
        Command::Iptables(a) => iptables::run(a),
        Command::Bench(a) => sluice::cmd::bench::run(a),
        Command::Spool(a) => spool::run(a),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Errors never print a backtrace here (each is one line), but with `RUST_BACKTRACE=1` set for
/// panics, as pods often are, every error value would capture one, and regorus's parser
/// backtracks through errors: a quarter of the instructions of a policy load went into
/// unwinding for backtraces nobody sees. Panics keep theirs; a `RUST_LIB_BACKTRACE` the user
/// set wins.
fn no_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: the first thing main does, before any thread exists that could read the
        // environment at the same time.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}
