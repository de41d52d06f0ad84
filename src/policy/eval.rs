//! `sluice eval`: one query against policies, data and an input document, printed in the
//! `opa eval` JSON shape (`{"result":[{"expressions":[…],"bindings":{…}}]}`, `{}` when
//! undefined), as raw values or indented.
//!
//! Not here: the decision contract (that is the `Decider`); eval answers any query.

use std::io::Write;
use std::path::Path;

use super::cli::{EXIT_ERROR, EXIT_OK, EvalArgs, EvalFormat, fail_load, load};
use super::loader::{LoadError, PolicySet, from_anyhow, one_line, parse_yaml};

pub fn command(args: &EvalArgs) -> i32 {
    let set = if args.data.is_empty() {
        let mut set = PolicySet::embedded();
        set.rego_v0 = args.v0_compatible;
        set
    } else {
        match load(&args.data, args.v0_compatible) {
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
    if let Some(input) = input {
        engine.set_input(regorus::Value::from(input));
    }
    let results = match engine.eval_query(args.query.clone(), false) {
        Ok(r) => r,
        Err(e) => {
            let mut err = from_anyhow(&e, "");
            if err.line > 0 && err.file.is_empty() {
                err.file = "query".into();
            }
            eprintln!("{err}");
            return EXIT_ERROR;
        }
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
    if let Err(e) = written {
        eprintln!("writing the result: {e}");
        return EXIT_ERROR;
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

/// Reads the input document: JSON, or YAML when the file is named `.yaml`/`.yml`.
fn read_input(path: &Path) -> Result<serde_json::Value, LoadError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        LoadError::new(
            &shown,
            match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                _ => e.to_string(),
            },
        )
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| LoadError::new(&shown, "input file is not valid UTF-8"))?;
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    if yaml {
        return parse_yaml(&text)
            .map_err(|m| LoadError::new(&shown, format!("input is not valid YAML: {m}")));
    }
    serde_json::from_str(&text).map_err(|e| {
        let msg = one_line(&e.to_string());
        let msg = msg
            .rfind(" at line ")
            .map_or(msg.clone(), |i| msg[..i].to_string());
        LoadError {
            file: shown,
            line: e.line() as u32,
            col: e.column() as u32,
            message: format!("input is not valid JSON: {msg}"),
        }
    })
}
