//! docs/configuration.md cannot drift: every row of its tables of wrong values is run against
//! the real binary (`sluice serve -c FILE`, or `sluice webhook` for `webhook.*` keys) and must
//! exit 1 with exactly the one line the table shows.

mod support;

use support::*;

/// The cells of each table row of `docs/configuration.md` whose first cell is a `key`.
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

/// `a.b` with `value` as nested YAML.
fn yaml_for(key: &str, value: &str) -> String {
    let (section, field) = key.split_once('.').unwrap_or((key, ""));
    format!("{section}:\n  {field}: {value}\n")
}

/// Strips the surrounding backticks of a code cell (the message may contain backticks itself).
fn code(cell: &str) -> &str {
    cell.strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or(cell)
}

#[test]
fn every_wrong_value_in_the_configuration_doc_gets_the_line_it_shows() {
    let doc = std::fs::read_to_string(repo("docs/configuration.md"))
        .unwrap_or_else(|e| panic!("docs/configuration.md: {e}"));
    let rows = rows(&doc);
    assert!(rows.len() >= 10, "the tables lost their rows: {rows:?}");
    let dir = TempDir::new("config-table");
    for (i, row) in rows.iter().enumerate() {
        let key = code(&row[0]);
        let command = if key.starts_with("webhook.") {
            "webhook"
        } else {
            "serve"
        };
        let (yaml, expected) = match row.len() {
            4 => (yaml_for(key, code(&row[2])), code(&row[3]).to_string()),
            3 if key == "webhook.paths" => {
                (yaml_for(key, code(&row[1])), code(&row[2]).to_string())
            }
            3 if key == "policy.bundle.file" => (
                "policy:\n  bundle: {file: /nonexistent/plant.tar.gz}\n".to_string(),
                code(&row[2]).to_string(),
            ),
            _ => panic!("a row this test does not know how to run: {row:?}"),
        };
        let path = dir
            .file(&format!("row{i}.yaml"), &yaml)
            .display()
            .to_string();
        let out = cli::sluice(&[command, "-c", &path]);
        let line = if row.len() == 4 {
            format!("sluice {command}: {path}: {expected}")
        } else {
            format!("sluice {command}: {expected}")
        };
        assert_one_line_error(&out, &line);
    }
}
