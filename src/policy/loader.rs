//! Loading policies: `.rego` modules and `data.json` / `data.yaml` documents from files and
//! directories (OPA's layout: a data file in `a/b/` lands at `data.a.b`), or the embedded
//! shipped set. Produces a [`PolicySet`]; compiling it into an engine is [`PolicySet::engine`].
//!
//! Not here: bundles, watching, or evaluation.

use std::fmt;
use std::path::{Path, PathBuf};

use regorus::Engine;
use serde_json::{Map, Value as Json};

/// One policy module as loaded.
#[derive(Clone, Debug)]
pub struct Module {
    /// The path as the user named it (shown in errors, test output and coverage).
    pub path: String,
    pub text: String,
}

/// Everything a policy generation is made of, before compilation.
#[derive(Clone, Debug)]
pub struct PolicySet {
    pub modules: Vec<Module>,
    pub data: Json,
    pub rego_v0: bool,
}

/// A load or compile failure, printed as one line `file:line:col: message` where a position is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl LoadError {
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: 0,
            col: 0,
            message: message.into(),
        }
    }

    pub(crate) fn at(
        file: impl Into<String>,
        line: u32,
        col: u32,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line,
            col,
            message: message.into(),
        }
    }

    /// Turns a regorus error (multi-line, with a `--> file:line:col` marker and a source excerpt)
    /// into one line. Errors without a position keep `fallback_file`.
    pub fn from_engine(text: &str, fallback_file: &str) -> Self {
        let mut file = fallback_file.to_string();
        let (mut line, mut col) = (0, 0);
        let mut message: Option<String> = None;
        for l in text.lines() {
            let t = l.trim_start();
            if let Some(loc) = t.strip_prefix("--> ") {
                match &mut message {
                    // The first marker is where the error is.
                    None => {
                        if let Some((f, ln, c)) = split_location(loc) {
                            file = f.to_string();
                            line = ln;
                            col = c;
                        }
                    }
                    // A later one points at a related place ("defined earlier:"): keep it.
                    Some(m) => {
                        let m2 = m.trim_end().trim_end_matches([':', '.']).to_string();
                        *m = format!("{m2}: {}", loc.trim());
                    }
                }
            } else if let Some(m) = t.strip_prefix("error: ") {
                message = Some(m.trim().to_string());
            } else if let (Some(m), Some(rest)) = (&mut message, l.strip_prefix(": ")) {
                // regorus appends the related place's own note after the excerpt.
                m.push_str(": ");
                m.push_str(rest.trim());
            }
        }
        if file == "<query.rego>" {
            file = "query".into();
        }
        let mut message = message.unwrap_or_else(|| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(": ")
        });
        if message.trim_end() == "expecting" {
            message = "unexpected end of input or token here".into();
        }
        Self::at(file, line, col, message)
    }
}

/// `path:line:col`; the path itself may contain ':'.
fn split_location(loc: &str) -> Option<(&str, u32, u32)> {
    let mut parts = loc.trim().rsplitn(3, ':');
    let c = parts.next()?.parse().ok()?;
    let ln = parts.next()?.parse().ok()?;
    Some((parts.next()?, ln, c))
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        } else if self.file.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl std::error::Error for LoadError {}

/// The shipped policies, compiled into the binary. Tests are left out: they are for `sluice test`.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "policies/manufacturing/smart.rego",
        include_str!("../../policies/manufacturing/smart.rego"),
    ),
    (
        "policies/manufacturing/egress.rego",
        include_str!("../../policies/manufacturing/egress.rego"),
    ),
];
const EMBEDDED_DATA: &[(&str, &[&str], &str)] = &[(
    "policies/manufacturing/data.json",
    &["manufacturing"],
    include_str!("../../policies/manufacturing/data.json"),
)];

/// File names that carry data documents (as in OPA bundles).
fn is_data_file(name: &str) -> bool {
    matches!(name, "data.json" | "data.yaml" | "data.yml")
}

impl PolicySet {
    /// The policies shipped in `policies/`, as embedded at build time.
    pub fn embedded() -> Self {
        let mut set = Self {
            modules: EMBEDDED
                .iter()
                .map(|(p, t)| Module {
                    path: (*p).to_string(),
                    text: (*t).to_string(),
                })
                .collect(),
            data: Json::Object(Map::new()),
            rego_v0: false,
        };
        for (file, root, text) in EMBEDDED_DATA {
            // The embedded data is ours and checked by tests; an error here is a build defect.
            if let Ok(doc) = serde_json::from_str::<Json>(text) {
                let root: Vec<String> = root.iter().map(|s| (*s).to_string()).collect();
                let _ = merge_at(&mut set.data, &root, doc, file, &mut Vec::new());
            }
        }
        set
    }

