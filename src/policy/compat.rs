//! Generates docs/compatibility.md from the code: every OPA 1.20 builtin (from OPA's own
//! capabilities, fixtures/opa-diff/opa-builtins.json) probed on the engine sluice sets up, and
//! the known semantic differences (fixtures/opa-diff/divergences.json plus sluice's limits).
//! `tests/compatibility_doc.rs` fails when the page and this output differ.
//!
//! At load: the type check reads OPA's declaration of each builtin called with a constant
//! argument (a table compiled in, src/policy/opa_builtins.rs, generated here), and on an error
//! `compile` asks whether OPA has a builtin sluice lacks, and why. Nothing here is on the
//! decision path.

use std::fmt::Write;

use super::builtins;
use super::engine::EngineSetup;

const OPA_BUILTINS: &str = include_str!("../../fixtures/opa-diff/opa-builtins.json");
const DIVERGENCES: &str = include_str!("../../fixtures/opa-diff/divergences.json");
const CHECK_DIVERGENCES: &str = include_str!("../../fixtures/opa-diff/check-divergences.json");

/// Why a builtin OPA has is not in sluice, by name or by `prefix.`.
// Empty: every builtin of OPA 1.20 is in sluice or refused; a builtin a later OPA adds
// goes here until it is built.
const UNSUPPORTED: &[(&str, &str)] = &[];

/// Builtins the extension replaces although regorus has one, and why.
const REPLACED: &[(&str, &str)] = &[
    ("strings.count", "regorus's panics on an empty needle"),
    (
        "yaml.unmarshal",
        "YAML 1.1 as OPA reads it (`yes`/`no`/`on`/`off` booleans, `010` octal); regorus's reads YAML 1.2",
    ),
    (
        "net.cidr_expand",
        "bounded to 65536 addresses so it cannot outlast eval_timeout",
    ),
];

/// Differences that are sluice's choice rather than regorus's, shown with the corpus's.
const LIMITS: &[&str] = &[
    "`http.send` and `net.lookup_ip_addr` are refused when a policy is loaded (`file:line:col: … is not available in sluice`): a policy must not be a way out of the plant.",
    "`net.cidr_expand` refuses networks of more than 65536 addresses, `net.cidr_merge` and `net.cidr_contains_matches` lists of more than 65536 entries, and JWTs longer than 1 MiB are refused: OPA has no such limits.",
    "Types are checked at load for constant arguments only (`upper(1)`, `1 + \"a\"`: `rego_type_error: upper: invalid argument(s)`); a value of the wrong type that reaches a builtin through a variable, a rule or data is a builtin error at evaluation in sluice (undefined in the default mode) where OPA's type checker refuses the policy. Undefined functions, arity and unsafe variables are checked at load as OPA checks them (src/policy/compile, fixtures/opa-diff/check).",
    "`strings.render_template`: templates over 1 MiB, output past 16 MiB and blocks, parentheses or template calls nested more than 100 deep are errors: OPA has no such limits.",
    "`json.match_schema` and `json.verify_schema` refuse a `$ref` that points outside the schema (`$ref http://… is not fetched`): OPA fetches it over the network, and a policy must not be a way out of the plant.",
    "Policies, templates and `rego.parse_module` texts with expressions nested more than 200 deep (each bracket and each operator of a chain such as `1 + 1 + …` counts), lines longer than 1024 columns, more than 20000 lines or over 1 MiB are refused with a parse error where OPA parses them: regorus's syntax tree for a longer chain overflows the stack when it is dropped, which would abort the process (brackets nested 28 deep used to take regorus's parser hours: sluice patch 9).",
    "The `graphql.*` builtins refuse a document nested deeper than 200 levels (selection sets, values, types) or longer than 8 MiB, and find a query invalid whose fields and fragment spreads nest deeper than 500 levels: OPA has no such limits.",
    "Gatekeeper templates always run with builtin errors non-strict, as Gatekeeper runs OPA; `policy.strict_builtin_errors` applies to the gateway's policy and `--strict-builtin-errors` to `sluice test` and `sluice eval`.",
];

