//! docs/configuration.md cannot drift:
//! - its table of every key is what the binary does now: the key list comes from a serde dump
//!   of the config (so a key added to `src/config/` without a row fails here), each default is
//!   the dump's value, and each wrong value gets exactly the one line the table shows from the
//!   real binary (`sluice serve -c FILE`, or `sluice webhook` for `webhook.*` keys). With
//!   `DOC_RUN=overwrite` (`scripts/doc-run`) the table is rewritten instead; a new key gets a
//!   wrong value chosen by its type, which a person may replace in the doc.
//! - every row of its other tables (more wrong values, mistakes found at start) is run the same
//!   way and must exit 1 with exactly the line shown.

mod support;

use serde_json::{Value, json};
use support::*;

/// A config with every optional section present and only the keys they require set, so the
/// dump holds every key and every other key its default.
fn sample() -> Value {
    json!({
        "policy": {"bundle": {"file": "plant.tar.gz"}},
        "decision_log": {},
        "intercept": {},
        "mqtt": [{
            "listen": "127.0.0.1:1883",
            "upstream": "broker.plant.local:1883",
            "tls": {"cert": "tls.crt", "key": "tls.key"},
            "upstream_tls": {"ca": "ca.crt"}
        }],
        "bridges": [{
            "name": "cloud",
            "local": {"broker": "127.0.0.1:1883"},
            "remote": {"broker": "cloud.example.com:8883", "tls": {"ca": "ca.crt"}},
            "topics": ["plant/+/aggregates/#"],
            "spool": {"path": "cloud.db"}
        }]
    })
}

/// Keys whose wrong value is chosen by hand: the type alone does not say what is wrong.
const WRONG: &[(&str, &str)] = &[
    ("site.local_networks", "[10.0.0.0/33]"),
    ("site.local_domains", "[\"plant..local\"]"),
    ("policy.decision", "manufacturing.smart"),
    (
        "policy.bundle.url",
        "ftp://bundles.plant.local/plant.tar.gz",
    ),
    ("mqtt[].upstream", "broker.plant.local"),
    ("bridges[].name", "\"\""),
    ("bridges[].local.broker", "plant-broker"),
    ("bridges[].remote.broker", "cloud.example.com"),
    ("bridges[].topics", "[\"plant/#/raw\"]"),
    ("bridges[].replay.rate", "fast"),
    ("intercept.dns.upstream", "[10.0.0.53]"),
    ("intercept.exclude_ports", "[70000]"),
    ("decision_log.sample_allowed", "2"),
    ("bridges[].qos", "3"),
    ("log.level", "warning"),
    ("runtime.workers", "0"),
];

/// Keys that exclude a key the sample sets: the sibling is left out of that key's row.
const EXCLUSIVE: &[(&str, &str)] = &[("policy.bundle.url", "file")];

/// The dotted key paths of `v` (`mqtt[].listen` for a list of sections): a leaf for every
/// scalar or list of scalars, a row for every section that is off (`null`) by default.
fn key_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if !prefix.is_empty() && is_off_by_default(prefix) {
                out.push(prefix.to_string());
            }
            for (k, child) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                key_paths(child, &p, out);
            }
        }
        Value::Array(items) if items.first().is_some_and(Value::is_object) => {
            out.push(prefix.to_string());
            key_paths(&items[0], &format!("{prefix}[]"), out);
        }
        _ => out.push(prefix.to_string()),
    }
}

fn is_off_by_default(path: &str) -> bool {
    removed(path).is_ok_and(|dump| lookup(&dump, path).is_some_and(Value::is_null))
}

/// The value at a dotted path; `x[]` is the first item of list `x`.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, part| match part.strip_suffix("[]") {
            Some(list) => v.get(list)?.get(0),
            None => v.get(part),
        })
}

fn lookup_mut<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.')
        .try_fold(v, |v, part| match part.strip_suffix("[]") {
            Some(list) => v.get_mut(list)?.get_mut(0),
            None => v.get_mut(part),
        })
}

/// The config serialised as sluice reads it, or the one-line refusal.
fn dump(text: &str) -> Result<Value, String> {
    let cfg = sluice::config::Config::parse(text).map_err(|e| e.to_string())?;
    serde_json::to_value(&cfg).map_err(|e| e.to_string())
}

/// The sample with `path` removed (its default then applies), as sluice reads it.
fn removed(path: &str) -> Result<Value, String> {
    let mut doc = sample();
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let holder = if parent.is_empty() {
        Some(&mut doc)
    } else {
        lookup_mut(&mut doc, parent)
    };
    if let Some(Value::Object(map)) = holder {
        map.remove(key.trim_end_matches("[]"));
    }
    dump(&doc.to_string())
}

