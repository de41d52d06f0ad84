//! Baseline for the cold-start benchmark: the least a program can do to have the same
//! policies compiled with regorus. Loads every `.rego` and `data.json` under the given paths
//! (as `sluice check` does), prepares the engine, and exits 0; prints the first error and
//! exits 1. Build with `cargo build --release --example regorus_load`.

use std::path::{Path, PathBuf};

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if p.is_dir() {
        for e in std::fs::read_dir(p)? {
            walk(&e?.path(), out)?;
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        walk(Path::new(&arg), &mut files).map_err(|e| format!("{arg}: {e}"))?;
    }
    files.sort();
    let mut engine = regorus::Engine::new();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.ends_with(".rego") {
            engine.add_policy_from_file(f).map_err(|e| e.to_string())?;
        } else if name == "data.json" {
            let text = std::fs::read_to_string(f).map_err(|e| e.to_string())?;
            let doc = regorus::Value::from_json_str(&text).map_err(|e| e.to_string())?;
            // OPA layout: a data file in dir/a/ lands at data.a (the shipped one is in manufacturing/).
            let key = f
                .parent()
                .and_then(Path::file_name)
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let mut root = std::collections::BTreeMap::new();
            root.insert(regorus::Value::from(key), doc);
            engine
                .add_data(regorus::Value::from(root))
                .map_err(|e| e.to_string())?;
        }
    }
    engine
        .eval_query("true".to_string(), false)
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
