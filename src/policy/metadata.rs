//! `rego.metadata.rule()` and `rego.metadata.chain()`: the `# METADATA` annotations of a rule
//! and of everything above it, as OPA gives them. regorus keeps no comments, so the answers are
//! worked out when the policy is loaded: each module that calls them is parsed once to find its
//! rules, the METADATA blocks are read (YAML) and attached as OPA attaches them (a block right
//! above the package or a rule; scopes `rule`, `document`, `package`, `subpackages`), and each
//! call is replaced, inside its rule, by `__sluice_metadata(<the answer as a literal>)`. Only
//! modules that mention `rego.metadata.` are touched; lines stay where they were, so positions
//! in errors and coverage do not move.
//!
//! Not here: the call's own extension (`builtins`), loading files (`loader`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use regorus::unstable::Rule;
use serde_json::{Map, Value as Json, json};

use super::compile::walk;
use super::loader::{LoadError, Module, PolicySet};

/// The extension the rewritten calls go to: it gives back its argument.
pub const CALL: &str = "__sluice_metadata";

const SCOPES: &[&str] = &["rule", "document", "package", "subpackages"];

/// One METADATA block: where it is, what it says, and what it is attached to.
struct Block {
    module: usize,
    annotations: Map<String, Json>,
    scope: String,
    /// The path of the rule or package it is attached to.
    path: Vec<String>,
    /// The line of the statement it is attached to.
    target: u32,
}

/// A rule of a module that calls rego.metadata: its text and path.
struct RuleAt {
    module: usize,
    start: usize,
    end: usize,
    line: u32,
    path: Vec<String>,
    package: Vec<String>,
}

/// The modules with every `rego.metadata.rule()` / `chain()` call resolved.
pub fn resolve(set: &PolicySet) -> Result<Cow<'_, [Module]>, Vec<LoadError>> {
    if !set
        .modules
        .iter()
        .any(|m| m.text.contains("rego.metadata."))
    {
        return Ok(Cow::Borrowed(&set.modules));
    }
    let mut blocks = Vec::new();
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (i, m) in set.modules.iter().enumerate() {
        let mut engine = super::engine::EngineSetup::new(set.rego_v0).engine();
        // A module that does not parse is left for the real load to report.
        if engine.add_policy(m.path.clone(), m.text.clone()).is_err() {
            continue;
        }
        let Some(parsed) = engine.get_modules().last().cloned() else {
            continue;
        };
        let package: Vec<String> = walk::path(&parsed.package.refr)
            .unwrap_or_default()
            .into_iter()
            .skip_while(|s| *s == "data")
            .map(str::to_string)
            .collect();
        let mut starts: BTreeMap<u32, (bool, Vec<String>)> = BTreeMap::new();
        starts.insert(parsed.package.span.line, (true, package.clone()));
        for rule in &parsed.policy {
            let (span, refr) = match rule.as_ref() {
                Rule::Spec { span, head, .. } => (span, head_ref(head)),
                Rule::Default { span, refr, .. } => (span, refr),
            };
            let mut path = package.clone();
            path.extend(
                walk::path(refr)
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_string),
            );
            starts.insert(span.line, (false, path.clone()));
            rules.push(RuleAt {
                module: i,
                start: span.start as usize,
                end: span.end as usize,
                line: span.line,
                path,
                package: package.clone(),
            });
        }
        // The lines each rule spans.
        let line_of = |offset: usize| {
            let upto = m.text.get(..offset).unwrap_or(&m.text);
            u32::try_from(upto.matches('\n').count() + 1).unwrap_or(u32::MAX)
        };
        let inside: Vec<(u32, u32)> = rules
            .iter()
            .filter(|r| r.module == i)
            .map(|r| (r.line, line_of(r.end)))
            .collect();
        for (line, text) in metadata_blocks(&m.text) {
            // Attached to the next statement, unless the block is inside a rule's text.
            if inside.iter().any(|(a, b)| *a < line && line <= *b) {
                continue;
            }
            let next = starts.range(line + 1..).next().map(|(l, _)| *l);
            let Some(target) = next.and_then(|l| starts.get(&l)) else {
                continue;
            };
            let (on_package, path) = target.clone();
            let target_line = next.unwrap_or(0);
            match block(i, &text, on_package, path, target_line) {
                Ok(b) => blocks.push(b),
                Err(message) => errors.push(LoadError::at(&m.path, line, 1, message)),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut out: Vec<Module> = set.modules.clone();
    // Rules from the last one up, so earlier offsets stay right while text is replaced.
    rules.sort_by_key(|r| (r.module, std::cmp::Reverse(r.start)));
    for r in &rules {
        let text = &mut out[r.module].text;
        let Some(body) = text.get(r.start..r.end) else {
            continue;
        };
        if !body.contains("rego.metadata.") {
            continue;
        }
        let (rule, chain) = answers(r, &blocks);
        let replaced = replace_calls(body, &rule, &chain);
        text.replace_range(r.start..r.end, &replaced);
    }
    Ok(Cow::Owned(out))
}

fn head_ref(
    head: &regorus::unstable::RuleHead,
) -> &regorus::unstable::Ref<regorus::unstable::Expr> {
    use regorus::unstable::RuleHead;
    match head {
        RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } | RuleHead::Func { refr, .. } => {
            refr
        }
    }
}