    /// Loads every `.rego` and data file under `paths` (files or directories, recursively).
    pub fn load<P: AsRef<Path>>(paths: &[P], rego_v0: bool) -> Result<Self, LoadError> {
        let mut set = Self {
            modules: Vec::new(),
            data: Json::Object(Map::new()),
            rego_v0,
        };
        let mut origins: Vec<(Vec<String>, String)> = Vec::new();
        for p in paths {
            let p = p.as_ref();
            let meta = std::fs::metadata(p)
                .map_err(|e| LoadError::new(p.display().to_string(), io_reason(&e)))?;
            if meta.is_dir() {
                let mut files = Vec::new();
                walk(p, &mut files)?;
                files.sort();
                for f in files {
                    let rel_dir = f
                        .parent()
                        .and_then(|d| d.strip_prefix(p).ok())
                        .map(|d| {
                            d.components()
                                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default();
                    set.add_file(&f, &rel_dir, &mut origins)?;
                }
            } else {
                set.add_file(p, &[], &mut origins)?;
            }
        }
        Ok(set)
    }

    fn add_file(
        &mut self,
        file: &Path,
        root: &[String],
        origins: &mut Vec<(Vec<String>, String)>,
    ) -> Result<(), LoadError> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let shown = file.display().to_string();
        if name.ends_with(".rego") {
            let text = read_utf8(file)?;
            self.modules.push(Module { path: shown, text });
        } else if is_data_file(&name) {
            let text = read_utf8(file)?;
            let doc = if name.ends_with(".json") {
                serde_json::from_str::<Json>(&text).map_err(|e| {
                    LoadError::at(&shown, e.line() as u32, e.column() as u32, json_reason(&e))
                })?
            } else {
                parse_yaml(&text).map_err(|m| LoadError::new(&shown, m.0))?
            };
            merge_at(&mut self.data, root, doc, &shown, origins)?;
        }
        // Anything else (READMEs, Gatekeeper YAML, manifests) is not policy: skipped, as OPA does
        // for unknown extensions.
        Ok(())
    }

    /// Parses every module, checks and compiles it as `opa check` does (`policy::compile`),
    /// and adds the data, so that any error surfaces here rather than at the first decision.
    /// The first error; `sluice check` shows them all.
    pub fn engine(&self) -> Result<Engine, LoadError> {
        super::compile::compile(self, super::compile::Strictness::default()).map_err(|errors| {
            errors
                .into_iter()
                .next()
                .unwrap_or_else(|| LoadError::new("", "the policy set does not compile"))
        })
    }
}

/// Adds one module, refusing calls to builtins sluice does not offer (network I/O) first.
/// The caller has checked `m` with [`within_bounds`] (compile does for the whole set, before
/// its rewrites parse anything).
pub fn add_module(engine: &mut Engine, m: &Module) -> Result<String, LoadError> {
    if let Some(call) = super::engine::find_refused_call(&m.text) {
        return Err(LoadError::at(
            &m.path,
            call.line,
            call.col,
            call.to_string(),
        ));
    }
    engine
        .add_policy(m.path.clone(), m.text.clone())
        .map_err(|e| from_anyhow(&e, &m.path))
}

/// Refuses a text regorus must not parse: an expression nested so deep that its syntax tree
/// would overflow the stack (OPA has no such limit; see `builtins::too_deep`).
pub fn within_bounds(path: &str, text: &str) -> Result<(), LoadError> {
    match super::builtins::too_deep(text) {
        Some((line, message)) => Err(LoadError::at(
            path,
            line,
            1,
            format!("rego_parse_error: {message}"),
        )),
        None => Ok(()),
    }
}

/// One-line form of a regorus error.
pub fn from_anyhow<E: fmt::Display>(err: &E, fallback_file: &str) -> LoadError {
    LoadError::from_engine(&err.to_string(), fallback_file)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| LoadError::new(dir.display().to_string(), io_reason(&e)))?;
    for entry in entries {
        let entry = entry.map_err(|e| LoadError::new(dir.display().to_string(), io_reason(&e)))?;
        let path = entry.path();
        let name = entry.file_name();
        // Hidden files and folders (editor swap files, .git) are never policy.
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let ft = entry
            .file_type()
            .map_err(|e| LoadError::new(path.display().to_string(), io_reason(&e)))?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn read_utf8(file: &Path) -> Result<String, LoadError> {
    let shown = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| LoadError::new(&shown, io_reason(&e)))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() as u32 + 1;
        let col = valid.iter().rev().take_while(|b| **b != b'\n').count() as u32 + 1;
        LoadError::at(shown, line, col, "file is not valid UTF-8")
    })
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn json_reason(e: &serde_json::Error) -> String {
    // serde_json appends " at line X column Y"; the position is already in front.
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Text that is not YAML; the parser's message on one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct YamlError(pub String);

/// Parses YAML (1.2 semantics) into JSON; the message is one line.
pub fn parse_yaml(text: &str) -> Result<Json, YamlError> {
    serde_saphyr::from_str_with_options::<Json>(text, yaml_1_2())
        .map_err(|e| YamlError(one_line(&e.to_string())))
}

/// Parses a multi-document YAML stream (YAML 1.2 semantics); the message is one line.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<Json>, YamlError> {
    serde_saphyr::from_multiple_with_options::<Json>(text, yaml_1_2())
        .map_err(|e| YamlError(one_line(&e.to_string())))
}

