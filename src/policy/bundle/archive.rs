//! OPA bundles: reading a `.tar.gz` (`.manifest` with `revision` and `roots`, `data.json` /
//! `data.yaml` nested by directory, `.rego` modules) into a [`PolicySet`], with the checks OPA
//! makes: roots that do not overlap, policy and data under the roots, and — when a key is
//! configured — a valid signature ([`super::signature`]).
//!
//! Not here: where bundles come from, persisting them, or activating them (`source.rs`).

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::{Map, Value as Json};

use super::error::{BundleError, clean_name, err};
use super::signature::{VerificationKey, verify_signatures};
use crate::policy::loader::{LoadError, Module, PolicySet, one_line, parse_yaml};

/// Files in one bundle at most; a bundle is policy, not a data lake.
const MAX_FILES: usize = 10_000;

/// A bundle read and checked, ready to compile.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The manifest's `revision` (empty when the bundle has no manifest).
    pub revision: String,
    pub roots: Vec<String>,
    pub policy: PolicySet,
    /// Whether a signature was verified.
    pub signed: bool,
}

/// Reads a `.tar.gz` bundle. `max_size` bounds the uncompressed content; `key`, when given,
/// makes a valid signature mandatory.
pub fn read_bundle(
    bytes: &[u8],
    max_size: u64,
    key: Option<&VerificationKey>,
    rego_v0: bool,
) -> Result<Bundle, BundleError> {
    let files = unpack(bytes, max_size)?;
    let signatures = files.get(".signatures.json");
    let signed = match (key, signatures) {
        (Some(key), Some(sigs)) => {
            verify_signatures(sigs, &files, key)?;
            true
        }
        (Some(_), None) => {
            return Err(err(
                "bundle is not signed (no .signatures.json) but policy.bundle.public_key requires a signature",
            ));
        }
        (None, _) => false,
    };
    let (revision, roots) = match files.get(".manifest") {
        Some(m) => read_manifest(m)?,
        None => (String::new(), vec![String::new()]),
    };
    let mut policy = PolicySet {
        modules: Vec::new(),
        data: Json::Object(Map::new()),
        rego_v0,
    };
    for (name, content) in &files {
        let base = name.rsplit('/').next().unwrap_or(name);
        let dir: Vec<&str> = match name.rfind('/') {
            Some(i) => name[..i].split('/').collect(),
            None => Vec::new(),
        };
        if base.ends_with(".rego") {
            let text = String::from_utf8(content.clone())
                .map_err(|_| err(format!("{name}: file is not valid UTF-8")))?;
            let package =
                package_of(&text).ok_or_else(|| err(format!("{name}: no package declaration")))?;
            if !under_roots(&package, &roots) {
                return Err(err(format!(
                    "{name}: package {} is outside the manifest roots {}",
                    package.join("."),
                    show_roots(&roots)
                )));
            }
            policy.modules.push(Module {
                path: format!("bundle:/{name}"),
                text,
            });
        } else if matches!(base, "data.json" | "data.yaml" | "data.yml") {
            let text = std::str::from_utf8(content)
                .map_err(|_| err(format!("{name}: file is not valid UTF-8")))?;
            let doc = if base == "data.json" {
                serde_json::from_str::<Json>(text)
                    .map_err(|e| err(format!("{name}: {}", one_line(&e.to_string()))))?
            } else {
                parse_yaml(text).map_err(|m| err(format!("{name}: {m}")))?
            };
            let mut path: Vec<String> = dir.iter().map(|s| (*s).to_string()).collect();
            check_data_roots(&mut path, &doc, &roots, name)?;
            merge(&mut policy.data, &dir, doc, name)?;
        }
        // Other files (READMEs, .manifest, .signatures.json, wasm) carry no policy here.
    }
    Ok(Bundle {
        revision,
        roots,
        policy,
        signed,
    })
}

/// Checks a bundle compiles; the error names the bundle file with position.
pub fn compile_check(bundle: &Bundle) -> Result<(), LoadError> {
    bundle.policy.engine().map(|_| ())
}