/// The config text for `path` set to `raw` (YAML flow text), inside the sample's section of
/// that key only.
fn config_with(path: &str, raw: &str) -> String {
    let section = path.split(['.', '[']).next().unwrap_or(path);
    let mut doc = json!({});
    doc[section] = sample().get(section).cloned().unwrap_or(json!({}));
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or(path);
    let mut at = &mut doc;
    for part in parts {
        at = match part.strip_suffix("[]") {
            Some(list) => &mut at[list][0],
            None => {
                if !at[part].is_object() {
                    at[part] = json!({});
                }
                &mut at[part]
            }
        };
    }
    if let Some((_, sibling)) = EXCLUSIVE.iter().find(|(k, _)| *k == path) {
        if let Value::Object(map) = at {
            map.remove(*sibling);
        }
    }
    at[last] = json!("@@VALUE@@");
    doc.to_string().replace("\"@@VALUE@@\"", raw)
}

/// A duration from the dump (`300000ms`) as a person writes it (`5m`).
fn duration_text(ms: u64) -> String {
    for (unit, n) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms >= n && ms % n == 0 {
            return format!("{}{unit}", ms / n);
        }
    }
    format!("{ms}ms")
}

fn is_size(path: &str) -> bool {
    let key = path.rsplit('.').next().unwrap_or(path);
    key.ends_with("_bytes") || key.ends_with("_size")
}

fn size_text(n: u64) -> String {
    for (unit, k) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= k && n % k == 0 {
            return format!("{}{unit}", n / k);
        }
    }
    n.to_string()
}