/// YAML 1.2, as Kubernetes and OPA read it: only `true`/`false` are booleans, so `yes`, `on`
/// and `no` stay strings (a country code `NO` must not turn into `false`).
fn yaml_1_2() -> serde_saphyr::Options {
    serde_saphyr::options! { strict_booleans: true }
}

/// Collapses a multi-line message (YAML errors carry excerpts) into one line.
pub fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Merges `doc` into `data` at `root`, failing when two files define the same leaf differently.
fn merge_at(
    data: &mut Json,
    root: &[String],
    doc: Json,
    file: &str,
    origins: &mut Vec<(Vec<String>, String)>,
) -> Result<(), LoadError> {
    let mut node = data;
    for key in root {
        let obj = match node {
            Json::Object(o) => o,
            _ => return Err(conflict(file, root, origins)),
        };
        node = obj
            .entry(key.clone())
            .or_insert_with(|| Json::Object(Map::new()));
    }
    let mut path = root.to_vec();
    deep_merge(node, doc, &mut path).map_err(|at| conflict(file, &at, origins))?;
    origins.push((root.to_vec(), file.to_string()));
    Ok(())
}

fn deep_merge(into: &mut Json, from: Json, path: &mut Vec<String>) -> Result<(), Vec<String>> {
    match (into, from) {
        (Json::Object(a), Json::Object(b)) => {
            for (k, v) in b {
                path.push(k.clone());
                match a.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v, path)?,
                    None => {
                        a.insert(k, v);
                    }
                }
                path.pop();
            }
            Ok(())
        }
        (a, b) if *a == b => Ok(()),
        _ => Err(path.clone()),
    }
}

fn conflict(file: &str, at: &[String], origins: &[(Vec<String>, String)]) -> LoadError {
    let other = origins
        .iter()
        .rev()
        .find(|(root, _)| at.starts_with(root) || root.starts_with(at))
        .map(|(_, f)| format!(" (also defined by {f})"))
        .unwrap_or_default();
    let dotted = if at.is_empty() {
        "data".to_string()
    } else {
        format!("data.{}", at.join("."))
    };
    LoadError::new(file, format!("data conflict at {dotted}{other}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_set_compiles_and_has_empty_allowlist() {
        let set = PolicySet::embedded();
        assert!(set.engine().is_ok());
        assert_eq!(
            set.data["manufacturing"]["export_allowlist"],
            serde_json::json!([])
        );
    }

    #[test]
    fn engine_errors_become_one_line_with_position() {
        let set = PolicySet {
            modules: vec![Module {
                path: "p/bad.rego".into(),
                text: "package x\n\nallow if {\n  input.a ==\n}\n".into(),
            }],
            data: Json::Object(Map::new()),
            rego_v0: false,
        };
        let err = set
            .engine()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("p/bad.rego:5:1: "), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn merge_rejects_conflicting_leaves_and_names_both_files() {
        let mut data = Json::Object(Map::new());
        let mut origins = Vec::new();
        let a = serde_json::json!({"x": 1});
        let b = serde_json::json!({"x": 2});
        assert!(merge_at(&mut data, &["r".into()], a, "one/data.json", &mut origins).is_ok());
        let err = merge_at(&mut data, &["r".into()], b, "two/data.json", &mut origins)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err,
            "two/data.json: data conflict at data.r.x (also defined by one/data.json)"
        );
    }
}
