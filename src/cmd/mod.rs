//! The subcommands of the `sluice` binary: one file per command, each owning its clap `Args`,
//! its help text, its printing and its exit code.
//!
//! Not here: the work itself. The commands call into `policy/`, `admission/`, `proxy/` and
//! `telemetry/`, which return results and know nothing of clap or of the terminal.

pub mod bench;
pub mod cert;
pub mod check;
pub mod eval;
pub mod health;
pub mod iptables;
pub mod log;
pub mod serve;
pub mod spool;
pub mod test;
pub mod verify;
pub mod webhook;

use crate::policy::LoadError;

/// Exit codes shared by every command (as `opa test`): 0 ok, 1 usage or load error, 2 failing tests.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_FAIL: i32 = 2;

/// Prints a load error as one line on stderr and returns the load-error exit code.
pub(crate) fn fail_load(err: &LoadError) -> i32 {
    eprintln!("{err}");
    EXIT_ERROR
}

/// What a long-running command (`serve`, `webhook`) needs before its first await: the
/// non-blocking logger (hold the guard until exit) and the runtime. `Err`: the exit code, after
/// one line on stderr naming `command`.
pub(crate) fn start_process(
    command: &str,
    format: crate::config::LogFormat,
    level: &str,
    workers: Option<usize>,
) -> Result<(crate::telemetry::LogGuard, tokio::runtime::Runtime), i32> {
    let log = crate::telemetry::init_logging(format, level).map_err(|e| {
        eprintln!("sluice {command}: {e}");
        EXIT_ERROR
    })?;
    // `runtime.workers`, else tokio's one per core: the trade-off is in docs/benchmarks.md.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let runtime = builder.enable_all().build().map_err(|e| {
        eprintln!("sluice {command}: cannot start the runtime: {e}");
        EXIT_ERROR
    })?;
    Ok((log, runtime))
}
