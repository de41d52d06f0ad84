//! `sluice eval` through the real binary: the `opa eval` JSON shape, raw and pretty output,
//! --fail / --fail-defined, embedded policies when no -d is given.

mod support;

use support::{TempDir, assert_one_line_error, sluice};

const EXPORT: &str = "fixtures/policy/inputs/export.json";
const LOCAL: &str = "fixtures/policy/inputs/local.json";

#[test]
fn json_output_has_the_opa_eval_shape() {
    let out = sluice(&[
        "eval",
        "-d",
        "policies",
        "-i",
        EXPORT,
        "data.manufacturing.smart.deny",
    ]);
    let expected = r#"{
  "result": [
    {
      "expressions": [
        {
          "value": true,
          "text": "data.manufacturing.smart.deny",
          "location": {
            "row": 1,
            "col": 1
          }
        }
      ]
    }
  ]
}
"#;
    assert_eq!(out.stdout, expected);
    assert_eq!(out.stderr, "");
    assert_eq!(out.code, 0);
}

#[test]
fn bindings_appear_only_when_the_query_binds_variables() {
    let out = sluice(&["eval", "x := 1; y := x + 1"]);
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(
        v["result"][0]["bindings"],
        serde_json::json!({"x": 1, "y": 2})
    );
    assert_eq!(v["result"][0]["expressions"][1]["text"], "y := x + 1");
    assert_eq!(
        v["result"][0]["expressions"][1]["location"],
        serde_json::json!({"row": 1, "col": 9})
    );
}

#[test]
fn undefined_result_is_an_empty_object() {
    let out = sluice(&["eval", "-i", LOCAL, "data.manufacturing.smart.deny"]);
    assert_eq!(out.stdout, "{}\n");
    assert_eq!(out.code, 0);
}

#[test]
fn without_data_flag_the_embedded_shipped_policies_answer() {
    let embedded = sluice(&["eval", "-i", LOCAL, "data.manufacturing.smart.allow"]);
    let from_disk = sluice(&[
        "eval",
        "-d",
        "policies",
        "-i",
        LOCAL,
        "data.manufacturing.smart.allow",
    ]);
    assert_eq!(embedded.stdout, from_disk.stdout);
    assert!(
        embedded.stdout.contains("\"value\": true"),
        "{}",
        embedded.stdout
    );
    let allowlist = sluice(&[
        "eval",
        "--format",
        "raw",
        "data.manufacturing.export_allowlist",
    ]);
    assert_eq!(allowlist.stdout, "[]\n");
}

#[test]
fn raw_prints_values_only() {
    let out = sluice(&[
        "eval",
        "--format",
        "raw",
        "-i",
        EXPORT,
        "data.manufacturing.egress.deny",
    ]);
    assert_eq!(
        out.stdout,
        "[\n  \"mqtt publish to ingest.cloud.example.com is an export and no allowlist entry permits it\"\n]\n"
    );
    let out = sluice(&["eval", "--format", "raw", "-i", EXPORT, "input.target.host"]);
    assert_eq!(out.stdout, "ingest.cloud.example.com\n");
    let out = sluice(&[
        "eval",
        "--format",
        "raw",
        "-i",
        LOCAL,
        "data.manufacturing.smart.deny",
    ]);
    assert_eq!(out.stdout, "");
}

#[test]
fn pretty_prints_indented_values_and_undefined() {
    let out = sluice(&["eval", "--format", "pretty", "-i", EXPORT, "input.target"]);
    assert_eq!(
        out.stdout,
        "{\n  \"host\": \"ingest.cloud.example.com\",\n  \"port\": 8883,\n  \"zone\": \"external\"\n}\n"
    );
    let out = sluice(&[
        "eval",
        "--format",
        "pretty",
        "-i",
        LOCAL,
        "data.manufacturing.smart.deny",
    ]);
    assert_eq!(out.stdout, "undefined\n");
}

#[test]
fn fail_exits_one_only_when_undefined() {
    let undefined = sluice(&[
        "eval",
        "--fail",
        "-i",
        LOCAL,
        "data.manufacturing.smart.deny",
    ]);
    assert_eq!((undefined.stdout.as_str(), undefined.code), ("{}\n", 1));
    let defined = sluice(&[
        "eval",
        "--fail",
        "-i",
        EXPORT,
        "data.manufacturing.smart.deny",
    ]);
    assert_eq!(defined.code, 0);
    // false is a defined result, as in opa.
    let false_value = sluice(&[
        "eval",
        "--fail",
        "-i",
        EXPORT,
        "data.manufacturing.smart.allow",
    ]);
    assert_eq!(false_value.code, 0);
}

#[test]
fn fail_defined_exits_one_only_when_defined() {
    let defined = sluice(&[
        "eval",
        "--fail-defined",
        "-i",
        EXPORT,
        "data.manufacturing.smart.deny",
    ]);
    assert_eq!(defined.code, 1);
    assert!(defined.stdout.contains("\"value\": true"));
    let undefined = sluice(&[
        "eval",
        "--fail-defined",
        "-i",
        LOCAL,
        "data.manufacturing.smart.deny",
    ]);
    assert_eq!(undefined.code, 0);
}

#[test]
fn yaml_input_is_accepted() {
    let dir = TempDir::new("eval");
    let file = dir.file(
        "input.yaml",
        "action: process_data\ndata_stays_local: true\n",
    );
    let out = sluice(&[
        "eval",
        "--format",
        "raw",
        "-i",
        &file.display().to_string(),
        "data.manufacturing.smart.allow",
    ]);
    assert_eq!(out.stdout, "true\n");
}

#[test]
fn input_that_is_not_json_is_one_line_error() {
    let out = sluice(&[
        "eval",
        "-i",
        "fixtures/policy/inputs/not-json.json",
        "input",
    ]);
    assert_one_line_error(
        &out,
        "fixtures/policy/inputs/not-json.json:1:1: input is not valid JSON: expected value",
    );
}

#[test]
fn missing_input_file_is_one_line_error() {
    let out = sluice(&["eval", "-i", "fixtures/policy/inputs/absent.json", "input"]);
    assert_one_line_error(
        &out,
        "fixtures/policy/inputs/absent.json: no such file or directory",
    );
}

#[test]
fn query_syntax_error_is_one_line_error() {
    let out = sluice(&["eval", "data.x["]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("query:1:"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1);
}

#[test]
fn evaluation_error_is_one_line_error() {
    let out = sluice(&[
        "eval",
        "-d",
        "fixtures/policy/mixed",
        "-i",
        "fixtures/policy/inputs/pen.json",
        "data.shop.price",
    ]);
    assert_one_line_error(
        &out,
        "fixtures/policy/mixed/policy.rego:17:1: rule conflicts with rule at fixtures/policy/mixed/policy.rego:15:1",
    );
}
