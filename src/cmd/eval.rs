//! `sluice eval`: evaluates a query, like `opa eval`, and prints the result in the `opa eval`
//! JSON shape, as raw values or indented.
//!
//! Not here: loading the input and evaluating (`policy/eval.rs`).

use std::io::Write;
use std::path::PathBuf;

use super::{EXIT_ERROR, EXIT_OK, fail_load};
use crate::policy::eval::{eval_query, read_input};
use crate::policy::loader::PolicySet;

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

pub fn run(args: EvalArgs) -> i32 {
    crate::policy::engine::set_strict_builtin_errors(args.strict_builtin_errors);
    let set = if args.data.is_empty() {
        let mut set = PolicySet::embedded();
        set.rego_v0 = args.v0_compatible;
        set
    } else {
        match PolicySet::load(&args.data, args.v0_compatible) {
            Ok(s) => s,
            Err(e) => return fail_load(&e),
        }
    };
    let input = match args.input.as_deref().map(read_input).transpose() {
        Ok(i) => i,
        Err(e) => return fail_load(&e),
    };
    let mut engine = match set.engine() {
        Ok(e) => e,
        Err(e) => return fail_load(&e),
    };
    let results = eval_query(&mut engine, input, &args.query);
    // The command exits next: freeing the compiled policy, node by node, was a twentieth of
    // it (callgrind).
    std::mem::forget(engine);
    let results = match results {
        Ok(r) => r,
        Err(e) => return fail_load(&e),
    };
    let defined = !results.result.is_empty();

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = match args.format {
        EvalFormat::Json => serde_json::to_string_pretty(&results)
            .map_err(std::io::Error::other)
            .and_then(|text| writeln!(out, "{text}")),
        EvalFormat::Raw => write_values(&mut out, &results, false),
        EvalFormat::Pretty => {
            if defined {
                write_values(&mut out, &results, true)
            } else {
                writeln!(out, "undefined")
            }
        }
    };
    match written {
        // A reader that went away (`sluice eval ... | head -1`) ends the command quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("writing the result: {e}");
            return EXIT_ERROR;
        }
        Ok(()) => {}
    }
    if (args.fail && !defined) || (args.fail_defined && defined) {
        return EXIT_ERROR;
    }
    EXIT_OK
}

/// Raw: each expression value on its own line, strings unquoted, other values as JSON.
/// Pretty: the same, plus `name = value` lines for the query's bindings.
fn write_values(
    out: &mut impl Write,
    results: &regorus::QueryResults,
    bindings: bool,
) -> std::io::Result<()> {
    for r in &results.result {
        if bindings {
            if let Ok(map) = r.bindings.as_object() {
                for (k, v) in map.iter() {
                    let name = k.as_string().map(|s| s.to_string()).unwrap_or_default();
                    writeln!(out, "{name} = {}", value_text(v))?;
                }
            }
        }
        for e in &r.expressions {
            writeln!(out, "{}", value_text(&e.value))?;
        }
    }
    Ok(())
}

fn value_text(v: &regorus::Value) -> String {
    match v {
        regorus::Value::String(s) => s.to_string(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}
