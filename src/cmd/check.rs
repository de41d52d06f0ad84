//! `sluice check`: parses and compiles policies, like `opa check`; errors as
//! `file:line:col: message`, one line each.
//!
//! Not here: finding the errors (`policy/check.rs`).

use std::path::PathBuf;

use super::{EXIT_ERROR, EXIT_OK, fail_load};
use crate::policy::check::check_set;
use crate::policy::loader::PolicySet;

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

pub fn run(args: CheckArgs) -> i32 {
    let set = match PolicySet::load(&args.paths, args.v0_compatible) {
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