/// Each `# METADATA` block: its first line (1-based) and its YAML text.
fn metadata_blocks(text: &str) -> Vec<(u32, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if t.strip_prefix('#').map(str::trim) == Some("METADATA") {
            let start = i;
            let mut yaml = String::new();
            i += 1;
            while i < lines.len() && lines[i].trim_start().starts_with('#') {
                let body = &lines[i].trim_start()[1..];
                yaml.push_str(body.strip_prefix(' ').unwrap_or(body));
                yaml.push('\n');
                i += 1;
            }
            out.push((u32::try_from(start + 1).unwrap_or(u32::MAX), yaml));
        } else {
            i += 1;
        }
    }
    out
}

/// Reads one block as OPA normalises it (authors and related resources as objects, schemas as
/// paths), checking its scope against what it is attached to.
fn block(
    module: usize,
    yaml: &str,
    on_package: bool,
    path: Vec<String>,
    target: u32,
) -> Result<Block, String> {
    let doc =
        super::loader::parse_yaml(yaml).map_err(|e| format!("rego_parse_error: yaml: {e}"))?;
    let doc = match doc {
        Json::Object(m) => m,
        Json::Null => Map::new(),
        _ => return Err("rego_parse_error: METADATA block must be a YAML mapping".into()),
    };
    let mut a = Map::new();
    for key in ["title", "description", "custom", "organizations"] {
        if let Some(v) = doc.get(key) {
            a.insert(key.into(), v.clone());
        }
    }
    if let Some(Json::Bool(true)) = doc.get("entrypoint") {
        a.insert("entrypoint".into(), Json::Bool(true));
    }
    if let Some(Json::Array(items)) = doc.get("authors") {
        let authors: Vec<Json> = items.iter().map(author).collect::<Result<_, _>>()?;
        a.insert("authors".into(), Json::Array(authors));
    }
    if let Some(Json::Array(items)) = doc.get("related_resources") {
        let refs: Vec<Json> = items
            .iter()
            .map(|r| match r {
                Json::String(s) => Ok(json!({ "ref": s })),
                Json::Object(_) if r.get("ref").is_some() => Ok(r.clone()),
                _ => Err("rego_parse_error: related_resources entries need a ref".to_string()),
            })
            .collect::<Result<_, _>>()?;
        a.insert("related_resources".into(), Json::Array(refs));
    }
    if let Some(Json::Array(items)) = doc.get("schemas") {
        let mut schemas = Vec::new();
        for item in items {
            let Json::Object(entry) = item else {
                return Err("rego_parse_error: schemas entries must be mappings".into());
            };
            for (k, v) in entry {
                let p: Vec<Json> = k.split('.').map(Json::from).collect();
                schemas.push(match v {
                    Json::String(s) => {
                        json!({ "path": p, "schema": s.split('.').collect::<Vec<_>>() })
                    }
                    other => json!({ "path": p, "definition": other }),
                });
            }
        }
        a.insert("schemas".into(), Json::Array(schemas));
    }
    let scope = match doc.get("scope") {
        Some(Json::String(s)) if SCOPES.contains(&s.as_str()) => s.clone(),
        Some(other) => {
            return Err(format!(
                "rego_parse_error: invalid annotation scope {other}"
            ));
        }
        None if on_package => "package".into(),
        None if a.contains_key("entrypoint") => "document".into(),
        None => "rule".into(),
    };
    let have = if on_package { "package" } else { "rule" };
    let fits = match scope.as_str() {
        "package" | "subpackages" => on_package,
        _ => !on_package,
    };
    if !fits {
        return Err(format!(
            "rego_parse_error: annotation scope '{scope}' must be applied to {} (have {have})",
            if matches!(scope.as_str(), "package" | "subpackages") {
                "package"
            } else {
                "rule"
            }
        ));
    }
    a.insert("scope".into(), Json::String(scope.clone()));
    Ok(Block {
        module,
        annotations: a,
        scope,
        path,
        target,
    })
}

