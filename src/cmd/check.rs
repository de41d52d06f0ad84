//! `sluice check`: parses and compiles policies, like `opa check`; errors as
//! `file:line:col: message`, one line each.
//!
//! Not here: finding the errors (`policy/check.rs`).

use std::path::PathBuf;

use super::{EXIT_ERROR, EXIT_OK, fail_load};
use crate::policy::check::check_set;
use crate::policy::compile::Strictness;
use crate::policy::loader::PolicySet;

const CHECK_HELP: &str = "\
Prints nothing and exits 0 when every policy parses and the set compiles; otherwise prints one
`file:line:col: message` line per file that does not parse, or per error of the first compile
stage that fails (`rego_type_error: undefined function foo`, `rego_unsafe_var_error: var x is
unsafe`, as `opa check`), on stderr and exits 1. What check accepts, serve, webhook, test and
eval load.

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
    /// OPA's compiler strict mode: unused imports, assignments, declarations and function
    /// arguments are errors
    #[arg(short = 'S', long)]
    pub strict: bool,
}

pub fn run(args: CheckArgs) -> i32 {
    let set = match PolicySet::load(&args.paths, args.v0_compatible) {
        Ok(s) => s,
        Err(e) => return fail_load(&e),
    };
    let errors = check_set(
        &set,
        Strictness {
            strict: args.strict,
        },
    );
    for e in &errors {
        eprintln!("{e}");
    }
    if errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    }
}