/// A value as YAML flow text: strings plain unless YAML would read them otherwise.
fn yaml(path: &str, v: &Value) -> String {
    match v {
        Value::String(s) => match s.strip_suffix("ms").and_then(|n| n.parse::<u64>().ok()) {
            Some(ms) => duration_text(ms),
            None => {
                let plain = !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._/-:+#".contains(c))
                    && s.chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/')
                    && !s.contains(": ");
                if plain { s.clone() } else { format!("{s:?}") }
            }
        },
        Value::Number(n) if is_size(path) => n.as_u64().map(size_text).unwrap_or(n.to_string()),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|i| yaml(path, i)).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// The default cell: the dump's value, `(required)` when sluice refuses the key's absence.
fn default_cell(path: &str) -> String {
    match removed(path) {
        Ok(dump) => match lookup(&dump, path) {
            Some(v) => format!("`{}`", yaml(path, v)),
            None => "(none)".to_string(),
        },
        Err(e) if e.contains("missing field") => "(required)".to_string(),
        Err(e) => format!("(needed: {})", e.replace('`', "")),
    }
}

/// A wrong value for a key: by hand ([`WRONG`]), else by the default's type.
fn wrong_value(path: &str, kept: Option<&str>) -> String {
    if let Some(v) = kept {
        return v.to_string();
    }
    if let Some((_, v)) = WRONG.iter().find(|(k, _)| *k == path) {
        return v.to_string();
    }
    let dumped = dump(&sample().to_string()).unwrap_or_default();
    let key = path.rsplit('.').next().unwrap_or(path);
    match lookup(&dumped, path) {
        Some(Value::String(s)) if s.ends_with("ms") => "5".into(),
        Some(Value::Number(_)) if is_size(path) => "3 MiB".into(),
        Some(Value::Number(_)) => "-1".into(),
        Some(Value::Bool(_)) => "yes".into(),
        Some(Value::String(_)) if key == "listen" => "plant-gw:3128".into(),
        // A word where a choice of words is expected; else a list where text is expected.
        Some(Value::String(_)) if dump(&config_with(path, "bogus")).is_err() => "bogus".into(),
        Some(Value::String(_)) => "[a, b]".into(),
        Some(Value::Array(_)) => "{a: 1}".into(),
        Some(Value::Object(_)) | Some(Value::Null) | None => "42".into(),
    }
}

/// The one line sluice prints for `path` set to `raw`, after `sluice CMD: FILE: `; `None`
/// when the value is accepted.
fn refusal(dir: &TempDir, path: &str, raw: &str) -> Option<String> {
    let text = config_with(path, raw);
    dump(&text).err()?;
    let file = dir.file("row.yaml", &text).display().to_string();
    let command = if path.starts_with("webhook.") {
        "webhook"
    } else {
        "serve"
    };
    let out = cli::sluice(&[command, "-c", &file]);
    assert_eq!(
        out.code, 1,
        "{path}: {raw}: exit code; stderr {}",
        out.stderr
    );
    let prefix = format!("sluice {command}: {file}: ");
    let line = out.stderr.strip_suffix('\n').unwrap_or(&out.stderr);
    assert!(!line.contains('\n'), "{path}: more than one line: {line}");
    Some(line.strip_prefix(&prefix).unwrap_or(line).to_string())
}

const START: &str = "<!-- every-key-table:start -->";
const END: &str = "<!-- every-key-table:end -->";

/// The table of every key as the binary has it now, keeping the doc's wrong values.
fn every_key_table(doc_rows: &[Vec<String>]) -> String {
    let dir = TempDir::new("config-keys");
    let mut keys = Vec::new();
    let dumped = dump(&sample().to_string()).unwrap_or_else(|e| panic!("the sample: {e}"));
    key_paths(&dumped, "", &mut keys);
    let mut out =
        String::from("| key | default | wrong value | what sluice says |\n|---|---|---|---|\n");
    for key in keys {
        let kept = doc_rows
            .iter()
            .find(|r| code(&r[0]) == key)
            .map(|r| code(&r[2]).to_string());
        let wrong = wrong_value(&key, kept.as_deref().filter(|v| *v != "—"));
        let said = match refusal(&dir, &key, &wrong) {
            Some(line) => format!("`{line}`"),
            None => "(accepted: any value of its type is valid here)".to_string(),
        };
        out.push_str(&format!(
            "| `{key}` | {} | `{wrong}` | {said} |\n",
            default_cell(&key)
        ));
    }
    out
}

/// The cells of each table row whose first cell is a `key`.
fn rows(doc: &str) -> Vec<Vec<String>> {
    doc.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// Strips the surrounding backticks of a code cell (the message may contain backticks itself).
fn code(cell: &str) -> &str {
    cell.strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or(cell)
}

fn read_doc() -> String {
    std::fs::read_to_string(repo("docs/configuration.md"))
        .unwrap_or_else(|e| panic!("docs/configuration.md: {e}"))
}

#[test]
fn every_config_key_has_a_row_with_its_default_and_what_a_wrong_value_gets() {
    let doc = read_doc();
    let (head, rest) = doc
        .split_once(START)
        .unwrap_or_else(|| panic!("docs/configuration.md lost its {START} marker"));
    let (table, tail) = rest
        .split_once(END)
        .unwrap_or_else(|| panic!("docs/configuration.md lost its {END} marker"));
    let now = every_key_table(&rows(table));
    if now.trim() == table.trim() {
        return;
    }
    if std::env::var("DOC_RUN").is_ok_and(|v| v == "overwrite") {
        let text = format!("{head}{START}\n{now}{END}{tail}");
        std::fs::write(repo("docs/configuration.md"), text).unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    let shown: Vec<&str> = table.trim().lines().collect();
    let first = now
        .lines()
        .zip(shown.iter().copied().chain(std::iter::repeat("(no row)")))
        .find(|(a, b)| a != b);
    panic!(
        "docs/configuration.md's table of every key differs from the binary (a key added, a \
         default or a message changed): run scripts/doc-run and review the diff.\nfirst \
         difference:\n  binary: {:?}\n  doc:    {:?}",
        first.map(|f| f.0),
        first.map(|f| f.1)
    );
}

#[test]
fn every_further_mistake_in_the_configuration_doc_gets_the_line_it_shows() {
    let doc = read_doc();
    let (_, rest) = doc.split_once(END).unwrap_or(("", &doc));
    let rows = rows(rest);
    assert!(rows.len() >= 4, "the tables lost their rows: {rows:?}");
    let dir = TempDir::new("config-table");
    for (i, row) in rows.iter().enumerate() {
        let key = code(&row[0]);
        let command = if key.starts_with("webhook.") {
            "webhook"
        } else {
            "serve"
        };
        let (yaml, expected) = match row.len() {
            3 => (config_with(key, code(&row[1])), code(&row[2]).to_string()),
            2 if key == "policy.bundle.file" => (
                "admin: {listen: 127.0.0.1:0}\nhttp: null\npolicy:\n  bundle: {file: /nonexistent/plant.tar.gz}\n".to_string(),
                code(&row[1]).to_string(),
            ),
            2 if key == "webhook.tls.cert" => (
                "webhook:\n  tls: {cert: /nonexistent/tls.crt, key: /nonexistent/tls.key}\n"
                    .to_string(),
                code(&row[1]).to_string(),
            ),
            _ => panic!("a row this test does not know how to run: {row:?}"),
        };
        let path = dir
            .file(&format!("row{i}.yaml"), &yaml)
            .display()
            .to_string();
        let out = cli::sluice(&[command, "-c", &path]);
        let line = if dump(&yaml).is_err() {
            format!("sluice {command}: {path}: {expected}")
        } else {
            format!("sluice {command}: {expected}")
        };
        assert_one_line_error(&out, &line);
    }
}
