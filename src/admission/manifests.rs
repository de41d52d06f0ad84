//! Reading Kubernetes manifests: multi-document YAML (and JSON) files, one or many, from files
//! and directories, into `serde_json::Value` documents that remember where they came from.
//!
//! YAML 1.2 semantics (serde-saphyr): `yes`/`no`/`on` are strings, as the API server reads them.
//! Not here: what the documents mean (templates.rs, constraints.rs, inventory.rs, suite.rs).

use std::path::{Path, PathBuf};

use super::error::AdmissionError;
use serde_json::Value as Json;

/// One document of a manifest file.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file as the user named it, with `#N` (1-based) when the file holds several documents.
    pub origin: String,
    pub body: Json,
}

impl Document {
    pub fn kind(&self) -> &str {
        self.body.get("kind").and_then(Json::as_str).unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        self.body
            .get("apiVersion")
            .and_then(Json::as_str)
            .unwrap_or("")
    }
    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        match self.api_version().rsplit_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }
    pub fn name(&self) -> &str {
        self.body
            .pointer("/metadata/name")
            .and_then(Json::as_str)
            .unwrap_or("")
    }
}

/// True for the file names that may hold manifests.
pub fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Every manifest file under `path` (itself when it is a file), sorted, hidden entries skipped.
pub fn files_under(path: &Path) -> Result<Vec<PathBuf>, AdmissionError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| AdmissionError::Manifest(format!("{}: {}", path.display(), reason(&e))))?;
    let mut out = Vec::new();
    if meta.is_dir() {
        walk(path, &mut out).map_err(AdmissionError::Manifest)?;
        out.sort();
    } else {
        out.push(path.to_path_buf());
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: {}", dir.display(), reason(&e)))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {}", dir.display(), reason(&e)))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_manifest(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one file into its documents; empty documents (a trailing `---`) are dropped.
pub fn read_file(path: &Path) -> Result<Vec<Document>, AdmissionError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| AdmissionError::Manifest(format!("{shown}: {}", reason(&e))))?;
    parse(&text, &shown)
}

/// Parses manifest text (YAML, possibly several documents, or JSON).
pub fn parse(text: &str, shown: &str) -> Result<Vec<Document>, AdmissionError> {
    let docs: Vec<Json> = if text.trim_start().starts_with('{') {
        vec![
            serde_json::from_str(text)
                .map_err(|e| AdmissionError::Manifest(format!("{shown}: {e}")))?,
        ]
    } else {
        crate::policy::loader::parse_yaml_documents(text)
            .map_err(|e| AdmissionError::Manifest(format!("{shown}: {e}")))?
    };
    let docs: Vec<Json> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let many = docs.len() > 1;
    Ok(docs
        .into_iter()
        .enumerate()
        .map(|(i, body)| Document {
            origin: if many {
                format!("{shown}#{}", i + 1)
            } else {
                shown.to_string()
            },
            body,
        })
        .collect())
}

pub fn reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_keeps_yaml_1_2_strings_and_origins() {
        let docs = parse("a: yes\n---\nb: no\n---\n", "f.yaml").unwrap_or_default();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].body["a"], "yes");
        assert_eq!(docs[1].body["b"], "no");
        assert_eq!(docs[1].origin, "f.yaml#2");
    }

    #[test]
    fn yaml_errors_are_one_line_and_name_the_file() {
        let err = parse("a: [1, 2\n", "bad.yaml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("bad.yaml: "), "{err}");
        assert!(!err.contains('\n'));
    }
}