/// One builtin of OPA 1.20, as its capabilities describe it.
#[derive(Debug)]
pub struct OpaBuiltin {
    pub name: &'static str,
    pub arity: i64,
    pub infix: Option<&'static str>,
    pub deprecated: bool,
    /// Per argument, the kinds of value OPA's type checker accepts (`None`: any).
    pub arg_kinds: &'static [Option<&'static [&'static str]>],
}

/// A builtin as OPA's capabilities file writes it, to generate the table.
#[derive(serde::Deserialize)]
struct Capability {
    name: String,
    arity: i64,
    infix: Option<String>,
    deprecated: bool,
    #[serde(default)]
    arg_kinds: Vec<Option<Vec<String>>>,
}

/// The table compiled into the binary (src/policy/opa_builtins.rs), sorted by name: every
/// load type-checks against it, and parsing the 36 KB of JSON at each start was a twentieth of
/// a `sluice eval`.
fn opa_builtins() -> &'static [OpaBuiltin] {
    super::opa_builtins::OPA_BUILTINS
}

/// OPA 1.20's builtin of that name, if OPA has one.
pub fn opa_builtin(name: &str) -> Option<&'static OpaBuiltin> {
    let list = opa_builtins();
    list.binary_search_by(|b| b.name.cmp(name))
        .ok()
        .map(|i| &list[i])
}

/// The source of src/policy/opa_builtins.rs, from fixtures/opa-diff/opa-builtins.json;
/// `tests/compatibility_doc.rs` fails when the file and this output differ.
pub fn opa_builtins_source() -> Result<String, String> {
    let mut list: Vec<Capability> =
        serde_json::from_str(OPA_BUILTINS).map_err(|e| format!("opa-builtins.json: {e}"))?;
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::from(
        "//! OPA 1.20's builtins as its capabilities describe them \
         (fixtures/opa-diff/opa-builtins.json), sorted by\n\
         //! name. Generated by src/policy/compat.rs; \
         `SLUICE_BLESS=1 cargo test --test compatibility_doc` rewrites it.\n\n\
         use super::compat::OpaBuiltin;\n\n\
         pub(super) static OPA_BUILTINS: &[OpaBuiltin] = &[\n",
    );
    for b in &list {
        let kinds: Vec<String> = b
            .arg_kinds
            .iter()
            .map(|k| match k {
                None => "None".to_string(),
                Some(k) => {
                    let quoted: Vec<String> = k.iter().map(|s| format!("{s:?}")).collect();
                    format!("Some(&[{}])", quoted.join(", "))
                }
            })
            .collect();
        let infix = b
            .infix
            .as_deref()
            .map_or("None".to_string(), |i| format!("Some({i:?})"));
        let _ = writeln!(
            out,
            "    OpaBuiltin {{ name: {:?}, arity: {}, infix: {infix}, deprecated: {}, arg_kinds: &[{}] }},",
            b.name,
            b.arity,
            b.deprecated,
            kinds.join(", ")
        );
    }
    out.push_str("];\n");
    Ok(out)
}

/// Why sluice does not offer a builtin OPA has (the reason in docs/compatibility.md).
pub fn unsupported_reason(name: &str) -> &'static str {
    if opa_builtin(name).is_some_and(|b| b.deprecated) {
        return "deprecated; removed from Rego v1";
    }
    UNSUPPORTED
        .iter()
        .find(|(n, _)| name == *n || (n.ends_with('.') && name.starts_with(n)))
        .map_or("not implemented", |(_, why)| why)
}