fn unpack(bytes: &[u8], max_size: u64) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(err(
            "not a bundle: expected a gzip-compressed tarball (.tar.gz)",
        ));
    }
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(gz);
    let mut files = BTreeMap::new();
    let mut total: u64 = 0;
    let entries = archive
        .entries()
        .map_err(|e| err(format!("not a gzipped tarball: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| err(format!("corrupt bundle archive: {e}")))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let raw_path = entry
            .path()
            .map_err(|e| err(format!("corrupt bundle archive: {e}")))?
            .to_string_lossy()
            .into_owned();
        if !kind.is_file() {
            return Err(err(format!(
                "{raw_path}: only regular files are allowed in a bundle"
            )));
        }
        let name = clean_name(&raw_path)?;
        total = total.saturating_add(entry.size());
        if total > max_size {
            return Err(err(format!(
                "bundle content exceeds policy.bundle.max_size ({max_size} bytes)"
            )));
        }
        if files.len() >= MAX_FILES {
            return Err(err(format!("bundle has more than {MAX_FILES} files")));
        }
        let mut content = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry
            .read_to_end(&mut content)
            .map_err(|e| err(format!("corrupt bundle archive at {name}: {e}")))?;
        if files.insert(name.clone(), content).is_some() {
            return Err(err(format!("{name}: appears twice in the bundle")));
        }
    }
    if files.is_empty() {
        return Err(err("bundle archive is empty"));
    }
    Ok(files)
}

pub(crate) fn read_manifest(bytes: &[u8]) -> Result<(String, Vec<String>), BundleError> {
    let doc: Json = serde_json::from_slice(bytes)
        .map_err(|e| err(format!(".manifest: {}", one_line(&e.to_string()))))?;
    let revision = match doc.get("revision") {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(_) => return Err(err(".manifest: revision must be a string")),
    };
    let roots = match doc.get("roots") {
        None | Some(Json::Null) => vec![String::new()],
        Some(Json::Array(a)) => a
            .iter()
            .map(|r| {
                r.as_str()
                    .map(|s| s.trim_matches('/').to_string())
                    .ok_or_else(|| err(".manifest: roots must be strings"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(err(".manifest: roots must be a list of strings")),
    };
    for (i, a) in roots.iter().enumerate() {
        for b in &roots[i + 1..] {
            if root_covers(a, b) || root_covers(b, a) {
                return Err(err(format!(
                    ".manifest: roots {a:?} and {b:?} overlap; each part of data must belong to one root"
                )));
            }
        }
    }
    Ok((revision, roots))
}

/// True when `path` (slash-separated) lies under `root` ("" is everything).
fn root_covers(root: &str, path: &str) -> bool {
    root.is_empty()
        || path == root
        || (path.starts_with(root) && path.as_bytes().get(root.len()) == Some(&b'/'))
}

fn under_roots(path: &[String], roots: &[String]) -> bool {
    let joined = path.join("/");
    roots.iter().any(|r| root_covers(r, &joined))
}

fn show_roots(roots: &[String]) -> String {
    format!("{roots:?}")
}

/// Every piece of data must lie under a root; an object above a root is walked into.
fn check_data_roots(
    path: &mut Vec<String>,
    doc: &Json,
    roots: &[String],
    file: &str,
) -> Result<(), BundleError> {
    if under_roots(path, roots) {
        return Ok(());
    }
    let joined = path.join("/");
    let root_below = roots.iter().any(|r| root_covers(&joined, r));
    match doc {
        Json::Object(o) if root_below => {
            for (k, v) in o {
                path.push(k.clone());
                check_data_roots(path, v, roots, file)?;
                path.pop();
            }
            Ok(())
        }
        _ => Err(err(format!(
            "{file}: data at data.{} is outside the manifest roots {}",
            path.join("."),
            show_roots(roots)
        ))),
    }
}

fn merge(data: &mut Json, dir: &[&str], doc: Json, file: &str) -> Result<(), BundleError> {
    let mut node = data;
    for key in dir {
        let Json::Object(obj) = node else {
            return Err(err(format!(
                "{file}: data conflict at data.{}",
                dir.join(".")
            )));
        };
        node = obj
            .entry((*key).to_string())
            .or_insert_with(|| Json::Object(Map::new()));
    }
    match (node, doc) {
        (Json::Object(a), Json::Object(b)) => {
            for (k, v) in b {
                if a.contains_key(&k) {
                    return Err(err(format!(
                        "{file}: data conflict at data.{}",
                        dir.iter()
                            .map(|s| (*s).to_string())
                            .chain([k])
                            .collect::<Vec<_>>()
                            .join(".")
                    )));
                }
                a.insert(k, v);
            }
            Ok(())
        }
        _ => Err(err(format!("{file}: a data file must hold a JSON object"))),
    }
}

/// The package path of a module (`package a.b` → `[a, b]`), read from its first declaration.
fn package_of(text: &str) -> Option<Vec<String>> {
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("package ") {
            let name = rest.split('#').next()?.trim();
            return Some(
                name.split('.')
                    .map(|s| s.trim_matches(|c| c == '"' || c == '[' || c == ']'))
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_escapes_refused() {
        assert_eq!(clean_name("/a/./b.rego"), Ok("a/b.rego".to_string()));
        assert!(clean_name("a/../../etc/passwd").is_err());
    }

    #[test]
    fn roots_cover_by_whole_segments() {
        assert!(root_covers("a", "a/b"));
        assert!(!root_covers("a", "ab"));
        assert!(root_covers("", "x"));
    }

    #[test]
    fn overlapping_roots_are_refused() {
        let e = read_manifest(br#"{"revision":"1","roots":["a","a/b"]}"#);
        assert_eq!(
            e.err().map(|e| e.to_string()),
            Some(
                r#".manifest: roots "a" and "a/b" overlap; each part of data must belong to one root"#
                    .to_string()
            )
        );
    }

    #[test]
    fn data_above_a_root_is_walked_into() {
        let roots = vec!["m/allow".to_string()];
        let ok = serde_json::json!({"m": {"allow": [1]}});
        assert!(check_data_roots(&mut Vec::new(), &ok, &roots, "data.json").is_ok());
        let bad = serde_json::json!({"m": {"allow": [1], "other": 2}});
        let e = check_data_roots(&mut Vec::new(), &bad, &roots, "data.json");
        assert!(e.is_err_and(|e| e.to_string().contains("data.m.other is outside")));
    }
}
