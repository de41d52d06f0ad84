//! `sluice test` through the real binary: OPA's output, flags and exit codes.

mod support;

use support::{TempDir, normalise, sluice};

const MIXED: &str = "fixtures/policy/mixed";

#[test]
fn default_report_lists_non_passing_tests_by_file_then_opa_summary() {
    let out = sluice(&["test", MIXED]);
    let expected = "\
fixtures/policy/mixed/more_test.rego:
data.shop_more_test.test_nobody_is_admin_by_default: FAIL (DUR)

fixtures/policy/mixed/policy_test.rego:
data.shop_test.test_clerk_reads#01: FAIL (DUR)

  clerk write input: {\"action\": \"write\", \"role\": \"clerk\"}

data.shop_test.test_price_is_ten: ERROR (DUR)
  fixtures/policy/mixed/policy.rego:17:1: rule conflicts with rule at fixtures/policy/mixed/policy.rego:15:1
data.shop_test.test_undefined_is_a_failure: FAIL (DUR)
data.shop_test.todo_test_discounts: SKIPPED
--------------------------------------------------------------------------------
PASS: 5/10
FAIL: 3/10
SKIPPED: 1/10
ERROR: 1/10
";
    assert_eq!(normalise(&out.stdout), expected);
    assert_eq!(out.stderr, "");
    assert_eq!(out.code, 2);
}

#[test]
fn verbose_report_shows_every_test_failures_section_and_print_output() {
    let out = sluice(&["test", "-v", MIXED]);
    let expected = "\
FAILURES
--------------------------------------------------------------------------------
data.shop_more_test.test_nobody_is_admin_by_default: FAIL (DUR)

  fixtures/policy/mixed/more_test.rego:11: data.shop_more_test.test_nobody_is_admin_by_default is undefined, not true

data.shop_test.test_clerk_reads#01: FAIL (DUR)

  fixtures/policy/mixed/policy_test.rego:10: data.shop_test.test_clerk_reads#01 is undefined, not true

data.shop_test.test_undefined_is_a_failure: FAIL (DUR)

  fixtures/policy/mixed/policy_test.rego:19: data.shop_test.test_undefined_is_a_failure is undefined, not true

SUMMARY
--------------------------------------------------------------------------------
fixtures/policy/mixed/more_test.rego:
data.shop_more_test.test_admin_writes: PASS (DUR)

  admin may write

data.shop_more_test.test_nobody_is_admin_by_default: FAIL (DUR)

fixtures/policy/mixed/policy_test.rego:
data.shop_test.test_admin_allowed: PASS (DUR)
data.shop_test.test_clerk_reads: PASS (DUR)
data.shop_test.test_clerk_reads#01: FAIL (DUR)

  clerk write input: {\"action\": \"write\", \"role\": \"clerk\"}

data.shop_test.test_guest_denied: PASS (DUR)
data.shop_test.test_price_is_ten: ERROR (DUR)
  fixtures/policy/mixed/policy.rego:17:1: rule conflicts with rule at fixtures/policy/mixed/policy.rego:15:1
data.shop_test.test_undefined_is_a_failure: FAIL (DUR)
data.shop_test.todo_test_discounts: SKIPPED
data.shop_test.test_clerk_reads#02: PASS (DUR)
--------------------------------------------------------------------------------
PASS: 5/10
FAIL: 3/10
SKIPPED: 1/10
ERROR: 1/10
";
    assert_eq!(normalise(&out.stdout), expected);
    assert_eq!(out.code, 2);
}

#[test]
fn all_passing_prints_only_the_pass_line_and_exits_zero() {
    let out = sluice(&["test", "fixtures/policy/passing"]);
    assert_eq!(out.stdout, "PASS: 3/3\n");
    assert_eq!(out.stderr, "");
    assert_eq!(out.code, 0);
}

#[test]
fn run_filter_matches_full_names_including_duplicate_numbers() {
    let out = sluice(&["test", "-v", "--run", "clerk_reads", MIXED]);
    let expected = "\
FAILURES
--------------------------------------------------------------------------------
data.shop_test.test_clerk_reads#01: FAIL (DUR)

  fixtures/policy/mixed/policy_test.rego:10: data.shop_test.test_clerk_reads#01 is undefined, not true

SUMMARY
--------------------------------------------------------------------------------
fixtures/policy/mixed/policy_test.rego:
data.shop_test.test_clerk_reads: PASS (DUR)
data.shop_test.test_clerk_reads#01: FAIL (DUR)

  clerk write input: {\"action\": \"write\", \"role\": \"clerk\"}

data.shop_test.test_clerk_reads#02: PASS (DUR)
--------------------------------------------------------------------------------
PASS: 2/3
FAIL: 1/3
";
    assert_eq!(normalise(&out.stdout), expected);
    assert_eq!(out.code, 2);

    let out = sluice(&[
        "test",
        "-r",
        "^data\\.shop_test\\.test_(admin|guest)",
        MIXED,
    ]);
    assert_eq!(out.stdout, "PASS: 2/2\n");
    assert_eq!(out.code, 0);
}

#[test]
fn json_format_is_opa_result_array() {
    let out = sluice(&["test", "--format", "json", MIXED]);
    assert_eq!(out.code, 2);
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    let results = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    assert_eq!(results.len(), 10);

    let find = |name: &str| {
        results
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no result {name}"))
    };
    let pass = find("test_admin_allowed");
    assert_eq!(pass["package"], "data.shop_test");
    assert_eq!(
        pass["location"],
        serde_json::json!({"file": "fixtures/policy/mixed/policy_test.rego", "row": 6, "col": 1})
    );
    assert!(pass["duration"].as_u64().is_some_and(|d| d > 0));
    for absent in ["fail", "error", "skip", "output"] {
        assert!(pass.get(absent).is_none(), "{absent} in {pass}");
    }

    let fail = find("test_clerk_reads#01");
    assert_eq!(fail["fail"], true);
    // base64 of the printed line, as Go encodes []byte.
    assert_eq!(
        fail["output"],
        "Y2xlcmsgd3JpdGUgaW5wdXQ6IHsiYWN0aW9uIjogIndyaXRlIiwgInJvbGUiOiAiY2xlcmsifQo="
    );

    let err = find("test_price_is_ten");
    assert!(err.get("fail").is_none());
    assert_eq!(err["error"]["code"], "eval_error");
    assert_eq!(
        err["error"]["location"],
        serde_json::json!({"file": "fixtures/policy/mixed/policy.rego", "row": 17, "col": 1})
    );

    let skip = find("todo_test_discounts");
    assert_eq!(skip["skip"], true);
    assert_eq!(skip["duration"], 0);

    // Field order is OPA's (Go struct order), not alphabetical.
    let first = out.stdout.find("\"location\"").unwrap_or(usize::MAX);
    let pkg = out.stdout.find("\"package\"").unwrap_or(0);
    let name = out.stdout.find("\"name\"").unwrap_or(0);
    assert!(first < pkg && pkg < name, "{}", out.stdout);
}

#[test]
fn skipped_tests_exit_two_unless_exit_zero_on_skipped() {
    let out = sluice(&["test", "--run", "admin_allowed|todo", MIXED]);
    assert_eq!(
        out.stdout,
        "fixtures/policy/mixed/policy_test.rego:\ndata.shop_test.todo_test_discounts: SKIPPED\n\
         --------------------------------------------------------------------------------\n\
         PASS: 1/2\nSKIPPED: 1/2\n"
    );
    assert_eq!(out.code, 2);
    let out = sluice(&["test", "-z", "--run", "admin_allowed|todo", MIXED]);
    assert_eq!(out.code, 0);
}

#[test]
fn timeout_turns_a_runaway_test_into_an_error() {
    let out = sluice(&["test", "--timeout", "100ms", "fixtures/policy/slow"]);
    let expected = "\
fixtures/policy/slow/slow_test.rego:
data.slow_test.test_busy: ERROR (DUR)
  fixtures/policy/slow/slow_test.rego:7:1: test timed out after 100ms (set the limit with --timeout)
--------------------------------------------------------------------------------
PASS: 1/2
ERROR: 1/2
";
    assert_eq!(normalise(&out.stdout), expected);
    assert_eq!(out.code, 2);
}

#[test]
fn fail_on_empty_exits_one_when_no_test_ran() {
    let out = sluice(&["test", "fixtures/policy/notests"]);
    assert_eq!((out.stdout.as_str(), out.code), ("", 0));
    let out = sluice(&["test", "--fail-on-empty", "fixtures/policy/notests"]);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "no tests were run\n");
    assert_eq!(out.code, 1);
    let out = sluice(&["test", "--fail-on-empty", "--run", "nothing-matches", MIXED]);
    assert_eq!(out.code, 1);
}

#[test]
fn coverage_prints_opa_coverage_report() {
    let out = sluice(&["test", "--coverage", "fixtures/policy/passing"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    let file = &v["files"]["fixtures/policy/passing/rates.rego"];
    // The headroom rule's value (line 11) and its second condition (line 13) never ran.
    assert_eq!(
        file["covered"],
        serde_json::json!([
            {"start": {"row": 5}, "end": {"row": 5}},
            {"start": {"row": 7}, "end": {"row": 7}},
            {"start": {"row": 9}, "end": {"row": 9}},
            {"start": {"row": 12}, "end": {"row": 12}}
        ])
    );
    assert_eq!(
        file["not_covered"],
        serde_json::json!([
            {"start": {"row": 11}, "end": {"row": 11}},
            {"start": {"row": 13}, "end": {"row": 13}}
        ])
    );
    assert_eq!(file["covered_lines"], 4);
    assert_eq!(file["not_covered_lines"], 2);
    assert_eq!(file["coverage"], 400.0 / 6.0);
    let tests = &v["files"]["fixtures/policy/passing/rates_test.rego"];
    assert_eq!(tests["coverage"], 100.0);
    assert!(tests.get("not_covered").is_none());
    assert_eq!(v["covered_lines"], 7);
    assert_eq!(v["not_covered_lines"], 2);
    assert_eq!(v["coverage"], 700.0 / 9.0);
    // Go's encoder prints whole numbers without a fraction.
    assert!(
        out.stdout.contains("      \"coverage\": 100\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn threshold_below_coverage_exits_two_with_opa_message() {
    let out = sluice(&["test", "--threshold", "90", "fixtures/policy/passing"]);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "Code coverage threshold not met: got 77.78 instead of 90.00\n"
    );
    assert_eq!(out.code, 2);

    let out = sluice(&["test", "-v", "--threshold", "90", "fixtures/policy/passing"]);
    assert_eq!(
        out.stderr,
        "Code coverage threshold not met: got 77.78 instead of 90.00\nLines not covered:\n\
         \tfixtures/policy/passing/rates.rego:11\n\tfixtures/policy/passing/rates.rego:13\n"
    );

    let out = sluice(&["test", "--threshold", "77.5", "fixtures/policy/passing"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("\"coverage\": 77.77777777777777\n"),
        "{}",
        out.stdout
    );

    let out = sluice(&["test", "--threshold", "101", "fixtures/policy/passing"]);
    assert_eq!(
        out.stderr,
        "Code coverage threshold must be between 0 and 100\n"
    );
    assert_eq!(out.code, 1);
}

#[test]
fn coverage_with_a_failing_test_reports_that_test_and_exits_one() {
    let out = sluice(&["test", "--coverage", "--run", "nobody", MIXED]);
    assert_eq!(out.stdout, "");
    assert_eq!(
        normalise(&out.stderr),
        "data.shop_more_test.test_nobody_is_admin_by_default: FAIL (DUR)\n"
    );
    assert_eq!(out.code, 1);
}

#[test]
fn shipped_policies_pass_with_full_coverage_of_the_seed_policy() {
    let out = sluice(&["test", "policies/"]);
    assert_eq!(out.stderr, "");
    assert!(
        out.stdout.starts_with("PASS: ") && out.stdout.lines().count() == 1,
        "{}",
        out.stdout
    );
    assert_eq!(out.code, 0);

    let out = sluice(&["test", "--coverage", "--threshold", "100", "policies/"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(
        v["files"]["policies/manufacturing/smart.rego"]["coverage"],
        100.0
    );
    assert_eq!(
        v["files"]["policies/manufacturing/egress.rego"]["coverage"],
        100.0
    );
}

#[test]
fn v0_compatible_parses_v0_tests() {
    let dir = TempDir::new("v0");
    let file = dir.file(
        "v0_test.rego",
        "package v0\n\nallow { input.x == 1 }\n\ntest_allow { allow with input as {\"x\": 1} }\n",
    );
    let path = file.display().to_string();
    let v1 = sluice(&["test", &path]);
    assert_eq!(
        v1.code, 1,
        "v1 parsing must reject v0 syntax: {}",
        v1.stdout
    );
    assert!(
        v1.stderr.starts_with(&format!("{path}:3:")),
        "{}",
        v1.stderr
    );
    assert_eq!(v1.stderr.lines().count(), 1);
    let v0 = sluice(&["test", "--v0-compatible", &path]);
    assert_eq!(v0.stdout, "PASS: 1/1\n");
    assert_eq!(v0.code, 0);
}
