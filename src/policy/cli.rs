//! The policy author's commands: `sluice test`, `sluice eval`, `sluice check`, shaped after
//! `opa test`, `opa eval` and `opa check` (flags, output and exit codes).

use std::path::PathBuf;

/// Exit codes shared by every command (as `opa test`): 0 ok, 1 usage or load error, 2 failing tests.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_FAIL: i32 = 2;

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Policy files and directories (.rego, data.json, data.yaml)
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The query, e.g. data.manufacturing.smart.allow
    pub query: String,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Policy files and directories
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
}

pub fn test(_args: TestArgs) -> i32 {
    eprintln!("sluice test: not implemented yet");
    EXIT_ERROR
}

pub fn eval(_args: EvalArgs) -> i32 {
    eprintln!("sluice eval: not implemented yet");
    EXIT_ERROR
}

pub fn check(_args: CheckArgs) -> i32 {
    eprintln!("sluice check: not implemented yet");
    EXIT_ERROR
}
