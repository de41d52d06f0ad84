//! `sluice eval`: one query against policies, data and an input document, printed in the
//! `opa eval` JSON shape (`{"result":[{"expressions":[…],"bindings":{…}}]}`, `{}` when
//! undefined), as raw values or indented.
//!
//! Not here: the decision contract (that is the `Decider`); eval answers any query. The
//! command line and the printing are `cmd/eval.rs`.

use std::path::Path;

use super::loader::{LoadError, from_anyhow, one_line, parse_yaml};

/// Evaluates `query` on `engine` (made by `PolicySet::engine`) with `input`. A query error is
/// located in `query` when it has a line but no file.
pub fn eval_query(
    engine: &mut regorus::Engine,
    input: Option<serde_json::Value>,
    query: &str,
) -> Result<regorus::QueryResults, LoadError> {
    if let Some(input) = input {
        engine.set_input(regorus::Value::from(input));
    }
    engine.eval_query(query.to_string(), false).map_err(|e| {
        let mut err = from_anyhow(&e, "");
        if err.line > 0 && err.file.is_empty() {
            err.file = "query".into();
        }
        err
    })
}

/// Reads the input document: JSON, or YAML when the file is named `.yaml`/`.yml`.
pub fn read_input(path: &Path) -> Result<serde_json::Value, LoadError> {
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