/// How sluice offers one OPA builtin.
fn classify(b: &OpaBuiltin) -> (String, String) {
    if let Some(r) = builtins::REFUSED.iter().find(|r| r.name == b.name) {
        return ("refused".into(), r.reason.to_string());
    }
    if let Some(infix) = &b.infix {
        // A `|` would end the table cell.
        return (
            "supported".into(),
            format!("operator `{}`", infix.replace('|', "\\|")),
        );
    }
    if b.name == "internal.template_string" {
        return (
            "by extension".into(),
            "template strings (`$\"…{x}…\"`, OPA 1.x): rewritten to this call when the policy is loaded (src/policy/template_strings.rs)".into(),
        );
    }
    if b.name.starts_with("internal.") || b.name == "print" {
        return ("supported".into(), "language".into());
    }
    if b.name.starts_with("rego.metadata.") {
        return (
            "by extension".into(),
            "answered when the policy is loaded, from its `# METADATA` comments (src/policy/metadata.rs)".into(),
        );
    }
    if builtins::is_deprecated(b.name) {
        return (
            "by extension".into(),
            "Rego v0 only, as in OPA: deprecated, refused in a v1 module".into(),
        );
    }
    if builtins::all().any(|x| x.name == b.name) {
        let note = REPLACED
            .iter()
            .find(|(n, _)| *n == b.name)
            .map_or(String::new(), |(_, why)| {
                format!("replaces regorus's: {why}")
            });
        return ("by extension".into(), note);
    }
    if probe(b) {
        return ("supported".into(), String::new());
    }
    ("unsupported".into(), unsupported_reason(b.name).to_string())
}

/// Whether the engine knows the name: a call with null arguments fails for any other reason.
fn probe(b: &OpaBuiltin) -> bool {
    let args = vec!["null"; usize::try_from(b.arity.max(0)).unwrap_or(0)].join(", ");
    let mut engine = EngineSetup {
        rego_v0: false,
        strict_builtin_errors: true,
    }
    .engine();
    let policy = format!("package probe\n\nr := {}({args})\n", b.name);
    if engine.add_policy("probe.rego".into(), policy).is_err() {
        return false;
    }
    match engine.eval_rule("data.probe.r".into()) {
        Ok(_) => true,
        Err(e) => !e.to_string().contains("could not find function"),
    }
}

/// The whole page.
pub fn markdown() -> String {
    let list = opa_builtins();
    let divergences: std::collections::BTreeMap<String, String> =
        serde_json::from_str(DIVERGENCES).unwrap_or_default();
    let rows: Vec<(String, String, String)> = list
        .iter()
        .map(|b| {
            let (status, note) = classify(b);
            (b.name.to_string(), status, note)
        })
        .collect();
    let count = |s: &str| rows.iter().filter(|r| r.1 == s).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Compatibility with OPA\n\n\
         <!-- Generated by src/policy/compat.rs; `SLUICE_BLESS=1 cargo test --test compatibility_doc` rewrites it. -->\n\n\
         sluice evaluates Rego with regorus 0.14.1 (patched: vendor/PATCHES.md), adds the OPA \
         builtins regorus lacks as extensions (src/policy/builtins/), and is checked against OPA \
         1.20 itself by a differential corpus (fixtures/opa-diff, tests/opa_diff.rs).\n\n\
         Of OPA 1.20's {} builtins: {} supported by regorus, {} by sluice's extensions, {} refused, \
         {} unsupported.\n",
        rows.len(),
        count("supported"),
        count("by extension"),
        count("refused"),
        count("unsupported")
    );
    let _ = writeln!(
        out,
        "## Builtins\n\n| builtin | in sluice | note |\n|---|---|---|"
    );
    for (name, status, note) in &rows {
        let _ = writeln!(out, "| `{name}` | {status} | {note} |");
    }
    let _ = writeln!(
        out,
        "\n## Semantic differences left\n\n\
         Cases of the differential corpus where sluice knowingly differs from OPA \
         (fixtures/opa-diff/divergences.json):\n"
    );
    for (case, why) in &divergences {
        let _ = writeln!(out, "- `{case}`: {why}");
    }
    let check: std::collections::BTreeMap<String, String> =
        serde_json::from_str(CHECK_DIVERGENCES).unwrap_or_default();
    let _ = writeln!(
        out,
        "\n`sluice check` cases where sluice knowingly differs from `opa check` \
         (fixtures/opa-diff/check-divergences.json):\n"
    );
    for (case, why) in &check {
        let _ = writeln!(out, "- `check/{case}`: {why}");
    }
    let _ = writeln!(out, "\nBy design or not yet done:\n");
    for limit in LIMITS {
        let _ = writeln!(out, "- {limit}");
    }
    out
}