/// `Name <email>` as `{name, email}`, a mapping as it is.
fn author(v: &Json) -> Result<Json, String> {
    match v {
        Json::String(s) => {
            let s = s.trim();
            match s.strip_suffix('>').and_then(|t| t.rsplit_once('<')) {
                Some((name, email)) if !name.trim().is_empty() => {
                    Ok(json!({ "name": name.trim(), "email": email.trim() }))
                }
                Some((_, email)) => Ok(json!({ "email": email.trim() })),
                None => Ok(json!({ "name": s })),
            }
        }
        Json::Object(_) => Ok(v.clone()),
        _ => Err("rego_parse_error: authors entries must be strings or mappings".into()),
    }
}

/// What `rule()` and `chain()` give inside one rule.
fn answers(r: &RuleAt, blocks: &[Block]) -> (Json, Json) {
    let own = blocks
        .iter()
        .find(|b| b.scope == "rule" && b.module == r.module && b.target == r.line);
    let rule = own.map_or_else(
        || Json::Object(Map::new()),
        |b| Json::Object(b.annotations.clone()),
    );
    let entry = |path: &[String], a: Option<&Map<String, Json>>| {
        let mut e = Map::new();
        e.insert("path".into(), json!(path));
        if let Some(a) = a {
            e.insert("annotations".into(), Json::Object(a.clone()));
        }
        Json::Object(e)
    };
    let mut chain = vec![entry(&r.path, own.map(|b| &b.annotations))];
    if let Some(doc) = blocks
        .iter()
        .find(|b| b.scope == "document" && b.path == r.path)
    {
        chain.push(entry(&r.path, Some(&doc.annotations)));
    }
    if let Some(pkg) = blocks
        .iter()
        .find(|b| b.scope == "package" && b.path == r.package)
    {
        chain.push(entry(&r.package, Some(&pkg.annotations)));
    }
    for len in (1..=r.package.len()).rev() {
        let prefix = &r.package[..len];
        if let Some(sub) = blocks
            .iter()
            .find(|b| b.scope == "subpackages" && b.path == prefix)
        {
            chain.push(entry(prefix, Some(&sub.annotations)));
        }
    }
    (rule, Json::Array(chain))
}

/// The rule's text with each call replaced by the extension call on its literal.
fn replace_calls(body: &str, rule: &Json, chain: &Json) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.find("rego.metadata.") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "rego.metadata.".len()..];
        let call = [("rule(", rule), ("chain(", chain)]
            .into_iter()
            .find_map(|(name, value)| {
                let args = after.strip_prefix(name)?;
                let close = args.trim_start().strip_prefix(')')?;
                Some((value, close))
            });
        match call {
            Some((value, close)) => {
                out.push_str(&format!("{CALL}({value})"));
                rest = close;
            }
            None => {
                out.push_str("rego.metadata.");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
